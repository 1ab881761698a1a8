// End to end: an in-process coordinator (SQLite, gRPC on 127.0.0.1:0, worker token, short lease
// TTL) and real `wrpn-worker` processes running real `wrpn-train` trainers on CPU, on a small
// Fashion-MNIST subset (or the trainer's synthetic dataset when the files are not installed).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "nlohmann/json.hpp"
#include "server/server.h"
#include "server/sqlite_store.h"
#include "worker/agent/process_launcher.h"

namespace wrpn {
namespace {

namespace fs = std::filesystem;
namespace pb = ::wrpn::v1;
using agent::ForkExecLauncher;
using agent::Process;
using agent::ProcessSpec;
using json = nlohmann::json;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr const char* kWorkerToken = "worker-token-integration-0001";
constexpr const char* kFashion = "/usr/share/datasets/fashion-mnist";

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Children of `parent` (from /proc), e.g. the trainers a worker started.
std::vector<pid_t> ChildrenOf(pid_t parent) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string stat = ReadFile(e.path() / "stat");
    auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    char state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent && state != 'Z') out.push_back(std::stoi(name));
  }
  return out;
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

bool Alive(pid_t pid) {
  std::string stat = ReadFile(fs::path("/proc") / std::to_string(pid) / "stat");
  if (stat.empty()) return false;
  auto close = stat.rfind(')');
  return close != std::string::npos && stat.size() > close + 2 && stat[close + 2] != 'Z';
}

