#include "client/worker_gpus.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/gpu_share.h"

namespace wrpn::client {

std::string GpuSharesCell(const ::wrpn::v1::Worker& w) {
  if (w.gpus().empty()) return "-";
  std::vector<std::string> parts;
  for (const auto& g : w.gpus()) {
    std::string p = absl::StrCat(g.index(), ":", FormatShare(g.share_used()));
    if (!g.trials().empty()) absl::StrAppend(&p, "(", absl::StrJoin(g.trials(), ","), ")");
    parts.push_back(std::move(p));
  }
  return absl::StrJoin(parts, " ");
}

std::string TrialResources(const ::wrpn::v1::Trial& t) {
  const int nodes = std::max(1, t.nodes());
  const std::string mem = t.gpu_memory_bytes() > 0
                              ? absl::StrFormat(" (%.3g GiB)", t.gpu_memory_bytes() / double(1LL << 30))
                              : "";
  if (t.gpu_share() > 0) return absl::StrCat(FormatShare(t.gpu_share()), " GPU", mem);
  if (t.gpus_per_node() == 0) return absl::StrFormat("CPU, %d node%s", nodes, nodes > 1 ? "s" : "");
  return absl::StrCat(absl::StrFormat("%d GPUs per node x %d node%s", t.gpus_per_node(), nodes,
                                      nodes > 1 ? "s" : ""),
                      mem);
}

}  // namespace wrpn::client
