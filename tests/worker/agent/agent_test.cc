// The agent loop against a scripted coordinator client and puppet processes, on a fake clock.
#include "worker/agent/agent.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "nlohmann/json.hpp"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_coordinator_client.h"
#include "tests/fakes/fake_process_launcher.h"

namespace wrpn::agent {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

class AgentTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("wrpn-agent-test-" + std::to_string(::getpid()) + "-" +
            testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    options_.name = "box";
    options_.address = "10.0.0.5";
    options_.cpus = 8;
    options_.labels = {{"zone", "a"}};
    options_.trainer = "/opt/wrpn/wrpn-train";
    options_.work_dir = (dir_ / "work").string();
    options_.grace = 5s;
    options_.metrics_interval = 2s;
    options_.acquire_interval = 1s;
  }
  void TearDown() override {
    agent_.reset();
    fs::remove_all(dir_);
  }
  Agent& agent() {
    if (!agent_) agent_ = std::make_unique<Agent>(&client_, &launcher_, &clock_, options_);
    return *agent_;
  }
  static pb::Lease MakeLease(int64_t trial, int attempt = 1, int64_t token = 0) {
    pb::Lease l;
    if (token == 0) token = trial * 10 + attempt;
    l.set_lease_id("l-" + std::to_string(token) + "-0");
    l.set_fencing_token(token);
    l.set_trial_id(trial);
    l.set_sweep_id(1);
    l.set_attempt(attempt);
    l.set_trial_config_json(R"({"network":"lenet5","epochs":3,"device":"cpu"})");
    l.set_lease_ttl_ms(3000);
    return l;
  }
  static std::string Epoch(int e, int n, double top1) {
    return json{{"event", "epoch"}, {"epoch", e}, {"epochs", n}, {"train_loss", 1.0},
                {"train_top1", 50.0}, {"test_loss", 1.1}, {"top1", top1}, {"top5", 90.0},
                {"lr", 0.1}, {"images_per_sec", 1000.0}, {"seconds", 0.5},
                {"data_wait_ms_per_step", 12.5}}
        .dump();
  }
  // Steps the agent, advancing the fake clock by `dt` before each step.
  void Steps(int n, std::chrono::milliseconds dt = 100ms) {
    for (int i = 0; i < n; ++i) {
      clock_.Advance(dt);
      agent().Step();
    }
  }
  json ConfigOf(const FakeProcessState& p) {
    std::ifstream in(p.spec.argv.at(3));
    return json::parse(in);
  }

  fs::path dir_;
  FakeClock clock_;
  FakeCoordinatorClient client_;
  FakeProcessLauncher launcher_;
  AgentOptions options_;
  std::unique_ptr<Agent> agent_;
};

TEST_F(AgentTest, RegistersWithCapabilitiesAndRetriesUntilTheCoordinatorAnswers) {
  pb::Gpu g;
  g.set_index(0);
  g.set_name("H100");
  g.set_memory_bytes(80LL << 30);
  options_.gpus = {g};
  options_.max_cpu_trials = 2;
  client_.register_errors.push_back(absl::UnavailableError("connection refused"));
  agent().Step();
  EXPECT_FALSE(agent().registered());
  Steps(1, 500ms);  // before the retry delay
  EXPECT_EQ(client_.registers.size(), 1u);
  Steps(1, 2s);
  ASSERT_TRUE(agent().registered());
  ASSERT_EQ(client_.registers.size(), 2u);
  const auto& r = client_.registers.back();
  EXPECT_EQ(r.name(), "box");
  EXPECT_EQ(r.address(), "10.0.0.5");
  EXPECT_EQ(r.cpus(), 8);
  EXPECT_EQ(r.max_cpu_trials(), 2);
  ASSERT_EQ(r.gpus_size(), 1);
  EXPECT_EQ(r.gpus(0).name(), "H100");
  EXPECT_EQ(r.labels().at("zone"), "a");
  // It reports its idle GPU and asks for as many leases as its GPU could hold (16 trials of
  // 1/16) plus its CPU slots.
  ASSERT_FALSE(client_.acquires.empty());
  EXPECT_EQ(client_.acquires.back().free_gpus(), 1);
  EXPECT_EQ(client_.acquires.back().max_trials(), 18);
}

TEST_F(AgentTest, RunsALeaseAndReportsMetricsCheckpointsAndTheResult) {
  client_.leases.push_back(MakeLease(7));
  agent().Step();
  ASSERT_EQ(launcher_.count(), 1u);
  auto p = launcher_.at(0);
  EXPECT_EQ(p->spec.argv[0], "/opt/wrpn/wrpn-train");
  EXPECT_EQ(p->spec.argv[1], "train");
  EXPECT_EQ(p->spec.argv[2], "--config");
  EXPECT_EQ(p->spec.env.count("MASTER_ADDR"), 0u) << "a single rank needs no rendezvous";
  EXPECT_EQ(p->spec.env.at("CUDA_VISIBLE_DEVICES"), "");
  json cfg = ConfigOf(*p);
  EXPECT_EQ(cfg["network"], "lenet5");
  EXPECT_EQ(cfg["resume"], false);
  EXPECT_EQ(cfg["threads"], 8);
  EXPECT_EQ(cfg["cpu_cores"], 8) << "the loader's threads come from the trial's share of --cpus";
  const std::string ckpt = cfg["checkpoint_dir"];
  EXPECT_THAT(ckpt, HasSubstr("trial-7/attempt-1"));
  EXPECT_TRUE(fs::is_directory(ckpt));
  EXPECT_TRUE(fs::path(p->spec.cwd).is_absolute());

  // One CPU slot: busy now, so no more asking.
  const size_t asked = client_.acquires.size();
  Steps(20);
  EXPECT_EQ(client_.acquires.size(), asked);

  p->Print(R"({"event":"started","start_epoch":0,"config":{"epochs":3}})");
  p->Print(Epoch(0, 3, 40));
  Steps(1);
  EXPECT_TRUE(client_.metrics.empty()) << "points are batched";
  p->Print(json{{"event", "checkpoint"}, {"epoch", 1}, {"step", 0}, {"path", ckpt + "/last.pt"}}
               .dump());
  Steps(1);
  ASSERT_EQ(client_.metrics.size(), 1u) << "metrics before the checkpoint they belong to";
  EXPECT_EQ(client_.metrics[0].points_size(), 9);
  EXPECT_EQ(client_.metrics[0].points(8).name(), "data_wait_ms_per_step");
  EXPECT_EQ(client_.metrics[0].points(8).value(), 12.5);
  EXPECT_EQ(client_.metrics[0].points(3).name(), "top1");
  EXPECT_EQ(client_.metrics[0].points(3).value(), 40);
  EXPECT_EQ(client_.metrics[0].points(3).step(), 0);
  ASSERT_EQ(client_.checkpoints.size(), 1u);
  EXPECT_EQ(client_.checkpoints[0].epoch(), 1);
  EXPECT_EQ(client_.checkpoints[0].lease().fencing_token(), 71);

  p->Print(Epoch(1, 3, 50));
  Steps(25);  // past the metrics interval
  ASSERT_EQ(client_.metrics.size(), 2u);
  // Heartbeats (every TTL/3 = 1 s) carry the lease and its progress.
  ASSERT_FALSE(client_.heartbeats.empty());
  const auto& hb = client_.heartbeats.back();
  ASSERT_EQ(hb.leases_size(), 1);
  EXPECT_EQ(hb.leases(0).lease().lease_id(), "l-71-0");
  EXPECT_EQ(hb.leases(0).epoch(), 2);
  EXPECT_NEAR(hb.leases(0).fraction(), 2.0 / 3, 1e-9);

  p->Print(Epoch(2, 3, 60));
  p->Print(R"({"event":"finished","top1":61.5,"top5":97,"best_top1":61.5,"images_per_sec":900,)"
           R"("cost_uniform":0.25,"cost_first_last_fp32":0.3})");
  p->PrintErr("epoch 3/3 ...");
  p->ExitWith(0);
  Steps(1);
  ASSERT_EQ(client_.completions.size(), 1u);
  const auto& c = client_.completions[0];
  ASSERT_TRUE(c.has_result());
  EXPECT_EQ(c.result().top1(), 61.5);
  EXPECT_EQ(c.result().top5(), 97);
  EXPECT_EQ(c.result().cost_uniform(), 0.25);
  EXPECT_EQ(client_.metrics.size(), 3u) << "the last epoch's points go before the result";
  EXPECT_EQ(agent().active_runs(), 0u);
  // The log tail is kept in the attempt folder; the succeeded trial's checkpoints are gone.
  std::ifstream log(fs::path(p->spec.cwd) / "rank-0.log");
  std::string text((std::istreambuf_iterator<char>(log)), {});
  EXPECT_EQ(text, "epoch 3/3 ...\n");
  // The trial log went to the coordinator too: the trainer's line as rank 0, the agent's notes
  // as rank -1, before the outcome.
  bool trainer_line = false, agent_line = false;
  for (const auto& req : client_.logs) {
    EXPECT_EQ(req.lease().lease_id(), "l-71-0");
    for (const auto& l : req.lines()) {
      trainer_line |= req.rank() == 0 && l == "epoch 3/3 ...";
      agent_line |= req.rank() == -1 && l.find("finished: top1 61.5") != std::string::npos;
    }
  }
  EXPECT_TRUE(trainer_line);
  EXPECT_TRUE(agent_line);
  EXPECT_FALSE(fs::exists(fs::path(ckpt).parent_path()));
  // Free again: asks for work.
  Steps(15);
  EXPECT_GT(client_.acquires.size(), asked);
}

