#include "tests/chaos/chaos_harness.h"

#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>

namespace wrpn::chaos {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* kAdminToken = "admin-token-chaos-000000001";
constexpr const char* kWorkerToken = "worker-token-chaos-00000001";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<pid_t> ChildrenOf(pid_t parent) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string stat = ReadFile((e.path() / "stat").string());
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

bool Alive(pid_t pid) {
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return false;
  auto close = stat.rfind(')');
  return close != std::string::npos && stat.size() > close + 2 && stat[close + 2] != 'Z';
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  socklen_t len = sizeof(addr);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds limit,
               std::chrono::milliseconds every) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(every);
  }
  return done();
}

int Shell(const std::string& cmd, std::string* out) {
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
  const int st = ::pclose(p);
  if (out) *out = text;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

namespace {

// Runs `sql` and returns each row's columns as text.
std::vector<std::vector<std::string>> Query(sqlite3* db, const std::string& sql,
                                            std::string* error) {
  std::vector<std::vector<std::string>> rows;
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
    *error = sqlite3_errmsg(db);
    return rows;
  }
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    std::vector<std::string> row;
    for (int c = 0; c < sqlite3_column_count(s); ++c) {
      const unsigned char* t = sqlite3_column_text(s, c);
      row.push_back(t ? reinterpret_cast<const char*>(t) : "NULL");
    }
    rows.push_back(std::move(row));
  }
  if (rc != SQLITE_DONE) *error = sqlite3_errmsg(db);
  sqlite3_finalize(s);
  return rows;
}

}  // namespace

DbCheck CheckDatabase(const std::string& db_path) {
  DbCheck out;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    out.integrity = std::string("cannot open: ") + (db ? sqlite3_errmsg(db) : "?");
    sqlite3_close(db);
    return out;
  }
  sqlite3_busy_timeout(db, 5000);
  std::string err;
  auto rows = Query(db, "PRAGMA integrity_check", &err);
  out.integrity = !err.empty() ? "error: " + err : rows.empty() ? "no answer" : rows[0][0];
  auto count = [&](const std::string& sql) -> int64_t {
    auto r = Query(db, sql, &err);
    return r.empty() ? -1 : std::stoll(r[0][0]);
  };
  out.trials = count("SELECT COUNT(*) FROM trials");
  out.terminal_trials = count("SELECT COUNT(*) FROM trials WHERE state IN (3,4,5,6)");
  out.running_attempts = count("SELECT COUNT(*) FROM attempts WHERE outcome=1");
  out.metric_rows = count("SELECT COUNT(*) FROM metrics");
  out.duplicate_points = count(
      "SELECT COALESCE(SUM(n - 1), 0) FROM (SELECT COUNT(*) AS n FROM metrics GROUP BY trial_id, "
      "attempt, name, step HAVING n > 1)");
  const std::pair<const char*, const char*> rules[] = {
      {"RUNNING attempt that the coordinator would not hold a lease for",
       "SELECT a.trial_id, a.attempt, t.state, t.attempts FROM attempts a JOIN trials t ON "
       "t.id=a.trial_id WHERE a.outcome=1 AND (t.state!=2 OR a.attempt!=t.attempts)"},
      {"RUNNING trial without a RUNNING attempt",
       "SELECT t.id, t.attempts FROM trials t WHERE t.state=2 AND NOT EXISTS(SELECT 1 FROM "
       "attempts a WHERE a.trial_id=t.id AND a.outcome=1 AND a.attempt=t.attempts)"},
      {"trial with more than one SUCCEEDED attempt",
       "SELECT trial_id, COUNT(*) FROM attempts WHERE outcome=2 GROUP BY trial_id HAVING "
       "COUNT(*)>1"},
      {"SUCCEEDED trial without exactly one SUCCEEDED attempt",
       "SELECT t.id FROM trials t WHERE t.state=3 AND (SELECT COUNT(*) FROM attempts a WHERE "
       "a.trial_id=t.id AND a.outcome=2)!=1"},
      {"trial that ended more than once (terminal events)",
       "SELECT trial_id, COUNT(*) FROM events WHERE state IN (3,4,5,6) GROUP BY trial_id HAVING "
       "COUNT(*)>1"},
      {"attempt whose trial has fewer attempts",
       "SELECT a.trial_id, a.attempt FROM attempts a JOIN trials t ON t.id=a.trial_id WHERE "
       "a.attempt>t.attempts"},
  };
  for (const auto& [what, sql] : rules) {
    for (const auto& r : Query(db, sql, &err)) {
      std::string line = what;
      for (const auto& c : r) line += " " + c;
      out.violations.push_back(line);
    }
  }
  if (!err.empty()) out.violations.push_back("query error: " + err);
  sqlite3_close(db);
  return out;
}