class WorkerE2eTest : public testing::Test {
 protected:
  void SetUp() override {
    trainer_ = WRPN_TRAIN_PATH;
    worker_bin_ = WRPN_WORKER_PATH;
    if (!fs::exists(trainer_) || !fs::exists(worker_bin_))
      GTEST_SKIP() << "wrpn-train or wrpn-worker is not built (" << trainer_ << ", "
                   << worker_bin_ << ")";
    dir_ = fs::temp_directory_path() /
           ("wrpn-e2e-" + std::to_string(::getpid()) + "-" +
            testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream(dir_ / "worker.token") << kWorkerToken << "\n";
    auto auth = server::Authenticator::FromText(
        std::string("worker ") + kWorkerToken + "\nadmin admin-token-integration-01\n", "tokens");
    ASSERT_TRUE(auth.ok()) << auth.status();
    auth_ = *std::move(auth);
    auto store = server::SqliteStore::Open((dir_ / "wrpn.db").string());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    server::CoordinatorOptions copts;
    copts.lease_ttl = 2s;
    registry_ = std::make_unique<server::MetricsRegistry>();
    auto c = server::Coordinator::Create(store_.get(), &clock_, registry_.get(), copts);
    ASSERT_TRUE(c.ok()) << c.status();
    coordinator_ = *std::move(c);
    server::ServerOptions sopts;
    sopts.grpc_listen = "127.0.0.1:0";
    sopts.http_listen = "";
    sopts.tick_interval = 200ms;
    auto s = server::CoordinatorServer::Start(coordinator_.get(), &auth_, registry_.get(), sopts);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
  }

  // Stops the coordinator, keeps it down for `outage`, and starts it again on the same port and
  // database with lease TTL `ttl` (as after a crash or an upgrade).
  void RestartCoordinator(std::chrono::milliseconds outage, std::chrono::milliseconds ttl) {
    const int port = server_->grpc_port();
    server_->Shutdown(1s);
    server_.reset();
    coordinator_.reset();
    store_.reset();
    std::this_thread::sleep_for(outage);
    auto store = server::SqliteStore::Open((dir_ / "wrpn.db").string());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    server::CoordinatorOptions copts;
    copts.lease_ttl = ttl;
    copts.retry_backoff = retry_backoff_;
    registry_ = std::make_unique<server::MetricsRegistry>();
    auto c = server::Coordinator::Create(store_.get(), &clock_, registry_.get(), copts);
    ASSERT_TRUE(c.ok()) << c.status();
    coordinator_ = *std::move(c);
    server::ServerOptions sopts;
    sopts.grpc_listen = "127.0.0.1:" + std::to_string(port);
    sopts.http_listen = "";
    sopts.tick_interval = 200ms;
    auto s = server::CoordinatorServer::Start(coordinator_.get(), &auth_, registry_.get(), sopts);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
  }

  void TearDown() override {
    for (auto& [name, w] : workers_) {
      if (w && !w->Exited()) w->Terminate();
    }
    for (auto& [name, w] : workers_) {
      if (!w) continue;
      const auto deadline = std::chrono::steady_clock::now() + 20s;
      while (!w->Exited() && std::chrono::steady_clock::now() < deadline) {
        w->TakeStdoutLines();
        std::this_thread::sleep_for(50ms);
      }
      if (!w->Exited()) w->Kill();
      if (HasFailure()) std::cerr << "---- worker " << name << " log ----\n" << w->StderrTail();
    }
    workers_.clear();
    if (server_) server_->Shutdown(1s);
    server_.reset();
    coordinator_.reset();
    store_.reset();
    if (!HasFailure()) fs::remove_all(dir_);
  }

  // Starts a wrpn-worker process; returns it (owned by the fixture).
  Process* StartWorker(const std::string& name, std::vector<std::string> extra = {}) {
    ProcessSpec spec;
    spec.argv = {worker_bin_,
                 "--coordinator", "127.0.0.1:" + std::to_string(server_->grpc_port()),
                 "--token-file", (dir_ / "worker.token").string(),
                 "--name", name,
                 "--address", "127.0.0.1",
                 "--gpus", "none",
                 "--cpus", "2",
                 "--trainer", trainer_,
                 "--work-dir", (dir_ / name).string(),
                 "--checkpoint-dir", (dir_ / "shared-checkpoints").string(),
                 "--grace", "10",
                 "--metrics-interval", "0.5",
                 "--acquire-interval", "0.2",
                 "--poll-interval", "0.05"};
    if (keep_checkpoints_) spec.argv.push_back("--keep-checkpoints");
    for (size_t i = 0; i + 1 < extra.size(); i += 2) {
      auto same = std::find(spec.argv.begin(), spec.argv.end(), extra[i]);
      if (same != spec.argv.end() && same + 1 != spec.argv.end()) {  // override a default
        *(same + 1) = extra[i + 1];
        extra[i].clear();
        extra[i + 1].clear();
      }
    }
    for (auto& e : extra) {
      if (!e.empty()) spec.argv.push_back(std::move(e));
    }
    spec.stderr_tail_bytes = 256 * 1024;
    spec.cwd = worker_cwd_;
    auto p = launcher_.Launch(spec);
    EXPECT_TRUE(p.ok()) << p.status();
    if (!p.ok()) return nullptr;
    auto& slot = workers_[name];
    slot = *std::move(p);
    return slot.get();
  }

  static json Dataset() {
    if (fs::exists(fs::path(kFashion) / "train-images-idx3-ubyte.gz")) {
      return {{"kind", "fashion_mnist"}, {"path", kFashion}, {"train_subset", 512},
              {"test_subset", 256}, {"augment", false}};
    }
    return {{"kind", "synthetic"}, {"train_size", 512}, {"test_size", 256}, {"augment", false}};
  }

  int64_t Submit(const json& axes, int epochs, json resources = {{"gpus_per_node", 0}, {"nodes", 1}},
                 json recipe_extra = json::object(), json search = nullptr, int max_attempts = 3) {
    json recipe = {{"epochs", epochs}, {"batch_size", 64}, {"lr", 0.05}, {"num_workers", 1},
                   {"threads", 1}, {"schedule", "constant"}};
    recipe.update(recipe_extra);
    json spec = {{"name", testing::UnitTest::GetInstance()->current_test_info()->name()},
                 {"dataset", Dataset()},
                 {"axes", axes},
                 {"recipe", recipe},
                 {"resources", resources},
                 {"max_attempts", max_attempts}};
    if (!search.is_null()) spec["search"] = search;
    pb::SubmitSweepRequest req;
    req.set_spec_text(spec.dump());
    auto resp = coordinator_->SubmitSweep(req);
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp.ok() ? resp->sweep_id() : 0;
  }

  pb::Sweep Sweep(int64_t id) {
    pb::GetSweepRequest req;
    req.set_sweep_id(id);
    auto r = coordinator_->GetSweep(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->sweep() : pb::Sweep();
  }

  std::vector<pb::Trial> Trials(int64_t sweep, pb::TrialState state = pb::TRIAL_STATE_UNSPECIFIED) {
    pb::ListTrialsRequest req;
    req.set_sweep_id(sweep);
    req.set_state(state);
    auto r = coordinator_->ListTrials(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? std::vector<pb::Trial>(r->trials().begin(), r->trials().end())
                  : std::vector<pb::Trial>();
  }

  pb::GetTrialResponse Trial(int64_t id) {
    pb::GetTrialRequest req;
    req.set_trial_id(id);
    auto r = coordinator_->GetTrial(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : pb::GetTrialResponse();
  }

  // Polls `done` every 100 ms for at most `limit`, draining the workers' stdout meanwhile; gives
  // up early when a worker exited that the test did not stop.
  bool WaitFor(const std::function<bool()>& done, std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      for (auto& [n, w] : workers_) {
        if (!w) continue;
        w->TakeStdoutLines();
        w->TakeStderrLines();
        if (w->Exited() && !stopped_.count(n)) {
          ADD_FAILURE() << "worker " << n << " exited: " << w->Exited()->Describe();
          return done();
        }
      }
      if (done()) return true;
      std::this_thread::sleep_for(100ms);
    }
    return done();
  }

  bool SweepFinished(int64_t id) {
    auto s = Sweep(id).state();
    return s == pb::SWEEP_SUCCEEDED || s == pb::SWEEP_FAILED || s == pb::SWEEP_CANCELLED;
  }

  std::string trainer_, worker_bin_;
  fs::path dir_;
  SystemClock clock_;
  server::Authenticator auth_;
  std::unique_ptr<server::MetricsRegistry> registry_;
  std::unique_ptr<server::SqliteStore> store_;
  std::unique_ptr<server::Coordinator> coordinator_;
  std::unique_ptr<server::CoordinatorServer> server_;
  ForkExecLauncher launcher_;
  std::map<std::string, std::unique_ptr<Process>> workers_;
  std::set<std::string> stopped_;  // workers the test killed on purpose
  std::chrono::milliseconds retry_backoff_{0};  // for RestartCoordinator
  bool keep_checkpoints_ = true;  // StartWorker passes --keep-checkpoints
  std::string worker_cwd_;        // where StartWorker runs the worker ("" = the test's folder)
};

TEST_F(WorkerE2eTest, FourTrialSweepCompletesThroughOneWorker) {
  const int64_t sweep = Submit({{"network", "lenet5"}, {"width", {1, 2}},
                                {"precision", {"32/32", "2/4"}}, {"seed", {0}}},
                               2);
  ASSERT_NE(StartWorker("solo"), nullptr);
  ASSERT_TRUE(WaitFor([&] { return SweepFinished(sweep); }, 240s))
      << "sweep state " << pb::SweepState_Name(Sweep(sweep).state());
  EXPECT_EQ(Sweep(sweep).state(), pb::SWEEP_SUCCEEDED);

  pb::GetGridRequest g;
  g.set_sweep_id(sweep);
  auto grid = coordinator_->GetGrid(g);
  ASSERT_TRUE(grid.ok()) << grid.status();
  ASSERT_EQ(grid->cells_size(), 4);
  for (const auto& c : grid->cells()) {
    EXPECT_EQ(c.state(), pb::TRIAL_SUCCEEDED) << c.network() << " " << c.width();
    ASSERT_TRUE(c.has_final_top1());
    EXPECT_GT(c.final_top1(), 10.0) << "better than chance on 10 classes";
    EXPECT_LE(c.final_top1(), 100.0);
    EXPECT_GT(c.cost_uniform(), 0.0);
  }
  // Every epoch's metrics arrived, and each attempt kept its trainer log.
  const auto trials = Trials(sweep);
  ASSERT_EQ(trials.size(), 4u);
  for (const auto& t : trials) {
    EXPECT_EQ(t.attempts(), 1);
    pb::GetTrialMetricsRequest m;
    m.set_trial_id(t.id());
    m.set_name("top1");
    auto pts = coordinator_->GetTrialMetrics(m);
    ASSERT_TRUE(pts.ok());
    EXPECT_EQ(pts->points_size(), 2) << "trial " << t.id();
    EXPECT_FALSE(t.checkpoint_path().empty());
    const fs::path attempt = dir_ / "solo" / "attempts" /
                             ("t" + std::to_string(t.id()) + "-a1-n0");
    EXPECT_THAT(ReadFile(attempt / "rank-0.log"), HasSubstr("finished"));
    EXPECT_THAT(ReadFile(attempt / "agent.log"), HasSubstr("reported success"));
    // The trial log reached the coordinator (`wrpn trial logs`): the trainer's stderr as rank 0.
    pb::GetTrialLogsRequest lr;
    lr.set_trial_id(t.id());
    auto logs = coordinator_->GetTrialLogs(lr);
    ASSERT_TRUE(logs.ok()) << logs.status();
    bool finished_line = false;
    for (const auto& l : logs->lines())
      finished_line |= l.rank() == 0 && l.line().find("finished") != std::string::npos;
    EXPECT_TRUE(finished_line) << "trial " << t.id() << ": " << logs->lines_size() << " lines";
  }
}

// Issue 20: every quantization scheme through the real service and trainer, with init_from:
// fp32 (the coordinator adds the FP32 trial, the quantized ones wait for it and start from its
// final checkpoint, which the worker keeps although it deletes the checkpoints of other trials).
TEST_F(WorkerE2eTest, EverySchemeTrainsFromTheFp32TrialsCheckpoint) {
  keep_checkpoints_ = false;
  const int64_t sweep = Submit({{"network", "lenet5"}, {"width", {1}}, {"precision", {"2/4"}},
                                {"scheme", {"wrpn", "lsq", "pact", "dorefa"}}, {"seed", {0}}},
                               2, {{"gpus_per_node", 0}, {"nodes", 1}}, {{"init_from", "fp32"}});
  ASSERT_NE(StartWorker("solo"), nullptr);
  ASSERT_TRUE(WaitFor([&] { return SweepFinished(sweep); }, 300s))
      << "sweep state " << pb::SweepState_Name(Sweep(sweep).state());
  EXPECT_EQ(Sweep(sweep).state(), pb::SWEEP_SUCCEEDED);
  const auto trials = Trials(sweep);
  ASSERT_EQ(trials.size(), 5u);  // four schemes at 2/4 and the FP32 trial the grid lacked
  int64_t fp32 = 0;
  std::set<std::string> schemes;
  for (const auto& t : trials) {
    EXPECT_EQ(t.state(), pb::TRIAL_SUCCEEDED) << t.id() << " " << t.error();
    if (t.wbits() == 32) {
      fp32 = t.id();
      EXPECT_TRUE(fs::exists(t.checkpoint_path())) << "the FP32 checkpoint its dependents use was kept";
      continue;
    }
    schemes.insert(t.scheme());
    EXPECT_TRUE(json::parse(t.trial_config_json()).value("init_from", "") == "fp32");
  }
  EXPECT_EQ(schemes, (std::set<std::string>{"wrpn", "lsq", "pact", "dorefa"}));
  ASSERT_NE(fp32, 0);
  const std::string fp32_checkpoint = Trial(fp32).trial().checkpoint_path();
  for (const auto& t : trials) {
    if (t.wbits() == 32) continue;
    EXPECT_GT(t.started_ms(), Trial(fp32).trial().finished_ms() - 1) << "started before its FP32 trial ended";
    EXPECT_FALSE(fs::exists(fs::path(t.checkpoint_path()).parent_path()))
        << "a trial without dependents has its checkpoints removed";
    pb::GetTrialLogsRequest lr;
    lr.set_trial_id(t.id());
    auto logs = coordinator_->GetTrialLogs(lr);
    ASSERT_TRUE(logs.ok()) << logs.status();
    bool initialised = false;
    for (const auto& l : logs->lines())
      initialised |= l.line().find("initialised from the FP32 checkpoint " + fp32_checkpoint) != std::string::npos;
    EXPECT_TRUE(initialised) << "trial " << t.id() << " (" << t.scheme() << ")";
  }
  pb::GetGridRequest g;
  g.set_sweep_id(sweep);
  auto grid = coordinator_->GetGrid(g);
  ASSERT_TRUE(grid.ok()) << grid.status();
  std::set<std::string> cell_schemes;
  for (const auto& c : grid->cells()) {
    EXPECT_EQ(c.state(), pb::TRIAL_SUCCEEDED);
    EXPECT_GT(c.final_top1(), 10.0) << c.scheme() << " better than chance";
    if (c.wbits() != 32) cell_schemes.insert(c.scheme());
  }
  EXPECT_EQ(grid->cells_size(), 5);
  EXPECT_EQ(cell_schemes, schemes);
}

// Issue 21: a Pareto-pruned sweep with the real trainer. Two cells of equal cost (wrpn and PACT
// at 2/2): with margin 0 the one with the lower top-1 after the rung's epoch is pruned (a tie
// keeps both). Every trial stops at the rung with a checkpoint, the promoted one resumes from it
// to the end with every epoch's metrics once, the pruned one keeps its checkpoint and is resumed
// by `retry --pruned`.
TEST_F(WorkerE2eTest, ParetoSweepStopsAtTheRungAndResumesThePromotedFromTheirCheckpoint) {
  const int64_t sweep = Submit({{"network", "lenet5"}, {"width", {1}}, {"precision", {"2/2"}},
                                {"scheme", {"wrpn", "pact"}}, {"seed", {0}}},
                               3, {{"gpus_per_node", 0}, {"nodes", 1}}, json::object(),
                               {{"mode", "pareto"}, {"rungs", {1}}, {"margin", 0}});
  ASSERT_NE(StartWorker("solo"), nullptr);
  ASSERT_TRUE(WaitFor([&] { return SweepFinished(sweep); }, 300s))
      << "sweep state " << pb::SweepState_Name(Sweep(sweep).state());
  EXPECT_EQ(Sweep(sweep).state(), pb::SWEEP_SUCCEEDED);
  auto events = store_->Events(sweep, 0, 1000);
  ASSERT_TRUE(events.ok()) << events.status();
  bool decided = false;
  for (const auto& e : *events) decided |= e.message.find("rung 1 (epoch 1) decided") != std::string::npos;
  EXPECT_TRUE(decided);
  auto top1_steps = [&](int64_t trial) {
    pb::GetTrialMetricsRequest m;
    m.set_trial_id(trial);
    m.set_name("top1");
    auto pts = coordinator_->GetTrialMetrics(m);
    EXPECT_TRUE(pts.ok()) << pts.status();
    std::vector<int64_t> steps;
    std::map<int64_t, double> by_step;
    for (const auto& p : pts->points()) steps.push_back(p.step()), by_step[p.step()] = p.value();
    return std::make_pair(steps, by_step);
  };
  std::vector<int64_t> pruned;
  int succeeded = 0;
  for (const auto& t : Trials(sweep)) {
    const pb::GetTrialResponse r = Trial(t.id());
    ASSERT_GE(r.attempts_size(), 1);
    EXPECT_THAT(r.attempts(0).reason(), HasSubstr("reached rung 1 (epoch 1): top-1")) << t.id();
    if (t.state() == pb::TRIAL_PRUNED) {
      pruned.push_back(t.id());
      EXPECT_EQ(t.pruned_epoch(), 1);
      EXPECT_DOUBLE_EQ(t.pruned_top1(), top1_steps(t.id()).second[0]);
      EXPECT_EQ(t.attempts(), 1);
      EXPECT_TRUE(fs::exists(t.checkpoint_path())) << "kept for retry --pruned";
      continue;
    }
    ASSERT_EQ(t.state(), pb::TRIAL_SUCCEEDED) << t.id() << " " << t.error();
    ++succeeded;
    EXPECT_EQ(t.attempts(), 2) << "the run to the rung, then the rest";
    ASSERT_EQ(r.attempts_size(), 2);
    EXPECT_TRUE(r.attempts(0).resume_checkpoint().empty()) << "the run to the rung starts at epoch 0";
    EXPECT_FALSE(r.attempts(1).resume_checkpoint().empty()) << "resumed from the rung's checkpoint";
    EXPECT_EQ(top1_steps(t.id()).first, (std::vector<int64_t>{0, 1, 2})) << "every epoch once";
  }
  EXPECT_GE(succeeded, 1) << "the best cell is always on the front";
  if (!pruned.empty()) {
    pb::RetrySweepRequest retry;
    retry.set_sweep_id(sweep);
    retry.set_pruned(true);
    auto rr = coordinator_->RetrySweep(retry);
    ASSERT_TRUE(rr.ok()) << rr.status();
    EXPECT_EQ(rr->requeued_trials(), static_cast<int64_t>(pruned.size()));
    ASSERT_TRUE(WaitFor([&] { return SweepFinished(sweep); }, 300s));
    for (int64_t id : pruned) {
      const pb::Trial t = Trial(id).trial();
      EXPECT_EQ(t.state(), pb::TRIAL_SUCCEEDED) << t.error();
      EXPECT_EQ(top1_steps(id).first, (std::vector<int64_t>{0, 1, 2})) << "resumed at epoch 1, to the end";
    }
  }
}

TEST_F(WorkerE2eTest, KilledWorkerLosesItsLeaseAndTheTrialResumesFromItsCheckpoint) {
  const int64_t sweep = Submit({{"network", "lenet5"}, {"width", 1}, {"precision", {"32/32"}}}, 8);
  Process* first = StartWorker("first");
  ASSERT_NE(first, nullptr);
  int64_t trial = 0;
  ASSERT_TRUE(WaitFor([&] {
    auto ts = Trials(sweep, pb::TRIAL_RUNNING);
    if (ts.empty() || ts[0].checkpoint_epoch() < 1) return false;
    trial = ts[0].id();
    return true;
  }, 120s)) << "no checkpoint reported";
  stopped_.insert("first");
  ::kill(first->pid(), SIGKILL);  // the worker alone; its trainer gets SIGTERM as it dies
  ASSERT_TRUE(WaitFor([&] { return first->Exited().has_value(); }, 10s));
  EXPECT_EQ(first->Exited()->signal, SIGKILL);

  ASSERT_NE(StartWorker("second"), nullptr);
  ASSERT_TRUE(WaitFor([&] { return SweepFinished(sweep); }, 180s));
  EXPECT_EQ(Sweep(sweep).state(), pb::SWEEP_SUCCEEDED);
  auto t = Trial(trial);
  ASSERT_EQ(t.attempts_size(), 2);
  EXPECT_EQ(t.attempts(0).outcome(), pb::ATTEMPT_EXPIRED);
  EXPECT_THAT(t.attempts(0).reason(), HasSubstr("expired"));
  EXPECT_EQ(t.attempts(1).outcome(), pb::ATTEMPT_SUCCEEDED);
  EXPECT_THAT(t.attempts(1).resume_checkpoint(), HasSubstr("attempt-1/last.pt"));
  // The second attempt's trainer started past epoch 0.
  const std::string log = ReadFile(dir_ / "second" / "attempts" /
                                   ("t" + std::to_string(trial) + "-a2-n0") / "agent.log");
  auto at = log.find("trainer started at epoch ");
  ASSERT_NE(at, std::string::npos) << log;
  EXPECT_GT(std::stoi(log.substr(at + 25)), 0) << log;
  EXPECT_EQ(t.trial().state(), pb::TRIAL_SUCCEEDED);
  EXPECT_TRUE(t.trial().has_final_top1());
}

TEST_F(WorkerE2eTest, TrialRunsThroughACoordinatorRestartWithoutLosingMetrics) {
  const int64_t sweep = Submit({{"network", "lenet5"}, {"width", 1}, {"precision", {"32/32"}}}, 8);
  ASSERT_NE(StartWorker("solo"), nullptr);
  int64_t trial = 0;
  ASSERT_TRUE(WaitFor([&] {
    auto ts = Trials(sweep, pb::TRIAL_RUNNING);
    if (ts.empty() || ts[0].checkpoint_epoch() < 1) return false;
    trial = ts[0].id();
    return true;
  }, 120s));
  // Leases get a full TTL again when the coordinator loads them; 2 s (the fixture's) can be less
  // than gRPC's reconnect after an outage, so the restarted one runs with 10 s.
  RestartCoordinator(1500ms, 10s);
  ASSERT_TRUE(WaitFor([&] { return SweepFinished(sweep); }, 180s));
  EXPECT_EQ(Sweep(sweep).state(), pb::SWEEP_SUCCEEDED);
  auto t = Trial(trial);
  EXPECT_EQ(t.attempts_size(), 1) << "the lease survived the restart";
  pb::GetTrialMetricsRequest m;
  m.set_trial_id(trial);
  m.set_name("top1");
  auto pts = coordinator_->GetTrialMetrics(m);
  ASSERT_TRUE(pts.ok());
  std::set<int64_t> epochs;
  for (const auto& p : pts->points()) epochs.insert(p.step());
  EXPECT_EQ(epochs.size(), 8u) << "points reported during the outage were sent again";
}

TEST_F(WorkerE2eTest, WorkerShutdownInterruptsItsTrialWhichResumesElsewhere) {
  const int64_t sweep = Submit({{"network", "lenet5"}, {"width", 1}, {"precision", {"4/4"}}}, 8);
  Process* first = StartWorker("first");
  ASSERT_NE(first, nullptr);
  int64_t trial = 0;
  ASSERT_TRUE(WaitFor([&] {
    auto ts = Trials(sweep, pb::TRIAL_RUNNING);
    if (ts.empty() || ts[0].checkpoint_epoch() < 1) return false;
    trial = ts[0].id();
    return true;
  }, 120s));
  stopped_.insert("first");
  ::kill(first->pid(), SIGTERM);
  ASSERT_TRUE(WaitFor([&] { return first->Exited().has_value(); }, 30s));
  EXPECT_TRUE(first->Exited()->ok()) << first->Exited()->Describe();
  auto t = Trial(trial);
  ASSERT_EQ(t.attempts_size(), 1);
  EXPECT_EQ(t.attempts(0).outcome(), pb::ATTEMPT_FAILED);
  EXPECT_THAT(t.attempts(0).reason(), HasSubstr("interrupted: worker first shutting down"));
  EXPECT_THAT(t.attempts(0).reason(), HasSubstr("(checkpoint saved)"));
  EXPECT_EQ(t.trial().state(), pb::TRIAL_QUEUED) << "re-queued at once, no lease expiry";

  ASSERT_NE(StartWorker("second"), nullptr);
  ASSERT_TRUE(WaitFor([&] { return SweepFinished(sweep); }, 180s));
  EXPECT_EQ(Sweep(sweep).state(), pb::SWEEP_SUCCEEDED);
  t = Trial(trial);
  ASSERT_EQ(t.attempts_size(), 2);
  EXPECT_EQ(t.attempts(1).outcome(), pb::ATTEMPT_SUCCEEDED);
  EXPECT_FALSE(t.attempts(1).resume_checkpoint().empty());
}

TEST_F(WorkerE2eTest, KilledTrainerFailsTheAttemptWithTheExitReasonAndIsRetried) {
  const int64_t sweep = Submit({{"network", "lenet5"}, {"width", 1}, {"precision", {"2/2"}}}, 4);
  Process* w = StartWorker("solo");
  ASSERT_NE(w, nullptr);
  pid_t trainer = 0;
  ASSERT_TRUE(WaitFor([&] {
    auto ts = Trials(sweep, pb::TRIAL_RUNNING);
    if (ts.empty() || ts[0].checkpoint_epoch() < 1) return false;
    auto kids = ChildrenOf(w->pid());
    if (kids.empty()) return false;
    trainer = kids[0];
    return true;
  }, 120s));
  ASSERT_EQ(::kill(trainer, SIGKILL), 0);
  ASSERT_TRUE(WaitFor([&] { return SweepFinished(sweep); }, 180s));
  EXPECT_EQ(Sweep(sweep).state(), pb::SWEEP_SUCCEEDED);
  auto t = Trial(Trials(sweep)[0].id());
  ASSERT_EQ(t.attempts_size(), 2);
  EXPECT_EQ(t.attempts(0).outcome(), pb::ATTEMPT_FAILED);
  EXPECT_THAT(t.attempts(0).reason(), HasSubstr("killed by signal 9 (SIGKILL)"));
  EXPECT_EQ(t.attempts(1).outcome(), pb::ATTEMPT_SUCCEEDED);
  EXPECT_FALSE(t.attempts(1).resume_checkpoint().empty()) << "the retry resumes too";
}

// The worker is given its trainer as a relative path (trainers run in their attempt folders),
// and the trainer then disappears (a redeploy, a rebuild): the trial goes back uncounted, the
// worker takes nothing until the trainer is back, then runs the trial to the end. max_attempts
// is 1, so a counted failure would have ended it.
TEST_F(WorkerE2eTest, ATrainerThatVanishesSendsTheTrialBackUncountedUntilItIsBack) {
  fs::create_directories(dir_ / "bin");
  const fs::path link = dir_ / "bin" / "wrpn-train";
  fs::create_symlink(trainer_, link);
  worker_cwd_ = dir_.string();
  Process* w = StartWorker("solo", {"--trainer", "bin/wrpn-train"});
  ASSERT_NE(w, nullptr);
  ASSERT_TRUE(WaitFor([&] { return w->StderrTail().find("registered as") != std::string::npos; }, 30s));
  fs::remove(link);
  const int64_t sweep = Submit({{"network", "lenet5"}, {"width", 1}, {"precision", {"2/2"}}}, 2,
                               {{"gpus_per_node", 0}, {"nodes", 1}}, json::object(), nullptr, 1);
  ASSERT_TRUE(WaitFor([&] {
    auto ts = Trials(sweep);
    return !ts.empty() && Trial(ts[0].id()).attempts_size() == 1 &&
           Trial(ts[0].id()).attempts(0).outcome() == pb::ATTEMPT_FAILED;
  }, 60s));
  const int64_t id = Trials(sweep)[0].id();
  pb::GetTrialResponse t = Trial(id);
  EXPECT_EQ(t.attempts(0).failure_kind(), pb::FAILURE_KIND_LAUNCH);
  EXPECT_THAT(t.attempts(0).reason(),
              HasSubstr("worker solo cannot start rank 0: launch: '" + link.string() + "'"));
  EXPECT_EQ(t.trial().state(), pb::TRIAL_QUEUED);
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(Trial(id).attempts_size(), 1) << "the worker took the trial again without a trainer";
  fs::create_symlink(trainer_, link);
  ASSERT_TRUE(WaitFor([&] { return SweepFinished(sweep); }, 120s))
      << "sweep state " << pb::SweepState_Name(Sweep(sweep).state());
  EXPECT_EQ(Sweep(sweep).state(), pb::SWEEP_SUCCEEDED);
  t = Trial(id);
  ASSERT_EQ(t.attempts_size(), 2);
  EXPECT_EQ(t.attempts(1).outcome(), pb::ATTEMPT_SUCCEEDED);
  EXPECT_THAT(w->StderrTail(), HasSubstr("taking no trials"));
  EXPECT_THAT(w->StderrTail(), HasSubstr("trainers start again; taking trials"));
}

TEST_F(WorkerE2eTest, CancelledSweepStopsItsTrainersWithinTheGracePeriod) {
  const int64_t sweep = Submit({{"network", "lenet5"}, {"width", {1, 2}}, {"precision", {"32/32"}}},
                               200);
  Process* w = StartWorker("solo", {"--max-cpu-trials", "2"});
  ASSERT_NE(w, nullptr);
  std::vector<pid_t> trainers;
  ASSERT_TRUE(WaitFor([&] {  // both training: past their first checkpoint
    auto running = Trials(sweep, pb::TRIAL_RUNNING);
    if (running.size() < 2) return false;
    for (const auto& t : running) {
      if (t.checkpoint_epoch() < 1) return false;
    }
    trainers = ChildrenOf(w->pid());
    return trainers.size() == 2;
  }, 120s));
  pb::CancelSweepRequest c;
  c.set_sweep_id(sweep);
  auto resp = coordinator_->CancelSweep(c);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->cancelled_trials(), 2);
  EXPECT_TRUE(Trials(sweep, pb::TRIAL_RUNNING).empty());
  EXPECT_EQ(Sweep(sweep).state(), pb::SWEEP_CANCELLED);
  // Heartbeat (<= 0.7 s) + SIGTERM + checkpoint: well within the 10 s grace period.
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitFor([&] {
    for (pid_t p : trainers) {
      if (Alive(p)) return false;
    }
    return true;
  }, 10s));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  for (const auto& t : Trials(sweep)) {
    EXPECT_EQ(t.state(), pb::TRIAL_CANCELLED);
    const fs::path path =
        dir_ / "solo" / "attempts" / ("t" + std::to_string(t.id()) + "-a1-n0") / "agent.log";
    // The agent writes the attempt's log once it has collected the exit.
    EXPECT_TRUE(WaitFor([&] { return ReadFile(path).find("lease dropped") != std::string::npos; },
                        10s));
    const std::string log = ReadFile(path);
    EXPECT_THAT(log, HasSubstr("SIGTERM sent"));
    EXPECT_THAT(log, HasSubstr("rank 0: exit code 4")) << "checkpointed and stopped, not killed";
  }
  EXPECT_FALSE(w->Exited().has_value()) << "the worker itself keeps running";
}

TEST_F(WorkerE2eTest, TwoWorkersRunATwoNodeGangTrialWithGloo) {
  // The trainer's distributed mode (MASTER_ADDR/RANK/WORLD_SIZE, Gloo on CPU) is announced by
  // its --nproc flag.
  {
    ForkExecLauncher l;
    ProcessSpec help;
    help.argv = {trainer_, "train", "--help"};
    auto p = l.Launch(help);
    ASSERT_TRUE(p.ok());
    std::string text;
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!(*p)->Exited() && std::chrono::steady_clock::now() < deadline) {
      for (auto& line : (*p)->TakeStdoutLines()) text += line + "\n";
      std::this_thread::sleep_for(20ms);
    }
    for (auto& line : (*p)->TakeStdoutLines()) text += line + "\n";
    if (text.find("--nproc") == std::string::npos)
      GTEST_SKIP() << "wrpn-train has no distributed support yet (no --nproc in `wrpn-train "
                      "train --help`); the 2-node gang test needs it";
  }
  // Multi-node trials need gpus_per_node >= 1 (spec rule), so the workers advertise two device
  // slots each and the recipe runs them on the CPU: two Gloo ranks per node, world size 4.
  const int64_t sweep = Submit({{"network", "lenet5"}, {"width", 1}, {"precision", {"32/32"}}}, 2,
                               {{"gpus_per_node", 2}, {"nodes", 2}}, {{"device", "cpu"}});
  // Rank 0's worker announces its TCPStore port with its address (--rendezvous-port).
  const std::string port = std::to_string(FreePort());
  ASSERT_NE(StartWorker("node-a", {"--gpus", "2", "--rendezvous-port", port}), nullptr);
  ASSERT_NE(StartWorker("node-b", {"--gpus", "2", "--rendezvous-port", port}), nullptr);
  ASSERT_TRUE(WaitFor([&] { return SweepFinished(sweep); }, 240s));
  EXPECT_EQ(Sweep(sweep).state(), pb::SWEEP_SUCCEEDED);
  auto t = Trial(Trials(sweep)[0].id());
  ASSERT_GE(t.attempts_size(), 1);
  const auto& a = t.attempts(t.attempts_size() - 1);
  EXPECT_EQ(a.outcome(), pb::ATTEMPT_SUCCEEDED) << a.reason();
  EXPECT_EQ(a.worker_ids_size(), 2);
  EXPECT_TRUE(t.trial().has_final_top1());
  // Both nodes ran their two ranks against rank 0's store on that port.
  for (const char* node : {"node-a", "node-b"}) {
    EXPECT_TRUE(WaitFor([&] {  // node-b's ranks may still be exiting after rank 0 reported
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(dir_ / node / "attempts", ec)) {
        const std::string log = ReadFile(e.path() / "agent.log");
        if (log.find("world size 4 (MASTER_ADDR 127.0.0.1:" + port + ")") != std::string::npos)
          return true;
      }
      return false;
    }, 20s)) << node;
  }
}