TEST_F(AgentTest, ResumesFromTheLeasedCheckpoint) {
  const fs::path old = fs::path(options_.work_dir) / "checkpoints" / "trial-3" / "attempt-1";
  fs::create_directories(old);
  std::ofstream(old / "last.pt") << "weights";
  pb::Lease l = MakeLease(3, 2);
  l.set_resume_checkpoint((old / "last.pt").string());
  l.set_resume_epoch(2);
  client_.leases.push_back(l);
  agent().Step();
  ASSERT_EQ(launcher_.count(), 1u);
  json cfg = ConfigOf(*launcher_.at(0));
  EXPECT_EQ(cfg["resume"], true);
  const fs::path copy = fs::path(cfg["checkpoint_dir"].get<std::string>()) / "last.pt";
  std::ifstream in(copy);
  std::string content;
  in >> content;
  EXPECT_EQ(content, "weights");
  EXPECT_THAT(copy.string(), HasSubstr("trial-3/attempt-2"));
}

TEST_F(AgentTest, ACheckpointOutsideTheCheckpointRootIsNotRead) {
  // A lease naming any file (a hostile or confused coordinator) must not get it copied into a
  // trial: only checkpoints under this worker's checkpoint root are used.
  fs::create_directories(dir_ / "elsewhere");
  std::ofstream(dir_ / "elsewhere" / "last.pt") << "weights";
  for (const std::string bad : {(dir_ / "elsewhere" / "last.pt").string(),
                                options_.work_dir + "/checkpoints/../../elsewhere/last.pt"}) {
    pb::Lease l = MakeLease(3, 2);
    l.set_resume_checkpoint(bad);
    client_.leases = {l};
    agent().Step();
    ASSERT_GE(launcher_.count(), 1u);
    auto p = launcher_.at(launcher_.count() - 1);
    EXPECT_EQ(ConfigOf(*p)["resume"], false) << bad;
    p->KilledBy(SIGKILL);
    Steps(1);
    std::ifstream in(fs::path(p->spec.cwd) / "agent.log");
    std::string text((std::istreambuf_iterator<char>(in)), {});
    EXPECT_THAT(text, HasSubstr("is outside this worker's checkpoint root")) << bad;
  }
}

TEST_F(AgentTest, AMissingCheckpointStartsFromScratchAndSaysSo) {
  pb::Lease l = MakeLease(3, 2);
  l.set_resume_checkpoint(options_.work_dir + "/checkpoints/nonexistent/last.pt");
  client_.leases.push_back(l);
  agent().Step();
  ASSERT_EQ(launcher_.count(), 1u);
  auto p = launcher_.at(0);
  EXPECT_EQ(ConfigOf(*p)["resume"], false);
  p->KilledBy(SIGKILL);
  Steps(1);
  std::ifstream in(fs::path(p->spec.cwd) / "agent.log");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_THAT(text, HasSubstr("/nonexistent/last.pt is not readable on this worker"));
}

TEST_F(AgentTest, BadConfigIsReportedWithTheTrainersReason) {
  client_.leases.push_back(MakeLease(4));
  agent().Step();
  auto p = launcher_.at(0);
  p->Print(R"({"event":"failed","kind":"config","reason":"width: 0 is out of range (0, 8]"})");
  p->ExitWith(2);
  Steps(1);
  ASSERT_EQ(client_.completions.size(), 1u);
  const auto& f = client_.completions[0].failure();
  EXPECT_EQ(f.kind(), "config");
  EXPECT_EQ(f.reason(), "trainer rank 0 exit code 2: width: 0 is out of range (0, 8]");
}

TEST_F(AgentTest, ACrashIsAnInternalFailureNamingTheSignal) {
  client_.leases.push_back(MakeLease(4));
  agent().Step();
  auto p = launcher_.at(0);
  p->Print(Epoch(0, 3, 40));
  p->KilledBy(SIGKILL);
  Steps(1);
  ASSERT_EQ(client_.completions.size(), 1u);
  EXPECT_EQ(client_.completions[0].failure().kind(), "internal");
  EXPECT_EQ(client_.completions[0].failure().reason(),
            "trainer rank 0 killed by signal 9 (SIGKILL)");
  ASSERT_EQ(client_.metrics.size(), 1u) << "points before the failure are kept";
}