int64_t CountMetricRows(const std::string& db_path, int64_t trial, int attempt) {
  return QueryCount(db_path, "SELECT COUNT(*) FROM metrics WHERE trial_id=" + std::to_string(trial) +
                                 " AND attempt=" + std::to_string(attempt));
}

int64_t QueryCount(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return -1;
  }
  sqlite3_busy_timeout(db, 5000);
  std::string err;
  auto r = Query(db, sql, &err);
  sqlite3_close(db);
  return r.empty() || r[0].empty() ? -1 : std::stoll(r[0][0]);
}

void ChaosTest::SetUp() {
  coordinator_bin_ = WRPN_COORDINATOR_PATH;
  worker_bin_ = WRPN_WORKER_PATH;
  trainer_bin_ = WRPN_FAKE_TRAINER_PATH;
  for (const auto& b : {coordinator_bin_, worker_bin_, trainer_bin_}) {
    ASSERT_TRUE(fs::exists(b)) << b << " is not built";
  }
  dir_ = (fs::temp_directory_path() /
          ("wrpn-chaos-" + std::to_string(::getpid()) + "-" +
           testing::UnitTest::GetInstance()->current_test_info()->name()))
             .string();
  fs::remove_all(dir_);
  fs::create_directories(fs::path(dir_) / "pids");
  std::ofstream(fs::path(dir_) / "tokens")
      << "admin " << kAdminToken << "\nworker " << kWorkerToken << "\n";
  std::ofstream(fs::path(dir_) / "worker.token") << kWorkerToken << "\n";
  db_path_ = (fs::path(dir_) / "wrpn.db").string();
  grpc_port_ = FreePort();
  http_port_ = FreePort();
}

void ChaosTest::TearDown() {
  for (auto& [name, w] : workers_) {
    if (w && !w->Exited()) {
      ::kill(w->pid(), SIGCONT);  // a test may have stopped it
      w->Terminate();
    }
  }
  for (auto& [name, w] : workers_) {
    if (!w) continue;
    WaitUntil([&] {
      w->TakeStdoutLines();
      w->TakeStderrLines();
      return w->Exited().has_value();
    }, 10s);
    if (!w->Exited()) w->Kill();
    WaitUntil([&] { return w->Exited().has_value(); }, 5s);
    if (HasFailure()) std::cerr << "---- worker " << name << " ----\n" << w->StderrTail();
  }
  workers_.clear();
  for (const auto& [pid, what] : Trainers()) ::kill(pid, SIGKILL);  // e.g. a hung one
  if (coordinator_ && !coordinator_->Exited()) {
    coordinator_->Terminate();
    WaitUntil([&] { return coordinator_->Exited().has_value(); }, 15s);
    if (!coordinator_->Exited()) coordinator_->Kill();
  }
  if (HasFailure()) {
    std::string log = coordinator_log_ + (coordinator_ ? coordinator_->StderrTail() : "");
    if (log.size() > 20000) log = log.substr(log.size() - 20000);
    std::cerr << "---- coordinator ----\n" << log;
    std::cerr << "(files kept in " << dir_ << ")\n";
  }
  coordinator_.reset();
  stub_.reset();
  channel_.reset();
  if (!HasFailure()) fs::remove_all(dir_);
}

std::string ChaosTest::coordinator_target() const {
  return "127.0.0.1:" + std::to_string(grpc_port_);
}