// The issue-15 reproduction: a 2-node Gloo gang whose second node is frozen (SIGSTOP) before it
// picks up its part. Rank 0's real trainer gives up after the rendezvous timeout and reports
// kind rendezvous; the coordinator accepts it (it refused it before), stores the kind, shows the
// trainer's reason in `wrpn trial show`, and leases the trial again only after the backoff.
TEST_F(WorkerE2eTest, AGangRankThatNeverArrivesFailsAsRendezvousWithTheTrainersReason) {
  retry_backoff_ = 3s;
  RestartCoordinator(0ms, 30s);  // the frozen node's lease must not expire first
  const std::string port = std::to_string(FreePort());
  ASSERT_NE(StartWorker("node-a", {"--gpus", "1", "--rendezvous-port", port,
                                   "--rendezvous-timeout", "5", "--grace", "3"}), nullptr);
  ASSERT_TRUE(WaitFor([&] { return coordinator_->ListWorkers({})->workers_size() == 1; }, 30s));
  Process* b = StartWorker("node-b", {"--gpus", "1", "--rendezvous-port", port});
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(WaitFor([&] { return coordinator_->ListWorkers({})->workers_size() == 2; }, 30s));
  ASSERT_EQ(::kill(b->pid(), SIGSTOP), 0);
  stopped_.insert("node-b");
  struct Resume {  // never leave a stopped process behind
    pid_t pid;
    ~Resume() { ::kill(pid, SIGCONT); }
  } resume{b->pid()};
  const int64_t sweep = Submit({{"network", "lenet5"}, {"width", 1}, {"precision", {"32/32"}}}, 1,
                               {{"gpus_per_node", 1}, {"nodes", 2}}, {{"device", "cpu"}});
  const int64_t trial = Trials(sweep).at(0).id();
  ASSERT_TRUE(WaitFor([&] { return Trial(trial).attempts_size() >= 2; }, 90s));
  const pb::GetTrialResponse t = Trial(trial);
  const pb::Attempt& first = t.attempts(0);
  EXPECT_EQ(first.outcome(), pb::ATTEMPT_FAILED) << first.reason();
  EXPECT_EQ(first.failure_kind(), pb::FAILURE_KIND_RENDEZVOUS) << first.reason();
  EXPECT_THAT(first.reason(), HasSubstr("rendezvous: "));
  EXPECT_THAT(first.reason(), HasSubstr("rank 1 of world size 2 never arrived"));
  EXPECT_LT(first.ended_ms() - first.started_ms(), 5000 + 5000) << "rendezvous timeout + 5 s";
  EXPECT_EQ(first.worker_ids_size(), 2);
  EXPECT_GE(t.attempts(1).started_ms() - first.ended_ms(), 3000) << "the retry backoff applies";

  // `wrpn trial show` prints the kind and the trainer's reason.
  ProcessSpec show;
  show.argv = {WRPN_CLI_PATH, "--addr", "127.0.0.1:" + std::to_string(server_->grpc_port()),
               "--token", "admin-token-integration-01", "--color", "never", "trial", "show",
               std::to_string(trial)};
  auto cli = launcher_.Launch(show);
  ASSERT_TRUE(cli.ok()) << cli.status();
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!(*cli)->Exited() && std::chrono::steady_clock::now() < deadline) {
    for (auto& line : (*cli)->TakeStdoutLines()) out += line + "\n";
    std::this_thread::sleep_for(20ms);
  }
  for (auto& line : (*cli)->TakeStdoutLines()) out += line + "\n";
  ASSERT_TRUE((*cli)->Exited() && (*cli)->Exited()->ok()) << out << (*cli)->StderrTail();
  EXPECT_THAT(out, HasSubstr("rendezvous: "));
  EXPECT_THAT(out, HasSubstr("rank 1 of world size 2 never arrived"));

  pb::CancelSweepRequest cancel;
  cancel.set_sweep_id(sweep);
  ASSERT_TRUE(coordinator_->CancelSweep(cancel).ok());
}