TEST_F(AgentTest, ExitZeroWithoutAResultIsAFailure) {
  client_.leases.push_back(MakeLease(4));
  agent().Step();
  launcher_.at(0)->ExitWith(0);
  Steps(1);
  ASSERT_EQ(client_.completions.size(), 1u);
  EXPECT_EQ(client_.completions[0].failure().reason(),
            "trainer rank 0 exited 0 without a finished event");
}

// Each kind the trainer can report reaches the coordinator as that kind (enum and name), and the
// fake client, which validates like the server, accepts every one of them.
TEST_F(AgentTest, EveryFailureKindTheTrainerReportsIsSentAsThatKind) {
  const std::pair<FailureKind, int> cases[] = {
      {FailureKind::kConfig, kExitBadConfig}, {FailureKind::kData, kExitDataError},
      {FailureKind::kRendezvous, kExitRendezvous}, {FailureKind::kInternal, kExitInternal},
      {FailureKind::kInterrupted, kExitInterrupted}, {FailureKind::kResources, kExitResources}};
  static_assert(std::size(cases) == kAllFailureKinds.size() - 1);  // launch is the agent's own
  for (const auto& [kind, code] : cases) {
    SCOPED_TRACE(std::string(FailureKindName(kind)));
    const size_t n = launcher_.count();
    client_.leases.push_back(MakeLease(static_cast<int64_t>(20 + n)));
    Steps(1, 2s);
    ASSERT_EQ(launcher_.count(), n + 1);
    launcher_.at(n)->Print(ToJson(FailedEvent{kind, "the trainer's reason"}).dump());
    launcher_.at(n)->ExitWith(code);
    Steps(1);
    ASSERT_EQ(client_.completions.size(), n + 1);
    const pb::TrialFailure& f = client_.completions.back().failure();
    EXPECT_EQ(f.failure_kind(), static_cast<pb::FailureKind>(kind));
    EXPECT_EQ(f.kind(), FailureKindName(kind));
    EXPECT_THAT(f.reason(), HasSubstr("the trainer's reason"));
  }
  EXPECT_THAT(client_.rejected, testing::IsEmpty());
}

// Without a "failed" event the exit code decides the kind: 5 is a rendezvous failure.
TEST_F(AgentTest, TheExitCodeDecidesTheKindWhenTheTrainerSaidNothing) {
  client_.leases.push_back(MakeLease(4));
  agent().Step();
  launcher_.at(0)->Print(R"({"event":"failed","kind":"oom","reason":"not a kind"})");
  launcher_.at(0)->ExitWith(kExitRendezvous);
  Steps(1);
  ASSERT_EQ(client_.completions.size(), 1u);
  EXPECT_EQ(client_.completions[0].failure().failure_kind(), pb::FAILURE_KIND_RENDEZVOUS);
  EXPECT_EQ(client_.completions[0].failure().reason(), "trainer rank 0 exit code 5");
}

// The fake client refuses what the real server refuses (server/validate.cc), so a test cannot
// pass on a request that production would reject.
TEST_F(AgentTest, TheFakeClientRefusesWhatTheServerRefuses) {
  pb::CompleteTrialRequest req;
  req.mutable_lease()->set_lease_id("l-1-0");
  req.mutable_lease()->set_fencing_token(1);
  req.mutable_failure()->set_kind("oom");
  const absl::Status s = client_.CompleteTrial(req);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s, server::ValidateRequest(req));
  EXPECT_TRUE(client_.completions.empty());
  ASSERT_EQ(client_.rejected.size(), 1u);
  EXPECT_THAT(client_.rejected[0], HasSubstr("failure.kind: unknown kind 'oom'"));
  pb::HeartbeatRequest hb;  // no worker_id
  EXPECT_EQ(client_.Heartbeat(hb).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(client_.heartbeats.empty());
}

TEST_F(AgentTest, CancelSendsSigtermThenSigkillAfterTheGracePeriodAndReportsNothing) {
  client_.leases.push_back(MakeLease(5));
  agent().Step();
  auto p = launcher_.at(0);
  pb::WorkerCommand c;
  c.set_kind(pb::WorkerCommand::CANCEL_TRIAL);
  c.mutable_lease()->set_lease_id("l-51-0");
  c.mutable_lease()->set_fencing_token(51);
  c.set_reason("sweep cancelled");
  client_.commands.push_back(c);
  Steps(1, 1s);  // heartbeat due
  EXPECT_THAT(p->Signals(), ElementsAre(SIGTERM));
  Steps(1, 4s);
  EXPECT_THAT(p->Signals(), ElementsAre(SIGTERM)) << "still within the grace period";
  Steps(1, 1s);
  EXPECT_THAT(p->Signals(), ElementsAre(SIGTERM, SIGKILL));
  Steps(1);
  EXPECT_EQ(agent().active_runs(), 0u);
  EXPECT_TRUE(client_.completions.empty()) << "a cancelled lease needs no CompleteTrial";
  Steps(12);
  EXPECT_EQ(client_.heartbeats.back().leases_size(), 0);
}

TEST_F(AgentTest, AStaleCommandForAnotherTokenIsIgnored) {
  client_.leases.push_back(MakeLease(5));
  agent().Step();
  pb::WorkerCommand c;
  c.set_kind(pb::WorkerCommand::FORGET_LEASE);
  c.mutable_lease()->set_lease_id("l-51-0");
  c.mutable_lease()->set_fencing_token(50);
  client_.commands.push_back(c);
  Steps(1, 1s);
  EXPECT_TRUE(launcher_.at(0)->Signals().empty());
}

TEST_F(AgentTest, DrainCommandStopsAcquiringButLetsTrialsFinish) {
  options_.max_cpu_trials = 2;
  client_.leases.push_back(MakeLease(6));
  agent().Step();
  pb::WorkerCommand c;
  c.set_kind(pb::WorkerCommand::DRAIN);
  client_.commands.push_back(c);
  Steps(1, 1s);
  EXPECT_TRUE(agent().draining());
  const size_t asked = client_.acquires.size();
  Steps(10, 1s);
  EXPECT_EQ(client_.acquires.size(), asked);
  EXPECT_TRUE(launcher_.at(0)->Signals().empty());
}

TEST_F(AgentTest, OwnShutdownInterruptsTrainersAndReportsThemInterrupted) {
  launcher_.term_exit = 4;
  launcher_.term_lines = {
      R"({"event":"checkpoint","epoch":1,"step":5,"path":"/ck/last.pt"})",
      R"({"event":"interrupted","epoch":1,"step":5,"checkpointed":true})"};
  client_.leases.push_back(MakeLease(8));
  agent().Step();
  agent().RequestDrain();
  Steps(1);
  EXPECT_THAT(launcher_.at(0)->Signals(), ElementsAre(SIGTERM));
  Steps(1);
  ASSERT_EQ(client_.checkpoints.size(), 1u);
  EXPECT_EQ(client_.checkpoints[0].path(), "/ck/last.pt");
  ASSERT_EQ(client_.completions.size(), 1u);
  EXPECT_EQ(client_.completions[0].failure().kind(), "interrupted");
  EXPECT_EQ(client_.completions[0].failure().reason(),
            "worker box shutting down: interrupted at epoch 1 step 5 (checkpoint saved)");
  EXPECT_EQ(agent().active_runs(), 0u);
  const size_t asked = client_.acquires.size();
  Steps(5, 1s);
  EXPECT_EQ(client_.acquires.size(), asked);
}

