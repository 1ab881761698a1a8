// The paper tables unit: the parser (matrices and rows, bad input named), the index and its
// baselines, the family map and the GetPaperTables answer, on the real data/wrpn_tables.json.
#include "server/paper_tables.h"

#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace wrpn::server {
namespace {

using ::testing::HasSubstr;

std::string RealTables() {
  std::ifstream in(std::string(WRPN_SOURCE_DIR) + "/data/wrpn_tables.json");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

constexpr const char* kSmall = R"({"bits_axis": [32, 4, 1], "tables": [
  {"id": "t1", "network": "net", "top1": {"32": [60.0, null, 50.5], "4": [null, 58.0, null]}},
  {"id": "t2", "network": "net", "width": 2, "top1": {"4": [null, 59.5, null]},
   "cost": {"4": [null, 0.5, null]}},
  {"id": "t3", "network": "net", "rows": [{"width": 3, "wbits": 2, "abits": 2, "top1": 55.0}]}]})";

TEST(PaperTablesTest, ParsesMatricesAndRows) {
  auto t = ParsePaperTables(kSmall);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->json, kSmall);
  EXPECT_EQ(t->version.size(), 16u);
  ASSERT_EQ(t->values.size(), 6u);  // 3 + 1 top-1, 1 cost, 1 row; nulls skipped
  const PaperValueRecord& v = t->values[1];
  EXPECT_EQ(v.table, "t1");
  EXPECT_EQ(v.wbits, 32);
  EXPECT_EQ(v.abits, 1);  // the third column of bits_axis
  EXPECT_EQ(*v.top1, 50.5);
  EXPECT_EQ(t->values[5].width, 3.0);
  EXPECT_EQ(*t->values[5].top1, 55.0);
  EXPECT_NE(ParsePaperTables(std::string(kSmall) + " ")->version, t->version);
}

TEST(PaperTablesTest, BadInputIsNamed) {
  EXPECT_THAT(ParsePaperTables("[]").status().message(), HasSubstr("\"tables\""));
  EXPECT_THAT(ParsePaperTables("{\"tables\": [{\"network\": \"x\"}]}").status().message(),
              HasSubstr("tables[0]: \"id\" must be a string"));
  EXPECT_THAT(
      ParsePaperTables("{\"tables\": [{\"id\": \"a\", \"network\": \"x\", \"top1\": {\"w4\": []}}]}")
          .status()
          .message(),
      HasSubstr("tables[0].top1: 'w4' is not a number of weight bits"));
  EXPECT_THAT(ParsePaperTables("{\"tables\": [{\"id\": \"a\", \"network\": \"x\", \"width\": \"2\"}]}")
                  .status()
                  .message(),
              HasSubstr("tables[0].width: expected a number"));
  EXPECT_THAT(ParsePaperTables("{\"bits_axis\": 3, \"tables\": []}").status().message(),
              HasSubstr("bits_axis"));
}

TEST(PaperTablesTest, IndexFindsCellsAndBaselines) {
  auto t = ParsePaperTables(RealTables());
  ASSERT_TRUE(t.ok()) << t.status();
  PaperIndex idx(*t);
  EXPECT_EQ(idx.version(), t->version);
  const PaperEntry* e = idx.Find("alexnet", 2, 4, 4);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->table, "table2");
  EXPECT_DOUBLE_EQ(*e->top1, 58.6);
  const PaperEntry* base = idx.Baseline("alexnet");
  ASSERT_NE(base, nullptr);
  EXPECT_DOUBLE_EQ(*base->top1, 57.2);
  EXPECT_EQ(base->table, "table1");
  EXPECT_DOUBLE_EQ(*idx.Baseline("resnet34")->top1, 73.59);
  const PaperEntry* r = idx.Find("resnet34", 2, 4, 4);
  ASSERT_NE(r, nullptr);
  EXPECT_DOUBLE_EQ(*r->top1, 74.52);
  EXPECT_EQ(idx.Find("lenet5", 1, 32, 32), nullptr);
  EXPECT_EQ(idx.Baseline("lenet5"), nullptr);
  // Table 3 gives AlexNet's costs: the entry has both.
  const PaperEntry* wide = idx.Find("alexnet", 2, 1, 1);
  ASSERT_NE(wide, nullptr);
  EXPECT_DOUBLE_EQ(*wide->top1, 48.3);
  EXPECT_DOUBLE_EQ(*wide->cost, 0.1);
}

TEST(PaperTablesTest, FamilyMapAndOverrides) {
  PaperRef autoref = *ParsePaperRef("");
  EXPECT_EQ(ReferenceNetwork("lenet5", autoref), "alexnet");
  EXPECT_EQ(ReferenceNetwork("alexnet", autoref), "alexnet");
  EXPECT_EQ(ReferenceNetwork("resnet20", autoref), "resnet34");
  EXPECT_EQ(ReferenceNetwork("resnet50ls", autoref), "resnet34");
  EXPECT_EQ(ReferenceNetwork("inception_bn", autoref), "inception_bn");
  EXPECT_EQ(ReferenceNetwork("mlp", autoref), "");
  EXPECT_EQ(ReferenceNetwork("lenet5", *ParsePaperRef("auto")), "alexnet");
  EXPECT_EQ(ReferenceNetwork("lenet5", *ParsePaperRef("none")), "");
  EXPECT_EQ(ReferenceNetwork("lenet5", *ParsePaperRef("table4")), "resnet34");
  EXPECT_EQ(ReferenceNetwork("resnet20", *ParsePaperRef("table2")), "alexnet");
  EXPECT_EQ(ReferenceNetwork("lenet5", *ParsePaperRef("inception")), "inception_bn");
  auto bad = ParsePaperRef("vgg");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("paper_ref: unknown reference 'vgg' (expected auto"));
  EXPECT_THAT(ParsePaperRef("vgg", "--paper-ref").status().message(), HasSubstr("--paper-ref: "));
  EXPECT_LT(ParsePaperRef(std::string(100000, 'x')).status().message().size(), 200u);
}

TEST(PaperTablesTest, MessageCarriesValuesAndOneBaselinePerNetwork) {
  EXPECT_EQ(PaperTablesMessage(PaperTables{}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto t = ParsePaperTables(RealTables());
  ASSERT_TRUE(t.ok());
  auto m = PaperTablesMessage(*t);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->version(), t->version);
  EXPECT_EQ(m->values_size(), static_cast<int>(t->values.size()));
  EXPECT_EQ(m->bits_axis_size(), 5);
  EXPECT_FALSE(m->source().empty());
  std::map<std::string, double> base;
  for (const auto& b : m->baselines()) EXPECT_TRUE(base.emplace(b.network(), b.top1()).second);
  EXPECT_DOUBLE_EQ(base.at("alexnet"), 57.2);
  EXPECT_DOUBLE_EQ(base.at("resnet34"), 73.59);
  EXPECT_TRUE(base.count("inception_bn"));
}

}  // namespace
}  // namespace wrpn::server
