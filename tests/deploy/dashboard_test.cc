// The Grafana dashboard and its provisioning: the JSON parses, every panel queries the provisioned
// datasource, every PromQL expression is valid (promtool) and names only metrics the coordinator
// exports. The check against a live coordinator's /metrics is in live_coordinator_test.cc.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "tests/deploy/deploy_test_util.h"

namespace wrpn::deploytest {
namespace {

using nlohmann::json;

json LoadDashboard() { return json::parse(ReadFile(SourcePath("deploy/grafana/dashboards/wrpn.json"))); }

// Every PromQL expression of the dashboard: panel targets (in rows too) and query variables.
std::vector<std::string> DashboardExpressions(const json& dash) {
  std::vector<std::string> exprs;
  std::vector<const json*> panels;
  for (const auto& p : dash.at("panels")) {
    panels.push_back(&p);
    if (p.contains("panels"))
      for (const auto& inner : p.at("panels")) panels.push_back(&inner);
  }
  for (const json* p : panels)
    if (p->contains("targets"))
      for (const auto& t : p->at("targets")) exprs.push_back(t.at("expr").get<std::string>());
  static const std::regex label_values(R"(^\s*label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$)");
  for (const auto& v : dash.at("templating").at("list")) {
    if (v.value("type", "") != "query") continue;
    std::string q = v.at("query").is_string() ? v.at("query").get<std::string>()
                                               : v.at("query").at("query").get<std::string>();
    std::smatch m;
    if (std::regex_match(q, m, label_values)) q = m[1];
    exprs.push_back(q);
  }
  return exprs;
}

TEST(MetricNamesInPromQL, FindsMetricsNotFunctionsLabelsOrVariables) {
  EXPECT_EQ(MetricNamesInPromQL(
                R"(histogram_quantile(0.9, sum by (le, method) (rate(wrpn_rpc_duration_seconds_bucket{code!="OK", x=~"a|b"}[$__rate_interval]))))"),
            (std::set<std::string>{"wrpn_rpc_duration_seconds_bucket"}));
  EXPECT_EQ(MetricNamesInPromQL(R"(sum(a_total) / on() group_left (b) sum without (c) (b_total offset 5m) > 1e3)"),
            (std::set<std::string>{"a_total", "b_total"}));
  EXPECT_EQ(MetricNamesInPromQL(R"(label_join(wrpn_trial_top1{sweep=~"$sweep"}, "bits", "/", "wbits", "abits"))"),
            (std::set<std::string>{"wrpn_trial_top1"}));
  EXPECT_EQ(MetricNamesInPromQL("wrpn_workers and unknown_metric"),
            (std::set<std::string>{"wrpn_workers", "unknown_metric"}));
}

TEST(Dashboard, ParsesAndHasTheIssuePanels) {
  json dash = LoadDashboard();
  EXPECT_EQ(dash.at("uid"), "wrpn-overview");
  std::set<std::string> used;
  for (const auto& e : DashboardExpressions(dash))
    for (const auto& n : MetricNamesInPromQL(e)) used.insert(FamilyOf(n));
  // Sweeps and trials by state, queue wait and duration, lease expirations, RPC rate/errors/
  // latency, ingest rate, workers, the accuracy grid, per-worker throughput and GPU memory.
  for (const auto& want : CoordinatorMetricNames())
    EXPECT_TRUE(used.count(want)) << "no dashboard panel shows " << want;
}

TEST(Dashboard, ExpressionsNameOnlyCoordinatorMetrics) {
  json dash = LoadDashboard();
  auto exprs = DashboardExpressions(dash);
  ASSERT_GE(exprs.size(), 15u);
  for (const auto& e : exprs) {
    auto names = MetricNamesInPromQL(e);
    EXPECT_FALSE(names.empty()) << "expression names no metric: " << e;
    for (const auto& n : names) {
      bool histogram_series = FamilyOf(n) != n;
      bool known = CoordinatorMetricNames().count(n) > 0 || histogram_series;
      EXPECT_TRUE(known) << "unknown metric " << n << " in: " << e;
      // Histograms are queried through their _bucket/_sum/_count series, never bare.
      EXPECT_FALSE(CoordinatorHistogramNames().count(n)) << "bare histogram " << n << " in: " << e;
    }
  }
}

TEST(AlertRules, NameOnlyCoordinatorMetricsAndUp) {
  YAML::Node rules = YAML::LoadFile(SourcePath("deploy/prometheus/rules/wrpn-alerts.yml"));
  int count = 0;
  for (const auto& g : rules["groups"])
    for (const auto& rule : g["rules"]) {
      ++count;
      const std::string expr = rule["expr"].as<std::string>();
      for (const auto& n : MetricNamesInPromQL(expr))
        EXPECT_TRUE(n == "up" || CoordinatorMetricNames().count(n) || FamilyOf(n) != n)
            << "alert " << rule["alert"] << " uses unknown metric " << n;
      EXPECT_TRUE(rule["labels"]["severity"]) << rule["alert"] << " has no severity";
      EXPECT_TRUE(rule["annotations"]["summary"]) << rule["alert"] << " has no summary";
    }
  EXPECT_GE(count, 5);
}

TEST(Dashboard, EveryPanelUsesTheProvisionedDatasource) {
  YAML::Node ds = YAML::LoadFile(SourcePath("deploy/grafana/provisioning/datasources/prometheus.yml"));
  ASSERT_EQ(ds["datasources"].size(), 1u);
  const std::string uid = ds["datasources"][0]["uid"].as<std::string>();
  EXPECT_EQ(ds["datasources"][0]["type"].as<std::string>(), "prometheus");
  json dash = LoadDashboard();
  std::set<int> ids;
  for (const auto& p : dash.at("panels")) {
    EXPECT_TRUE(ids.insert(p.at("id").get<int>()).second) << "duplicate panel id " << p.at("id");
    if (p.at("type") == "row") continue;
    EXPECT_EQ(p.at("datasource").at("uid"), uid) << p.at("title");
    for (const auto& t : p.at("targets")) EXPECT_EQ(t.at("datasource").at("uid"), uid) << p.at("title");
  }
  for (const auto& v : dash.at("templating").at("list"))
    EXPECT_EQ(v.at("datasource").at("uid"), uid) << v.at("name");
}

TEST(Dashboard, ProvisioningPointsAtTheDashboardFolder) {
  YAML::Node prov = YAML::LoadFile(SourcePath("deploy/grafana/provisioning/dashboards/wrpn.yml"));
  const std::string path = prov["providers"][0]["options"]["path"].as<std::string>();
  // deploy/compose mounts deploy/grafana/dashboards at exactly this path.
  std::string compose = ReadFile(SourcePath("deploy/compose/docker-compose.yml"));
  EXPECT_NE(compose.find("../grafana/dashboards:" + path + ":ro"), std::string::npos)
      << "compose does not mount the dashboards at " << path;
  EXPECT_NE(compose.find("../grafana/provisioning:/etc/grafana/provisioning:ro"), std::string::npos);
}

// promtool parses each expression as a recording rule: a typo in PromQL fails here, not in Grafana.
TEST(Dashboard, ExpressionsAreValidPromQL) {
  std::string promtool = FindOnPath({"promtool"});
  ASSERT_FALSE(promtool.empty()) << "promtool not on PATH (scripts/install-deps.sh installs it)";
  json dash = LoadDashboard();
  std::string rules = "groups:\n  - name: dashboard\n    rules:\n";
  int i = 0;
  for (auto e : DashboardExpressions(dash)) {
    e = std::regex_replace(e, std::regex(R"(\$__rate_interval|\$__interval)"), "5m");
    e = std::regex_replace(e, std::regex(R"(\$[A-Za-z_][A-Za-z0-9_]*)"), ".*");
    json quoted = e;  // a JSON string is a valid YAML flow scalar
    rules += "      - record: dashboard:expr_" + std::to_string(i++) + "\n        expr: " +
             quoted.dump() + "\n";
  }
  TempDir dir;
  WriteFile(dir.path() + "/rules.yml", rules);
  auto r = RunCommand({promtool, "check", "rules", dir.path() + "/rules.yml"});
  EXPECT_EQ(r.exit_code, 0) << r.output << "\n" << rules;
}


// A stream's duration is how long a client watched, not a latency: every expression on the RPC
// latency histogram leaves out the streaming methods of the proto (issue 16).
TEST(Dashboard, LatencyPanelsLeaveOutStreamingRpcs) {
  std::set<std::string> streaming;
  static const std::regex stream_rpc(R"(rpc\s+(\w+)\s*\([^)]*\)\s*returns\s*\(\s*stream\b)");
  const std::string proto = ReadFile(SourcePath("proto/wrpn/v1/coordinator.proto"));
  for (auto it = std::sregex_iterator(proto.begin(), proto.end(), stream_rpc);
       it != std::sregex_iterator(); ++it)
    streaming.insert((*it)[1]);
  ASSERT_TRUE(streaming.count("WatchSweep")) << "no streaming RPC found in the proto";
  int latency = 0;
  for (const auto& e : DashboardExpressions(LoadDashboard())) {
    if (e.find("wrpn_rpc_duration_seconds") == std::string::npos) continue;
    ++latency;
    for (const auto& m : streaming)
      EXPECT_NE(e.find("method!=\"" + m + "\""), std::string::npos)
          << "the latency query counts the stream " << m << ": " << e;
  }
  EXPECT_GE(latency, 1);
}

}  // namespace
}  // namespace wrpn::deploytest