TEST_F(AgentTest, HeartbeatIntervalFollowsTheTtlTheCoordinatorAnnounces) {
  agent().Step();  // registered with a 3 s TTL: heartbeat every 1 s
  Steps(10);
  const size_t before = client_.heartbeats.size();
  EXPECT_EQ(before, 1u);
  client_.lease_ttl_ms = 30000;
  Steps(10);  // the next heartbeat learns the 30 s TTL
  const size_t after = client_.heartbeats.size();
  Steps(50);
  EXPECT_EQ(client_.heartbeats.size(), after) << "next one only after 10 s";
  Steps(60);
  EXPECT_EQ(client_.heartbeats.size(), after + 1);
}

TEST_F(AgentTest, ForgottenWorkerRegistersAgain) {
  agent().Step();
  ASSERT_EQ(agent().worker_id(), "w-1");
  client_.heartbeat_errors.push_back(absl::NotFoundError("worker 'w-1' is not registered"));
  Steps(1, 1s);
  EXPECT_FALSE(agent().registered());
  Steps(1);
  EXPECT_EQ(agent().worker_id(), "w-2");
}

TEST_F(AgentTest, UnreachableCoordinatorRetriesTheReportAndKeepsTheLeaseAlive) {
  client_.leases.push_back(MakeLease(9));
  agent().Step();
  auto p = launcher_.at(0);
  p->Print(R"({"event":"finished","top1":50,"top5":90})");
  p->ExitWith(0);
  for (int i = 0; i < 2; ++i)
    client_.complete_errors.push_back(absl::UnavailableError("connection refused"));
  Steps(12);  // includes a heartbeat; one retry a second
  EXPECT_TRUE(client_.completions.empty());
  EXPECT_EQ(client_.complete_errors.size(), 0u);
  Steps(12);
  ASSERT_EQ(client_.completions.size(), 1u);
  EXPECT_TRUE(client_.completions[0].has_result());
  bool heartbeated = false;
  for (const auto& hb : client_.heartbeats) heartbeated |= hb.leases_size() == 1;
  EXPECT_TRUE(heartbeated) << "the lease is renewed while the report is pending";
}

TEST_F(AgentTest, ACoordinatorShuttingDownDoesNotCostTheLease) {
  client_.leases.push_back(MakeLease(34));
  agent().Step();
  auto p = launcher_.at(0);
  client_.metrics_errors.push_back(absl::CancelledError("ReportMetrics: CANCELLED"));
  client_.metrics_errors.push_back(absl::UnavailableError("connection refused"));
  client_.heartbeat_errors.push_back(absl::UnavailableError("connection refused"));
  p->Print(Epoch(0, 3, 40));
  Steps(80);  // flushes every 2 s: two failures, then through
  EXPECT_TRUE(p->Signals().empty());
  EXPECT_EQ(agent().active_runs(), 1u);
  ASSERT_EQ(client_.metrics.size(), 1u) << "sent once the coordinator is back";
  EXPECT_EQ(client_.metrics[0].points(3).value(), 40);
}

TEST_F(AgentTest, ALostLeaseStopsTheTrainerWithoutReporting) {
  client_.leases.push_back(MakeLease(10));
  agent().Step();
  auto p = launcher_.at(0);
  p->on_term_exit = 4;
  client_.metrics_errors.push_back(
      absl::FailedPreconditionError("lease 'l-101-0': fencing token 101 is stale"));
  p->Print(Epoch(0, 3, 40));
  Steps(25);
  EXPECT_THAT(p->Signals(), ElementsAre(SIGTERM));
  EXPECT_EQ(agent().active_runs(), 0u);
  EXPECT_TRUE(client_.completions.empty());
}

TEST_F(AgentTest, GangNodeGetsTheRendezvousEnvironmentAndWaitsForRankZerosReport) {
  options_.cpu_ranks = 2;
  options_.rendezvous_timeout_s = 5;
  pb::Lease l = MakeLease(11);
  l.set_lease_id("l-111-1");
  pb::Rendezvous* rv = l.mutable_rendezvous();
  rv->set_master_addr("10.0.0.1");
  rv->set_master_port(29511);
  rv->set_node_rank(1);
  rv->set_nnodes(2);
  client_.leases.push_back(l);
  agent().Step();
  ASSERT_EQ(launcher_.count(), 2u);
  for (int local = 0; local < 2; ++local) {
    const auto& env = launcher_.at(local)->spec.env;
    EXPECT_EQ(env.at("MASTER_ADDR"), "10.0.0.1");
    EXPECT_EQ(env.at("MASTER_PORT"), "29511");
    EXPECT_EQ(env.at("WORLD_SIZE"), "4");
    EXPECT_EQ(env.at("RANK"), std::to_string(2 + local));
    EXPECT_EQ(env.at("LOCAL_RANK"), std::to_string(local));
    EXPECT_EQ(env.at("LOCAL_WORLD_SIZE"), "2");
    EXPECT_THAT(launcher_.at(local)->spec.argv,
                ::testing::Contains("--rendezvous-timeout"));
    EXPECT_EQ(launcher_.at(local)->spec.argv.back(), "5");
  }
  EXPECT_EQ(ConfigOf(*launcher_.at(0))["threads"], 4);
  EXPECT_EQ(ConfigOf(*launcher_.at(0))["cpu_cores"], 4);
  EXPECT_THAT(ConfigOf(*launcher_.at(0))["checkpoint_dir"].get<std::string>(),
              HasSubstr("attempt-1-node-1"));
  launcher_.at(0)->ExitWith(0);
  launcher_.at(1)->ExitWith(0);
  Steps(15);
  EXPECT_TRUE(client_.completions.empty()) << "rank 0's worker reports the result";
  ASSERT_EQ(client_.heartbeats.back().leases_size(), 1) << "lease kept until released";
  pb::WorkerCommand c;
  c.set_kind(pb::WorkerCommand::FORGET_LEASE);
  *c.mutable_lease() = client_.heartbeats.back().leases(0).lease();
  client_.commands.push_back(c);
  Steps(25);
  EXPECT_EQ(agent().active_runs(), 0u);
  EXPECT_EQ(client_.heartbeats.back().leases_size(), 0);
}

