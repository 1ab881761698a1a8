// The wrpn CLI end to end against an in-process coordinator (memory store, fake clock, real gRPC
// on 127.0.0.1:0, tokens on): golden outputs of a finished fake sweep, watch without a terminal,
// every exit code, connection-setting precedence.
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "client/cli.h"
#include "client/output.h"
#include "server/memory_store.h"
#include "server/server.h"
#include "tests/client/fake_worker.h"
#include "tests/fakes/fake_clock.h"

namespace wrpn::client {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

constexpr const char* kAdmin = "admin-token-0123456789";
constexpr const char* kViewer = "viewer-token-0123456789";
constexpr const char* kWorker = "worker-token-0123456789";

const std::string kSource = WRPN_SOURCE_DIR;
const std::string kQuick = kSource + "/examples/sweeps/fashion-quick.yaml";

struct Result {
  int code = -1;
  std::string out, err;
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto auth = server::Authenticator::FromText(std::string("admin ") + kAdmin + "\nviewer " +
                                                    kViewer + "\nworker " + kWorker + "\n",
                                                "tokens");
    ASSERT_TRUE(auth.ok()) << auth.status();
    auth_ = *std::move(auth);
    store_ = std::make_unique<server::MemoryStore>();
    server::CoordinatorOptions copts;
    copts.lease_ttl = 30s;
    copts.paper_tables_path = kSource + "/data/wrpn_tables.json";
    auto c = server::Coordinator::Create(store_.get(), &clock_, &registry_, copts);
    ASSERT_TRUE(c.ok()) << c.status();
    coordinator_ = *std::move(c);
    server::ServerOptions sopts;
    sopts.grpc_listen = "127.0.0.1:0";
    sopts.http_listen = "";
    sopts.tick_interval = 0ms;
    auto s = server::CoordinatorServer::Start(coordinator_.get(), &auth_, &registry_, sopts);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    addr_ = "127.0.0.1:" + std::to_string(server_->grpc_port());
    channel_ = grpc::CreateChannel(addr_, grpc::InsecureChannelCredentials());
    worker_stub_ = pb::WorkerService::NewStub(channel_);
    home_ = std::filesystem::path(::testing::TempDir()) /
            ("wrpn-cli-home-" + std::to_string(getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(home_);
    std::filesystem::create_directories(home_);
    env_vars_ = {{"HOME", home_.string()}, {"WRPN_ADDR", addr_}, {"WRPN_TOKEN", kAdmin}};
  }
  void TearDown() override {
    if (server_) server_->Shutdown(1s);
    std::filesystem::remove_all(home_);
  }

  Result Run(std::vector<std::string> args, bool tty = false,
             std::function<void()> on_watch_started = nullptr) {
    std::ostringstream out, err;
    CliEnv env;
    env.out = &out;
    env.err = &err;
    env.env = [this](const std::string& k) -> std::optional<std::string> {
      auto it = env_vars_.find(k);
      if (it == env_vars_.end()) return std::nullopt;
      return it->second;
    };
    env.out_is_tty = tty;
    env.watch_refresh = 5ms;
    env.on_watch_started = std::move(on_watch_started);
    Result r;
    r.code = RunCli(args, env);
    r.out = out.str();
    r.err = err.str();
    return r;
  }

  testing::FakeWorker NewWorker() { return testing::FakeWorker(worker_stub_.get(), kWorker); }

  // Submits the quick example and runs all its trials to completion.
  void FinishQuickSweep() {
    Result r = Run({"sweep", "submit", kQuick});
    ASSERT_EQ(r.code, 0) << r.err;
    ASSERT_THAT(r.out, HasSubstr("sweep 1 submitted: fashion-quick, 8 trials"));
    auto w = NewWorker();
    ASSERT_TRUE(w.status().ok()) << w.status().error_message();
    EXPECT_EQ(w.RunAll(), 8);
  }

  std::string WriteFile(const std::string& name, const std::string& text) {
    const auto p = home_ / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }

  FakeClock clock_;
  server::Authenticator auth_;
  server::MetricsRegistry registry_;
  std::unique_ptr<server::MemoryStore> store_;
  std::unique_ptr<server::Coordinator> coordinator_;
  std::unique_ptr<server::CoordinatorServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::WorkerService::Stub> worker_stub_;
  std::string addr_;
  std::filesystem::path home_;
  std::map<std::string, std::string> env_vars_;
};

// Compares with tests/client/golden/<name>; WRPN_UPDATE_GOLDEN=1 rewrites the file instead.
void ExpectGolden(const std::string& name, const std::string& actual) {
  const std::string path = kSource + "/tests/client/golden/" + name;
  if (const char* u = std::getenv("WRPN_UPDATE_GOLDEN"); u && std::string(u) == "1") {
    std::ofstream(path) << actual;
    return;
  }
  std::ifstream in(path);
  ASSERT_TRUE(in) << "missing golden file " << path << " (run with WRPN_UPDATE_GOLDEN=1)";
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(actual, ss.str()) << "output differs from " << path
                              << " (if the change is intended, rerun with WRPN_UPDATE_GOLDEN=1)";
}

TEST_F(CliTest, GoldenOutputsOfAFinishedSweep) {
  FinishQuickSweep();
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"grid.txt", {"grid", "1"}},
      {"grid_paper.txt", {"grid", "1", "--paper"}},
      {"grid_paper.md", {"grid", "1", "--paper", "-o", "markdown"}},
      {"grid_paper.csv", {"grid", "1", "--paper", "-o", "csv"}},
      {"grid_paper.json", {"grid", "1", "--paper", "-o", "json"}},
      {"grid_cost_2x.txt", {"grid", "1", "--metric", "cost", "--width", "2", "--paper"}},
      {"sweep_list.txt", {"sweep", "list"}},
      {"sweep_list.csv", {"sweep", "list", "-o", "csv"}},
      {"sweep_show.yaml", {"sweep", "show", "1", "-o", "yaml"}},
      {"trial_list.txt", {"trial", "list", "1"}},
      {"trial_list.json", {"trial", "list", "1", "-o", "json"}},
      {"trial_metrics.csv", {"trial", "metrics", "6", "-o", "csv"}},
      {"trial_show.txt", {"trial", "show", "6"}},
      {"trial_logs.txt", {"trial", "logs", "6", "--prefix"}},
      {"sweep_show.txt", {"sweep", "show", "1"}},
      {"worker_list.txt", {"worker", "list"}},
      {"paper_table3.csv", {"paper", "table3", "-o", "csv"}},
      {"paper_table4.txt", {"paper", "table4"}},
      {"paper_table1.md", {"paper", "table1", "-o", "markdown"}},
      {"cost_resnet34.txt", {"cost", "--network", "resnet34", "--width", "2", "--wbits", "2", "--abits", "4"}},
      {"footprint_resnet34.csv", {"footprint", "--network", "resnet34", "--batch", "1,32,128,256", "-o", "csv"}},
  };
  for (const auto& [golden, args] : cases) {
    SCOPED_TRACE(golden);
    Result r = Run(args);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    EXPECT_THAT(r.out, Not(HasSubstr("\033[")));  // not a terminal: no colour
    ExpectGolden(golden, r.out);
  }
}

