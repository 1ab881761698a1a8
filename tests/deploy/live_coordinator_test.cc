// Checks against the built coordinator (skipped, with a message, when this tree has not built
// wrpn-coordinator): the dashboard's metrics exist in a live /metrics, the probe paths of the
// Kubernetes manifests and the Compose healthcheck answer 200, every flag the manifests pass is one
// the binaries accept, and a real Prometheus with our scrape config and rules scrapes the
// coordinator on loopback and returns wrpn_trials through its HTTP API.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>
#include <filesystem>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "tests/deploy/deploy_test_util.h"
#include "tests/deploy/dockerfile.h"
#include "tests/deploy/k8s_manifests.h"

namespace wrpn::deploytest {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

// Polls `ready` every 100 ms until it returns true or `limit` passes.
template <typename F>
bool WaitFor(F ready, seconds limit) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (ready()) return true;
    std::this_thread::sleep_for(milliseconds(100));
  }
  return ready();
}

class LiveCoordinator : public ::testing::Test {
 protected:
  void SetUp() override {
    binary_ = CoordinatorBinary();
    if (binary_.empty())
      GTEST_SKIP() << "wrpn-coordinator is not built in this tree (set WRPN_COORDINATOR to a binary "
                      "to run these checks)";
    ASSERT_TRUE(FileExists(binary_)) << binary_;
    grpc_port_ = FreeLoopbackPort();
    http_port_ = FreeLoopbackPort();
    while (http_port_ == grpc_port_) http_port_ = FreeLoopbackPort();
    coordinator_ = std::make_unique<ChildProcess>(
        CoordinatorArgv(binary_, grpc_port_, http_port_, dir_.path() + "/wrpn.db"),
        dir_.path() + "/coordinator.log");
    bool ready = WaitFor(
        [&] { return !coordinator_->running() || HttpGet(http_port_, "/readyz").status == 200; },
        seconds(30));
    ASSERT_TRUE(ready && coordinator_->running())
        << "coordinator did not become ready on 127.0.0.1:" << http_port_ << "\n"
        << coordinator_->log();
  }
  void TearDown() override {
    if (coordinator_) coordinator_->Stop();
  }

  std::string binary_;
  TempDir dir_;
  int grpc_port_ = 0;
  int http_port_ = 0;
  std::unique_ptr<ChildProcess> coordinator_;
};

std::vector<std::string> DashboardMetricNames() {
  json dash = json::parse(ReadFile(SourcePath("deploy/grafana/dashboards/wrpn.json")));
  std::set<std::string> names;
  for (const auto& p : dash.at("panels"))
    if (p.contains("targets"))
      for (const auto& t : p.at("targets"))
        for (const auto& n : MetricNamesInPromQL(t.at("expr").get<std::string>())) names.insert(n);
  return {names.begin(), names.end()};
}

TEST_F(LiveCoordinator, ExportsEveryMetricTheDashboardAndAlertsUse) {
  HttpResponse r = HttpGet(http_port_, "/metrics");
  ASSERT_EQ(r.status, 200) << r.body;
  Exposition e = ParseExposition(r.body);
  auto exported = [&](const std::string& series) {
    std::string family = FamilyOf(series);
    if (e.families.count(family) || e.samples.count(series)) return true;
    // A counter's family may be declared without its _total suffix (OpenMetrics style).
    const std::string total = "_total";
    return series.size() > total.size() &&
           series.compare(series.size() - total.size(), total.size(), total) == 0 &&
           e.families.count(series.substr(0, series.size() - total.size())) > 0;
  };
  auto names = DashboardMetricNames();
  ASSERT_FALSE(names.empty());
  for (const auto& n : names)
    EXPECT_TRUE(exported(n)) << "the dashboard queries " << n
                             << ", which the coordinator's /metrics does not declare";
  YAML::Node rules = YAML::LoadFile(SourcePath("deploy/prometheus/rules/wrpn-alerts.yml"));
  for (const auto& g : rules["groups"])
    for (const auto& rule : g["rules"])
      for (const auto& n : MetricNamesInPromQL(rule["expr"].as<std::string>()))
        if (n != "up")
          EXPECT_TRUE(exported(n)) << "alert " << rule["alert"] << " uses " << n
                                   << ", which the coordinator does not declare";
}

