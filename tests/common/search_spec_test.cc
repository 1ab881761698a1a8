// The sweep spec's `search` section (common/search_spec.h) through the sweep spec parser.
#include "common/search_spec.h"

#include <gtest/gtest.h>

#include "common/sweep_spec.h"

namespace wrpn {
namespace {

std::string Spec(const std::string& search, int epochs = 10) {
  std::string text = "name: s\naxes: {network: lenet5, width: [1, 2], precision: [\"32/32\", \"1/1\"]}\n";
  text += "recipe: {epochs: " + std::to_string(epochs) + "}\n";
  if (!search.empty()) text += "search: " + search + "\n";
  return text;
}

TEST(SearchSpec, AbsentOrGridIsTheGrid) {
  for (const std::string& s : {std::string(), std::string("{mode: grid}"), std::string("null")}) {
    absl::StatusOr<SweepSpec> spec = ParseSweepSpec(Spec(s));
    ASSERT_TRUE(spec.ok()) << s << ": " << spec.status();
    EXPECT_EQ(spec->search, SearchSpec{}) << s;
    EXPECT_EQ(spec->search.mode, SearchMode::kGrid);
    // The canonical form of a grid spec is what it was before the section existed.
    EXPECT_FALSE(SweepSpecToJson(*spec).contains("search")) << s;
  }
}

TEST(SearchSpec, ParetoWithItsDefaults) {
  absl::StatusOr<SweepSpec> spec = ParseSweepSpec(Spec("{mode: pareto, rungs: [2, 5]}"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  const SearchSpec& s = spec->search;
  EXPECT_EQ(s.mode, SearchMode::kPareto);
  EXPECT_EQ(s.rungs, (std::vector<int>{2, 5}));
  EXPECT_TRUE(s.margin_auto);
  EXPECT_EQ(s.quorum, kDefaultRungQuorum);
  EXPECT_EQ(s.rung_timeout_seconds, kDefaultRungTimeoutSeconds);
}

TEST(SearchSpec, ParetoWithEveryKeyRoundTrips) {
  absl::StatusOr<SweepSpec> spec = ParseSweepSpec(
      Spec("{mode: pareto, rungs: [1, 3, 9], margin: 0.75, quorum: 0.5, rung_timeout: 600}"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  const SearchSpec want{SearchMode::kPareto, {1, 3, 9}, false, 0.75, 0.5, 600};
  EXPECT_EQ(spec->search, want);
  const nlohmann::json doc = SweepSpecToJson(*spec);
  EXPECT_EQ(doc["search"],
            nlohmann::json::parse(R"({"mode": "pareto", "rungs": [1, 3, 9], "margin": 0.75,
                                      "quorum": 0.5, "rung_timeout": 600})"));
  absl::StatusOr<SweepSpec> back = SweepSpecFromJson(doc);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->search, want);

  spec = ParseSweepSpec(Spec("{mode: pareto, rungs: [2], margin: auto}"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(spec->search.margin_auto);
  EXPECT_EQ(SweepSpecToJson(*spec)["search"]["margin"], "auto");
  spec = ParseSweepSpec(Spec("{mode: pareto, rungs: [2], margin: 0}"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FALSE(spec->search.margin_auto);
  EXPECT_EQ(spec->search.margin, 0);
}

struct Bad {
  const char* search;
  const char* error;  // the whole message
  int epochs = 10;
};

void PrintTo(const Bad& b, std::ostream* os) { *os << b.search; }

class SearchSpecErrors : public ::testing::TestWithParam<Bad> {};

TEST_P(SearchSpecErrors, NameTheField) {
  const absl::StatusOr<SweepSpec> spec = ParseSweepSpec(Spec(GetParam().search, GetParam().epochs));
  ASSERT_FALSE(spec.ok()) << GetParam().search;
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(spec.status().message(), GetParam().error);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SearchSpecErrors,
    ::testing::Values(
        Bad{"{mode: asha}", "search.mode: unknown mode 'asha' (known: grid, pareto)"},
        Bad{"{mode: 3}", "search.mode: unknown mode 3 (known: grid, pareto)"},
        Bad{"pareto", "search: expected a map, got \"pareto\""},
        Bad{"{mode: pareto, rungs: [2, 5], widht: 1}",
            "unknown key 'widht' in search (allowed: mode, rungs, margin, quorum, rung_timeout)"},
        Bad{"{mode: pareto}", "search.rungs: missing (mode pareto needs epoch counts, e.g. [2, 5])"},
        Bad{"{mode: pareto, rungs: []}",
            "search.rungs: missing (mode pareto needs epoch counts, e.g. [2, 5])"},
        Bad{"{mode: pareto, rungs: 2}", "search.rungs: expected a list of epoch counts, got 2"},
        Bad{"{mode: pareto, rungs: [two]}", "search.rungs[0]: expected an epoch count, got \"two\""},
        Bad{"{mode: pareto, rungs: [2.5]}", "search.rungs[0]: expected an epoch count, got 2.5"},
        Bad{"{mode: pareto, rungs: [0, 5]}", "search.rungs[0]: must be >= 1, got 0"},
        Bad{"{mode: pareto, rungs: [-2]}", "search.rungs[0]: must be >= 1, got -2"},
        Bad{"{mode: pareto, rungs: [5, 2]}",
            "search.rungs[1]: 2 must be above the rung before it (5)"},
        Bad{"{mode: pareto, rungs: [2, 2]}",
            "search.rungs[1]: 2 must be above the rung before it (2)"},
        // A rung at or past the recipe's end is the end itself.
        Bad{"{mode: pareto, rungs: [2, 10]}", "search.rungs[1]: 10 must be below recipe.epochs (10)"},
        Bad{"{mode: pareto, rungs: [2, 5]}",
            "search.rungs[0]: 2 must be below recipe.epochs (2)\n"
            "search.rungs[1]: 5 must be below recipe.epochs (2)",
            2},
        Bad{"{mode: pareto, rungs: [2], margin: -0.5}",
            "search.margin: must be >= 0 points or \"auto\", got -0.5"},
        Bad{"{mode: pareto, rungs: [2], margin: wide}",
            "search.margin: must be a number of points >= 0 or \"auto\", got \"wide\""},
        Bad{"{mode: pareto, rungs: [2], quorum: 0}", "search.quorum: must be in (0, 1], got 0"},
        Bad{"{mode: pareto, rungs: [2], quorum: 1.5}", "search.quorum: must be in (0, 1], got 1.5"},
        Bad{"{mode: pareto, rungs: [2], quorum: most}",
            "search.quorum: expected a number, got \"most\""},
        Bad{"{mode: pareto, rungs: [2], rung_timeout: -1}",
            "search.rung_timeout: -1 is out of range [0, 2592000] seconds"},
        Bad{"{mode: pareto, rungs: [2], rung_timeout: 1h}",
            "search.rung_timeout: expected whole seconds, got \"1h\""},
        Bad{"{mode: grid, rungs: [2]}", "search.rungs: only for mode pareto (the mode is grid)"},
        Bad{"{rungs: [2]}", "search.rungs: only for mode pareto (the mode is grid)"},
        Bad{"{mode: grid, margin: 1}",
            "search: margin, quorum and rung_timeout are only for mode pareto"},
        // Every problem at once, one per line.
        Bad{"{mode: pareto, rungs: [0, 0], margin: -1, quorum: 2}",
            "search.rungs[0]: must be >= 1, got 0\n"
            "search.rungs[1]: must be >= 1, got 0\n"
            "search.margin: must be >= 0 points or \"auto\", got -1\n"
            "search.quorum: must be in (0, 1], got 2"}));

TEST(SearchSpec, ValidateSweepSpecChecksASpecBuiltInCode) {
  absl::StatusOr<SweepSpec> spec = ParseSweepSpec(Spec(""));
  ASSERT_TRUE(spec.ok()) << spec.status();
  spec->search.mode = SearchMode::kPareto;
  EXPECT_EQ(ValidateSweepSpec(*spec).message(),
            "search.rungs: missing (mode pareto needs epoch counts, e.g. [2, 5])");
  spec->search.rungs = {3, 12};
  EXPECT_EQ(ValidateSweepSpec(*spec).message(),
            "search.rungs[1]: 12 must be below recipe.epochs (10)");
  spec->search.rungs = {3, 6};
  EXPECT_TRUE(ValidateSweepSpec(*spec).ok());
  EXPECT_TRUE(ValidateSearchSpec(spec->search, 7).ok());
  EXPECT_FALSE(ValidateSearchSpec(spec->search, 6).ok());
}

TEST(SearchSpec, TheSectionIsReadFromJsonWithUnsetFieldsAsNull) {
  // protobuf's JSON form may print an unset message field as null.
  absl::StatusOr<SearchSpec> s = SearchSpecFromJson(nlohmann::json::parse(
      R"({"mode": "pareto", "rungs": [2, 5], "margin": null, "quorum": null})"));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->margin_auto);
  EXPECT_EQ(s->quorum, kDefaultRungQuorum);
}

}  // namespace
}  // namespace wrpn
