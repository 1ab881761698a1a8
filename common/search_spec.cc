#include "common/search_spec.h"

#include <cmath>
#include <cstdint>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace wrpn {
namespace {

using nlohmann::json;

constexpr int kMaxRungTimeoutSeconds = 30 * 24 * 3600;

const char* ModeName(SearchMode m) { return m == SearchMode::kPareto ? "pareto" : "grid"; }

std::optional<int> AsInt(const json& v) {
  if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    if (i >= INT32_MIN && i <= INT32_MAX) return static_cast<int>(i);
  } else if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::floor(d) == d && std::abs(d) <= INT32_MAX) return static_cast<int>(d);
  }
  return std::nullopt;
}

void ReadMode(const json& v, SearchSpec& s, std::vector<std::string>& problems) {
  if (v.is_string() && v == "grid") return;
  if (v.is_string() && v == "pareto") {
    s.mode = SearchMode::kPareto;
    return;
  }
  problems.push_back(absl::StrCat("search.mode: unknown mode ",
                                  v.is_string() ? "'" + v.get<std::string>() + "'" : v.dump(),
                                  " (known: grid, pareto)"));
}

void ReadRungs(const json& v, SearchSpec& s, std::vector<std::string>& problems) {
  if (!v.is_array()) {
    problems.push_back(absl::StrCat("search.rungs: expected a list of epoch counts, got ", v.dump()));
    return;
  }
  for (size_t i = 0; i < v.size(); ++i) {
    const std::optional<int> r = AsInt(v[i]);
    if (!r) {
      problems.push_back(absl::StrCat("search.rungs[", i, "]: expected an epoch count, got ", v[i].dump()));
      continue;
    }
    s.rungs.push_back(*r);
  }
}

void ReadMargin(const json& v, SearchSpec& s, std::vector<std::string>& problems) {
  if (v.is_string() && v == "auto") return;
  if (v.is_number() && std::isfinite(v.get<double>())) {
    s.margin_auto = false;
    s.margin = v.get<double>();
    return;
  }
  problems.push_back(absl::StrCat("search.margin: must be a number of points >= 0 or \"auto\", got ", v.dump()));
}

// The rules on values (types are the reader's).
void CheckValues(const SearchSpec& s, std::vector<std::string>& problems) {
  if (s.mode == SearchMode::kGrid) {
    if (!s.rungs.empty()) problems.push_back("search.rungs: only for mode pareto (the mode is grid)");
    return;
  }
  if (s.rungs.empty()) problems.push_back("search.rungs: missing (mode pareto needs epoch counts, e.g. [2, 5])");
  if (s.rungs.size() > static_cast<size_t>(kMaxRungs))
    problems.push_back(absl::StrCat("search.rungs: ", s.rungs.size(), " rungs; at most ", kMaxRungs, " allowed"));
  for (size_t i = 0; i < s.rungs.size(); ++i) {
    if (s.rungs[i] < 1) {
      problems.push_back(absl::StrCat("search.rungs[", i, "]: must be >= 1, got ", s.rungs[i]));
    } else if (i > 0 && s.rungs[i] <= s.rungs[i - 1]) {
      problems.push_back(absl::StrCat("search.rungs[", i, "]: ", s.rungs[i],
                                      " must be above the rung before it (", s.rungs[i - 1], ")"));
    }
  }
  if (!s.margin_auto && !(s.margin >= 0 && std::isfinite(s.margin)))
    problems.push_back(absl::StrCat("search.margin: must be >= 0 points or \"auto\", got ", s.margin));
  if (!(s.quorum > 0 && s.quorum <= 1))
    problems.push_back(absl::StrCat("search.quorum: must be in (0, 1], got ", s.quorum));
  if (s.rung_timeout_seconds < 0 || s.rung_timeout_seconds > kMaxRungTimeoutSeconds)
    problems.push_back(absl::StrCat("search.rung_timeout: ", s.rung_timeout_seconds,
                                    " is out of range [0, ", kMaxRungTimeoutSeconds, "] seconds"));
}

absl::Status ToStatus(const std::vector<std::string>& problems) {
  if (problems.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(problems, "\n"));
}

}  // namespace

const std::vector<std::string>& SearchKeys() {
  static const std::vector<std::string> keys = {"mode", "rungs", "margin", "quorum",
                                                "rung_timeout"};
  return keys;
}

absl::StatusOr<SearchSpec> SearchSpecFromJson(const json& section) {
  SearchSpec s;
  if (section.is_null()) return s;
  if (!section.is_object())
    return absl::InvalidArgumentError(absl::StrCat("search: expected a map, got ", section.dump()));
  std::vector<std::string> problems;
  bool pareto_only_key = false;
  for (auto it = section.begin(); it != section.end(); ++it) {
    const std::string& k = it.key();
    const json& v = it.value();
    if (v.is_null()) continue;  // protobuf's JSON form of an unset field
    if (k == "mode") {
      ReadMode(v, s, problems);
    } else if (k == "rungs") {
      ReadRungs(v, s, problems);
    } else if (k == "margin") {
      pareto_only_key = true;
      ReadMargin(v, s, problems);
    } else if (k == "quorum") {
      pareto_only_key = true;
      if (v.is_number()) s.quorum = v.get<double>();
      else problems.push_back(absl::StrCat("search.quorum: expected a number, got ", v.dump()));
    } else if (k == "rung_timeout") {
      pareto_only_key = true;
      if (std::optional<int> t = AsInt(v)) s.rung_timeout_seconds = *t;
      else problems.push_back(absl::StrCat("search.rung_timeout: expected whole seconds, got ", v.dump()));
    } else {
      problems.push_back(absl::StrCat("unknown key '", k, "' in search (allowed: ",
                                      absl::StrJoin(SearchKeys(), ", "), ")"));
    }
  }
  if (pareto_only_key && s.mode == SearchMode::kGrid)
    problems.push_back("search: margin, quorum and rung_timeout are only for mode pareto");
  if (problems.empty()) CheckValues(s, problems);
  if (!problems.empty()) return ToStatus(problems);
  return s;
}

json SearchSpecToJson(const SearchSpec& s) {
  if (s.mode == SearchMode::kGrid) return {{"mode", ModeName(s.mode)}};
  return {{"mode", ModeName(s.mode)},
          {"rungs", s.rungs},
          {"margin", s.margin_auto ? json("auto") : json(s.margin)},
          {"quorum", s.quorum},
          {"rung_timeout", s.rung_timeout_seconds}};
}

absl::Status ValidateSearchSpec(const SearchSpec& s, int epochs) {
  std::vector<std::string> problems;
  CheckValues(s, problems);
  if (s.mode == SearchMode::kPareto) {
    for (size_t i = 0; i < s.rungs.size(); ++i) {
      if (s.rungs[i] >= epochs)
        problems.push_back(absl::StrCat("search.rungs[", i, "]: ", s.rungs[i],
                                        " must be below recipe.epochs (", epochs, ")"));
    }
  }
  return ToStatus(problems);
}

}  // namespace wrpn
