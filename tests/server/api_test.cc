// End to end: an in-process coordinator (SQLite, real gRPC and HTTP on 127.0.0.1:0) driven by a
// fake worker client and a client stub, with tokens on.
#include <arpa/inet.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "nlohmann/json.hpp"
#include "server/server.h"
#include "server/sqlite_store.h"
#include "tests/fakes/fake_clock.h"
#include "wrpn/v1/coordinator.grpc.pb.h"

namespace wrpn::server {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr const char* kAdmin = "admin-token-0123456789";
constexpr const char* kViewer = "viewer-token-0123456789";
constexpr const char* kWorker = "worker-token-0123456789";

struct HttpResponse {
  int code = 0;
  std::string body;
};

HttpResponse HttpGet(int port, const std::string& path, const std::string& token = "") {
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
  if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
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

std::unique_ptr<grpc::ClientContext> CallCtx(const char* token) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (token) ctx->AddMetadata("authorization", std::string("Bearer ") + token);
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return ctx;
}

template <typename Msg>
nlohmann::json AsJson(const Msg& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;  // empty lists and zeros too, for JSON clients
  EXPECT_TRUE(google::protobuf::util::MessageToJsonString(m, &out, opts).ok());
  return nlohmann::json::parse(out);
}

class ApiTest : public testing::Test {
 protected:
  void SetUp() override {
    db_ = (std::filesystem::path(testing::TempDir()) /
           ("api-" + std::to_string(getpid()) + "-" +
            testing::UnitTest::GetInstance()->current_test_info()->name() + ".db"))
              .string();
    std::filesystem::remove(db_);
    auto auth = Authenticator::FromText(std::string("admin ") + kAdmin + "\nviewer " + kViewer +
                                            "\n# workers\nworker " + kWorker + "\n",
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
    copts.lease_ttl = 30s;
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
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->grpc_port()),
                                       grpc::InsecureChannelCredentials());
    client_ = pb::Coordinator::NewStub(channel);
    worker_ = pb::WorkerService::NewStub(channel);
  }
  void Stop() {
    if (server_) server_->Shutdown(1s);
    server_.reset();
    coordinator_.reset();
    store_.reset();
  }

  static std::unique_ptr<grpc::ClientContext> Ctx(const char* token) { return CallCtx(token); }

