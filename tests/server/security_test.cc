// Bad input and security, end to end: an in-process coordinator (SQLite, real gRPC and HTTP on
// 127.0.0.1:0, tokens on) and the real wrpn-coordinator / wrpn-worker binaries.
//  - HostileFieldsAreRefusedAndChangeNothing: a table of out-of-range and hostile fields for every
//    RPC; each is INVALID_ARGUMENT naming the field (or NOT_FOUND for well-formed ids that do not
//    exist), and a dump of every SQLite table is byte-identical before and after.
//  - TooLargeMessagesAreResourceExhausted: requests over the gRPC receive limit.
//  - EveryRoleAgainstEveryRpc / HttpRoles: allowed, PERMISSION_DENIED or UNAUTHENTICATED for each
//    identity against each method of both services (checked against the service descriptors) and
//    each HTTP path.
//  - HostileStringsRoundTripVerbatim: SQL-looking strings stored and read back unchanged, also
//    after a restart from the database.
//  - TokensNeverAppearInLogs (binaries): coordinator and worker logs, /metrics and /api/v1.
#include <google/protobuf/descriptor.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <limits>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/grpc_limits.h"
#include "nlohmann/json.hpp"
#include "server/server.h"
#include "server/sqlite_store.h"
#include "server/validate.h"
#include "tests/fakes/fake_clock.h"
#include "wrpn/v1/coordinator.grpc.pb.h"

namespace wrpn::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr const char* kAdmin = "admin-secret-7f3a9c2e41d8b6";
constexpr const char* kViewer = "viewer-secret-5e1b8d7c03a9f2";
constexpr const char* kWorker = "worker-secret-c0de4b1d9e7a56";
constexpr const char* kUnknown = "unknown-secret-99a8b7c6d5e4f3";  // well-formed, not in the file
constexpr const char* kEvil = "'; DROP TABLE trials; --";

constexpr const char* kQuickSpec =
    "name: quick\naxes: {network: lenet5, width: [1, 2], precision: [\"32/32\", \"4/4\"]}\n"
    "dataset: {kind: synthetic}\nrecipe: {epochs: 2}\nmax_attempts: 1\n";

struct HttpResponse {
  int code = 0;
  std::string body;
};

HttpResponse HttpGet(int port, const std::string& path, const std::string& authorization = "") {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return {};
  }
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n";
  if (!authorization.empty()) req += "Authorization: " + authorization + "\r\n";
  req += "\r\n";
  (void)!write(fd, req.data(), req.size());
  std::string raw;
  char buf[65536];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) raw.append(buf, n);
  close(fd);
  HttpResponse r;
  if (raw.size() > 12) r.code = std::stoi(raw.substr(9, 3));
  auto split = raw.find("\r\n\r\n");
  if (split != std::string::npos) r.body = raw.substr(split + 4);
  return r;
}

// The authorization header an identity sends ("" = none).
enum class Who { kNone, kMalformed, kUnknown, kAdmin, kViewer, kWorker };
const char* WhoName(Who w) {
  switch (w) {
    case Who::kNone: return "no token";
    case Who::kMalformed: return "malformed header";
    case Who::kUnknown: return "unknown token";
    case Who::kAdmin: return "admin";
    case Who::kViewer: return "viewer";
    case Who::kWorker: return "worker";
  }
  return "?";
}
std::string Header(Who w) {
  switch (w) {
    case Who::kNone: return "";
    case Who::kMalformed: return std::string("Basic ") + kAdmin;
    case Who::kUnknown: return std::string("Bearer ") + kUnknown;
    case Who::kAdmin: return std::string("Bearer ") + kAdmin;
    case Who::kViewer: return std::string("Bearer ") + kViewer;
    case Who::kWorker: return std::string("Bearer ") + kWorker;
  }
  return "";
}

std::unique_ptr<grpc::ClientContext> Ctx(Who who) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (const std::string h = Header(who); !h.empty()) ctx->AddMetadata("authorization", h);
  ctx->set_deadline(std::chrono::system_clock::now() + 60s);
  return ctx;
}

// Every row of every table of a SQLite file, as text (sorted per table): equal dumps = equal
// state.
std::string DumpDb(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << "cannot open " << path;
    sqlite3_close(db);
    return "";
  }
  std::vector<std::string> tables;
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name", -1,
                     &s, nullptr);
  while (sqlite3_step(s) == SQLITE_ROW)
    tables.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)));
  sqlite3_finalize(s);
  std::string out;
  for (const std::string& t : tables) {
    // Table names come from sqlite_master (this test's own file), not from input.
    const std::string sql = "SELECT * FROM \"" + t + "\"";
    sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr);
    std::vector<std::string> rows;
    while (sqlite3_step(s) == SQLITE_ROW) {
      std::string row;
      for (int c = 0; c < sqlite3_column_count(s); ++c) {
        const unsigned char* v = sqlite3_column_text(s, c);
        row += v ? std::string(reinterpret_cast<const char*>(v), sqlite3_column_bytes(s, c))
                 : std::string("<null>");
        row += '|';
      }
      rows.push_back(std::move(row));
    }
    sqlite3_finalize(s);
    std::sort(rows.begin(), rows.end());
    out += "== " + t + " (" + std::to_string(rows.size()) + " rows)\n";
    for (const auto& r : rows) out += r + "\n";
  }
  sqlite3_close(db);
  return out;
}

class SecurityTest : public testing::Test {
 protected:
  void SetUp() override {
    db_ = (fs::path(testing::TempDir()) /
           ("security-" + std::to_string(getpid()) + "-" +
            testing::UnitTest::GetInstance()->current_test_info()->name() + ".db"))
              .string();
    fs::remove(db_);
    auto auth = Authenticator::FromText(std::string("admin ") + kAdmin + "\nviewer " + kViewer +
                                            "\nworker " + kWorker + "\n",
                                        "tokens");
    ASSERT_TRUE(auth.ok()) << auth.status();
    auth_ = *std::move(auth);
    Start();
  }
  void TearDown() override { Stop(); }