TEST_F(AgentTest, OneRankFailingStopsItsPeersAndTheReasonNamesIt) {
  options_.cpu_ranks = 2;
  client_.leases.push_back(MakeLease(12));
  agent().Step();
  ASSERT_EQ(launcher_.count(), 2u);
  EXPECT_EQ(launcher_.at(0)->spec.env.at("MASTER_ADDR"), "127.0.0.1");
  EXPECT_NE(launcher_.at(0)->spec.env.at("MASTER_PORT"), "0");
  EXPECT_EQ(launcher_.at(1)->spec.env.at("RANK"), "1");
  launcher_.at(0)->on_term_exit = 1;
  launcher_.at(1)->Print(
      R"({"event":"failed","kind":"internal","reason":"rendezvous: ranks 0 did not join"})");
  launcher_.at(1)->KilledBy(SIGSEGV);
  Steps(1);
  EXPECT_THAT(launcher_.at(0)->Signals(), ElementsAre(SIGTERM));
  Steps(1);
  ASSERT_EQ(client_.completions.size(), 1u);
  EXPECT_EQ(client_.completions[0].failure().kind(), "internal");
  EXPECT_THAT(client_.completions[0].failure().reason(),
              HasSubstr("killed by signal 11 (SIGSEGV)"));
  EXPECT_THAT(client_.completions[0].failure().reason(),
              HasSubstr("rendezvous: ranks 0 did not join"));
}

TEST_F(AgentTest, GpuTrialGetsItsOwnDevices) {
  for (int i = 0; i < 4; ++i) {
    pb::Gpu g;
    g.set_index(i);
    options_.gpus.push_back(g);
  }
  pb::Lease a = MakeLease(13), b = MakeLease(14);
  a.set_gpus_per_node(2);
  b.set_gpus_per_node(2);
  client_.leases = {a, b};
  agent().Step();
  ASSERT_EQ(launcher_.count(), 4u);
  EXPECT_EQ(launcher_.at(0)->spec.env.at("CUDA_VISIBLE_DEVICES"), "0,1");
  EXPECT_EQ(launcher_.at(2)->spec.env.at("CUDA_VISIBLE_DEVICES"), "2,3");
  EXPECT_EQ(launcher_.at(1)->spec.env.at("LOCAL_RANK"), "1");
  EXPECT_EQ(launcher_.at(1)->spec.env.at("WORLD_SIZE"), "2");
}

TEST_F(AgentTest, ALaunchErrorIsReportedAsTheWorkersFault) {
  launcher_.fail_next = absl::InternalError("fork: Resource temporarily unavailable");
  client_.leases.push_back(MakeLease(15));
  agent().Step();
  Steps(1);
  ASSERT_EQ(client_.completions.size(), 1u);
  EXPECT_EQ(client_.completions[0].failure().kind(), "launch");
  EXPECT_EQ(client_.completions[0].failure().failure_kind(), pb::FAILURE_KIND_LAUNCH);
  EXPECT_THAT(client_.completions[0].failure().reason(),
              HasSubstr("worker box cannot start rank 0: fork: Resource temporarily unavailable"));
}

TEST_F(AgentTest, AMissingTrainerPausesTheWorkerUntilItCanBeExecutedAgain) {
  options_.max_cpu_trials = 2;
  launcher_.SetMissing("/opt/wrpn/wrpn-train", true);
  client_.leases = {MakeLease(15), MakeLease(16)};
  agent().Step();
  Steps(1);
  ASSERT_EQ(client_.completions.size(), 2u) << "both leases of the one acquire go back";
  for (const auto& c : client_.completions) {
    EXPECT_EQ(c.failure().failure_kind(), pb::FAILURE_KIND_LAUNCH);
    EXPECT_THAT(c.failure().reason(), HasSubstr("'/opt/wrpn/wrpn-train': No such file"));
  }
  const size_t acquires = client_.acquires.size();
  client_.leases = {MakeLease(17)};
  Steps(60, 1s);  // the 10 s pause, then the trainer is still missing
  EXPECT_EQ(client_.acquires.size(), acquires) << "it takes no trial it cannot start";
  EXPECT_EQ(launcher_.count(), 0u);
  launcher_.SetMissing("/opt/wrpn/wrpn-train", false);
  Steps(12, 1s);
  EXPECT_GT(client_.acquires.size(), acquires);
  ASSERT_EQ(launcher_.count(), 1u);
  EXPECT_EQ(launcher_.at(0)->spec.argv[0], "/opt/wrpn/wrpn-train");
  EXPECT_EQ(client_.completions.size(), 2u);
}

TEST_F(AgentTest, RetentionRemovesOldAttemptFoldersOnly) {
  const fs::path attempts = fs::path(options_.work_dir) / "attempts";
  fs::create_directories(attempts / "t1-a1-n0");
  std::ofstream(attempts / "t1-a1-n0" / "trial.json") << "{}";
  fs::create_directories(attempts / "t2-a1-n0");
  const auto old = fs::file_time_type::clock::now() - std::chrono::hours(24 * 8);
  fs::last_write_time(attempts / "t1-a1-n0" / "trial.json", old);
  fs::last_write_time(attempts / "t1-a1-n0", old);
  EXPECT_EQ(agent().CleanUp(), 1);
  EXPECT_FALSE(fs::exists(attempts / "t1-a1-n0"));
  EXPECT_TRUE(fs::exists(attempts / "t2-a1-n0"));
}

TEST_F(AgentTest, RendezvousPortTravelsInTheRegisteredAddress) {
  options_.rendezvous_port = 29500;
  agent().Step();
  ASSERT_EQ(client_.registers.size(), 1u);
  EXPECT_EQ(client_.registers[0].address(), "10.0.0.5:29500");
  // A peer receives it as master_addr and splits it.
  options_.cpu_ranks = 1;
  pb::Lease l = MakeLease(20);
  l.mutable_rendezvous()->set_master_addr("10.0.0.5:29500");
  l.mutable_rendezvous()->set_master_port(29777);
  l.mutable_rendezvous()->set_node_rank(1);
  l.mutable_rendezvous()->set_nnodes(2);
  client_.leases.push_back(l);
  Steps(12, 100ms);
  ASSERT_EQ(launcher_.count(), 1u);
  EXPECT_EQ(launcher_.at(0)->spec.env.at("MASTER_ADDR"), "10.0.0.5");
  EXPECT_EQ(launcher_.at(0)->spec.env.at("MASTER_PORT"), "29500");
}

TEST(SplitHostPortTest, HandlesNamesIpv4AndIpv6) {
  std::string host;
  int port = 7;
  SplitHostPort("worker-a", &host, &port);
  EXPECT_EQ(host, "worker-a");
  EXPECT_EQ(port, 7);
  SplitHostPort("worker-a:29500", &host, &port);
  EXPECT_EQ(host, "worker-a");
  EXPECT_EQ(port, 29500);
  port = 7;
  SplitHostPort("fe80::1", &host, &port);
  EXPECT_EQ(host, "fe80::1");
  EXPECT_EQ(port, 7);
  SplitHostPort("[fe80::1]:29501", &host, &port);
  EXPECT_EQ(host, "fe80::1");
  EXPECT_EQ(port, 29501);
  port = 7;
  SplitHostPort("host:notaport", &host, &port);
  EXPECT_EQ(host, "host:notaport");
  EXPECT_EQ(port, 7);
}

