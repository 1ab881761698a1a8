#include "worker/agent/gpus.h"

#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace wrpn::agent {

std::vector<::wrpn::v1::Gpu> ParseNvidiaSmi(const std::string& csv) {
  std::vector<::wrpn::v1::Gpu> gpus;
  for (absl::string_view line : absl::StrSplit(csv, '\n')) {
    std::vector<absl::string_view> parts = absl::StrSplit(line, ',');
    if (parts.size() < 3) continue;
    int index = 0;
    double mib = 0;
    // The name may hold commas; index is the first field, memory the last.
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(parts.front()), &index)) continue;
    if (!absl::SimpleAtod(absl::StripAsciiWhitespace(parts.back()), &mib)) mib = 0;
    std::string name;
    for (size_t i = 1; i + 1 < parts.size(); ++i) {
      if (i > 1) name += ",";
      name += std::string(parts[i]);
    }
    ::wrpn::v1::Gpu g;
    g.set_index(index);
    g.set_name(std::string(absl::StripAsciiWhitespace(name)));
    g.set_memory_bytes(static_cast<int64_t>(mib * 1024 * 1024));
    gpus.push_back(std::move(g));
  }
  return gpus;
}

std::vector<::wrpn::v1::Gpu> DetectGpus() {
  FILE* f = popen("nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader,nounits "
                  "2>/dev/null", "r");
  if (!f) return {};
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof(buf), f)) > 0;) out.append(buf, n);
  if (pclose(f) != 0) return {};
  return ParseNvidiaSmi(out);
}

}  // namespace wrpn::agent