void ChaosTest::StartCoordinator(const CoordinatorFlags& flags) {
  coordinator_flags_ = flags;
  if (!flags.db_path.empty()) db_path_ = flags.db_path;
  if (coordinator_) {
    coordinator_->TakeStdoutLines();
    coordinator_log_ += coordinator_->StderrTail();
    if (coordinator_log_.size() > 200000) coordinator_log_.erase(0, coordinator_log_.size() - 100000);
  }
  agent::ProcessSpec spec;
  char ttl[32];
  std::snprintf(ttl, sizeof ttl, "%g", flags.lease_ttl_s);
  spec.argv = {coordinator_bin_,
               "--db", db_path_,
               "--listen", flags.listen_host + ":" + std::to_string(grpc_port_),
               "--http-listen", "127.0.0.1:" + std::to_string(http_port_),
               "--token-file", (fs::path(dir_) / "tokens").string(),
               "--lease-ttl", ttl,
               "--event-retention-days", "0",
               "--retry-backoff", "0.5",  // exercised, but short: the scenarios retry often
               "--paper-tables", std::string(WRPN_SOURCE_DIR) + "/data/wrpn_tables.json"};
  spec.stderr_tail_bytes = 256 * 1024;
  if (!crash_at_.empty()) spec.env["WRPN_CRASH_AT"] = crash_at_;
  auto p = launcher_.Launch(spec);
  ASSERT_TRUE(p.ok()) << p.status();
  coordinator_ = *std::move(p);
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  // Also gRPC's minimum connect timeout: on a loaded 2-core machine the handshake can take longer
  // than a short one, which then never connects.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 2000);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 200);
  channel_ = grpc::CreateCustomChannel(coordinator_target(), grpc::InsecureChannelCredentials(),
                                       args);
  stub_ = pb::Coordinator::NewStub(channel_);
  const bool up = WaitUntil([&] {
    if (coordinator_->Exited()) return true;
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", std::string("Bearer ") + kAdminToken);
    ctx.set_deadline(std::chrono::system_clock::now() + 500ms);
    // Waiting polls the connection attempt; a fail-fast call would leave it to gRPC's 5 s
    // backup poller (common/grpc_limits.h).
    ctx.set_wait_for_ready(true);
    pb::ListSweepsRequest req;
    pb::ListSweepsResponse resp;
    return stub_->ListSweeps(&ctx, req, &resp).ok();
  }, 20s, 20ms);
  // One armed with a crash point may reach it before answering the probe.
  const bool crashed = !crash_at_.empty() && coordinator_->Exited() &&
                       coordinator_->Exited()->signal == SIGKILL;
  ASSERT_TRUE(up && (crashed || !coordinator_->Exited()))
      << "coordinator did not come up: "
      << (coordinator_->Exited() ? coordinator_->Exited()->Describe() : "no answer") << "\n"
      << coordinator_->StderrTail();
}

void ChaosTest::KillCoordinator() {
  ASSERT_TRUE(coordinator_);
  ::kill(coordinator_->pid(), SIGKILL);
  ASSERT_TRUE(WaitUntil([&] {
    coordinator_->TakeStdoutLines();
    return coordinator_->Exited().has_value();
  }, 10s, 5ms));
}

std::optional<agent::ExitStatus> ChaosTest::WaitCoordinatorExit(std::chrono::milliseconds limit) {
  if (!coordinator_) return std::nullopt;
  WaitFor([&] {
    coordinator_->TakeStdoutLines();
    return coordinator_->Exited().has_value();
  }, limit);
  return coordinator_->Exited();
}

bool ChaosTest::CoordinatorAlive() { return coordinator_ && !coordinator_->Exited(); }

agent::Process* ChaosTest::StartWorker(const std::string& name,
                                       std::map<std::string, std::string> env,
                                       std::vector<std::string> extra,
                                       std::vector<std::string> prefix,
                                       const std::string& coordinator) {
  agent::ProcessSpec spec;
  spec.argv = prefix;
  std::vector<std::string> args = {
      worker_bin_,
      "--coordinator", coordinator.empty() ? coordinator_target() : coordinator,
      "--token-file", (fs::path(dir_) / "worker.token").string(),
      "--name", name,
      "--address", "127.0.0.1",
      "--gpus", "none",
      "--cpus", "2",
      "--trainer", trainer_bin_,
      "--work-dir", (fs::path(dir_) / name).string(),
      "--checkpoint-dir", (fs::path(dir_) / "shared-checkpoints").string(),
      "--grace", "2",
      "--metrics-interval", "0.2",
      "--acquire-interval", "0.1",
      "--poll-interval", "0.05",
      "--keep-checkpoints"};
  for (size_t i = 0; i + 1 < extra.size(); i += 2) {
    auto same = std::find(args.begin(), args.end(), extra[i]);
    if (same != args.end() && same + 1 != args.end()) {
      *(same + 1) = extra[i + 1];
      extra[i].clear();
      extra[i + 1].clear();
    }
  }
  for (auto& e : extra) {
    if (!e.empty()) args.push_back(e);
  }
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  env["WRPN_FAKE_PID_DIR"] = (fs::path(dir_) / "pids").string();
  spec.env = env;
  spec.stderr_tail_bytes = 256 * 1024;
  if (!crash_at_.empty()) spec.env["WRPN_CRASH_AT"] = crash_at_;
  auto p = launcher_.Launch(spec);
  EXPECT_TRUE(p.ok()) << p.status();
  if (!p.ok()) return nullptr;
  auto& slot = workers_[name];
  slot = *std::move(p);
  return slot.get();
}