TEST_F(AgentTest, DataDirFillsEmptyAndRelativeDatasetPaths) {
  options_.data_dir = "/shared/datasets";
  options_.allowed_data_roots = {"/data"};
  pb::Lease a = MakeLease(21), b = MakeLease(22), c = MakeLease(23);
  a.set_trial_config_json(R"({"network":"lenet5","dataset":{"kind":"fashion_mnist"}})");
  b.set_trial_config_json(R"({"network":"resnet20","dataset":{"kind":"cifar10","path":"c10"}})");
  c.set_trial_config_json(R"({"network":"lenet5","dataset":{"kind":"mnist","path":"/data/m"}})");
  options_.max_cpu_trials = 3;
  client_.leases = {a, b, c};
  agent().Step();
  ASSERT_EQ(launcher_.count(), 3u);
  EXPECT_EQ(ConfigOf(*launcher_.at(0))["dataset"]["path"], "/shared/datasets/fashion-mnist");
  EXPECT_EQ(ConfigOf(*launcher_.at(1))["dataset"]["path"], "/shared/datasets/c10");
  EXPECT_EQ(ConfigOf(*launcher_.at(2))["dataset"]["path"], "/data/m");
}

TEST_F(AgentTest, DatasetPathsOutsideTheAllowedRootsFailAsConfigErrors) {
  options_.data_dir = "/shared/datasets";
  options_.allowed_data_roots = {"/data/imagenet"};
  options_.max_cpu_trials = 8;
  const std::vector<std::pair<std::string, bool>> paths = {
      {"c10", true},                        // /shared/datasets/c10
      {"/shared/datasets/x/../y", true},    // stays inside
      {"/data/imagenet", true},             // an allowed root itself
      {"/data/imagenet/train", true},
      {"../../etc", false},                 // climbs out of --data-dir
      {"/etc/passwd", false},               // absolute, outside
      {"/data/imagenet-other", false},      // a sibling that shares a prefix
      {"/data/imagenet/../../etc", false}};
  for (size_t i = 0; i < paths.size(); ++i) {
    pb::Lease l = MakeLease(40 + static_cast<int64_t>(i));
    nlohmann::json cfg = {{"network", "resnet20"},
                          {"dataset", {{"kind", "cifar10"}, {"path", paths[i].first}}}};
    l.set_trial_config_json(cfg.dump());
    client_.leases.push_back(l);
  }
  agent().Step();
  size_t allowed = 0;
  for (const auto& [path, ok] : paths) allowed += ok;
  EXPECT_EQ(launcher_.count(), allowed);
  Steps(1);
  ASSERT_EQ(client_.completions.size(), paths.size() - allowed);
  for (const auto& c : client_.completions) {
    EXPECT_EQ(c.failure().kind(), "config");
    EXPECT_THAT(c.failure().reason(), HasSubstr("dataset.path: '"));
    EXPECT_THAT(c.failure().reason(), HasSubstr("is outside the allowed folders"));
  }
}

TEST_F(AgentTest, DatasetPathsAreConfinedByDefault) {
  // SetUp leaves both at their defaults.
  EXPECT_EQ(options_.data_dir, "/usr/share/datasets");
  EXPECT_TRUE(options_.allowed_data_roots.empty());
  options_.max_cpu_trials = 8;
  const std::vector<std::pair<std::string, bool>> paths = {
      {"", true},                                      // <data_dir>/cifar10
      {"cifar-10-batches-bin", true},                  // relative: under the data dir
      {"/usr/share/datasets/fashion-mnist", true},
      {"/etc", false},
      {"/home/someone/.ssh", false},
      {"/usr/share/datasets/../../../etc", false}};
  for (size_t i = 0; i < paths.size(); ++i) {
    pb::Lease l = MakeLease(60 + static_cast<int64_t>(i));
    nlohmann::json d = {{"kind", "cifar10"}};
    if (!paths[i].first.empty()) d["path"] = paths[i].first;
    l.set_trial_config_json(nlohmann::json({{"network", "resnet20"}, {"dataset", d}}).dump());
    client_.leases.push_back(l);
  }
  agent().Step();
  ASSERT_EQ(launcher_.count(), 3u);
  EXPECT_EQ(ConfigOf(*launcher_.at(0))["dataset"]["path"], "/usr/share/datasets/cifar10");
  EXPECT_EQ(ConfigOf(*launcher_.at(1))["dataset"]["path"],
            "/usr/share/datasets/cifar-10-batches-bin");
  Steps(1);
  ASSERT_EQ(client_.completions.size(), 3u);
  for (const auto& c : client_.completions) {
    EXPECT_EQ(c.failure().kind(), "config");
    EXPECT_THAT(c.failure().reason(), HasSubstr("(/usr/share/datasets)"));
  }
}

TEST_F(AgentTest, NoDataFoldersRefuseEveryDatasetPath) {
  options_.data_dir = "";
  options_.max_cpu_trials = 8;
  for (int64_t i = 0; i < 2; ++i) {
    pb::Lease l = MakeLease(70 + i);
    l.set_trial_config_json(
        R"({"network":"lenet5","dataset":{"kind":"mnist","path":")" +
        std::string(i == 0 ? "/srv/mnist" : "mnist") + R"("}})");
    client_.leases.push_back(l);
  }
  pb::Lease synthetic = MakeLease(72);  // reads no files: never confined
  synthetic.set_trial_config_json(R"({"network":"lenet5","dataset":{"kind":"synthetic","path":"/x"}})");
  client_.leases.push_back(synthetic);
  agent().Step();
  EXPECT_EQ(launcher_.count(), 1u);
  Steps(1);
  ASSERT_EQ(client_.completions.size(), 2u);
  for (const auto& c : client_.completions)
    EXPECT_THAT(c.failure().reason(), HasSubstr("this worker allows none"));
}

TEST_F(AgentTest, AnAllowedRootOfSlashTurnsConfinementOff) {
  options_.allowed_data_roots = {"/"};
  pb::Lease any = MakeLease(73);
  any.set_trial_config_json(R"({"network":"lenet5","dataset":{"kind":"mnist","path":"/srv/mnist"}})");
  client_.leases.push_back(any);
  agent().Step();
  ASSERT_EQ(launcher_.count(), 1u);
  EXPECT_EQ(ConfigOf(*launcher_.at(0))["dataset"]["path"], "/srv/mnist");
}