  int64_t Submit(const std::string& text, grpc::Status* status = nullptr) {
    pb::SubmitSweepRequest req;
    req.set_spec_text(text);
    pb::SubmitSweepResponse resp;
    grpc::Status st = client_->SubmitSweep(Ctx(kAdmin).get(), req, &resp);
    if (status) *status = st;
    else EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.sweep_id();
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

// A worker that runs trials instantly: per epoch it reports the trainer's metric names, a
// checkpoint, then completes with a top-1 that depends on the bits.
class FakeWorker {
 public:
  FakeWorker(pb::WorkerService::Stub* stub, int cpu_slots) : stub_(stub) {
    pb::RegisterWorkerRequest req;
    // Each fake is its own worker: one registering under the name (and address) of an earlier
    // one would be that worker restarted, and the earlier one's leases would be released.
    static int count = 0;
    req.set_name("fake-" + std::to_string(++count));
    req.set_max_cpu_trials(cpu_slots);
    pb::RegisterWorkerResponse resp;
    grpc::Status st = stub_->RegisterWorker(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    id_ = resp.worker_id();
    EXPECT_EQ(resp.lease_ttl_ms(), 30000);
  }
  std::unique_ptr<grpc::ClientContext> Ctx() { return CallCtx(kWorker); }
  // Runs every lease it gets until none is left; returns trials run.
  int RunAll() {
    int n = 0;
    for (;;) {
      pb::AcquireTrialRequest req;
      req.set_worker_id(id_);
      req.set_max_trials(2);
      pb::AcquireTrialResponse resp;
      grpc::Status st = stub_->AcquireTrial(Ctx().get(), req, &resp);
      EXPECT_TRUE(st.ok()) << st.error_message();
      if (resp.leases_size() == 0) return n;
      for (const pb::Lease& l : resp.leases()) Run(l), ++n;
    }
  }
  void Run(const pb::Lease& l) {
    auto cfg = nlohmann::json::parse(l.trial_config_json());
    const int epochs = cfg["epochs"];
    const double top1 = 60.0 + cfg["wbits"].get<int>() * 0.5 + cfg["width"].get<double>();
    pb::LeaseRef ref;
    ref.set_lease_id(l.lease_id());
    ref.set_fencing_token(l.fencing_token());
    for (int e = 1; e <= epochs; ++e) {
      pb::ReportMetricsRequest m;
      *m.mutable_lease() = ref;
      for (const char* name : {"train_loss", "test_loss", "top1", "top5", "images_per_sec"}) {
        auto* p = m.add_points();
        p->set_name(name);
        p->set_step(e);
        p->set_value(std::string(name) == "top1" ? top1 - (epochs - e) : 1.0 / e);
      }
      pb::ReportMetricsResponse mr;
      grpc::Status st = stub_->ReportMetrics(Ctx().get(), m, &mr);
      EXPECT_TRUE(st.ok()) << st.error_message();
      EXPECT_EQ(mr.accepted(), 5);
      pb::ReportCheckpointRequest ck;
      *ck.mutable_lease() = ref;
      ck.set_epoch(e);
      ck.set_path("/tmp/ckpt/" + std::to_string(l.trial_id()) + "/" + std::to_string(e) + ".pt");
      pb::ReportCheckpointResponse cr;
      EXPECT_TRUE(stub_->ReportCheckpoint(Ctx().get(), ck, &cr).ok());
    }
    pb::CompleteTrialRequest done;
    *done.mutable_lease() = ref;
    done.mutable_result()->set_top1(top1);
    done.mutable_result()->set_top5(top1 + 20);
    done.mutable_result()->set_images_per_sec(1000);
    pb::CompleteTrialResponse dr;
    grpc::Status st = stub_->CompleteTrial(Ctx().get(), done, &dr);
    EXPECT_TRUE(st.ok()) << st.error_message();
  }
  const std::string& id() const { return id_; }

 private:
  pb::WorkerService::Stub* stub_;
  std::string id_;
};

std::string ReadExample(const char* name) {
  std::ifstream in(std::string(WRPN_SOURCE_DIR) + "/examples/sweeps/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST_F(ApiTest, SubmitLeaseReportCompleteGrid) {
  const int64_t sweep = Submit(ReadExample("fashion-quick.yaml"));
  ASSERT_GT(sweep, 0);

  // Watch the sweep while a worker runs it.
  std::vector<pb::WatchSweepResponse> seen;
  std::promise<void> subscribed;
  std::thread watcher([&] {
    pb::WatchSweepRequest req;
    req.set_sweep_id(sweep);
    auto ctx = Ctx(kViewer);
    auto reader = client_->WatchSweep(ctx.get(), req);
    pb::WatchSweepResponse r;
    while (reader->Read(&r)) {
      seen.push_back(r);
      if (seen.size() == 1) subscribed.set_value();
    }
    EXPECT_TRUE(reader->Finish().ok());
  });
  // The stream starts "from now": let it subscribe before any trial moves.
  ASSERT_EQ(subscribed.get_future().wait_for(10s), std::future_status::ready);
  FakeWorker worker(worker_.get(), 2);
  EXPECT_EQ(worker.RunAll(), 8);
  watcher.join();
  ASSERT_GE(seen.size(), 17u);  // first snapshot + leased and succeeded per trial
  EXPECT_EQ(seen.back().sweep().state(), pb::SWEEP_SUCCEEDED);
  EXPECT_EQ(seen.back().sweep().counts().succeeded(), 8);

  pb::GetGridRequest greq;
  greq.set_sweep_id(sweep);
  pb::GetGridResponse grid;
  ASSERT_TRUE(client_->GetGrid(Ctx(kViewer).get(), greq, &grid).ok());
  ASSERT_EQ(grid.cells_size(), 8);
  for (const pb::GridCell& c : grid.cells()) {
    EXPECT_EQ(c.network(), "lenet5");
    EXPECT_EQ(c.state(), pb::TRIAL_SUCCEEDED);
    EXPECT_DOUBLE_EQ(c.final_top1(), 60.0 + c.wbits() * 0.5 + c.width());
    EXPECT_DOUBLE_EQ(c.best_top1(), c.final_top1());
    EXPECT_GT(c.cost_uniform(), 0);
    EXPECT_EQ(c.paper_network(), "alexnet");  // LeNet-5 is compared with AlexNet by family
  }
  EXPECT_LT(grid.cells(1).cost_uniform(), grid.cells(0).cost_uniform());  // 4/4 < 32/32

  pb::GetTrialRequest treq;
  treq.set_trial_id(grid.cells(0).trial_id());
  pb::GetTrialResponse trial;
  ASSERT_TRUE(client_->GetTrial(Ctx(kViewer).get(), treq, &trial).ok());
  EXPECT_EQ(trial.trial().checkpoint_epoch(), 3);
  EXPECT_EQ(trial.attempts_size(), 1);
  EXPECT_EQ(trial.attempts(0).worker_ids(0), worker.id());
  EXPECT_EQ(trial.last_metrics_size(), 5);
  pb::GetTrialMetricsRequest mreq;
  mreq.set_trial_id(trial.trial().id());
  mreq.set_name("top1");
  pb::GetTrialMetricsResponse series;
  ASSERT_TRUE(client_->GetTrialMetrics(Ctx(kViewer).get(), mreq, &series).ok());
  ASSERT_EQ(series.points_size(), 3);
  EXPECT_EQ(series.points(2).step(), 3);

  pb::ListWorkersResponse workers;
  ASSERT_TRUE(client_->ListWorkers(Ctx(kViewer).get(), {}, &workers).ok());
  ASSERT_EQ(workers.workers_size(), 1);
  EXPECT_EQ(workers.workers(0).state(), "alive");
}

TEST_F(ApiTest, ValidationErrorsComeBackAsInvalidArgument) {
  grpc::Status st;
  Submit("axes: {network: vgg16, width: [1], precision: [[4, 4]]}", &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("axes.network: unknown network 'vgg16'"));
  Submit("axes: {network: lenet5, width: [1], precision: [[4, 4]]}\nrecipe: {epochs: -3}", &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("recipe.epochs"));
  pb::ListSweepsResponse list;
  ASSERT_TRUE(client_->ListSweeps(Ctx(kViewer).get(), {}, &list).ok());
  EXPECT_EQ(list.sweeps_size(), 0);
}

TEST_F(ApiTest, TokensAndRoles) {
  pb::ListSweepsResponse list;
  EXPECT_EQ(client_->ListSweeps(Ctx(nullptr).get(), {}, &list).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(client_->ListSweeps(Ctx("not-a-real-token-at-all").get(), {}, &list).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(client_->ListSweeps(Ctx(kViewer).get(), {}, &list).ok());
  EXPECT_TRUE(client_->ListSweeps(Ctx(kAdmin).get(), {}, &list).ok());
  EXPECT_EQ(client_->ListSweeps(Ctx(kWorker).get(), {}, &list).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  pb::SubmitSweepRequest sub;
  sub.set_spec_text("axes: {network: lenet5, width: 1, precision: [[4, 4]]}");
  pb::SubmitSweepResponse sr;
  grpc::Status st = client_->SubmitSweep(Ctx(kViewer).get(), sub, &sr);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(st.error_message(), HasSubstr("admin"));
  pb::RegisterWorkerRequest reg;
  reg.set_name("w");
  pb::RegisterWorkerResponse rr;
  EXPECT_EQ(worker_->RegisterWorker(Ctx(kAdmin).get(), reg, &rr).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(worker_->RegisterWorker(Ctx(kWorker).get(), reg, &rr).ok());
  pb::CancelSweepRequest cancel;
  cancel.set_sweep_id(1);
  pb::CancelSweepResponse cr;
  EXPECT_EQ(client_->CancelSweep(Ctx(kViewer).get(), cancel, &cr).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(client_->CancelSweep(Ctx(kAdmin).get(), cancel, &cr).error_code(),
            grpc::StatusCode::NOT_FOUND);
  // Nothing was written by the refused calls.
  EXPECT_TRUE(client_->ListSweeps(Ctx(kViewer).get(), {}, &list).ok());
  EXPECT_EQ(list.sweeps_size(), 0);
}

TEST_F(ApiTest, StaleFencingTokenIsFailedPrecondition) {
  Submit("axes: {network: lenet5, width: 1, precision: [[4, 4]]}\nmax_attempts: 3");
  FakeWorker w(worker_.get(), 1);
  pb::AcquireTrialRequest req;
  req.set_worker_id(w.id());
  pb::AcquireTrialResponse first;
  ASSERT_TRUE(worker_->AcquireTrial(w.Ctx().get(), req, &first).ok());
  ASSERT_EQ(first.leases_size(), 1);
  clock_.Advance(31s);
  ASSERT_TRUE(coordinator_->Tick().ok());
  FakeWorker w2(worker_.get(), 1);
  req.set_worker_id(w2.id());
  pb::AcquireTrialResponse second;
  ASSERT_TRUE(worker_->AcquireTrial(w2.Ctx().get(), req, &second).ok());
  ASSERT_EQ(second.leases_size(), 1);
  EXPECT_EQ(second.leases(0).attempt(), 2);
  pb::ReportMetricsRequest m;
  m.mutable_lease()->set_lease_id(first.leases(0).lease_id());
  m.mutable_lease()->set_fencing_token(first.leases(0).fencing_token());
  m.add_points()->set_name("top1");
  pb::ReportMetricsResponse mr;
  grpc::Status st = worker_->ReportMetrics(w.Ctx().get(), m, &mr);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  w2.Run(second.leases(0));
  pb::GetSweepRequest gs;
  gs.set_sweep_id(1);
  pb::GetSweepResponse sweep;
  ASSERT_TRUE(client_->GetSweep(Ctx(kViewer).get(), gs, &sweep).ok());
  EXPECT_EQ(sweep.sweep().state(), pb::SWEEP_SUCCEEDED);
  EXPECT_EQ(sweep.sweep().spec().axes(0).network(0), "lenet5");
}

TEST_F(ApiTest, RestartMidSweepLosesNothing) {
  const int64_t sweep = Submit(ReadExample("fashion-quick.yaml"));
  FakeWorker w(worker_.get(), 8);
  pb::AcquireTrialRequest req;
  req.set_worker_id(w.id());
  req.set_max_trials(3);
  pb::AcquireTrialResponse got;
  ASSERT_TRUE(worker_->AcquireTrial(w.Ctx().get(), req, &got).ok());
  ASSERT_EQ(got.leases_size(), 3);
  w.Run(got.leases(0));
  Stop();
  Start();  // same db file, new coordinator, new ports
  FakeWorker again(worker_.get(), 8);
  // The two leases held across the restart are still valid and finish normally.
  FakeWorker resumed(worker_.get(), 1);
  for (int i = 1; i < 3; ++i) resumed.Run(got.leases(i));
  EXPECT_EQ(again.RunAll(), 5);
  pb::ListTrialsRequest lt;
  lt.set_sweep_id(sweep);
  pb::ListTrialsResponse trials;
  ASSERT_TRUE(client_->ListTrials(Ctx(kViewer).get(), lt, &trials).ok());
  ASSERT_EQ(trials.trials_size(), 8);
  for (const auto& t : trials.trials()) {
    EXPECT_EQ(t.state(), pb::TRIAL_SUCCEEDED);
    EXPECT_EQ(t.attempts(), 1) << "trial " << t.id() << " ran more than once";
  }
}

// The web page's files and the JSON endpoints it reads beside the sweep ones (issue #26).
TEST_F(ApiTest, WebPageAndTrialAndWorkerEndpoints) {
  const int64_t sweep = Submit(ReadExample("fashion-quick.yaml"));
  FakeWorker w(worker_.get(), 4);
  w.RunAll();
  const int port = server_->http_port();
  auto page = HttpGet(port, "/");
  ASSERT_EQ(page.code, 200);  // no token: the page holds no data
  EXPECT_THAT(page.body, HasSubstr("<script src=\"/app.js\"></script>"));
  EXPECT_EQ(HttpGet(port, "/index.html").body, page.body);
  EXPECT_THAT(HttpGet(port, "/app.js").body, HasSubstr("sessionStorage"));
  EXPECT_THAT(HttpGet(port, "/style.css").body, HasSubstr("table.grid"));
  EXPECT_EQ(HttpGet(port, "/app.js.map").code, 404);
  EXPECT_EQ(HttpGet(port, "/api/v1/workers").code, 401);
  EXPECT_EQ(HttpGet(port, "/api/v1/trials/1").code, 401);
  EXPECT_EQ(HttpGet(port, "/api/v1/trials/abc", kViewer).code, 400);
  EXPECT_EQ(HttpGet(port, "/api/v1/trials/99999", kViewer).code, 404);
  EXPECT_EQ(HttpGet(port, "/api/v1/trials/1/nope", kViewer).code, 404);
  EXPECT_EQ(HttpGet(port, "/api/v1/workers/x", kViewer).code, 404);

  pb::ListTrialsRequest lt;
  lt.set_sweep_id(sweep);
  pb::ListTrialsResponse trials;
  ASSERT_TRUE(client_->ListTrials(Ctx(kViewer).get(), lt, &trials).ok());
  const int64_t id = trials.trials(0).id();
  const std::string base = "/api/v1/trials/" + std::to_string(id);
  pb::GetTrialRequest gt;
  gt.set_trial_id(id);
  pb::GetTrialResponse trial;
  ASSERT_TRUE(client_->GetTrial(Ctx(kViewer).get(), gt, &trial).ok());
  EXPECT_EQ(nlohmann::json::parse(HttpGet(port, base, kViewer).body), AsJson(trial));
  pb::GetTrialMetricsRequest gm;
  gm.set_trial_id(id);
  pb::GetTrialMetricsResponse metrics;
  ASSERT_TRUE(client_->GetTrialMetrics(Ctx(kViewer).get(), gm, &metrics).ok());
  ASSERT_GT(metrics.points_size(), 0);
  EXPECT_EQ(nlohmann::json::parse(HttpGet(port, base + "/metrics", kViewer).body), AsJson(metrics));
  gm.set_name("top1");
  ASSERT_TRUE(client_->GetTrialMetrics(Ctx(kViewer).get(), gm, &metrics).ok());
  EXPECT_EQ(nlohmann::json::parse(HttpGet(port, base + "/metrics?name=top1", kViewer).body),
            AsJson(metrics));
  pb::ListWorkersResponse workers;
  ASSERT_TRUE(client_->ListWorkers(Ctx(kViewer).get(), {}, &workers).ok());
  ASSERT_EQ(workers.workers_size(), 1);
  EXPECT_EQ(nlohmann::json::parse(HttpGet(port, "/api/v1/workers", kViewer).body)["workers"][0]["id"],
            workers.workers(0).id());
}

TEST_F(ApiTest, HttpEndpointsAndJsonMatchGrpc) {
  const int64_t sweep = Submit(ReadExample("fashion-quick.yaml"));
  FakeWorker w(worker_.get(), 4);
  w.RunAll();
  const int port = server_->http_port();
  ASSERT_GT(port, 0);
  EXPECT_EQ(HttpGet(port, "/healthz").code, 200);
  EXPECT_EQ(HttpGet(port, "/readyz").code, 200);
  EXPECT_EQ(HttpGet(port, "/api/v1/sweeps").code, 401);
  EXPECT_EQ(HttpGet(port, "/api/v1/sweeps", kWorker).code, 403);
  EXPECT_EQ(HttpGet(port, "/api/v1/sweeps/999", kViewer).code, 404);
  EXPECT_EQ(HttpGet(port, "/api/v1/sweeps/abc", kViewer).code, 400);
  EXPECT_EQ(HttpGet(port, "/nope", kViewer).code, 404);

  auto sweeps = HttpGet(port, "/api/v1/sweeps", kViewer);
  ASSERT_EQ(sweeps.code, 200);
  pb::ListSweepsResponse list;
  ASSERT_TRUE(client_->ListSweeps(Ctx(kViewer).get(), {}, &list).ok());
  EXPECT_EQ(nlohmann::json::parse(sweeps.body), AsJson(list));

  const std::string base = "/api/v1/sweeps/" + std::to_string(sweep);
  pb::GetSweepRequest gs;
  gs.set_sweep_id(sweep);
  pb::GetSweepResponse one;
  ASSERT_TRUE(client_->GetSweep(Ctx(kViewer).get(), gs, &one).ok());
  EXPECT_EQ(nlohmann::json::parse(HttpGet(port, base, kViewer).body), AsJson(one));

  pb::ListTrialsRequest lt;
  lt.set_sweep_id(sweep);
  lt.set_page_size(3);
  pb::ListTrialsResponse trials;
  ASSERT_TRUE(client_->ListTrials(Ctx(kViewer).get(), lt, &trials).ok());
  EXPECT_EQ(nlohmann::json::parse(HttpGet(port, base + "/trials?page_size=3", kViewer).body),
            AsJson(trials));

  pb::GetGridRequest gg;
  gg.set_sweep_id(sweep);
  pb::GetGridResponse grid;
  ASSERT_TRUE(client_->GetGrid(Ctx(kViewer).get(), gg, &grid).ok());
  auto grid_json = nlohmann::json::parse(HttpGet(port, base + "/grid", kViewer).body);
  EXPECT_EQ(grid_json, AsJson(grid));
  EXPECT_EQ(grid_json["cells"].size(), 8u);
  for (const auto& cell : grid_json["cells"]) {  // one seed each: no spread, so no std (not 0)
    EXPECT_TRUE(!cell.contains("final_top1_std") || cell["final_top1_std"].is_null()) << cell.dump();
    EXPECT_TRUE(cell.contains("final_top1")) << cell.dump();
  }

  auto metrics = HttpGet(port, "/metrics");
  ASSERT_EQ(metrics.code, 200);
  for (const char* family :
       {"wrpn_sweeps{state=\"succeeded\"} 1", "wrpn_trials{state=\"succeeded\"} 8",
        "wrpn_workers{state=\"alive\"} 1", "wrpn_trial_queue_wait_seconds_bucket",
        "wrpn_trial_duration_seconds_count 8", "wrpn_lease_expirations_total",
        "wrpn_trial_attempts_total{outcome=\"succeeded\"} 8",
        "wrpn_rpc_requests_total{method=\"CompleteTrial\",code=\"OK\"} 8",
        "wrpn_rpc_duration_seconds_bucket{method=\"AcquireTrial\",le=",
        "wrpn_metric_points_ingested_total 120", "wrpn_trial_top1{sweep=\"1\",network=\"lenet5\""}) {
    EXPECT_THAT(metrics.body, HasSubstr(family));
  }
  // The exposition passes the real promtool.
  const std::string promtool = WRPN_PROMTOOL;
  if (promtool.empty() || promtool.find("NOTFOUND") != std::string::npos) {
    GTEST_SKIP() << "promtool not installed";
  }
  const std::string file = db_ + ".metrics.txt";
  std::ofstream(file) << metrics.body;
  const std::string cmd = promtool + " check metrics < " + file + " > " + file + ".out 2>&1";
  int rc = std::system(cmd.c_str());
  std::ifstream out(file + ".out");
  std::stringstream ss;
  ss << out.rdbuf();
  EXPECT_EQ(rc, 0) << ss.str();
}

TEST(ServerOptionsTest, NonLoopbackWithoutTokensIsRefused) {
  FakeClock clock;
  auto store = SqliteStore::Open(":memory:");
  ASSERT_TRUE(store.ok());
  MetricsRegistry registry;
  auto c = Coordinator::Create(store->get(), &clock, &registry, {});
  ASSERT_TRUE(c.ok());
  Authenticator none;
  ServerOptions opts;
  opts.grpc_listen = "0.0.0.0:0";
  opts.http_listen = "";
  auto s = CoordinatorServer::Start(c->get(), &none, &registry, opts);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("--allow-unauthenticated"));
  opts.allow_unauthenticated = true;
  opts.tick_interval = 0ms;
  s = CoordinatorServer::Start(c->get(), &none, &registry, opts);
  EXPECT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(IsLoopbackAddress("127.0.0.1:7070"));
  EXPECT_TRUE(IsLoopbackAddress("[::1]:7070"));
  EXPECT_TRUE(IsLoopbackAddress("localhost:1"));
  EXPECT_FALSE(IsLoopbackAddress("0.0.0.0:7070"));
  EXPECT_FALSE(IsLoopbackAddress("[::]:7070"));
}

TEST(TlsTest, ServesTlsWithCertAndKey) {
  const std::string dir = std::filesystem::path(testing::TempDir()) /
                          ("tls-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
      "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout " + dir + "/key.pem -out " +
      dir + "/cert.pem > " + dir + "/openssl.log 2>&1";
  if (std::system(cmd.c_str()) != 0) GTEST_SKIP() << "openssl could not make a certificate";
  FakeClock clock;
  auto store = SqliteStore::Open(":memory:");
  ASSERT_TRUE(store.ok());
  MetricsRegistry registry;
  auto c = Coordinator::Create(store->get(), &clock, &registry, {});
  ASSERT_TRUE(c.ok());
  Authenticator none;
  ServerOptions opts;
  opts.grpc_listen = "127.0.0.1:0";
  opts.http_listen = "";
  opts.tick_interval = 0ms;
  opts.tls_cert = dir + "/cert.pem";
  opts.tls_key = dir + "/key.pem";
  auto s = CoordinatorServer::Start(c->get(), &none, &registry, opts);
  ASSERT_TRUE(s.ok()) << s.status();
  const std::string target = "127.0.0.1:" + std::to_string((*s)->grpc_port());
  std::ifstream cert_in(opts.tls_cert);
  std::stringstream cert;
  cert << cert_in.rdbuf();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = cert.str();
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  auto tls = pb::Coordinator::NewStub(
      grpc::CreateCustomChannel(target, grpc::SslCredentials(ssl), args));
  pb::ListSweepsResponse list;
  grpc::Status st = tls->ListSweeps(CallCtx(nullptr).get(), {}, &list);
  EXPECT_TRUE(st.ok()) << st.error_message();
  auto plain = pb::Coordinator::NewStub(
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  auto ctx = CallCtx(nullptr);
  ctx->set_deadline(std::chrono::system_clock::now() + 2s);
  EXPECT_FALSE(plain->ListSweeps(ctx.get(), {}, &list).ok());
  opts.tls_key.clear();
  EXPECT_EQ(CoordinatorServer::Start(c->get(), &none, &registry, opts).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// The real binary: starts on free ports, serves /readyz, and on SIGTERM stops and exits 0.
TEST(BinaryTest, SigtermShutsDownGracefully) {
  const std::string binary = std::string(WRPN_BINARY_DIR) + "/server/wrpn-coordinator";
  ASSERT_TRUE(std::filesystem::exists(binary)) << binary;
  const std::string dir = std::filesystem::path(testing::TempDir()) /
                          ("bin-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string db = dir + "/c.db", log = dir + "/c.log";
  std::filesystem::remove(db);
  const std::string config = dir + "/coordinator.toml";  // flags may come from a config file
  std::ofstream(config) << "db = \"" << db << "\"\nlease-ttl = 7\n";
  pid_t pid = fork();
  if (pid == 0) {
    FILE* f = std::freopen(log.c_str(), "w", stderr);
    (void)f;
    execl(binary.c_str(), binary.c_str(), "--config", config.c_str(), "--listen", "127.0.0.1:0",
          "--http-listen", "127.0.0.1:0", static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_GT(pid, 0);
  auto read_log = [&] {
    std::ifstream in(log);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  int http_port = 0;
  for (int i = 0; i < 500 && http_port == 0; ++i) {  // the child needs a moment to start
    const std::string text = read_log();
    auto at = text.find("HTTP on port ");
    if (at != std::string::npos) http_port = std::atoi(text.c_str() + at + 13);
    else std::this_thread::sleep_for(20ms);
  }
  ASSERT_GT(http_port, 0) << read_log();
  EXPECT_EQ(HttpGet(http_port, "/readyz").code, 200);
  EXPECT_THAT(read_log(), HasSubstr("authentication is off, listening on loopback only"));
  EXPECT_THAT(read_log(), HasSubstr("lease TTL 7 s"));
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_THAT(read_log(), HasSubstr("wrpn-coordinator: stopped"));
  auto reopened = SqliteStore::Open(db);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ((*reopened)->schema_version(), 6) << "migration 6: Pareto-pruned sweeps";
}

TEST(AuthenticatorTest, TokenFileErrorsNameTheLine) {
  auto a = Authenticator::FromText("admin short\n", "tokens.txt");
  EXPECT_THAT(std::string(a.status().message()), HasSubstr("tokens.txt:1: token is 5 characters"));
  a = Authenticator::FromText("# c\nroot abcdefghijklmnopqrstuvwxyz\n", "t");
  EXPECT_THAT(std::string(a.status().message()), HasSubstr("t:2: unknown role 'root'"));
  a = Authenticator::FromText("admin abcdefghijklmnopqrstuvwxyz\nviewer abcdefghijklmnopqrstuvwxyz",
                              "t");
  EXPECT_THAT(std::string(a.status().message()), HasSubstr("t:2: duplicate token"));
  EXPECT_FALSE(Authenticator::FromFile("/nonexistent/tokens").ok());
}

// The paper join over the .proto alone (no CLI): a lenet5 sweep is compared with AlexNet (Tables
// 1-2), a resnet20 sweep with ResNet-34 (Table 4), each cell with the paper's value, the paper's
// change from its baseline and ours; /api/v1 gives the same, and paper_ref picks another table.
TEST_F(ApiTest, GridCarriesThePapersValuesAndBothChanges) {
  const int64_t lenet = Submit(ReadExample("fashion-quick.yaml"));
  const int64_t resnet = Submit(R"(name: r20
dataset: {kind: synthetic, train_size: 64, test_size: 64}
axes: {network: resnet20, width: [1, 2], precision: ["32/32", "4/4", "2/2"], seed: [0]}
recipe: {epochs: 1}
resources: {gpus_per_node: 0, nodes: 1}
)");
  FakeWorker w(worker_.get(), 4);
  ASSERT_EQ(w.RunAll(), 8 + 6);
  auto grid = [&](int64_t id, const std::string& ref, grpc::Status* st = nullptr) {
    pb::GetGridRequest req;
    req.set_sweep_id(id);
    req.set_paper_ref(ref);
    pb::GetGridResponse resp;
    grpc::Status s = client_->GetGrid(Ctx(kViewer).get(), req, &resp);
    if (st) *st = s;
    else EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  };
  // The fake's top-1 is 60 + wbits / 2 + width.
  const pb::GetGridResponse l = grid(lenet, "");
  ASSERT_EQ(l.cells_size(), 8);
  EXPECT_FALSE(l.paper_version().empty());
  const pb::GridCell& l44 = l.cells(5);  // 2x w4/a4
  ASSERT_EQ(l44.width(), 2);
  ASSERT_EQ(l44.wbits(), 4);
  EXPECT_EQ(l44.scheme(), "wrpn");
  EXPECT_EQ(l44.paper_network(), "alexnet");
  EXPECT_EQ(l44.paper_table(), "table2");
  EXPECT_DOUBLE_EQ(l44.paper_top1(), 58.6);
  EXPECT_DOUBLE_EQ(l44.paper_delta(), 58.6 - 57.2);
  EXPECT_DOUBLE_EQ(l44.our_delta(), (60 + 2 + 2) - (60 + 16 + 1));
  const pb::GridCell& l11 = l.cells(3);  // 1x w1/a1
  EXPECT_EQ(l11.paper_table(), "table1");
  EXPECT_DOUBLE_EQ(l11.paper_delta(), 44.2 - 57.2);
  ASSERT_EQ(l.baselines_size(), 1);
  EXPECT_EQ(l.baselines(0).network(), "alexnet");

  const pb::GetGridResponse r = grid(resnet, "auto");
  ASSERT_EQ(r.cells_size(), 6);
  for (const pb::GridCell& c : r.cells()) EXPECT_EQ(c.paper_network(), "resnet34");
  EXPECT_DOUBLE_EQ(r.cells(0).paper_top1(), 73.59);
  EXPECT_DOUBLE_EQ(r.cells(0).paper_delta(), 0);
  EXPECT_DOUBLE_EQ(r.cells(0).our_delta(), 0);
  const pb::GridCell& r44 = r.cells(4);  // 2x w4/a4
  EXPECT_EQ(r44.paper_table(), "table4");
  EXPECT_DOUBLE_EQ(r44.paper_top1(), 74.52);
  EXPECT_DOUBLE_EQ(r44.paper_delta(), 74.52 - 73.59);
  EXPECT_DOUBLE_EQ(r44.paper_cost(), 0.5);
  EXPECT_DOUBLE_EQ(r44.our_delta(), (60 + 2 + 2) - (60 + 16 + 1));
  EXPECT_FALSE(r.cells(1).has_paper_top1());  // ResNet-34 has no 1x w4/a4
  EXPECT_EQ(r.baselines(0).network(), "resnet34");

  const pb::GetGridResponse over = grid(lenet, "table4");
  EXPECT_EQ(over.cells(5).paper_network(), "resnet34");
  EXPECT_DOUBLE_EQ(over.cells(5).paper_delta(), 74.52 - 73.59);
  EXPECT_EQ(grid(lenet, "none").cells(5).paper_network(), "");
  grpc::Status bad;
  grid(lenet, "vgg", &bad);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(bad.error_message(), HasSubstr("paper_ref: unknown reference 'vgg'"));

  // /api/v1: the same message as JSON, with the field names the web page and Python client read.
  const int port = server_->http_port();
  const std::string base = "/api/v1/sweeps/";
  for (const auto& [id, ref, expect] : {std::make_tuple(lenet, std::string(), &l),
                                        std::make_tuple(resnet, std::string(), &r),
                                        std::make_tuple(lenet, std::string("table4"), &over)}) {
    auto got = HttpGet(port, base + std::to_string(id) + "/grid" + (ref.empty() ? "" : "?paper_ref=" + ref), kViewer);
    ASSERT_EQ(got.code, 200) << got.body;
    EXPECT_EQ(nlohmann::json::parse(got.body), AsJson(*expect));
  }
  const auto j = nlohmann::json::parse(HttpGet(port, base + std::to_string(resnet) + "/grid", kViewer).body);
  EXPECT_DOUBLE_EQ(j["cells"][4]["paper_delta"].get<double>(), 74.52 - 73.59);
  EXPECT_DOUBLE_EQ(j["cells"][4]["our_delta"].get<double>(), -13.0);
  EXPECT_EQ(j["cells"][4]["paper_network"], "resnet34");
  EXPECT_EQ(j["cells"][4]["scheme"], "wrpn");
  auto refused = HttpGet(port, base + std::to_string(lenet) + "/grid?paper_ref=vgg", kViewer);
  EXPECT_EQ(refused.code, 400);
  EXPECT_THAT(refused.body, HasSubstr("paper_ref: unknown reference 'vgg'"));
}

}  // namespace
}  // namespace wrpn::server