json ChaosTest::SweepSpec(const std::string& name, std::vector<double> widths,
                          std::vector<std::string> precisions, int epochs, int max_attempts,
                          json resources) const {
  return {{"name", name},
          {"dataset", {{"kind", "synthetic"}, {"train_size", 64}, {"test_size", 64}}},
          {"axes", {{"network", "lenet5"}, {"width", widths}, {"precision", precisions},
                    {"seed", {0}}}},
          {"recipe", {{"epochs", epochs}, {"batch_size", 32}, {"schedule", "constant"}}},
          {"resources", resources},
          {"max_attempts", max_attempts}};
}

namespace {
template <typename Req, typename Resp, typename Call>
absl::StatusOr<Resp> Rpc(pb::Coordinator::Stub* stub, const Req& req, Call call) {
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", std::string("Bearer ") + kAdminToken);
  ctx.set_deadline(std::chrono::system_clock::now() + 3s);
  Resp resp;
  grpc::Status st = (stub->*call)(&ctx, req, &resp);
  if (!st.ok())
    return absl::Status(static_cast<absl::StatusCode>(st.error_code()), st.error_message());
  return resp;
}
}  // namespace

absl::StatusOr<int64_t> ChaosTest::Submit(const json& spec) {
  pb::SubmitSweepRequest req;
  req.set_spec_text(spec.dump());
  auto r = Rpc<pb::SubmitSweepRequest, pb::SubmitSweepResponse>(stub_.get(), req,
                                                                &pb::Coordinator::Stub::SubmitSweep);
  if (!r.ok()) return r.status();
  return r->sweep_id();
}

absl::StatusOr<pb::Sweep> ChaosTest::GetSweep(int64_t id) {
  pb::GetSweepRequest req;
  req.set_sweep_id(id);
  auto r = Rpc<pb::GetSweepRequest, pb::GetSweepResponse>(stub_.get(), req,
                                                          &pb::Coordinator::Stub::GetSweep);
  if (!r.ok()) return r.status();
  return r->sweep();
}

absl::StatusOr<std::vector<pb::Trial>> ChaosTest::ListTrials(int64_t sweep, pb::TrialState state) {
  pb::ListTrialsRequest req;
  req.set_sweep_id(sweep);
  req.set_state(state);
  req.set_page_size(1000);
  auto r = Rpc<pb::ListTrialsRequest, pb::ListTrialsResponse>(stub_.get(), req,
                                                              &pb::Coordinator::Stub::ListTrials);
  if (!r.ok()) return r.status();
  return std::vector<pb::Trial>(r->trials().begin(), r->trials().end());
}

absl::StatusOr<pb::GetTrialResponse> ChaosTest::GetTrial(int64_t id) {
  pb::GetTrialRequest req;
  req.set_trial_id(id);
  return Rpc<pb::GetTrialRequest, pb::GetTrialResponse>(stub_.get(), req,
                                                        &pb::Coordinator::Stub::GetTrial);
}

absl::StatusOr<pb::GetGridResponse> ChaosTest::GetGrid(int64_t sweep) {
  pb::GetGridRequest req;
  req.set_sweep_id(sweep);
  return Rpc<pb::GetGridRequest, pb::GetGridResponse>(stub_.get(), req,
                                                      &pb::Coordinator::Stub::GetGrid);
}