TEST(CheckPathUnderRootsTest, LexicalContainment) {
  EXPECT_TRUE(CheckPathUnderRoots("f", "/a/b/c", {"/a/b"}).ok());
  EXPECT_TRUE(CheckPathUnderRoots("f", "/a/b", {"/a/b/"}).ok());
  EXPECT_TRUE(CheckPathUnderRoots("f", "/x/../a/b/c", {"/z", "/a"}).ok());
  EXPECT_FALSE(CheckPathUnderRoots("f", "/a/bc", {"/a/b"}).ok());
  EXPECT_FALSE(CheckPathUnderRoots("f", "/a/b/../c", {"/a/b"}).ok());
  EXPECT_FALSE(CheckPathUnderRoots("f", "/", {"/a"}).ok());
  const absl::Status st = CheckPathUnderRoots("dataset.path", "/etc", {"/data"});
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("dataset.path: '/etc' is outside the allowed folders (/data)"));
}

TEST_F(AgentTest, AnOldCoordinatorWithoutReportLogsStillGetsTheOutcome) {
  for (int i = 0; i < 10; ++i)
    client_.logs_errors.push_back(absl::UnimplementedError("ReportLogs: unknown method"));
  client_.leases.push_back(MakeLease(30));
  agent().Step();
  auto p = launcher_.at(0);
  p->PrintErr("hello");
  p->Print(R"({"event":"finished","top1":50,"top5":90})");
  p->ExitWith(0);
  Steps(3);
  ASSERT_EQ(client_.completions.size(), 1u);
  EXPECT_TRUE(client_.logs.empty());
  EXPECT_EQ(client_.logs_errors.size(), 9u) << "asked once, then not again";
}

TEST_F(AgentTest, GpusOfAnAttemptThatCouldNotStartAreFreedAgain) {
  pb::Gpu g;
  g.set_index(0);
  options_.gpus = {g};
  options_.max_cpu_trials = 0;
  pb::Lease l = MakeLease(31);
  l.set_gpus_per_node(1);
  l.set_trial_config_json("not json");
  client_.leases.push_back(l);
  Steps(2);
  ASSERT_EQ(client_.completions.size(), 1u);
  EXPECT_EQ(client_.completions[0].failure().kind(), "config");
  Steps(15);
  EXPECT_EQ(client_.acquires.back().free_gpus(), 1);
}

TEST_F(AgentTest, ACancelledTrialsLastPointsAreNotSent) {
  client_.leases.push_back(MakeLease(32));
  agent().Step();
  auto p = launcher_.at(0);
  p->on_term_exit = 4;
  p->on_term_lines = {Epoch(0, 3, 40)};
  pb::WorkerCommand c;
  c.set_kind(pb::WorkerCommand::CANCEL_TRIAL);
  c.mutable_lease()->set_lease_id("l-321-0");
  c.mutable_lease()->set_fencing_token(321);
  client_.commands.push_back(c);
  Steps(15);
  EXPECT_EQ(agent().active_runs(), 0u);
  EXPECT_TRUE(client_.metrics.empty());
  EXPECT_TRUE(client_.completions.empty());
}

TEST_F(AgentTest, RankZeroFailsFastWhenTheRendezvousPortIsTaken) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  pb::Lease l = MakeLease(33);
  l.mutable_rendezvous()->set_master_addr("127.0.0.1");
  l.mutable_rendezvous()->set_master_port(port);
  l.mutable_rendezvous()->set_node_rank(0);
  l.mutable_rendezvous()->set_nnodes(2);
  client_.leases.push_back(l);
  Steps(2);
  ::close(fd);
  EXPECT_EQ(launcher_.count(), 0u);
  ASSERT_EQ(client_.completions.size(), 1u);
  EXPECT_EQ(client_.completions[0].failure().kind(), "internal");
  EXPECT_THAT(client_.completions[0].failure().reason(),
              HasSubstr("rendezvous port " + std::to_string(port) + " is in use on worker box"));
}

TEST_F(AgentTest, RankZeroPicksAFreePortAndReportsItBeforeStartingItsRanks) {
  pb::Lease l = MakeLease(34);
  l.set_lease_id("l-134-0");
  l.mutable_rendezvous()->set_master_addr("10.0.0.5");
  l.mutable_rendezvous()->set_master_port(0);  // the coordinator leaves the choice to rank 0
  l.mutable_rendezvous()->set_node_rank(0);
  l.mutable_rendezvous()->set_nnodes(2);
  client_.leases.push_back(l);
  agent().Step();
  ASSERT_EQ(launcher_.count(), 1u);
  const std::string port = launcher_.at(0)->spec.env.at("MASTER_PORT");
  EXPECT_NE(port, "0");
  ASSERT_EQ(client_.rendezvous.size(), 1u);
  EXPECT_EQ(std::to_string(client_.rendezvous[0].master_port()), port);
  EXPECT_EQ(client_.rendezvous[0].lease().lease_id(), "l-134-0");
  EXPECT_EQ(client_.rendezvous[0].lease().fencing_token(), l.fencing_token());
}

TEST_F(AgentTest, RankZeroThatCannotReportItsPortStartsNothingAndFailsTheAttempt) {
  client_.rendezvous_errors.push_back(absl::UnavailableError("coordinator down"));
  pb::Lease l = MakeLease(35);
  l.mutable_rendezvous()->set_master_addr("10.0.0.5");
  l.mutable_rendezvous()->set_node_rank(0);
  l.mutable_rendezvous()->set_nnodes(2);
  client_.leases.push_back(l);
  Steps(2);
  EXPECT_EQ(launcher_.count(), 0u);
  ASSERT_EQ(client_.completions.size(), 1u);
  EXPECT_EQ(client_.completions[0].failure().kind(), "internal");
  EXPECT_THAT(client_.completions[0].failure().reason(),
              HasSubstr("cannot report rendezvous port"));
}

TEST_F(AgentTest, AFollowerWithoutARendezvousPortStartsNothing) {
  pb::Lease l = MakeLease(36);
  l.mutable_rendezvous()->set_master_addr("10.0.0.1");
  l.mutable_rendezvous()->set_node_rank(1);
  l.mutable_rendezvous()->set_nnodes(2);
  client_.leases.push_back(l);
  Steps(2);
  EXPECT_EQ(launcher_.count(), 0u);
  EXPECT_TRUE(client_.rendezvous.empty()) << "only rank 0 reports a port";
  ASSERT_EQ(client_.completions.size(), 1u);
  EXPECT_THAT(client_.completions[0].failure().reason(), HasSubstr("no rendezvous port"));
}

// A trainer that prints nothing for the stall timeout is taken as hung: SIGTERM, SIGKILL after the
// grace period (a hung process may ignore SIGTERM), and an internal (retried) failure that says so.
TEST_F(AgentTest, ATrainerSilentForTheStallTimeoutIsKilledAndTheAttemptFails) {
  options_.stall_timeout = 3s;
  options_.grace = 1s;
  client_.leases.push_back(MakeLease(11));
  agent().Step();
  auto p = launcher_.at(0);
  Steps(2, 1s);
  p->Print(Epoch(0, 3, 40));  // output resets the clock
  Steps(2, 1s);
  p->PrintErr("still alive");
  Steps(2, 1s);
  EXPECT_TRUE(p->Signals().empty()) << "never silent for 3 s yet";
  Steps(2, 1s);
  EXPECT_THAT(p->Signals(), ElementsAre(SIGTERM));
  Steps(2, 1s);
  EXPECT_THAT(p->Signals(), ElementsAre(SIGTERM, SIGKILL));
  Steps(1);
  ASSERT_EQ(client_.completions.size(), 1u);
  EXPECT_EQ(client_.completions[0].failure().kind(), "internal");
  EXPECT_THAT(client_.completions[0].failure().reason(),
              HasSubstr("no output from the trainer for 3 s (stall timeout)"));
  EXPECT_THAT(client_.completions[0].failure().reason(), HasSubstr("SIGKILL"));
}