  void Start() {
    auto store = SqliteStore::Open(db_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    registry_ = std::make_unique<MetricsRegistry>();
    CoordinatorOptions copts;
    copts.lease_ttl = 60s;
    copts.paper_tables_path = std::string(WRPN_SOURCE_DIR) + "/data/wrpn_tables.json";
    auto c = Coordinator::Create(store_.get(), &clock_, registry_.get(), copts);
    ASSERT_TRUE(c.ok()) << c.status();
    coordinator_ = *std::move(c);
    ServerOptions sopts;
    sopts.grpc_listen = "127.0.0.1:0";
    sopts.http_listen = "127.0.0.1:0";
    sopts.tick_interval = 0ms;
    auto s = CoordinatorServer::Start(coordinator_.get(), &auth_, registry_.get(), sopts);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    // The clients' own limits as the CLI and the worker set them.
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(kGrpcMaxResponseBytes);
    args.SetMaxSendMessageSize(kGrpcMaxRequestBytes);
    auto channel = grpc::CreateCustomChannel(Target(), grpc::InsecureChannelCredentials(), args);
    client_ = pb::Coordinator::NewStub(channel);
    worker_ = pb::WorkerService::NewStub(channel);
  }
  void Stop() {
    if (server_) server_->Shutdown(1s);
    server_.reset();
    coordinator_.reset();
    store_.reset();
  }
  std::string Target() const { return "127.0.0.1:" + std::to_string(server_->grpc_port()); }

  int64_t Submit(const std::string& text) {
    pb::SubmitSweepRequest req;
    req.set_spec_text(text);
    pb::SubmitSweepResponse resp;
    grpc::Status st = client_->SubmitSweep(Ctx(Who::kAdmin).get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.sweep_id();
  }
  std::string Register(const std::string& name) {
    pb::RegisterWorkerRequest req;
    req.set_name(name);
    pb::RegisterWorkerResponse resp;
    grpc::Status st = worker_->RegisterWorker(Ctx(Who::kWorker).get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.worker_id();
  }
  pb::Lease Acquire(const std::string& worker_id) {
    pb::AcquireTrialRequest req;
    req.set_worker_id(worker_id);
    pb::AcquireTrialResponse resp;
    grpc::Status st = worker_->AcquireTrial(Ctx(Who::kWorker).get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(resp.leases_size(), 1);
    return resp.leases_size() ? resp.leases(0) : pb::Lease();
  }

  std::string db_;
  FakeClock clock_;
  Authenticator auth_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<MetricsRegistry> registry_;
  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<CoordinatorServer> server_;
  std::unique_ptr<pb::Coordinator::Stub> client_;
  std::unique_ptr<pb::WorkerService::Stub> worker_;
};

// ---------------------------------------------------------------------------------------------
// Hostile fields

struct HostileCase {
  std::string name;
  std::function<grpc::Status()> call;
  grpc::StatusCode code;
  std::string field;  // the error message must contain it
};

TEST_F(SecurityTest, HostileFieldsAreRefusedAndChangeNothing) {
  const int64_t sweep = Submit(kQuickSpec);
  ASSERT_GT(sweep, 0);
  const std::string wid = Register("w");
  const pb::Lease lease = Acquire(wid);
  pb::LeaseRef ref;
  ref.set_lease_id(lease.lease_id());
  ref.set_fencing_token(lease.fencing_token());
  {  // one good point so that the metrics table is not empty
    pb::ReportMetricsRequest m;
    *m.mutable_lease() = ref;
    auto* p = m.add_points();
    p->set_name("top1");
    p->set_step(0);
    p->set_value(10);
    pb::ReportMetricsResponse r;
    ASSERT_TRUE(worker_->ReportMetrics(Ctx(Who::kWorker).get(), m, &r).ok());
  }
  const std::string before = DumpDb(db_);
  ASSERT_THAT(before, HasSubstr("== metrics (1 rows)"));

  const std::string huge(1 << 20, 'x');  // 1 MiB: under the message limit, over every field's
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  constexpr auto kInvalid = grpc::StatusCode::INVALID_ARGUMENT;
  constexpr auto kNotFound = grpc::StatusCode::NOT_FOUND;
  auto* c = client_.get();
  auto* w = worker_.get();
  std::vector<HostileCase> cases;
  auto add = [&](std::string name, grpc::StatusCode code, std::string field,
                 std::function<grpc::Status()> call) {
    cases.push_back({std::move(name), std::move(call), code, std::move(field)});
  };
  // The grid's paper reference: one of a fixed list, shown shortened when refused.
  for (std::string ref : {std::string("vgg"), huge}) {
    add("GetGrid paper_ref " + ref.substr(0, 8), kInvalid, "paper_ref", [=] {
      pb::GetGridRequest r; r.set_sweep_id(1); r.set_paper_ref(ref); pb::GetGridResponse o;
      return c->GetGrid(Ctx(Who::kViewer).get(), r, &o); });
  }
  // Ids.
  for (int64_t id : {int64_t{0}, int64_t{-1}, std::numeric_limits<int64_t>::min()}) {
    const std::string n = std::to_string(id);
    add("GetSweep " + n, kInvalid, "sweep_id", [=] {
      pb::GetSweepRequest r; r.set_sweep_id(id); pb::GetSweepResponse o;
      return c->GetSweep(Ctx(Who::kViewer).get(), r, &o); });
    add("CancelSweep " + n, kInvalid, "sweep_id", [=] {
      pb::CancelSweepRequest r; r.set_sweep_id(id); pb::CancelSweepResponse o;
      return c->CancelSweep(Ctx(Who::kAdmin).get(), r, &o); });
    add("RetrySweep " + n, kInvalid, "sweep_id", [=] {
      pb::RetrySweepRequest r; r.set_sweep_id(id); pb::RetrySweepResponse o;
      return c->RetrySweep(Ctx(Who::kAdmin).get(), r, &o); });
    add("ListTrials " + n, kInvalid, "sweep_id", [=] {
      pb::ListTrialsRequest r; r.set_sweep_id(id); pb::ListTrialsResponse o;
      return c->ListTrials(Ctx(Who::kViewer).get(), r, &o); });
    add("GetGrid " + n, kInvalid, "sweep_id", [=] {
      pb::GetGridRequest r; r.set_sweep_id(id); pb::GetGridResponse o;
      return c->GetGrid(Ctx(Who::kViewer).get(), r, &o); });
    add("WatchSweep " + n, kInvalid, "sweep_id", [=] {
      pb::WatchSweepRequest r; r.set_sweep_id(id);
      auto ctx = Ctx(Who::kViewer);
      auto reader = c->WatchSweep(ctx.get(), r);
      pb::WatchSweepResponse o;
      while (reader->Read(&o)) {}
      return reader->Finish(); });
    add("GetTrial " + n, kInvalid, "trial_id", [=] {
      pb::GetTrialRequest r; r.set_trial_id(id); pb::GetTrialResponse o;
      return c->GetTrial(Ctx(Who::kViewer).get(), r, &o); });
    add("GetTrialMetrics " + n, kInvalid, "trial_id", [=] {
      pb::GetTrialMetricsRequest r; r.set_trial_id(id); pb::GetTrialMetricsResponse o;
      return c->GetTrialMetrics(Ctx(Who::kViewer).get(), r, &o); });
    add("GetTrialLogs " + n, kInvalid, "trial_id", [=] {
      pb::GetTrialLogsRequest r; r.set_trial_id(id); pb::GetTrialLogsResponse o;
      return c->GetTrialLogs(Ctx(Who::kViewer).get(), r, &o); });
  }
  const int64_t kMax = std::numeric_limits<int64_t>::max();
  add("GetSweep max id", kNotFound, "sweep", [=] {
    pb::GetSweepRequest r; r.set_sweep_id(kMax); pb::GetSweepResponse o;
    return c->GetSweep(Ctx(Who::kViewer).get(), r, &o); });
  add("CancelSweep max id", kNotFound, "sweep", [=] {
    pb::CancelSweepRequest r; r.set_sweep_id(kMax); pb::CancelSweepResponse o;
    return c->CancelSweep(Ctx(Who::kAdmin).get(), r, &o); });
  add("GetTrial max id", kNotFound, "trial", [=] {
    pb::GetTrialRequest r; r.set_trial_id(kMax); pb::GetTrialResponse o;
    return c->GetTrial(Ctx(Who::kViewer).get(), r, &o); });
  // Pages, enums, filters.
  for (int size : {-1, std::numeric_limits<int>::min()}) {
    add("ListSweeps page_size " + std::to_string(size), kInvalid, "page_size", [=] {
      pb::ListSweepsRequest r; r.set_page_size(size); pb::ListSweepsResponse o;
      return c->ListSweeps(Ctx(Who::kViewer).get(), r, &o); });
    add("ListTrials page_size " + std::to_string(size), kInvalid, "page_size", [=] {
      pb::ListTrialsRequest r; r.set_sweep_id(sweep); r.set_page_size(size);
      pb::ListTrialsResponse o;
      return c->ListTrials(Ctx(Who::kViewer).get(), r, &o); });
  }
  for (std::string token : {std::string("-5"), std::string("abc"), std::string("99999999999999999999"),
                            huge}) {
    add("ListSweeps page_token " + token.substr(0, 20), kInvalid, "page_token", [=] {
      pb::ListSweepsRequest r; r.set_page_token(token); pb::ListSweepsResponse o;
      return c->ListSweeps(Ctx(Who::kViewer).get(), r, &o); });
    add("ListTrials page_token " + token.substr(0, 20), kInvalid, "page_token", [=] {
      pb::ListTrialsRequest r; r.set_sweep_id(sweep); r.set_page_token(token);
      pb::ListTrialsResponse o;
      return c->ListTrials(Ctx(Who::kViewer).get(), r, &o); });
  }
  add("ListSweeps unknown state 99", kInvalid, "state", [=] {
    pb::ListSweepsRequest r; r.set_state(static_cast<pb::SweepState>(99)); pb::ListSweepsResponse o;
    return c->ListSweeps(Ctx(Who::kViewer).get(), r, &o); });
  add("ListTrials unknown state -3", kInvalid, "state", [=] {
    pb::ListTrialsRequest r; r.set_sweep_id(sweep); r.set_state(static_cast<pb::TrialState>(-3));
    pb::ListTrialsResponse o;
    return c->ListTrials(Ctx(Who::kViewer).get(), r, &o); });
  add("ListTrials network 1 MiB", kInvalid, "network", [=] {
    pb::ListTrialsRequest r; r.set_sweep_id(sweep); r.set_network(huge); pb::ListTrialsResponse o;
    return c->ListTrials(Ctx(Who::kViewer).get(), r, &o); });
  add("ListTrials width NaN", kInvalid, "width", [=] {
    pb::ListTrialsRequest r; r.set_sweep_id(sweep); r.set_width(nan); pb::ListTrialsResponse o;
    return c->ListTrials(Ctx(Who::kViewer).get(), r, &o); });
  add("ListTrials wbits 0", kInvalid, "wbits", [=] {
    pb::ListTrialsRequest r; r.set_sweep_id(sweep); r.set_wbits(0); pb::ListTrialsResponse o;
    return c->ListTrials(Ctx(Who::kViewer).get(), r, &o); });
  add("ListTrials abits 1000", kInvalid, "abits", [=] {
    pb::ListTrialsRequest r; r.set_sweep_id(sweep); r.set_abits(1000); pb::ListTrialsResponse o;
    return c->ListTrials(Ctx(Who::kViewer).get(), r, &o); });
  add("GetTrialMetrics name 1 MiB", kInvalid, "name", [=] {
    pb::GetTrialMetricsRequest r; r.set_trial_id(lease.trial_id()); r.set_name(huge);
    pb::GetTrialMetricsResponse o;
    return c->GetTrialMetrics(Ctx(Who::kViewer).get(), r, &o); });
  add("GetTrialLogs after_seq -1", kInvalid, "after_seq", [=] {
    pb::GetTrialLogsRequest r; r.set_trial_id(lease.trial_id()); r.set_after_seq(-1);
    pb::GetTrialLogsResponse o;
    return c->GetTrialLogs(Ctx(Who::kViewer).get(), r, &o); });
  add("GetTrialLogs limit -1", kInvalid, "limit", [=] {
    pb::GetTrialLogsRequest r; r.set_trial_id(lease.trial_id()); r.set_limit(-1);
    pb::GetTrialLogsResponse o;
    return c->GetTrialLogs(Ctx(Who::kViewer).get(), r, &o); });
  for (std::string id : {std::string(""), huge, std::string("w\0x", 3)}) {
    add("DrainWorker worker_id " + std::to_string(id.size()) + " bytes", kInvalid, "worker_id", [=] {
      pb::DrainWorkerRequest r; r.set_worker_id(id); r.set_drain(true); pb::DrainWorkerResponse o;
      return c->DrainWorker(Ctx(Who::kAdmin).get(), r, &o); });
  }
  add("DrainWorker unknown", kNotFound, "worker", [=] {
    pb::DrainWorkerRequest r; r.set_worker_id(kEvil); r.set_drain(true); pb::DrainWorkerResponse o;
    return c->DrainWorker(Ctx(Who::kAdmin).get(), r, &o); });
  // Sweep specs.
  add("SubmitSweep no spec", kInvalid, "spec", [=] {
    pb::SubmitSweepRequest r; pb::SubmitSweepResponse o;
    return c->SubmitSweep(Ctx(Who::kAdmin).get(), r, &o); });
  add("SubmitSweep spec_text 2 MiB", kInvalid, "spec_text", [=] {
    pb::SubmitSweepRequest r; r.set_spec_text(std::string(2 << 20, '#')); pb::SubmitSweepResponse o;
    return c->SubmitSweep(Ctx(Who::kAdmin).get(), r, &o); });
  add("SubmitSweep name 1 MiB", kInvalid, "name", [=] {
    pb::SubmitSweepRequest r;
    r.set_spec_text("name: " + std::string(300000, 'n') +
                    "\naxes: {network: lenet5, width: 1, precision: [\"1/1\"]}\n");
    pb::SubmitSweepResponse o;
    return c->SubmitSweep(Ctx(Who::kAdmin).get(), r, &o); });
  add("SubmitSweep 100001 trials", kInvalid, "100000", [=] {
    pb::SubmitSweepRequest r;
    std::string seeds;
    for (int i = 0; i < 100001; ++i) seeds += (i ? "," : "") + std::to_string(i);
    r.set_spec_text("axes: {network: lenet5, width: 1, precision: [\"1/1\"], seed: [" + seeds +
                    "]}\n");
    pb::SubmitSweepResponse o;
    return c->SubmitSweep(Ctx(Who::kAdmin).get(), r, &o); });
  add("SubmitSweep deep nesting", kInvalid, "sweep spec", [=] {
    pb::SubmitSweepRequest r;
    r.set_spec_text("name: x\naxes: " + std::string(5000, '[') + std::string(5000, ']') + "\n");
    pb::SubmitSweepResponse o;
    return c->SubmitSweep(Ctx(Who::kAdmin).get(), r, &o); });
  add("SubmitSweep alias bomb", kInvalid, "aliases", [=] {
    std::string t = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
    for (int i = 1; i < 9; ++i) {
      t += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
      for (int k = 0; k < 10; ++k) t += std::string(k ? ", " : "") + "*a" + std::to_string(i - 1);
      t += "]\n";
    }
    pb::SubmitSweepRequest r; r.set_spec_text(t); pb::SubmitSweepResponse o;
    return c->SubmitSweep(Ctx(Who::kAdmin).get(), r, &o); });
  add("SubmitSweep dataset path ..", kInvalid, "dataset.path", [=] {
    pb::SubmitSweepRequest r;
    r.set_spec_text("axes: {network: lenet5, width: 1, precision: [\"1/1\"]}\n"
                    "dataset: {kind: cifar10, path: ../../etc}\n");
    pb::SubmitSweepResponse o;
    return c->SubmitSweep(Ctx(Who::kAdmin).get(), r, &o); });
  // Worker API: registration, heartbeats, leases.
  add("RegisterWorker empty name", kInvalid, "name", [=] {
    pb::RegisterWorkerRequest r; pb::RegisterWorkerResponse o;
    return w->RegisterWorker(Ctx(Who::kWorker).get(), r, &o); });
  add("RegisterWorker name 1 MiB", kInvalid, "name", [=] {
    pb::RegisterWorkerRequest r; r.set_name(huge); pb::RegisterWorkerResponse o;
    return w->RegisterWorker(Ctx(Who::kWorker).get(), r, &o); });
  add("RegisterWorker cpus -1", kInvalid, "cpus", [=] {
    pb::RegisterWorkerRequest r; r.set_name("n"); r.set_cpus(-1); pb::RegisterWorkerResponse o;
    return w->RegisterWorker(Ctx(Who::kWorker).get(), r, &o); });
  add("RegisterWorker max_cpu_trials 1e9", kInvalid, "max_cpu_trials", [=] {
    pb::RegisterWorkerRequest r; r.set_name("n"); r.set_max_cpu_trials(1000000000);
    pb::RegisterWorkerResponse o;
    return w->RegisterWorker(Ctx(Who::kWorker).get(), r, &o); });
  add("RegisterWorker 5000 GPUs", kInvalid, "gpus", [=] {
    pb::RegisterWorkerRequest r; r.set_name("n");
    for (int i = 0; i < 5000; ++i) r.add_gpus()->set_index(i);
    pb::RegisterWorkerResponse o;
    return w->RegisterWorker(Ctx(Who::kWorker).get(), r, &o); });
  add("RegisterWorker GPU memory -1", kInvalid, "gpus[0].memory_bytes", [=] {
    pb::RegisterWorkerRequest r; r.set_name("n"); r.add_gpus()->set_memory_bytes(-1);
    pb::RegisterWorkerResponse o;
    return w->RegisterWorker(Ctx(Who::kWorker).get(), r, &o); });
  add("RegisterWorker 100 labels", kInvalid, "labels", [=] {
    pb::RegisterWorkerRequest r; r.set_name("n");
    for (int i = 0; i < 100; ++i) (*r.mutable_labels())["k" + std::to_string(i)] = "v";
    pb::RegisterWorkerResponse o;
    return w->RegisterWorker(Ctx(Who::kWorker).get(), r, &o); });
  add("Heartbeat empty worker_id", kInvalid, "worker_id", [=] {
    pb::HeartbeatRequest r; pb::HeartbeatResponse o;
    return w->Heartbeat(Ctx(Who::kWorker).get(), r, &o); });
  add("Heartbeat fraction NaN", kInvalid, "leases[0].fraction", [=] {
    pb::HeartbeatRequest r; r.set_worker_id(wid);
    auto* p = r.add_leases(); *p->mutable_lease() = ref; p->set_fraction(nan);
    pb::HeartbeatResponse o;
    return w->Heartbeat(Ctx(Who::kWorker).get(), r, &o); });
  add("Heartbeat epoch -1", kInvalid, "leases[0].epoch", [=] {
    pb::HeartbeatRequest r; r.set_worker_id(wid);
    auto* p = r.add_leases(); *p->mutable_lease() = ref; p->set_epoch(-1);
    pb::HeartbeatResponse o;
    return w->Heartbeat(Ctx(Who::kWorker).get(), r, &o); });
  add("Heartbeat 5000 leases", kInvalid, "leases", [=] {
    pb::HeartbeatRequest r; r.set_worker_id(wid);
    for (int i = 0; i < 5000; ++i) *r.add_leases()->mutable_lease() = ref;
    pb::HeartbeatResponse o;
    return w->Heartbeat(Ctx(Who::kWorker).get(), r, &o); });
  add("Heartbeat unknown worker", kNotFound, "not registered", [=] {
    pb::HeartbeatRequest r; r.set_worker_id(kEvil); pb::HeartbeatResponse o;
    return w->Heartbeat(Ctx(Who::kWorker).get(), r, &o); });
  add("AcquireTrial free_gpus -1", kInvalid, "free_gpus", [=] {
    pb::AcquireTrialRequest r; r.set_worker_id(wid); r.set_free_gpus(-1); pb::AcquireTrialResponse o;
    return w->AcquireTrial(Ctx(Who::kWorker).get(), r, &o); });
  add("AcquireTrial max_trials 1e9", kInvalid, "max_trials", [=] {
    pb::AcquireTrialRequest r; r.set_worker_id(wid); r.set_max_trials(1000000000);
    pb::AcquireTrialResponse o;
    return w->AcquireTrial(Ctx(Who::kWorker).get(), r, &o); });
  add("AcquireTrial worker_id 1 MiB", kInvalid, "worker_id", [=] {
    pb::AcquireTrialRequest r; r.set_worker_id(huge); pb::AcquireTrialResponse o;
    return w->AcquireTrial(Ctx(Who::kWorker).get(), r, &o); });
  // Metrics on a live lease: nothing of a bad batch is stored.
  auto metrics = [=](std::function<void(pb::ReportMetricsRequest&)> edit) {
    return [=] {
      pb::ReportMetricsRequest r;
      *r.mutable_lease() = ref;
      for (int i = 0; i < 3; ++i) {
        auto* p = r.add_points();
        p->set_name("train_loss");
        p->set_step(1);
        p->set_value(0.5);
      }
      edit(r);
      pb::ReportMetricsResponse o;
      return w->ReportMetrics(Ctx(Who::kWorker).get(), r, &o);
    };
  };
  add("ReportMetrics NaN", kInvalid, "points[1].value",
      metrics([=](auto& r) { r.mutable_points(1)->set_value(nan); }));
  add("ReportMetrics +Inf", kInvalid, "points[2].value",
      metrics([=](auto& r) { r.mutable_points(2)->set_value(inf); }));
  add("ReportMetrics -Inf", kInvalid, "points[0].value",
      metrics([=](auto& r) { r.mutable_points(0)->set_value(-inf); }));
  add("ReportMetrics empty name", kInvalid, "points[0].name",
      metrics([=](auto& r) { r.mutable_points(0)->set_name(""); }));
  add("ReportMetrics name 1 MiB", kInvalid, "points[2].name",
      metrics([=](auto& r) { r.mutable_points(2)->set_name(huge); }));
  add("ReportMetrics step -1", kInvalid, "points[1].step",
      metrics([=](auto& r) { r.mutable_points(1)->set_step(-1); }));
  add("ReportMetrics wall_ms -1", kInvalid, "points[1].wall_ms",
      metrics([=](auto& r) { r.mutable_points(1)->set_wall_ms(-1); }));
  add("ReportMetrics 100001 points", kInvalid, "points", metrics([=](auto& r) {
        for (int i = 0; i < 100001; ++i) {
          auto* p = r.add_points();
          p->set_name("x");
          p->set_value(1);
        }
      }));
  add("ReportMetrics empty lease_id", kInvalid, "lease.lease_id",
      metrics([=](auto& r) { r.mutable_lease()->clear_lease_id(); }));
  add("ReportMetrics fencing_token -1", kInvalid, "lease.fencing_token",
      metrics([=](auto& r) { r.mutable_lease()->set_fencing_token(-1); }));
  add("ReportMetrics stale token", grpc::StatusCode::FAILED_PRECONDITION, "stale",
      metrics([=](auto& r) { r.mutable_lease()->set_fencing_token(ref.fencing_token() + 100); }));
  add("ReportCheckpoint epoch -1", kInvalid, "epoch", [=] {
    pb::ReportCheckpointRequest r; *r.mutable_lease() = ref; r.set_epoch(-1); r.set_path("/c");
    pb::ReportCheckpointResponse o;
    return w->ReportCheckpoint(Ctx(Who::kWorker).get(), r, &o); });
  add("ReportCheckpoint empty path", kInvalid, "path", [=] {
    pb::ReportCheckpointRequest r; *r.mutable_lease() = ref; r.set_epoch(1);
    pb::ReportCheckpointResponse o;
    return w->ReportCheckpoint(Ctx(Who::kWorker).get(), r, &o); });
  add("ReportCheckpoint path 1 MiB", kInvalid, "path", [=] {
    pb::ReportCheckpointRequest r; *r.mutable_lease() = ref; r.set_epoch(1); r.set_path(huge);
    pb::ReportCheckpointResponse o;
    return w->ReportCheckpoint(Ctx(Who::kWorker).get(), r, &o); });
  auto complete = [=](std::function<void(pb::CompleteTrialRequest&)> edit) {
    return [=] {
      pb::CompleteTrialRequest r;
      *r.mutable_lease() = ref;
      r.mutable_result()->set_top1(50);
      r.mutable_result()->set_top5(80);
      edit(r);
      pb::CompleteTrialResponse o;
      return w->CompleteTrial(Ctx(Who::kWorker).get(), r, &o);
    };
  };
  add("CompleteTrial no outcome", kInvalid, "outcome",
      complete([](auto& r) { r.clear_outcome(); }));
  add("CompleteTrial top1 NaN", kInvalid, "result.top1",
      complete([=](auto& r) { r.mutable_result()->set_top1(nan); }));
  add("CompleteTrial top1 150", kInvalid, "result.top1",
      complete([](auto& r) { r.mutable_result()->set_top1(150); }));
  add("CompleteTrial top5 -1", kInvalid, "result.top5",
      complete([](auto& r) { r.mutable_result()->set_top5(-1); }));
  add("CompleteTrial images_per_sec Inf", kInvalid, "result.images_per_sec",
      complete([=](auto& r) { r.mutable_result()->set_images_per_sec(inf); }));
  add("CompleteTrial unknown failure kind", kInvalid, "failure.kind", complete([](auto& r) {
        r.mutable_failure()->set_kind("bogus");
      }));
  add("CompleteTrial reason 1 MiB", kInvalid, "failure.reason", complete([=](auto& r) {
        r.mutable_failure()->set_kind("internal");
        r.mutable_failure()->set_reason(huge);
      }));
  auto logs = [=](std::function<void(pb::ReportLogsRequest&)> edit) {
    return [=] {
      pb::ReportLogsRequest r;
      *r.mutable_lease() = ref;
      r.add_lines("hello");
      edit(r);
      pb::ReportLogsResponse o;
      return w->ReportLogs(Ctx(Who::kWorker).get(), r, &o);
    };
  };
  add("ReportRendezvous master_port 0", kInvalid, "master_port", [=] {
    pb::ReportRendezvousRequest r; *r.mutable_lease() = ref; r.set_master_port(0);
    pb::ReportRendezvousResponse o;
    return w->ReportRendezvous(Ctx(Who::kWorker).get(), r, &o); });
  add("ReportRendezvous master_port 70000", kInvalid, "master_port", [=] {
    pb::ReportRendezvousRequest r; *r.mutable_lease() = ref; r.set_master_port(70000);
    pb::ReportRendezvousResponse o;
    return w->ReportRendezvous(Ctx(Who::kWorker).get(), r, &o); });
  add("ReportRendezvous empty lease_id", kInvalid, "lease.lease_id", [=] {
    pb::ReportRendezvousRequest r; r.set_master_port(29500); pb::ReportRendezvousResponse o;
    return w->ReportRendezvous(Ctx(Who::kWorker).get(), r, &o); });
  add("ReportLogs rank -2", kInvalid, "rank", logs([](auto& r) { r.set_rank(-2); }));
  add("ReportLogs 6000 lines", kInvalid, "lines",
      logs([](auto& r) { for (int i = 0; i < 6000; ++i) r.add_lines("l"); }));
  add("ReportLogs line 1 MiB", kInvalid, "lines[1]", logs([=](auto& r) { r.add_lines(huge); }));

  for (const HostileCase& hc : cases) {
    SCOPED_TRACE(hc.name);
    const grpc::Status st = hc.call();
    EXPECT_EQ(st.error_code(), hc.code) << st.error_message();
    EXPECT_THAT(st.error_message(), HasSubstr(hc.field));
    EXPECT_LT(st.error_message().size(), 4096u);  // errors name the field, they do not echo it
  }
  std::cout << "hostile-field cases: " << cases.size() << "\n";
  EXPECT_GE(cases.size(), 80u);
  const std::string after = DumpDb(db_);
  EXPECT_EQ(before, after);
  // Memory-only state is unchanged too: no log line stored, the lease still live.
  pb::GetTrialLogsRequest lr;
  lr.set_trial_id(lease.trial_id());
  pb::GetTrialLogsResponse lo;
  ASSERT_TRUE(client_->GetTrialLogs(Ctx(Who::kViewer).get(), lr, &lo).ok());
  EXPECT_EQ(lo.last_seq(), 0);
  pb::GetTrialRequest tr;
  tr.set_trial_id(lease.trial_id());
  pb::GetTrialResponse to;
  ASSERT_TRUE(client_->GetTrial(Ctx(Who::kViewer).get(), tr, &to).ok());
  EXPECT_EQ(to.trial().state(), pb::TRIAL_RUNNING);
  ASSERT_EQ(to.last_metrics_size(), 1);
  EXPECT_EQ(to.last_metrics(0).name(), "top1");
}

TEST_F(SecurityTest, TooLargeMessagesAreResourceExhausted) {
  const int64_t sweep = Submit(kQuickSpec);
  const pb::Lease lease = Acquire(Register("w"));
  const std::string before = DumpDb(db_);
  // A client without its own send limit: the server refuses the request from its length prefix.
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(-1);
  auto raw = grpc::CreateCustomChannel(Target(), grpc::InsecureChannelCredentials(), args);
  auto stub = pb::WorkerService::NewStub(raw);
  auto cstub = pb::Coordinator::NewStub(raw);
  pb::ReportMetricsRequest m;
  m.mutable_lease()->set_lease_id(lease.lease_id());
  m.mutable_lease()->set_fencing_token(lease.fencing_token());
  // 600,000 points of ~35 bytes: 21 MB, over the 16 MiB limit.
  for (int i = 0; i < 600000; ++i) {
    auto* p = m.add_points();
    p->set_name("train_loss_xxxxxxxx");
    p->set_step(i);
    p->set_value(0.25);
  }
  ASSERT_GT(m.ByteSizeLong(), static_cast<size_t>(kGrpcMaxRequestBytes));
  pb::ReportMetricsResponse mo;
  grpc::Status st = stub->ReportMetrics(Ctx(Who::kWorker).get(), m, &mo);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  pb::SubmitSweepRequest big;
  big.set_spec_text(std::string(kGrpcMaxRequestBytes + 1, '#'));
  pb::SubmitSweepResponse so;
  st = cstub->SubmitSweep(Ctx(Who::kAdmin).get(), big, &so);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  // The CLI's and the worker's channels refuse to send it in the first place.
  st = worker_->ReportMetrics(Ctx(Who::kWorker).get(), m, &mo);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  EXPECT_EQ(DumpDb(db_), before);
  // The server still serves.
  pb::GetSweepRequest g;
  g.set_sweep_id(sweep);
  pb::GetSweepResponse go;
  EXPECT_TRUE(client_->GetSweep(Ctx(Who::kViewer).get(), g, &go).ok());
  // The largest batch validation allows, with trainer-sized names (~40 bytes a point), fits.
  EXPECT_LT(RequestLimits::kMaxMetricPoints * 40, kGrpcMaxRequestBytes);
}

// ---------------------------------------------------------------------------------------------
// Roles

enum class Need { kAdmin, kViewer, kWorker };

struct RpcCase {
  std::string method;  // "Service.Method"
  Need need;
  grpc::StatusCode allowed_code;  // what an allowed identity gets for this harmless request
  std::function<grpc::Status(pb::Coordinator::Stub*, pb::WorkerService::Stub*, Who)> call;
};

std::vector<RpcCase> RpcTable() {
  using C = pb::Coordinator::Stub;
  using W = pb::WorkerService::Stub;
  const auto OK = grpc::StatusCode::OK;
  const auto NF = grpc::StatusCode::NOT_FOUND;
  const auto FP = grpc::StatusCode::FAILED_PRECONDITION;
  pb::LeaseRef gone;
  gone.set_lease_id("l-999999-0");
  gone.set_fencing_token(999999);
  return {
      {"Coordinator.SubmitSweep", Need::kAdmin, OK, [](C* c, W*, Who who) {
         pb::SubmitSweepRequest r; r.set_spec_text(kQuickSpec); r.set_dry_run(true);
         pb::SubmitSweepResponse o; return c->SubmitSweep(Ctx(who).get(), r, &o); }},
      {"Coordinator.GetSweep", Need::kViewer, OK, [](C* c, W*, Who who) {
         pb::GetSweepRequest r; r.set_sweep_id(1); pb::GetSweepResponse o;
         return c->GetSweep(Ctx(who).get(), r, &o); }},
      {"Coordinator.ListSweeps", Need::kViewer, OK, [](C* c, W*, Who who) {
         pb::ListSweepsRequest r; pb::ListSweepsResponse o;
         return c->ListSweeps(Ctx(who).get(), r, &o); }},
      {"Coordinator.CancelSweep", Need::kAdmin, NF, [](C* c, W*, Who who) {
         pb::CancelSweepRequest r; r.set_sweep_id(999); pb::CancelSweepResponse o;
         return c->CancelSweep(Ctx(who).get(), r, &o); }},
      {"Coordinator.RetrySweep", Need::kAdmin, NF, [](C* c, W*, Who who) {
         pb::RetrySweepRequest r; r.set_sweep_id(999); pb::RetrySweepResponse o;
         return c->RetrySweep(Ctx(who).get(), r, &o); }},
      {"Coordinator.ListTrials", Need::kViewer, OK, [](C* c, W*, Who who) {
         pb::ListTrialsRequest r; r.set_sweep_id(1); pb::ListTrialsResponse o;
         return c->ListTrials(Ctx(who).get(), r, &o); }},
      {"Coordinator.GetTrial", Need::kViewer, OK, [](C* c, W*, Who who) {
         pb::GetTrialRequest r; r.set_trial_id(1); pb::GetTrialResponse o;
         return c->GetTrial(Ctx(who).get(), r, &o); }},
      {"Coordinator.GetTrialMetrics", Need::kViewer, OK, [](C* c, W*, Who who) {
         pb::GetTrialMetricsRequest r; r.set_trial_id(1); pb::GetTrialMetricsResponse o;
         return c->GetTrialMetrics(Ctx(who).get(), r, &o); }},
      {"Coordinator.WatchSweep", Need::kViewer, NF, [](C* c, W*, Who who) {
         pb::WatchSweepRequest r; r.set_sweep_id(999);
         auto ctx = Ctx(who);
         auto reader = c->WatchSweep(ctx.get(), r);
         pb::WatchSweepResponse o;
         while (reader->Read(&o)) {}
         return reader->Finish(); }},
      {"Coordinator.GetGrid", Need::kViewer, OK, [](C* c, W*, Who who) {
         pb::GetGridRequest r; r.set_sweep_id(1); pb::GetGridResponse o;
         return c->GetGrid(Ctx(who).get(), r, &o); }},
      {"Coordinator.GetPaperTables", Need::kViewer, OK, [](C* c, W*, Who who) {
         pb::GetPaperTablesRequest r; pb::GetPaperTablesResponse o;
         return c->GetPaperTables(Ctx(who).get(), r, &o); }},
      {"Coordinator.ListWorkers", Need::kViewer, OK, [](C* c, W*, Who who) {
         pb::ListWorkersRequest r; pb::ListWorkersResponse o;
         return c->ListWorkers(Ctx(who).get(), r, &o); }},
      {"Coordinator.DrainWorker", Need::kAdmin, NF, [](C* c, W*, Who who) {
         pb::DrainWorkerRequest r; r.set_worker_id("w-999999"); pb::DrainWorkerResponse o;
         return c->DrainWorker(Ctx(who).get(), r, &o); }},
      {"Coordinator.GetTrialLogs", Need::kViewer, OK, [](C* c, W*, Who who) {
         pb::GetTrialLogsRequest r; r.set_trial_id(1); pb::GetTrialLogsResponse o;
         return c->GetTrialLogs(Ctx(who).get(), r, &o); }},
      {"WorkerService.RegisterWorker", Need::kWorker, OK, [](C*, W* w, Who who) {
         pb::RegisterWorkerRequest r; r.set_name("role-table"); pb::RegisterWorkerResponse o;
         return w->RegisterWorker(Ctx(who).get(), r, &o); }},
      {"WorkerService.Heartbeat", Need::kWorker, NF, [](C*, W* w, Who who) {
         pb::HeartbeatRequest r; r.set_worker_id("w-999999"); pb::HeartbeatResponse o;
         return w->Heartbeat(Ctx(who).get(), r, &o); }},
      {"WorkerService.AcquireTrial", Need::kWorker, NF, [](C*, W* w, Who who) {
         pb::AcquireTrialRequest r; r.set_worker_id("w-999999"); pb::AcquireTrialResponse o;
         return w->AcquireTrial(Ctx(who).get(), r, &o); }},
      {"WorkerService.ReportMetrics", Need::kWorker, FP, [gone](C*, W* w, Who who) {
         pb::ReportMetricsRequest r; *r.mutable_lease() = gone; pb::ReportMetricsResponse o;
         return w->ReportMetrics(Ctx(who).get(), r, &o); }},
      {"WorkerService.ReportCheckpoint", Need::kWorker, FP, [gone](C*, W* w, Who who) {
         pb::ReportCheckpointRequest r; *r.mutable_lease() = gone; r.set_path("/ck");
         pb::ReportCheckpointResponse o;
         return w->ReportCheckpoint(Ctx(who).get(), r, &o); }},
      {"WorkerService.CompleteTrial", Need::kWorker, FP, [gone](C*, W* w, Who who) {
         pb::CompleteTrialRequest r; *r.mutable_lease() = gone;
         r.mutable_failure()->set_kind("internal");
         pb::CompleteTrialResponse o;
         return w->CompleteTrial(Ctx(who).get(), r, &o); }},
      {"WorkerService.ReportLogs", Need::kWorker, FP, [gone](C*, W* w, Who who) {
         pb::ReportLogsRequest r; *r.mutable_lease() = gone; r.add_lines("x");
         pb::ReportLogsResponse o;
         return w->ReportLogs(Ctx(who).get(), r, &o); }},
      {"WorkerService.ReportRendezvous", Need::kWorker, FP, [gone](C*, W* w, Who who) {
         pb::ReportRendezvousRequest r; *r.mutable_lease() = gone; r.set_master_port(29500);
         pb::ReportRendezvousResponse o;
         return w->ReportRendezvous(Ctx(who).get(), r, &o); }},
  };
}

grpc::StatusCode Expected(const RpcCase& rc, Who who) {
  switch (who) {
    case Who::kNone:
    case Who::kMalformed:
    case Who::kUnknown:
      return grpc::StatusCode::UNAUTHENTICATED;
    case Who::kAdmin:
      return rc.need == Need::kWorker ? grpc::StatusCode::PERMISSION_DENIED : rc.allowed_code;
    case Who::kViewer:
      return rc.need == Need::kViewer ? rc.allowed_code : grpc::StatusCode::PERMISSION_DENIED;
    case Who::kWorker:
      return rc.need == Need::kWorker ? rc.allowed_code : grpc::StatusCode::PERMISSION_DENIED;
  }
  return grpc::StatusCode::UNKNOWN;
}

TEST_F(SecurityTest, EveryRoleAgainstEveryRpc) {
  ASSERT_EQ(Submit(kQuickSpec), 1);
  const std::vector<RpcCase> table = RpcTable();
  // The table covers every method of both services, each once.
  std::set<std::string> methods, covered;
  for (const char* service : {"wrpn.v1.Coordinator", "wrpn.v1.WorkerService"}) {
    const auto* sd = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
    ASSERT_NE(sd, nullptr) << service;
    for (int i = 0; i < sd->method_count(); ++i)
      methods.insert(sd->name() + "." + sd->method(i)->name());
  }
  for (const RpcCase& rc : table) {
    EXPECT_TRUE(covered.insert(rc.method).second) << rc.method;
    EXPECT_TRUE(methods.count(rc.method)) << rc.method << " is not in the service";
  }
  const std::string before = DumpDb(db_);
  int cells = 0;
  for (const RpcCase& rc : table) {
    for (Who who : {Who::kNone, Who::kMalformed, Who::kUnknown, Who::kAdmin, Who::kViewer,
                    Who::kWorker}) {
      SCOPED_TRACE(rc.method + " as " + WhoName(who));
      const grpc::Status st = rc.call(client_.get(), worker_.get(), who);
      EXPECT_EQ(st.error_code(), Expected(rc, who)) << st.error_message();
      if (st.error_code() == grpc::StatusCode::PERMISSION_DENIED)
        EXPECT_THAT(st.error_message(), HasSubstr("role"));
      ++cells;
    }
  }
  std::cout << "role table: " << table.size() << " RPCs x 6 identities = " << cells << " cells\n";
  EXPECT_EQ(covered, methods);  // the typed table has every RPC too
  // Every unary method of both services, found from the descriptors (so an RPC added later is
  // covered without editing this test), called with an empty request through the generic stub:
  // the documented role rule holds. Coordinator writes need admin, its reads viewer (or admin),
  // WorkerService the worker role.
  grpc::GenericStub generic(grpc::CreateChannel(Target(), grpc::InsecureChannelCredentials()));
  int generic_cells = 0;
  for (const char* service : {"wrpn.v1.Coordinator", "wrpn.v1.WorkerService"}) {
    const auto* sd = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
    for (int i = 0; i < sd->method_count(); ++i) {
      const auto* md = sd->method(i);
      if (md->server_streaming() || md->client_streaming()) continue;  // WatchSweep: typed above
      const std::string name = md->name();
      const bool admin_only = name == "SubmitSweep" || name == "CancelSweep" ||
                              name == "RetrySweep" || name == "DrainWorker";
      const Need need = std::string(service) == "wrpn.v1.WorkerService" ? Need::kWorker
                        : admin_only                                   ? Need::kAdmin
                                                                       : Need::kViewer;
      for (Who who : {Who::kNone, Who::kMalformed, Who::kUnknown, Who::kAdmin, Who::kViewer,
                      Who::kWorker}) {
        SCOPED_TRACE(std::string(service) + "." + name + " (empty request) as " + WhoName(who));
        auto ctx = Ctx(who);
        grpc::Slice empty("");
        grpc::ByteBuffer request(&empty, 1), response;  // zero bytes: an empty message of any type
        std::promise<grpc::Status> done;
        generic.UnaryCall(ctx.get(), "/" + std::string(service) + "/" + name, {}, &request,
                          &response, [&](grpc::Status st) { done.set_value(st); });
        const grpc::Status st = done.get_future().get();
        RpcCase rc{name, need, grpc::StatusCode::OK, nullptr};
        const grpc::StatusCode want = Expected(rc, who);
        if (want == grpc::StatusCode::OK) {
          EXPECT_NE(st.error_code(), grpc::StatusCode::UNAUTHENTICATED) << st.error_message();
          EXPECT_NE(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
          EXPECT_NE(st.error_code(), grpc::StatusCode::UNIMPLEMENTED) << st.error_message();
        } else {
          EXPECT_EQ(st.error_code(), want) << st.error_message();
        }
        ++generic_cells;
      }
    }
  }
  std::cout << "generic role sweep: " << generic_cells << " cells over " << methods.size()
            << " methods\n";
  // Only the allowed RegisterWorker calls wrote anything (one worker per allowed identity).
  pb::ListWorkersResponse workers;
  ASSERT_TRUE(client_->ListWorkers(Ctx(Who::kViewer).get(), {}, &workers).ok());
  EXPECT_EQ(workers.workers_size(), 1);
  EXPECT_NE(DumpDb(db_), before);
}

TEST_F(SecurityTest, HttpRoles) {
  ASSERT_EQ(Submit(kQuickSpec), 1);
  const int port = server_->http_port();
  int cells = 0;
  for (const char* path : {"/metrics", "/healthz", "/readyz", "/", "/app.js", "/style.css"}) {
    for (Who who : {Who::kNone, Who::kMalformed, Who::kUnknown, Who::kAdmin, Who::kViewer,
                    Who::kWorker}) {
      EXPECT_EQ(HttpGet(port, path, Header(who)).code, 200) << path << " as " << WhoName(who);
      ++cells;
    }
  }
  for (const char* path : {"/api/v1/sweeps", "/api/v1/sweeps/1", "/api/v1/sweeps/1/trials",
                           "/api/v1/sweeps/1/grid", "/api/v1/trials/1", "/api/v1/trials/1/metrics",
                           "/api/v1/workers"}) {
    for (Who who : {Who::kNone, Who::kMalformed, Who::kUnknown, Who::kAdmin, Who::kViewer,
                    Who::kWorker}) {
      const int want = who == Who::kAdmin || who == Who::kViewer ? 200
                       : who == Who::kWorker                     ? 403
                                                                 : 401;
      EXPECT_EQ(HttpGet(port, path, Header(who)).code, want) << path << " as " << WhoName(who);
      ++cells;
    }
  }
  // Hostile query values are refused with 400 naming the field, through the same validation.
  const std::string viewer = Header(Who::kViewer);
  EXPECT_EQ(HttpGet(port, "/api/v1/sweeps?page_size=-1", viewer).code, 400);
  EXPECT_EQ(HttpGet(port, "/api/v1/sweeps/0", viewer).code, 400);
  EXPECT_EQ(HttpGet(port, "/api/v1/sweeps/-4/grid", viewer).code, 400);
  auto r = HttpGet(port, "/api/v1/sweeps?page_token=" + std::string(100, '9'), viewer);
  EXPECT_EQ(r.code, 400);
  EXPECT_THAT(r.body, HasSubstr("page_token"));
  std::cout << "HTTP role table: " << cells << " cells\n";
}

// ---------------------------------------------------------------------------------------------
// SQL

TEST_F(SecurityTest, HostileStringsRoundTripVerbatim) {
  const std::vector<std::string> evil = {kEvil, "Robert'); DROP TABLE sweeps;--",
                                         "\" OR 1=1 --", "%_\\' ?1 :name @x $y", "ü✓ \t\r\n"};
  nlohmann::json spec = nlohmann::json::parse(
      R"({"axes": {"network": "lenet5", "width": 1, "precision": ["1/1", "2/2"]},
          "dataset": {"kind": "synthetic"}, "max_attempts": 1})");
  spec["name"] = evil[0];
  const int64_t sweep = Submit(spec.dump());
  ASSERT_GT(sweep, 0);
  pb::RegisterWorkerRequest reg;
  reg.set_name(evil[1]);
  reg.set_address(evil[2]);
  (*reg.mutable_labels())[evil[3]] = evil[4];
  pb::RegisterWorkerResponse rr;
  ASSERT_TRUE(worker_->RegisterWorker(Ctx(Who::kWorker).get(), reg, &rr).ok());
  const pb::Lease lease = Acquire(rr.worker_id());
  pb::LeaseRef ref;
  ref.set_lease_id(lease.lease_id());
  ref.set_fencing_token(lease.fencing_token());
  pb::ReportMetricsRequest m;
  *m.mutable_lease() = ref;
  for (size_t i = 0; i < evil.size(); ++i) {
    auto* p = m.add_points();
    p->set_name(evil[i]);
    p->set_step(static_cast<int64_t>(i));
    p->set_value(static_cast<double>(i));
  }
  pb::ReportMetricsResponse mo;
  ASSERT_TRUE(worker_->ReportMetrics(Ctx(Who::kWorker).get(), m, &mo).ok());
  pb::ReportCheckpointRequest ck;
  *ck.mutable_lease() = ref;
  ck.set_epoch(1);
  ck.set_path("/ck/" + evil[0]);
  pb::ReportCheckpointResponse co;
  ASSERT_TRUE(worker_->ReportCheckpoint(Ctx(Who::kWorker).get(), ck, &co).ok());
  pb::CompleteTrialRequest done;
  *done.mutable_lease() = ref;
  done.mutable_failure()->set_kind("config");
  done.mutable_failure()->set_reason(evil[1]);
  pb::CompleteTrialResponse dn;
  ASSERT_TRUE(worker_->CompleteTrial(Ctx(Who::kWorker).get(), done, &dn).ok());

  auto check = [&](const char* when) {
    SCOPED_TRACE(when);
    pb::GetSweepRequest g;
    g.set_sweep_id(sweep);
    pb::GetSweepResponse go;
    ASSERT_TRUE(client_->GetSweep(Ctx(Who::kViewer).get(), g, &go).ok());
    EXPECT_EQ(go.sweep().name(), evil[0]);
    EXPECT_EQ(go.sweep().spec().name(), evil[0]);
    pb::ListTrialsRequest lt;
    lt.set_sweep_id(sweep);
    pb::ListTrialsResponse lo;
    ASSERT_TRUE(client_->ListTrials(Ctx(Who::kViewer).get(), lt, &lo).ok());
    EXPECT_EQ(lo.trials_size(), 2);  // the trials table is still there
    lt.set_network(evil[0]);  // a hostile filter matches nothing and breaks nothing
    ASSERT_TRUE(client_->ListTrials(Ctx(Who::kViewer).get(), lt, &lo).ok());
    EXPECT_EQ(lo.trials_size(), 0);
    pb::ListWorkersResponse wo;
    ASSERT_TRUE(client_->ListWorkers(Ctx(Who::kViewer).get(), {}, &wo).ok());
    ASSERT_EQ(wo.workers_size(), 1);
    EXPECT_EQ(wo.workers(0).name(), evil[1]);
    EXPECT_EQ(wo.workers(0).address(), evil[2]);
    EXPECT_EQ(wo.workers(0).labels().at(evil[3]), evil[4]);
    for (size_t i = 0; i < evil.size(); ++i) {
      pb::GetTrialMetricsRequest mr;
      mr.set_trial_id(lease.trial_id());
      mr.set_name(evil[i]);
      pb::GetTrialMetricsResponse mp;
      ASSERT_TRUE(client_->GetTrialMetrics(Ctx(Who::kViewer).get(), mr, &mp).ok());
      ASSERT_EQ(mp.points_size(), 1) << evil[i];
      EXPECT_EQ(mp.points(0).name(), evil[i]);
      EXPECT_EQ(mp.points(0).step(), static_cast<int64_t>(i));
    }
    pb::GetTrialRequest tr;
    tr.set_trial_id(lease.trial_id());
    pb::GetTrialResponse to;
    ASSERT_TRUE(client_->GetTrial(Ctx(Who::kViewer).get(), tr, &to).ok());
    EXPECT_EQ(to.trial().checkpoint_path(), "/ck/" + evil[0]);
    EXPECT_EQ(to.trial().error(), "config: " + evil[1]);
    EXPECT_EQ(to.trial().state(), pb::TRIAL_FAILED);
  };
  check("live");
  Stop();
  Start();
  check("after a restart from the database");
  EXPECT_THAT(DumpDb(db_), HasSubstr("== trials (2 rows)"));
}

// ---------------------------------------------------------------------------------------------
// Tokens in logs (the real binaries)

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

pid_t Spawn(const std::vector<std::string>& argv, const std::string& log) {
  pid_t pid = fork();
  if (pid == 0) {
    FILE* f = std::freopen(log.c_str(), "w", stderr);
    (void)f;
    (void)!dup2(fileno(stderr), STDOUT_FILENO);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

void Terminate(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  for (int i = 0; i < 200; ++i) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return;
    std::this_thread::sleep_for(50ms);
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

TEST(TokenLeakTest, TokensNeverAppearInLogs) {
  const std::string coord = std::string(WRPN_BINARY_DIR) + "/server/wrpn-coordinator";
  const std::string agent = std::string(WRPN_BINARY_DIR) + "/worker/agent/wrpn-worker";
  ASSERT_TRUE(fs::exists(coord)) << coord;
  if (!fs::exists(agent)) GTEST_SKIP() << "no " << agent;
  const std::string dir = fs::path(testing::TempDir()) / ("tokens-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir + "/tokens") << "admin " << kAdmin << "\nviewer " << kViewer << "\nworker "
                                 << kWorker << "\n";
  std::ofstream(dir + "/worker.token") << kWorker << "\n";
  std::ofstream(dir + "/wrong.token") << kUnknown << "\n";
  const std::string clog = dir + "/coordinator.log", wlog = dir + "/worker.log",
                    blog = dir + "/bad-worker.log";
  pid_t c = Spawn({coord, "--db", dir + "/c.db", "--listen", "127.0.0.1:0", "--http-listen",
                   "127.0.0.1:0", "--token-file", dir + "/tokens", "--lease-ttl", "3"},
                  clog);
  int grpc_port = 0, http_port = 0;
  for (int i = 0; i < 500 && http_port == 0; ++i) {
    const std::string text = ReadAll(clog);
    auto g = text.find("(port ");
    auto h = text.find("HTTP on port ");
    if (g != std::string::npos && h != std::string::npos) {
      grpc_port = std::atoi(text.c_str() + g + 6);
      http_port = std::atoi(text.c_str() + h + 13);
    } else {
      std::this_thread::sleep_for(20ms);
    }
  }
  ASSERT_GT(http_port, 0) << ReadAll(clog);
  ASSERT_GT(grpc_port, 0) << ReadAll(clog);
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(grpc_port),
                                     grpc::InsecureChannelCredentials());
  auto client = pb::Coordinator::NewStub(channel);
  {  // a sweep the worker will try (its trainer, /bin/true, exits without a result)
    pb::SubmitSweepRequest r;
    r.set_spec_text(kQuickSpec);
    pb::SubmitSweepResponse o;
    ASSERT_TRUE(client->SubmitSweep(Ctx(Who::kAdmin).get(), r, &o).ok());
  }
  // Every identity against a few calls, refused ones included.
  for (Who who : {Who::kNone, Who::kMalformed, Who::kUnknown, Who::kAdmin, Who::kViewer,
                  Who::kWorker}) {
    pb::ListSweepsResponse o;
    (void)client->ListSweeps(Ctx(who).get(), {}, &o);
    pb::CancelSweepRequest cr;
    cr.set_sweep_id(99);
    pb::CancelSweepResponse co;
    (void)client->CancelSweep(Ctx(who).get(), cr, &co);
  }
  pid_t w = Spawn({agent, "--coordinator", "127.0.0.1:" + std::to_string(grpc_port),
                   "--token-file", dir + "/worker.token", "--name", "leak-check", "--gpus", "none",
                   "--trainer", "/bin/true", "--work-dir", dir + "/work", "--acquire-interval",
                   "0.2"},
                  wlog);
  pid_t b = Spawn({agent, "--coordinator", "127.0.0.1:" + std::to_string(grpc_port),
                   "--token-file", dir + "/wrong.token", "--name", "bad-token", "--gpus", "none",
                   "--trainer", "/bin/true", "--work-dir", dir + "/work-bad"},
                  blog);
  // Until the good worker has run (and failed) the sweep's trials.
  bool finished = false;
  for (int i = 0; i < 300 && !finished; ++i) {
    pb::GetSweepRequest g;
    g.set_sweep_id(1);
    pb::GetSweepResponse o;
    finished = client->GetSweep(Ctx(Who::kViewer).get(), g, &o).ok() &&
               o.sweep().counts().failed() == o.sweep().counts().total();
    if (!finished) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(finished) << ReadAll(wlog);
  std::string http;
  for (Who who : {Who::kNone, Who::kUnknown, Who::kAdmin, Who::kViewer, Who::kWorker}) {
    for (const char* path : {"/metrics", "/api/v1/sweeps", "/api/v1/sweeps/1",
                             "/api/v1/sweeps/1/trials", "/api/v1/sweeps/1/grid", "/nope"}) {
      http += HttpGet(http_port, path, Header(who)).body;
    }
  }
  Terminate(w);
  Terminate(b);
  Terminate(c);
  const std::string coordinator_log = ReadAll(clog), worker_log = ReadAll(wlog),
                    bad_log = ReadAll(blog);
  // The logs say something, so their being clean means something.
  EXPECT_THAT(coordinator_log, HasSubstr("gRPC on"));
  EXPECT_THAT(worker_log, HasSubstr("leak-check"));
  EXPECT_THAT(bad_log, HasSubstr("bearer token"));
  EXPECT_THAT(http, HasSubstr("wrpn_rpc_requests_total"));
  EXPECT_THAT(http, HasSubstr("\"sweeps\""));
  for (const char* token : {kAdmin, kViewer, kWorker, kUnknown}) {
    // Half a token is as bad as a whole one.
    const std::string part = std::string(token).substr(0, 14);
    EXPECT_THAT(coordinator_log, Not(HasSubstr(part))) << token;
    EXPECT_THAT(worker_log, Not(HasSubstr(part))) << token;
    EXPECT_THAT(bad_log, Not(HasSubstr(part))) << token;
    EXPECT_THAT(http, Not(HasSubstr(part))) << token;
  }
  std::cout << "log bytes checked: coordinator " << coordinator_log.size() << ", worker "
            << worker_log.size() << ", bad-token worker " << bad_log.size() << ", HTTP "
            << http.size() << "\n";
}

}  // namespace
}  // namespace wrpn::server