absl::StatusOr<pb::GetTrialMetricsResponse> ChaosTest::GetTrialMetrics(int64_t trial) {
  pb::GetTrialMetricsRequest req;
  req.set_trial_id(trial);
  return Rpc<pb::GetTrialMetricsRequest, pb::GetTrialMetricsResponse>(
      stub_.get(), req, &pb::Coordinator::Stub::GetTrialMetrics);
}

bool ChaosTest::SweepFinished(int64_t id) {
  auto s = GetSweep(id);
  if (!s.ok()) return false;
  return s->state() == pb::SWEEP_SUCCEEDED || s->state() == pb::SWEEP_FAILED ||
         s->state() == pb::SWEEP_CANCELLED;
}

bool ChaosTest::WaitFor(const std::function<bool()>& done, std::chrono::milliseconds limit) {
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
    if (coordinator_) coordinator_->TakeStdoutLines();
    if (done()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return done();
}

bool ChaosTest::WaitForSweep(int64_t id, std::chrono::seconds limit) {
  return WaitFor([&] { return SweepFinished(id); }, limit);
}

std::string ChaosTest::HttpMetrics() {
  std::string out;
  if (Shell("curl -sf --max-time 3 http://127.0.0.1:" + std::to_string(http_port_) + "/metrics",
            &out) != 0)
    return "";
  return out;
}

std::map<pid_t, std::string> ChaosTest::Trainers() {
  std::map<pid_t, std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path(dir_) / "pids", ec)) {
    const pid_t pid = std::atoi(e.path().filename().c_str());
    if (pid <= 0 || !Alive(pid)) continue;
    if (ReadFile("/proc/" + std::to_string(pid) + "/cmdline").find("wrpn-fake-train") ==
        std::string::npos)
      continue;  // the pid was reused
    std::string what = ReadFile(e.path().string());
    while (!what.empty() && what.back() == '\n') what.pop_back();
    out[pid] = what;
  }
  return out;
}

void ChaosTest::ExpectSameGrid(const pb::GetGridResponse& a, const pb::GetGridResponse& b) {
  ASSERT_EQ(a.cells_size(), b.cells_size());
  for (int i = 0; i < a.cells_size(); ++i) {
    const auto& x = a.cells(i);
    const auto& y = b.cells(i);
    SCOPED_TRACE(x.network() + " width " + std::to_string(x.width()) + " " +
                 std::to_string(x.wbits()) + "/" + std::to_string(x.abits()));
    EXPECT_EQ(x.network(), y.network());
    EXPECT_EQ(x.width(), y.width());
    EXPECT_EQ(x.wbits(), y.wbits());
    EXPECT_EQ(x.abits(), y.abits());
    EXPECT_EQ(x.state(), y.state());
    ASSERT_TRUE(x.has_final_top1() && y.has_final_top1());
    EXPECT_DOUBLE_EQ(x.final_top1(), y.final_top1());
    EXPECT_DOUBLE_EQ(x.best_top1(), y.best_top1());
    EXPECT_DOUBLE_EQ(x.final_top5(), y.final_top5());
  }
}

void ChaosTest::ExpectEachTrialEndedOnce(int64_t sweep) {
  auto trials = ListTrials(sweep);
  ASSERT_TRUE(trials.ok()) << trials.status();
  for (const auto& t : *trials) {
    SCOPED_TRACE("trial " + std::to_string(t.id()));
    EXPECT_EQ(t.state(), pb::TRIAL_SUCCEEDED);
    auto full = GetTrial(t.id());
    ASSERT_TRUE(full.ok()) << full.status();
    int succeeded = 0;
    for (const auto& a : full->attempts()) {
      EXPECT_NE(a.outcome(), pb::ATTEMPT_RUNNING) << "attempt " << a.attempt();
      succeeded += a.outcome() == pb::ATTEMPT_SUCCEEDED;
    }
    EXPECT_EQ(succeeded, 1);
  }
  const DbCheck db = CheckDatabase(db_path_);
  EXPECT_EQ(db.integrity, "ok");
  EXPECT_THAT(db.violations, testing::IsEmpty());
  EXPECT_EQ(db.duplicate_points, 0) << "metric points stored twice for one (trial, attempt, name, step)";
}

}  // namespace wrpn::chaos