TEST_F(LiveCoordinator, ServesTheProbePathsOfManifestsAndCompose) {
  std::set<std::string> paths;
  for (const char* overlay : {"gpu", "cpu"}) {
    Manifests m = RenderKustomization(SourcePath(std::string("deploy/k8s/overlays/") + overlay));
    ASSERT_TRUE(m.error.empty()) << m.error;
    for (const auto& w : m.Workloads())
      for (const auto& c : w["spec"]["template"]["spec"]["containers"])
        for (const char* probe : {"startupProbe", "livenessProbe", "readinessProbe"})
          if (c[probe] && c[probe]["httpGet"]) paths.insert(c[probe]["httpGet"]["path"].as<std::string>());
    for (const auto& w : m.Workloads()) {
      auto ann = w["spec"]["template"]["metadata"]["annotations"];
      if (ann && ann["prometheus.io/path"]) paths.insert(ann["prometheus.io/path"].as<std::string>());
    }
  }
  static const std::regex health(R"(http://127\.0\.0\.1:[0-9]+(/[a-z]+))");
  for (const char* file : {"deploy/compose/docker-compose.yml", "docker/Dockerfile.coordinator"}) {
    std::smatch mm;
    std::string text = ReadFile(SourcePath(file));
    ASSERT_TRUE(std::regex_search(text, mm, health)) << file << " has no health check URL";
    paths.insert(mm[1]);
  }
  ASSERT_GE(paths.size(), 3u);
  for (const auto& p : paths) EXPECT_EQ(HttpGet(http_port_, p).status, 200) << "GET " << p;
}

// Flags of `binary --help` (every --name it prints).
std::set<std::string> HelpFlags(const std::string& binary) {
  auto r = RunCommand({binary, "--help"}, seconds(20));
  std::set<std::string> flags;
  static const std::regex flag(R"(--[A-Za-z0-9][A-Za-z0-9-]*)");
  for (auto it = std::sregex_iterator(r.output.begin(), r.output.end(), flag);
       it != std::sregex_iterator(); ++it)
    flags.insert(it->str());
  return flags;
}

std::set<std::string> DeployedFlags(const std::string& container_name, const std::string& compose_service) {
  std::set<std::string> flags;
  Manifests m = RenderKustomization(SourcePath("deploy/k8s/overlays/gpu"));
  for (const auto& w : m.Workloads())
    for (const auto& c : w["spec"]["template"]["spec"]["containers"])
      if (c["name"].as<std::string>() == container_name)
        for (const auto& f : FlagNames(c)) flags.insert(f);
  std::string tool = FindOnPath({"docker-compose"});
  if (!tool.empty()) {
    auto r = RunCommand({tool, "-f", SourcePath("deploy/compose/docker-compose.yml"), "--profile",
                         "gpu", "config"}, seconds(60), false);
    if (r.exit_code == 0)
      for (const auto& f : FlagNames(YAML::Load(r.output)["services"][compose_service])) flags.insert(f);
  }
  return flags;
}

TEST_F(LiveCoordinator, AcceptsEveryFlagTheDeploymentsPass) {
  auto help = HelpFlags(binary_);
  ASSERT_FALSE(help.empty()) << binary_ << " --help printed no flags";
  auto deployed = DeployedFlags("coordinator", "coordinator");
  ASSERT_GE(deployed.size(), 4u);
  for (const auto& f : deployed) EXPECT_TRUE(help.count(f)) << "wrpn-coordinator has no flag " << f;
  // The image's default command.
  Dockerfile df = ParseDockerfile(ReadFile(SourcePath("docker/Dockerfile.coordinator")));
  std::string cmd;
  for (const auto& i : df.stages.back().instructions)
    if (i.keyword == "CMD") cmd = i.args;
  static const std::regex flag(R"(--[A-Za-z0-9][A-Za-z0-9-]*)");
  int image_flags = 0;
  for (auto it = std::sregex_iterator(cmd.begin(), cmd.end(), flag); it != std::sregex_iterator(); ++it) {
    ++image_flags;
    EXPECT_TRUE(help.count(it->str())) << "Dockerfile.coordinator CMD passes unknown " << it->str();
  }
  EXPECT_GE(image_flags, 4) << cmd;
  // The flags the tests themselves start it with.
  for (const auto& a : CoordinatorArgv(binary_, 1, 2, "x")) {
    if (a.rfind("--", 0) != 0) continue;
    EXPECT_TRUE(help.count(a.substr(0, a.find('=')))) << a;
  }
}

