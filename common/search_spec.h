#pragma once
// A sweep spec's `search` section (issue 21, docs/pareto.md): how the coordinator runs the grid.
//   search: {mode: grid}                                   every trial to the end (the default)
//   search: {mode: pareto, rungs: [2, 5], margin: auto}    every trial to the first rung, then only
//       the cells on the (cost_uniform, top-1) front or within `margin` points of it go on, rung
//       by rung (server/pareto_rung.h has the rule); `quorum` and `rung_timeout` say when a rung
//       is decided without waiting for its last trials.
// Plain values and stateless functions; thread-safe.
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace wrpn {

inline constexpr double kDefaultRungQuorum = 0.75;  // of the live trials
inline constexpr int kDefaultRungTimeoutSeconds = 1800;
inline constexpr int kMaxRungs = 32;

enum class SearchMode { kGrid, kPareto };

struct SearchSpec {
  SearchMode mode = SearchMode::kGrid;
  // kPareto: epoch counts, ascending, each > 0 and below the recipe's epochs.
  std::vector<int> rungs;
  bool margin_auto = true;  // twice the largest seed spread at the rung, at least 0.5 points
  double margin = 0;        // points of top-1, when !margin_auto
  double quorum = kDefaultRungQuorum;                 // (0, 1]
  int rung_timeout_seconds = kDefaultRungTimeoutSeconds;  // >= 0
  bool operator==(const SearchSpec& o) const {
    return mode == o.mode && rungs == o.rungs && margin_auto == o.margin_auto &&
           margin == o.margin && quorum == o.quorum &&
           rung_timeout_seconds == o.rung_timeout_seconds;
  }
};

// The keys of the section, as the spec and wrpn.v1.Search spell them.
const std::vector<std::string>& SearchKeys();

// Reads the `search` section (a map; null is the default, grid). Every problem, one per line,
// each naming the field: `search.mode: unknown mode 'asha' (known: grid, pareto)`,
// `search.rungs[1]: 2 must be above the rung before it (5)`,
// `search.margin: must be a number of points >= 0 or "auto", got "wide"`.
absl::StatusOr<SearchSpec> SearchSpecFromJson(const nlohmann::json& section);
// Canonical form: {"mode": "grid"}, or every key for pareto (parses back to an equal spec).
nlohmann::json SearchSpecToJson(const SearchSpec& s);

// Checks values against the recipe's `epochs`: every rung below it (a rung at or past the end
// would be the end itself), and the rules SearchSpecFromJson checks, for specs built in code.
[[nodiscard]] absl::Status ValidateSearchSpec(const SearchSpec& s, int epochs);

}  // namespace wrpn