TEST_F(WorkerE2eTest, AGangNodeWhoseRanksFailEndsTheAttemptOnEveryWorker) {
  // node-b's "trainer" fails at once; node-a's ranks wait in the rendezvous until the
  // coordinator, told by node-b, has node-a stop them. (Rank 0 is whichever worker asked first.)
  const int64_t sweep = Submit({{"network", "lenet5"}, {"width", 1}, {"precision", {"32/32"}}}, 2,
                               {{"gpus_per_node", 2}, {"nodes", 2}}, {{"device", "cpu"}});
  const std::string port = std::to_string(FreePort());
  Process* a = StartWorker("node-a", {"--gpus", "2", "--rendezvous-port", port, "--grace", "3",
                                      "--rendezvous-timeout", "30"});
  ASSERT_NE(a, nullptr);
  ASSERT_NE(StartWorker("node-b", {"--gpus", "2", "--trainer", "/bin/false"}), nullptr);
  ASSERT_TRUE(WaitFor([&] { return SweepFinished(sweep); }, 120s));
  EXPECT_EQ(Sweep(sweep).state(), pb::SWEEP_FAILED);
  auto t = Trial(Trials(sweep)[0].id());
  ASSERT_EQ(t.attempts_size(), 3) << "retried up to max_attempts";
  for (const auto& at : t.attempts()) {
    EXPECT_EQ(at.outcome(), pb::ATTEMPT_FAILED);
    EXPECT_THAT(at.reason(), HasSubstr("exit code 1")) << at.reason();
  }
  // node-a's ranks were stopped every time, and none is left.
  EXPECT_TRUE(WaitFor([&] { return ChildrenOf(a->pid()).empty(); }, 15s));
  EXPECT_TRUE(WaitFor([&] {  // the agent notes it once it collected its ranks' exits
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_ / "node-a" / "attempts", ec)) {
      if (ReadFile(e.path() / "agent.log").find("lease dropped") != std::string::npos) return true;
    }
    return false;
  }, 15s));
}

}  // namespace
}  // namespace wrpn