// The deployments run the coordinator with tokens and probe/scrape it without any: the token
// file make-tokens.sh writes must be accepted, and /healthz, /readyz and /metrics must stay open
// while the JSON API requires the viewer token.
TEST(LiveCoordinatorWithTokens, AcceptsGeneratedTokensAndLeavesProbesOpen) {
  std::string binary = CoordinatorBinary();
  if (binary.empty()) GTEST_SKIP() << "wrpn-coordinator is not built in this tree";
  TempDir dir;
  auto made = RunCommand({"bash", SourcePath("deploy/compose/secrets/make-tokens.sh"), dir.path() + "/s"});
  ASSERT_EQ(made.exit_code, 0) << made.output;
  std::string viewer;
  {
    std::istringstream lines(ReadFile(dir.path() + "/s/tokens"));
    for (std::string role, token; lines >> role >> token;)
      if (role == "viewer") viewer = token;
  }
  ASSERT_FALSE(viewer.empty());
  int grpc_port = FreeLoopbackPort(), http_port = FreeLoopbackPort();
  auto argv = CoordinatorArgv(binary, grpc_port, http_port, dir.path() + "/wrpn.db");
  argv.push_back("--token-file=" + dir.path() + "/s/tokens");
  ChildProcess coordinator(argv, dir.path() + "/coordinator.log");
  bool ready = WaitFor(
      [&] { return !coordinator.running() || HttpGet(http_port, "/readyz").status == 200; }, seconds(30));
  ASSERT_TRUE(ready && coordinator.running()) << coordinator.log();
  for (const char* open_path : {"/healthz", "/readyz", "/metrics"})
    EXPECT_EQ(HttpGet(http_port, open_path).status, 200) << open_path << " needs a token";
  HttpResponse anonymous = HttpGet(http_port, "/api/v1/sweeps");
  EXPECT_TRUE(anonymous.status == 401 || anonymous.status == 403)
      << "/api/v1/sweeps without a token: " << anonymous.status << " " << anonymous.body;
  HttpResponse with_token = HttpGet(http_port, "/api/v1/sweeps", milliseconds(3000), viewer);
  EXPECT_EQ(with_token.status, 200) << with_token.body;
}

TEST(LiveWorker, AcceptsEveryFlagTheDeploymentsPass) {
  std::string binary = WorkerBinary();
  if (binary.empty()) GTEST_SKIP() << "wrpn-worker is not built in this tree";
  auto help = HelpFlags(binary);
  ASSERT_FALSE(help.empty()) << binary << " --help printed no flags";
  auto deployed = DeployedFlags("worker", "worker");
  ASSERT_GE(deployed.size(), 4u);
  for (const auto& f : deployed) EXPECT_TRUE(help.count(f)) << "wrpn-worker has no flag " << f;
}

// The default HTTP port is the one the deployments pass (8080), not Prometheus's own 9090, and the
// docs' flag table says the same default as --help.
TEST(LiveCoordinatorDefaults, HttpPortIsTheDeploymentsOneNotPrometheus) {
  std::string binary = CoordinatorBinary();
  if (binary.empty()) GTEST_SKIP() << "wrpn-coordinator is not built in this tree";
  const std::string help = RunCommand({binary, "--help"}, seconds(20)).output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(help, m, std::regex(R"(--http-listen TEXT=([0-9.]+:([0-9]+)))")))
      << help;
  const std::string def = m[1], port = m[2];
  EXPECT_NE(port, "9090") << "9090 is Prometheus's default port";
  const std::string compose = ReadFile(SourcePath("deploy/compose/docker-compose.yml"));
  ASSERT_TRUE(std::regex_search(compose, m, std::regex(R"(--http-listen=[0-9.]+:([0-9]+))")));
  EXPECT_EQ(port, m[1].str()) << "compose passes another port than the default";
  const std::string doc = ReadFile(SourcePath("docs/coordinator.md"));
  EXPECT_NE(doc.find("| `--http-listen` | `" + def + "` |"), std::string::npos)
      << "docs/coordinator.md's flag table does not give the default " << def;
  EXPECT_NE(ReadFile(SourcePath("README.md")).find("/metrics on :" + port), std::string::npos);
}

// What --rendezvous-port 0 means: the worker's --help says what docs/worker.md's flag table says
// (the help used to claim that the coordinator assigns the port; rank 0's worker picks a free one).
TEST(LiveWorker, RendezvousPortHelpSaysWhatTheDocsSay) {
  std::string binary = WorkerBinary();
  if (binary.empty()) GTEST_SKIP() << "wrpn-worker is not built in this tree";
  std::smatch row;
  const std::string doc = ReadFile(SourcePath("docs/worker.md"));
  ASSERT_TRUE(std::regex_search(doc, row, std::regex(R"(\| `--rendezvous-port` \| 0 \| [^|]*\((0 = [^)]*)\) \|)")))
      << "docs/worker.md has no --rendezvous-port row with a `(0 = ...)` meaning";
  std::string help = RunCommand({binary, "--help"}, seconds(20)).output;
  help = std::regex_replace(help, std::regex(R"(\s+)"), " ");
  EXPECT_NE(help.find(row[1].str()), std::string::npos)
      << "wrpn-worker --help does not say '" << row[1] << "':\n" << help;
  EXPECT_EQ(help.find("coordinator assigns"), std::string::npos) << help;
}