TEST_F(CliTest, GridPaperComparisonNumbers) {
  FinishQuickSweep();
  // -o json is the coordinator's GetGrid answer with the API's field names.
  Result r = Run({"grid", "1", "--paper", "-o", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["cells"].size(), 8u);
  const double base = testing::SyntheticTop1(1, 32, 32, 0);
  for (const auto& c : j["cells"]) {
    const double w = c["width"];
    const int wb = c["wbits"], ab = c["abits"];
    EXPECT_EQ(c["state"], "TRIAL_SUCCEEDED");
    EXPECT_EQ(c["scheme"], "wrpn");
    EXPECT_NEAR(c["final_top1"].get<double>(), testing::SyntheticTop1(w, wb, ab, 0), 1e-9);
    EXPECT_NEAR(c["our_delta"].get<double>(), testing::SyntheticTop1(w, wb, ab, 0) - base, 1e-9);
    EXPECT_EQ(c["paper_network"], "alexnet");  // lenet5 is compared with AlexNet
    EXPECT_EQ(c["paper_table"], w == 1 ? "table1" : "table2");
  }
  // Table 2, w4/a4 at 2x: 58.6 against Table 1's 57.2 baseline.
  const auto& c = j["cells"][5];
  ASSERT_EQ(c["wbits"], 4);
  ASSERT_EQ(c["width"], 2.0);
  EXPECT_NEAR(c["paper_top1"].get<double>(), 58.6, 1e-9);
  EXPECT_NEAR(c["paper_delta"].get<double>(), 58.6 - 57.2, 1e-9);
  // Overriding the reference: ResNet-34 (Table 4) has 2x w4/a4 = 74.52 vs 73.59.
  r = Run({"grid", "1", "--paper", "--paper-ref", "table4", "-o", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto k = nlohmann::json::parse(r.out)["cells"][5];
  EXPECT_EQ(k["paper_table"], "table4");
  EXPECT_NEAR(k["paper_delta"].get<double>(), 74.52 - 73.59, 1e-9);
  r = Run({"grid", "1", "--paper", "--paper-ref", "vgg"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--paper-ref: unknown reference 'vgg'"));
  r = Run({"grid", "1", "--network", "resnet34"});
  EXPECT_EQ(r.code, 3);
  EXPECT_THAT(r.err, HasSubstr("no cells for network resnet34"));
}

TEST_F(CliTest, WatchWithoutTerminalPrintsOneLinePerChange) {
  ASSERT_EQ(Run({"sweep", "submit", kQuick}).code, 0);
  std::promise<void> started;
  std::future<Result> watch = std::async(std::launch::async, [&] {
    return Run({"sweep", "watch", "1"}, /*tty=*/false, [&] { started.set_value(); });
  });
  ASSERT_EQ(started.get_future().wait_for(10s), std::future_status::ready);
  auto w = NewWorker();
  EXPECT_EQ(w.RunAll(), 8);
  ASSERT_EQ(watch.wait_for(20s), std::future_status::ready);
  Result r = watch.get();
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("sweep 1 (fashion-quick): queued, 0/8 done, 0 running, 8 queued, 0 failed\n"));
  EXPECT_THAT(r.out, HasSubstr("trial 1 lenet5 1x w32/a32 seed 0: running (attempt 1) | 0/8 done, 1 running"));
  EXPECT_THAT(r.out, HasSubstr("trial 8 lenet5 2x w1/a1 seed 0: succeeded, top-1 "));
  EXPECT_THAT(r.out, HasSubstr("| 8/8 done, 0 running, 0 queued, 0 failed\n"));
  EXPECT_THAT(r.out, HasSubstr("sweep 1 succeeded: 8 succeeded, 0 failed, 0 cancelled of 8\n"));
  EXPECT_THAT(r.out, Not(HasSubstr("\033[")));
  // One line per state change: 8 x (running, succeeded) plus header and the two summary lines.
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1 + 16 + 2);
}

TEST_F(CliTest, WatchOnTerminalDrawsProgressBars) {
  ASSERT_EQ(Run({"sweep", "submit", kQuick}).code, 0);
  std::promise<void> started;
  std::future<Result> watch = std::async(std::launch::async, [&] {
    return Run({"sweep", "watch", "1", "--color", "never"}, /*tty=*/true, [&] { started.set_value(); });
  });
  ASSERT_EQ(started.get_future().wait_for(10s), std::future_status::ready);
  auto w = NewWorker();
  EXPECT_EQ(w.RunAll(), 8);
  ASSERT_EQ(watch.wait_for(20s), std::future_status::ready);
  Result r = watch.get();
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("[##############################] 8/8 done"));
  EXPECT_THAT(r.out, HasSubstr("\033[J"));  // redraws the bar block in place
  EXPECT_THAT(r.out, HasSubstr("sweep 1 succeeded"));
}

TEST_F(CliTest, SubmitWatchAndACoordinatorGoingAway) {
  std::promise<void> started;
  std::future<Result> watch = std::async(std::launch::async, [&] {
    return Run({"sweep", "submit", kQuick, "--watch"}, /*tty=*/false, [&] { started.set_value(); });
  });
  ASSERT_EQ(started.get_future().wait_for(10s), std::future_status::ready);
  server_->Shutdown(1s);
  ASSERT_EQ(watch.wait_for(20s), std::future_status::ready);
  Result r = watch.get();
  EXPECT_THAT(r.out, HasSubstr("sweep 1 submitted: fashion-quick, 8 trials\n"));
  EXPECT_EQ(r.code, 5);
  EXPECT_THAT(r.err, HasSubstr("ended the stream before the sweep finished"));
}

TEST_F(CliTest, WatchOfAFailedSweepExitsOne) {
  ASSERT_EQ(Run({"sweep", "submit", kQuick}).code, 0);
  auto w = NewWorker();
  w.fail = [](const nlohmann::json& c) {
    return c.value("wbits", 0) == 1 ? std::string("diverged") : std::string();
  };
  w.RunAll();
  Result r = Run({"sweep", "watch", "1"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("sweep 1 failed: 6 succeeded, 2 failed"));
  EXPECT_THAT(r.out, HasSubstr("wrpn trial list 1 --state failed"));
  r = Run({"trial", "list", "1", "--state", "failed"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("diverged"));
  r = Run({"sweep", "retry", "1"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("re-queued 2"));
}

TEST_F(CliTest, ExitCodes) {
  // 0
  Result r = Run({"sweep", "list"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Run({"version"}).code, 0);
  EXPECT_EQ(Run({"--help"}).code, 0);
  // 1: a spec the shared validator rejects; nothing reaches the coordinator.
  const std::string bad = WriteFile("bad.yaml", "axes: {network: lenet5, widht: [1], precision: [\"4/4\"]}\n");
  r = Run({"sweep", "submit", bad});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("invalid sweep spec"));
  EXPECT_THAT(r.err, HasSubstr("unknown key 'widht' in axes (did you mean 'width'?)"));
  // Every problem is listed, several per section.
  const std::string worse = WriteFile(
      "worse.yaml", "axes: {network: lenet5, width: [0, 9], precision: [\"4/4\"]}\n"
                    "recipe: {epochs: -3, lr: -1}\nresources: {gpus: 1}\nprioirty: 2\n");
  r = Run({"sweep", "submit", worse});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("unknown key 'prioirty'"));
  EXPECT_THAT(r.err, HasSubstr("axes.width: 0 is out of range"));
  EXPECT_THAT(r.err, HasSubstr("axes.width: 9 is out of range"));
  EXPECT_THAT(r.err, HasSubstr("recipe.epochs"));
  EXPECT_THAT(r.err, HasSubstr("recipe.lr"));
  EXPECT_THAT(r.err, HasSubstr("unknown key 'gpus' in resources"));
  r = Run({"sweep", "list"});
  EXPECT_THAT(r.out, HasSubstr("no sweeps"));
  // 2: usage
  r = Run({"sweep", "submit"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("SPEC is required"));
  EXPECT_EQ(Run({"sweep", "list", "--bogus"}).code, 2);
  EXPECT_EQ(Run({"sweep", "show", "abc"}).code, 2);
  EXPECT_EQ(Run({"sweep", "list", "-o", "xml"}).code, 2);
  EXPECT_EQ(Run({"grid", "1", "--metric", "loss"}).code, 2);
  EXPECT_EQ(Run({"cost", "--network", "vgg16"}).code, 2);
  EXPECT_EQ(Run({"sweep", "submit", "/nonexistent/spec.yaml"}).code, 2);
  EXPECT_EQ(Run({}).code, 2);
  // 3: not found
  r = Run({"sweep", "show", "99"});
  EXPECT_EQ(r.code, 3);
  EXPECT_THAT(r.err, HasSubstr("sweep 99: not found"));
  EXPECT_EQ(Run({"trial", "show", "99"}).code, 3);
  EXPECT_EQ(Run({"grid", "99"}).code, 3);
  EXPECT_EQ(Run({"sweep", "watch", "99"}).code, 3);
  EXPECT_EQ(Run({"paper", "table9"}).code, 3);
  // 4: auth
  env_vars_.erase("WRPN_TOKEN");
  r = Run({"sweep", "list"});
  EXPECT_EQ(r.code, 4);
  EXPECT_THAT(r.err, HasSubstr("no token given"));
  r = Run({"--token", kViewer, "sweep", "submit", kQuick});
  EXPECT_EQ(r.code, 4);
  EXPECT_THAT(r.err, HasSubstr("admin"));
  EXPECT_EQ(Run({"--token", "wrong-token-0123456789", "grid", "1"}).code, 4);
  // 5: unreachable, quickly, naming the address.
  const auto t0 = std::chrono::steady_clock::now();
  r = Run({"--addr", "127.0.0.1:1", "--connect-timeout", "1", "sweep", "list"});
  EXPECT_EQ(r.code, 5);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_THAT(r.err, HasSubstr("cannot reach the coordinator at 127.0.0.1:1 (address from --addr)"));
}

TEST_F(CliTest, ConnectionSettingsPrecedence) {
  env_vars_.erase("WRPN_ADDR");
  env_vars_.erase("WRPN_TOKEN");
  // Config file under $HOME/.config is used when nothing else is set.
  WriteFile(".config/wrpn/config.yaml", "addr: " + addr_ + "\ntoken: " + std::string(kViewer) + "\n");
  Result r = Run({"sweep", "list"});
  EXPECT_EQ(r.code, 0) << r.err;
  // XDG_CONFIG_HOME wins over $HOME/.config.
  const std::string xdg = (home_ / "xdg").string();
  WriteFile("xdg/wrpn/config.yaml", "addr: 127.0.0.1:1\nconnect_timeout: 0.5\n");
  env_vars_["XDG_CONFIG_HOME"] = xdg;
  r = Run({"sweep", "list"});
  EXPECT_EQ(r.code, 5);
  EXPECT_THAT(r.err, HasSubstr("address from " + xdg + "/wrpn/config.yaml"));
  // The environment beats the file; a flag beats the environment.
  env_vars_["WRPN_ADDR"] = addr_;
  env_vars_["WRPN_TOKEN"] = "wrong-token-0123456789";
  EXPECT_EQ(Run({"sweep", "list"}).code, 4);
  EXPECT_EQ(Run({"--token", kViewer, "sweep", "list"}).code, 0);
  env_vars_["WRPN_ADDR"] = "127.0.0.1:1";
  EXPECT_EQ(Run({"--addr", addr_, "--token", kViewer, "sweep", "list"}).code, 0);
  // A bad config file names the file and the key.
  WriteFile("xdg/wrpn/config.yaml", "adr: x\n");
  r = Run({"sweep", "list"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("config.yaml: unknown key 'adr'"));
}

TEST_F(CliTest, ColourOnlyOnATerminalAndNotWithNoColor) {
  FinishQuickSweep();
  EXPECT_THAT(Run({"sweep", "list"}, /*tty=*/true).out, HasSubstr("\033[32msucceeded"));
  EXPECT_THAT(Run({"sweep", "list"}, /*tty=*/false).out, Not(HasSubstr("\033[")));
  env_vars_["NO_COLOR"] = "1";
  EXPECT_THAT(Run({"sweep", "list"}, /*tty=*/true).out, Not(HasSubstr("\033[")));
  EXPECT_THAT(Run({"sweep", "list", "--color", "always"}).out, HasSubstr("\033["));
}

TEST_F(CliTest, TrialCommandsAndWorkers) {
  FinishQuickSweep();
  Result r = Run({"trial", "show", "6"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("lenet5 2x, weights 4 bits, activations 4 bits, scheme wrpn, seed 0"));
  EXPECT_THAT(r.out, HasSubstr("epoch 3: /tmp/wrpn-fake/6/epoch3.pt"));
  r = Run({"trial", "show", "6", "-o", "json"});
  ASSERT_EQ(r.code, 0);
  EXPECT_EQ(nlohmann::json::parse(r.out)["trial"]["trial_config"]["epochs"], 3);
  r = Run({"trial", "metrics", "6", "--name", "top1", "-o", "json"});
  ASSERT_EQ(r.code, 0);
  EXPECT_EQ(nlohmann::json::parse(r.out)["points"].size(), 3u);
  r = Run({"trial", "logs", "6"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "epoch 1/3 top1 83.800000\nepoch 2/3 top1 86.800000\nepoch 3/3 top1 89.800000\n");
  r = Run({"trial", "logs", "6", "-f", "--tail", "1", "--prefix"});  // finished: -f returns at once
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(" a1 r0  epoch 3/3 top1 89.8"));
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1);
  r = Run({"trial", "logs", "6", "-o", "json"});
  EXPECT_EQ(nlohmann::json::parse(r.out)["lines"].size(), 3u);
  EXPECT_EQ(Run({"trial", "logs", "99"}).code, 3);
  r = Run({"worker", "list", "-o", "json"});
  ASSERT_EQ(r.code, 0);
  EXPECT_EQ(nlohmann::json::parse(r.out)[0]["name"], "fake-worker");
  r = Run({"sweep", "cancel", "1"});
  EXPECT_EQ(r.code, 0) << r.err;
}

// `wrpn logs TRIAL [-f]` (named by the alert annotations and docs/deploy.md) is `wrpn trial logs`.
TEST_F(CliTest, LogsIsTrialLogs) {
  FinishQuickSweep();
  Result r = Run({"logs", "6"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "epoch 1/3 top1 83.800000\nepoch 2/3 top1 86.800000\nepoch 3/3 top1 89.800000\n");
  EXPECT_EQ(r.out, Run({"trial", "logs", "6"}).out);
  r = Run({"logs", "6", "-f", "--tail", "1"});  // finished: -f returns at once
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "epoch 3/3 top1 89.800000\n");
  EXPECT_EQ(Run({"logs", "99"}).code, 3);
}

TEST_F(CliTest, PlotsWithGnuplot) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) GTEST_SKIP() << "gnuplot not installed";
  FinishQuickSweep();
  const std::string png = (home_ / "pareto.png").string();
  const std::string script = (home_ / "pareto.gp").string();
  Result r = Run({"plot", "1", "--out", png, "--script", script});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("8 of our cells, 8 paper cells"));
  std::ifstream f(png, std::ios::binary);
  char magic[4] = {};
  f.read(magic, 4);
  EXPECT_EQ(std::string(magic + 1, 3), "PNG");
  std::stringstream ss;
  ss << std::ifstream(script).rdbuf();
  EXPECT_THAT(ss.str(), HasSubstr("title \"paper: alexnet (ImageNet)\""));
  EXPECT_THAT(ss.str(), HasSubstr("title \"ours: lenet5, Pareto front\""));
  EXPECT_THAT(ss.str(), HasSubstr("set xlabel"));
  EXPECT_THAT(ss.str(), HasSubstr("\"2x 4/4\""));
  const std::string svg = (home_ / "grid.svg").string();
  r = Run({"plot", "1", "--out", svg, "--kind", "grid"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::file_size(svg) > 1000);
  EXPECT_EQ(Run({"plot", "1", "--out", (home_ / "x.jpg").string()}).code, 2);
  env_vars_["WRPN_GNUPLOT"] = "/nonexistent/gnuplot";
  r = Run({"plot", "1", "--out", png});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("gnuplot not found"));
}

// Both accountings per batch; at low bits also FP32 and packed; measured peaks from the JSON of
// `wrpn-train describe --measure --json` next to the autograd model, refused when they measured
// something else; the Figure 1 plot with the measured points.
TEST_F(CliTest, FootprintBothAccountingsMeasuredPointsAndPlot) {
  Result r = Run({"footprint", "--network", "lenet5", "--batch", "8,64", "-o", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["batches"].size(), 2u);
  EXPECT_GT(j["batches"][1]["autograd"]["training_bytes"].get<double>(),
            j["batches"][1]["paper"]["training_bytes"].get<double>());
  r = Run({"footprint", "--network", "resnet50", "--wbits", "2", "--abits", "4", "--batch", "128"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("paper w2/a4"));
  EXPECT_THAT(r.out, HasSubstr("paper fp32"));
  EXPECT_THAT(r.out, HasSubstr("autograd as trained (fp32)"));
  EXPECT_THAT(r.out, HasSubstr("autograd packed w2/a4"));
  EXPECT_THAT(r.out, HasSubstr("today's trainer stores every tensor in FP32"));

  const std::string measured = WriteFile(
      "m.json",
      R"({"network": "lenet5", "width": 1.0, "wbits": 32, "abits": 32, "device": "cpu",
          "input": [1, 28, 28], "classes": 10,
          "measured": [{"batch": 8, "measured_tensor_peak_bytes": 1572864},
                       {"batch": 64, "measured_tensor_peak_bytes": 5872026}]})");
  r = Run({"footprint", "--network", "lenet5", "--measured", measured, "-o", "csv"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("BATCH,ACCOUNTING,ACTIVATIONS,WEIGHTS,GRADIENT MAPS,TRAINING,INFERENCE,ACTIVATION %,MEASURED,MODEL ERROR %\n"));
  EXPECT_THAT(r.out, HasSubstr(",1.5,"));  // batch 8 measured, 1.5 MiB
  EXPECT_THAT(r.out, HasSubstr("\n64,paper,"));  // the measured batches are the default
  r = Run({"footprint", "--network", "resnet20", "--measured", measured});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--measured: " + measured + " measured network lenet5, the model is for resnet20"));
  r = Run({"footprint", "--network", "lenet5", "--input", "1x32x32", "--measured", measured});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("measured input 1x28x28, the model is for 1x32x32"));
  r = Run({"footprint", "--network", "lenet5", "--measured", (home_ / "missing.json").string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--measured: cannot open"));
  r = Run({"footprint", "--network", "lenet5", "--measured", WriteFile("bad.json", "{\"measured\": 3}")});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("is not the JSON of `wrpn-train describe --measure --json`"));

  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) GTEST_SKIP() << "gnuplot not installed";
  const std::string png = (home_ / "fig1.png").string();
  r = Run({"footprint", "--network", "lenet5", "--measured", measured, "--plot", png});
  ASSERT_EQ(r.code, 0) << r.err;
  std::ifstream f(png, std::ios::binary);
  char magic[4] = {};
  f.read(magic, 4);
  EXPECT_EQ(std::string(magic + 1, 3), "PNG");
}

TEST_F(CliTest, GridAveragesSeedsAndShowsUnfinishedCells) {
  const std::string spec = WriteFile(
      "seeds.yaml",
      "name: seeds\naxes: {network: lenet5, width: [1], precision: [\"32/32\", \"4/4\"], seed: [0, 1]}\n"
      "recipe: {epochs: 1}\n");
  ASSERT_EQ(Run({"sweep", "submit", spec}).code, 0);
  ASSERT_EQ(NewWorker().RunAll(), 4);
  Result r = Run({"grid", "1", "--metric", "top1"});
  ASSERT_EQ(r.code, 0) << r.err;
  // Seeds 0 and 1 differ by 0.03: mean +0.015, sample std 0.02.
  EXPECT_THAT(r.out, HasSubstr("w32    89.02±0.02"));
  EXPECT_THAT(r.out, HasSubstr("  88.22±0.02\n"));
  ASSERT_EQ(Run({"sweep", "submit", spec}).code, 0);
  r = Run({"grid", "2", "--metric", "top1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("w32    queued"));
  r = Run({"grid", "2", "-o", "csv"});
  EXPECT_THAT(r.out, HasSubstr("lenet5,1,32,32,queued,2,0,,"));
}

// Issue 20: a sweep over schemes: one table per scheme, `--compare scheme` side by side per
// cell, the scheme in CSV/JSON, one Pareto series per scheme.
TEST_F(CliTest, GridPerSchemeAndSchemesSideBySide) {
  const std::string spec = WriteFile(
      "schemes.yaml",
      "name: schemes\naxes: {network: lenet5, width: [1, 2], precision: [\"32/32\", \"4/4\"], scheme: [wrpn, lsq]}\n"
      "recipe: {epochs: 1}\n");
  ASSERT_EQ(Run({"sweep", "submit", spec}).code, 0);
  ASSERT_EQ(NewWorker().RunAll(), 8);
  Result r = Run({"grid", "1", "--metric", "top1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("scheme wrpn: lenet5 1x  top-1 %"));
  EXPECT_THAT(r.out, HasSubstr("scheme lsq: lenet5 2x  top-1 %"));
  r = Run({"grid", "1", "--compare", "scheme"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("lenet5 2x  top-1 % by scheme (same bits, same compute cost)"));
  EXPECT_THAT(r.out, HasSubstr("best"));
  EXPECT_THAT(r.out, HasSubstr("w4/a4"));
  const std::string w4 = r.out.substr(r.out.find("w4/a4"), r.out.find('\n', r.out.find("w4/a4")) - r.out.find("w4/a4"));
  EXPECT_THAT(w4, HasSubstr(Fixed(testing::SyntheticTop1(1, 4, 4, 0), 2))) << w4;
  EXPECT_EQ(Run({"grid", "1", "--compare", "width"}).code, 2);
  r = Run({"grid", "1", "-o", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["cells"].size(), 8u);
  std::set<std::string> schemes;
  for (const auto& c : j["cells"]) schemes.insert(c["scheme"].get<std::string>());
  EXPECT_EQ(schemes, (std::set<std::string>{"wrpn", "lsq"}));
  EXPECT_THAT(Run({"grid", "1", "-o", "csv"}).out, HasSubstr(",trial_id,scheme\n"));
  // Trials of the same cell and seed differ only by scheme: the list and `trial show` name it.
  r = Run({"trial", "list", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(" SCHEME "));
  std::map<std::string, int> rows_per_scheme;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    for (const char* s : {" wrpn ", " lsq "})
      if (line.find(s) != std::string::npos) ++rows_per_scheme[s];
  }
  EXPECT_EQ(rows_per_scheme, (std::map<std::string, int>{{" wrpn ", 4}, {" lsq ", 4}})) << r.out;
  r = Run({"trial", "show", "2"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(", scheme lsq, seed 0"));
  if (std::system("command -v gnuplot >/dev/null 2>&1") == 0) {
    const std::string script = (home_ / "schemes.gp").string();
    r = Run({"plot", "1", "--out", (home_ / "schemes.svg").string(), "--script", script, "--no-paper"});
    ASSERT_EQ(r.code, 0) << r.err;
    std::stringstream ss;
    ss << std::ifstream(script).rdbuf();
    EXPECT_THAT(ss.str(), HasSubstr("title \"ours: lenet5 wrpn, Pareto front\""));
    EXPECT_THAT(ss.str(), HasSubstr("title \"ours: lenet5 lsq, Pareto front\""));
  }
}

// Issue 21: a Pareto-pruned sweep through the CLI. SyntheticTop1 puts 2x 2/2 and 1x 32/32 0.8
// points below a cheaper cell at the rung (margin 0.5): pruned there, shown as such everywhere,
// and `retry --pruned` resumes them to the end.
TEST_F(CliTest, ParetoPrunedSweepShowsAndResumesItsPrunedCells) {
  const std::string spec = WriteFile(
      "pruned.yaml",
      "name: pruned\naxes: {network: lenet5, width: [1, 2], precision: [\"32/32\", \"4/4\", \"2/2\"]}\n"
      "recipe: {epochs: 4}\nsearch: {mode: pareto, rungs: [2], margin: 0.5}\n");
  ASSERT_EQ(Run({"sweep", "submit", spec}).code, 0);
  ASSERT_EQ(NewWorker().RunAll(), 10) << "6 trials to the rung, the 4 promoted on to the end";
  Result r = Run({"grid", "1", "--metric", "top1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("pruned at epoch 2: 81.40")) << r.out;  // 2x 2/2
  EXPECT_THAT(r.out, HasSubstr("pruned at epoch 2: 83.00")) << r.out;  // 1x 32/32
  r = Run({"trial", "list", "1", "--state", "pruned"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("pruned at epoch 2: 81.40"));
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 3) << r.out;  // header + 2 trials
  r = Run({"sweep", "show", "1"});
  EXPECT_THAT(r.out, HasSubstr("6 total: 4 succeeded, 0 running, 0 queued, 0 failed, 0 cancelled, 2 pruned"));
  EXPECT_THAT(Run({"sweep", "list"}).out, HasSubstr("PRUNED"));
  if (std::system("command -v gnuplot >/dev/null 2>&1") == 0) {
    const std::string script = (home_ / "pruned.gp").string();
    r = Run({"plot", "1", "--y", "top1", "--out", (home_ / "pruned.svg").string(), "--script", script, "--no-paper"});
    ASSERT_EQ(r.code, 0) << r.err;
    std::stringstream ss;
    ss << std::ifstream(script).rdbuf();
    EXPECT_THAT(ss.str(), HasSubstr("with points pt 6"));  // hollow markers for the pruned cells
    EXPECT_THAT(ss.str(), HasSubstr("title \"ours: lenet5 pruned at a rung\""));
  }
  r = Run({"sweep", "retry", "1", "--pruned"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("re-queued 2 failed, pruned or cancelled trials (pruned ones to the end)"));
  ASSERT_EQ(NewWorker().RunAll(), 2);
  r = Run({"grid", "1", "--metric", "top1"});
  EXPECT_THAT(r.out, Not(HasSubstr("pruned at epoch"))) << r.out;
  EXPECT_THAT(Run({"trial", "list", "1", "--state", "bogus"}).err, HasSubstr("cancelled, pruned)"));
}

TEST_F(CliTest, HelpHasExamplesEverywhere) {
  for (std::vector<std::string> cmd :
       {std::vector<std::string>{}, {"sweep", "submit"}, {"sweep", "list"}, {"sweep", "show"}, {"sweep", "watch"},
        {"sweep", "cancel"}, {"sweep", "retry"}, {"trial", "list"}, {"trial", "show"}, {"trial", "metrics"},
        {"trial", "logs"}, {"grid"}, {"paper"}, {"cost"}, {"footprint"}, {"plot"}, {"worker", "list"}, {"version"}}) {
    cmd.push_back("--help");
    SCOPED_TRACE(::testing::PrintToString(cmd));
    Result r = Run(cmd);
    EXPECT_EQ(r.code, 0);
    EXPECT_THAT(r.out, HasSubstr("Examples:"));
  }
}

TEST(OutputTest, YamlCsvMarkdown) {
  const nlohmann::json j = {{"name", "a: b"}, {"n", 3}, {"list", {1, 2}}, {"empty", nlohmann::json::array()},
                            {"nested", {{"x", true}, {"s", "123"}}}, {"objs", {{{"k", 1}, {"v", "w"}}}}};
  EXPECT_EQ(JsonToYaml(j), "empty: []\nlist:\n  - 1\n  - 2\nn: 3\nname: \"a: b\"\nnested:\n  s: \"123\"\n  x: true\nobjs:\n  - k: 1\n    v: w\n");
  Table t;
  t.columns = {"a", "b"};
  t.rows = {{"x,y", "say \"hi\""}, {"p|q", ""}};
  EXPECT_EQ(RenderCsv(t), "a,b\n\"x,y\",\"say \"\"hi\"\"\"\np|q,\n");
  EXPECT_EQ(RenderMarkdown(t), "| a | b |\n|---|---|\n| x,y | say \"hi\" |\n| p\\|q |  |\n");
  t.right = {false, true};
  EXPECT_EQ(RenderText(t, false), "a           b\nx,y  say \"hi\"\np|q\n");
  EXPECT_EQ(DisplayWidth("±1"), 2u);
}

}  // namespace
}  // namespace wrpn::client
