#pragma once
// The paper's reference numbers (data/wrpn_tables.json): the parser, an index by (network, width,
// wbits, abits) with each network's 1x 32/32 baseline, the family map that picks the paper network
// a sweep network is compared with, and the GetPaperTables answer. Pure values; an index is
// immutable once built and safe to read from any thread.
#include <map>
#include <optional>
#include <string>
#include <tuple>

#include "absl/status/statusor.h"
#include "server/store.h"
#include "wrpn/v1/coordinator.pb.h"

namespace wrpn::server {

namespace pb = ::wrpn::v1;

// Parses the tables file into per-cell values; `version` is its content hash. Errors name the
// table and field that is wrong.
absl::StatusOr<PaperTables> ParsePaperTables(const std::string& text);

// The GetPaperTables answer for loaded tables (FAILED_PRECONDITION when none are).
absl::StatusOr<pb::GetPaperTablesResponse> PaperTablesMessage(const PaperTables& tables);

// One (network, width, wbits, abits) of the paper: the first table giving a top-1 (and its cost).
struct PaperEntry {
  std::string table;  // table1 ... table5
  std::optional<double> top1, cost;
};

class PaperIndex {
 public:
  PaperIndex() = default;
  explicit PaperIndex(const PaperTables& tables);
  const PaperEntry* Find(const std::string& network, double width, int wbits, int abits) const;
  // The network's 1x 32/32 entry with a top-1 (its baseline), or null.
  const PaperEntry* Baseline(const std::string& network) const;
  const std::string& version() const { return version_; }

 private:
  std::string version_;
  std::map<std::tuple<std::string, double, int, int>, PaperEntry> cells_;
};

// What a request asks to compare with: by family, nothing, or one paper network for every cell.
struct PaperRef {
  enum class Kind { kAuto, kNone, kFixed } kind = Kind::kAuto;
  std::string network;  // kFixed: alexnet | resnet34 | inception_bn
};
// "" / "auto", "none", alexnet | resnet34 | inception_bn (or resnet, inception), table1..table5.
// The error names `field`.
absl::StatusOr<PaperRef> ParsePaperRef(const std::string& text,
                                       const std::string& field = "paper_ref");
// The paper network a sweep network is compared with ("" = none): lenet5 and alexnet -> alexnet
// (Tables 1-3), resnet* -> resnet34 (Table 4), inception* -> inception_bn (Table 5).
std::string ReferenceNetwork(const std::string& network, const PaperRef& ref);

}  // namespace wrpn::server