TEST_F(AgentTest, NoStallTimeoutByDefault) {
  client_.leases.push_back(MakeLease(12));
  agent().Step();
  Steps(60, 1s);
  EXPECT_TRUE(launcher_.at(0)->Signals().empty());
  EXPECT_TRUE(client_.completions.empty());
}

TEST_F(AgentTest, AWholeGangLeaseStartsOneSlurmStepOverItsNodes) {
  options_.cpu_ranks = 2;
  pb::Lease l = MakeLease(35);
  l.mutable_rendezvous()->set_master_addr("10.0.0.5");
  l.mutable_rendezvous()->set_node_rank(0);
  l.mutable_rendezvous()->set_nnodes(3);
  l.mutable_rendezvous()->set_single_step(true);
  client_.leases.push_back(l);
  agent().Step();
  ASSERT_EQ(launcher_.count(), 1u) << "one srun for every node's ranks";
  const ProcessSpec& spec = launcher_.at(0)->spec;
  ASSERT_TRUE(spec.slurm_step.has_value());
  EXPECT_EQ(spec.slurm_step->nodes, 3);
  EXPECT_EQ(spec.slurm_step->tasks_per_node, 2);
  EXPECT_EQ(spec.slurm_step->name, "wrpn-t35-a1");
  ASSERT_EQ(client_.rendezvous.size(), 1u);
  EXPECT_EQ(spec.env.at("MASTER_PORT"), std::to_string(client_.rendezvous[0].master_port()));
  for (const char* v : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR"})
    EXPECT_EQ(spec.env.count(v), 0u) << v << " comes from Slurm in each task";
  // Its events and exit are the attempt's, as from rank 0.
  launcher_.at(0)->Print(Epoch(1, 3, 40.0));
  launcher_.at(0)->Print(R"({"event":"finished","top1":41.0,"top5":90.0,"epochs":3})");
  launcher_.at(0)->ExitWith(0);
  Steps(5);
  ASSERT_EQ(client_.completions.size(), 1u);
  EXPECT_TRUE(client_.completions[0].has_result());
}

// Fractional GPUs (issue #19), fake GPU inventory: four 0.25 trials share GPU slot 0, each told
// its device, share and memory cap; a fifth that would overfill it is refused like a real GPU
// would refuse it; threads come from the trial's share of the cores.
TEST_F(AgentTest, QuarterGpuTrialsShareOneGpuWithTheirShareInTheEnvironment) {
  for (int i = 0; i < 2; ++i) {
    pb::Gpu g;
    g.set_index(4 + i);  // CUDA indices need not match the slots
    options_.gpus.push_back(g);
  }
  options_.max_cpu_trials = 0;
  for (int t = 40; t < 45; ++t) {
    pb::Lease l = MakeLease(t);
    l.set_gpu_share(0.25);
    l.set_gpu_memory_bytes(2LL << 30);
    l.add_gpu_slots(1);
    l.set_trial_config_json(R"({"network":"lenet5","epochs":3,"device":"cuda"})");
    client_.leases.push_back(l);
  }
  agent().Step();
  ASSERT_EQ(launcher_.count(), 4u) << "the fifth lease would put 1.25 on GPU slot 1";
  for (size_t i = 0; i < 4; ++i) {
    const auto& env = launcher_.at(i)->spec.env;
    EXPECT_EQ(env.at("CUDA_VISIBLE_DEVICES"), "5");
    EXPECT_EQ(env.at("WRPN_GPU_SHARE"), "0.25");
    EXPECT_EQ(env.at("WRPN_GPU_MEMORY_BYTES"), std::to_string(2LL << 30));
    EXPECT_EQ(env.count("CUDA_MPS_PIPE_DIRECTORY"), 0u) << "no MPS unless --mps";
    json cfg = ConfigOf(*launcher_.at(i));
    EXPECT_EQ(cfg["device"], "cuda");
    EXPECT_EQ(cfg["threads"], 1) << "8 cores x 0.25 of one of 2 GPUs";
    EXPECT_EQ(cfg["cpu_cores"], 1);
  }
  Steps(1);
  ASSERT_EQ(client_.completions.size(), 1u);
  EXPECT_EQ(client_.completions[0].lease().lease_id(), MakeLease(44).lease_id());
  EXPECT_THAT(client_.completions[0].failure().reason(),
              HasSubstr("GPU slot 1 has 0 of its share free; the trial needs 0.25"));
  // GPU slot 0 is idle, slot 1 full: one idle GPU, 16 sixteenths wanted.
  Steps(15);
  EXPECT_EQ(client_.acquires.back().free_gpus(), 1);
  EXPECT_EQ(client_.acquires.back().max_trials(), 16);
  launcher_.at(0)->Print(R"({"event":"finished","top1":70})");
  launcher_.at(0)->ExitWith(0);
  Steps(15);
  EXPECT_EQ(client_.acquires.back().max_trials(), 20) << "slot 1 has 0.25 free again: 4 more";
}

TEST_F(AgentTest, AnOlderCoordinatorsFractionGoesToTheFullestGpuItFits) {
  for (int i = 0; i < 2; ++i) {
    pb::Gpu g;
    g.set_index(i);
    options_.gpus.push_back(g);
  }
  pb::Lease half = MakeLease(50), quarter = MakeLease(51), whole = MakeLease(52);
  half.set_gpu_share(0.5);
  quarter.set_gpu_share(0.25);
  whole.set_gpus_per_node(1);
  client_.leases = {half, quarter, whole};
  agent().Step();
  ASSERT_EQ(launcher_.count(), 3u);
  EXPECT_EQ(launcher_.at(0)->spec.env.at("CUDA_VISIBLE_DEVICES"), "0");
  EXPECT_EQ(launcher_.at(1)->spec.env.at("CUDA_VISIBLE_DEVICES"), "0") << "packed with the half";
  EXPECT_EQ(launcher_.at(2)->spec.env.at("CUDA_VISIBLE_DEVICES"), "1");
  EXPECT_EQ(launcher_.at(2)->spec.env.at("WRPN_GPU_SHARE"), "1");
  EXPECT_EQ(launcher_.at(2)->spec.env.count("WRPN_GPU_MEMORY_BYTES"), 0u);
}

}  // namespace
}  // namespace wrpn::agent