TEST_F(LiveCoordinator, PrometheusWithOurConfigScrapesWrpnTrials) {
  std::string prometheus = FindOnPath({"prometheus"});
  ASSERT_FALSE(prometheus.empty()) << "prometheus not on PATH (scripts/install-deps.sh installs it)";
  // deploy/prometheus/prometheus.yml with the coordinator on loopback and 1 s intervals, next to a
  // copy of the rules it loads by relative path.
  std::string config = ReadFile(SourcePath("deploy/prometheus/prometheus.yml"));
  const std::string target = "'coordinator:8080'";
  ASSERT_NE(config.find(target), std::string::npos) << "scrape target changed; update this test";
  config.replace(config.find(target), target.size(), "'127.0.0.1:" + std::to_string(http_port_) + "'");
  config = std::regex_replace(config, std::regex(R"((scrape|evaluation)_interval: 15s)"), "$1_interval: 1s");
  int prom_port = FreeLoopbackPort();
  config = std::regex_replace(config, std::regex(R"('localhost:9090')"),
                              "'127.0.0.1:" + std::to_string(prom_port) + "'");
  TempDir pdir;
  std::filesystem::create_directories(pdir.path() + "/rules");
  std::filesystem::copy(SourcePath("deploy/prometheus/rules"), pdir.path() + "/rules");
  WriteFile(pdir.path() + "/prometheus.yml", config);
  ChildProcess prom({prometheus, "--config.file=" + pdir.path() + "/prometheus.yml",
                     "--storage.tsdb.path=" + pdir.path() + "/data",
                     "--web.listen-address=127.0.0.1:" + std::to_string(prom_port),
                     "--log.level=warn"},
                    pdir.path() + "/prometheus.log");

  json answer;
  bool got = WaitFor(
      [&] {
        if (!prom.running()) return true;
        HttpResponse r = HttpGet(prom_port, "/api/v1/query?query=" + UrlEncode("wrpn_trials"));
        if (r.status != 200) return false;
        answer = json::parse(r.body, nullptr, false);
        return !answer.is_discarded() && answer.value("status", "") == "success" &&
               !answer["data"]["result"].empty();
      },
      seconds(60));
  ASSERT_TRUE(prom.running()) << "prometheus exited:\n" << prom.log();
  ASSERT_TRUE(got) << "no wrpn_trials in Prometheus after 60 s; last answer: " << answer.dump()
                   << "\nprometheus log:\n" << prom.log() << "\ncoordinator log:\n" << coordinator_->log();
  for (const auto& series : answer["data"]["result"]) {
    EXPECT_EQ(series["metric"]["job"], "wrpn-coordinator");
    EXPECT_EQ(series["metric"]["instance"], "127.0.0.1:" + std::to_string(http_port_));
    EXPECT_TRUE(series["metric"].contains("state")) << series.dump();
  }
  // The target is up and our alert rules were loaded (and evaluate without errors).
  HttpResponse up = HttpGet(prom_port, "/api/v1/query?query=" + UrlEncode("up{job=\"wrpn-coordinator\"}"));
  json upj = json::parse(up.body, nullptr, false);
  ASSERT_FALSE(upj.is_discarded()) << up.body;
  ASSERT_EQ(upj["data"]["result"].size(), 1u) << up.body;
  EXPECT_EQ(upj["data"]["result"][0]["value"][1], "1");
  json rules;
  bool evaluated = WaitFor(
      [&] {
        HttpResponse r = HttpGet(prom_port, "/api/v1/rules");
        rules = json::parse(r.body, nullptr, false);
        if (rules.is_discarded() || rules["data"]["groups"].empty()) return false;
        for (const auto& rule : rules["data"]["groups"][0]["rules"])
          if (rule.value("lastEvaluation", "").rfind("0001-", 0) == 0) return false;
        return true;
      },
      seconds(20));
  ASSERT_TRUE(evaluated) << rules.dump();
  std::set<std::string> alerts;
  for (const auto& rule : rules["data"]["groups"][0]["rules"]) {
    alerts.insert(rule["name"].get<std::string>());
    EXPECT_EQ(rule.value("health", ""), "ok") << rule.dump();
  }
  for (const char* a : {"WrpnCoordinatorDown", "WrpnNoWorkers", "WrpnLeaseExpirationsRising",
                        "WrpnTrialsFailing", "WrpnQueueWaitHigh"})
    EXPECT_TRUE(alerts.count(a)) << a << " not loaded";
}

}  // namespace
}  // namespace wrpn::deploytest
