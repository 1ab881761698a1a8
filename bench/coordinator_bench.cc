// Coordinator throughput over real gRPC: simulated workers against an in-process coordinator
// (SQLite on disk, WAL) on 127.0.0.1.
//   leases:  each worker loops AcquireTrial -> CompleteTrial; reports leases dispatched per second.
//   metrics: each worker holds one lease and loops ReportMetrics with batches of points; reports
//            metric points ingested per second.
// Usage: coordinator_bench [--seconds 60] [--workers 8] [--batch 1000] [--phase both|leases|metrics]
//                          [--slots 4] [--db PATH]
// Each simulated worker has `slots` CPU slots and asks for that many trials per AcquireTrial.
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "server/coordinator.h"
#include "server/server.h"
#include "server/sqlite_store.h"
#include "wrpn/v1/coordinator.grpc.pb.h"

namespace pb = ::wrpn::v1;
using namespace wrpn::server;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  int seconds = 60;
  int workers = 8;
  int batch = 1000;
  int slots = 4;
  std::string phase = "both";
  std::string db;
};

// 40 widths x 16 x 16 bit pairs x 9 seeds = 92,160 CPU trials of lenet5.
std::string BigSweep(int n) {
  std::string widths, bits, seeds;
  for (int i = 1; i <= 40; ++i) widths += (i > 1 ? "," : "") + std::to_string(i * 0.2).substr(0, 4);
  for (int i = 1; i <= 16; ++i) bits += (i > 1 ? "," : "") + std::to_string(i);
  for (int i = 0; i < 9; ++i) seeds += (i ? "," : "") + std::to_string(i + 9 * n);
  return "name: bench-" + std::to_string(n) + "\naxes: {network: lenet5, width: [" + widths +
         "], wbits: [" + bits + "], abits: [" + bits + "], seed: [" + seeds +
         "]}\nrecipe: {epochs: 1}\n";
}

std::unique_ptr<grpc::ClientContext> Ctx() {
  auto c = std::make_unique<grpc::ClientContext>();
  c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return c;
}

std::string Register(pb::WorkerService::Stub* stub, int slots) {
  pb::RegisterWorkerRequest req;
  req.set_name("bench");
  req.set_max_cpu_trials(slots);
  pb::RegisterWorkerResponse resp;
  grpc::Status st = stub->RegisterWorker(Ctx().get(), req, &resp);
  if (!st.ok()) {
    std::fprintf(stderr, "register: %s\n", st.error_message().c_str());
    std::exit(1);
  }
  return resp.worker_id();
}

// Runs `body` on `workers` threads for `seconds`; prints the rate of every 10 s window and the
// overall rate. `body` adds what it did to its counter as it goes and returns when `stop` is set.
double Measure(const char* what, int workers, int seconds,
               const std::function<void(int, const std::atomic<bool>&, std::atomic<int64_t>&)>&
                   body) {
  std::atomic<bool> stop{false};
  std::vector<std::atomic<int64_t>> counts(workers);
  for (auto& c : counts) c = 0;
  auto total = [&] {
    int64_t n = 0;
    for (auto& c : counts) n += c.load(std::memory_order_relaxed);
    return n;
  };
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (int i = 0; i < workers; ++i) {
    threads.emplace_back([&, i] { body(i, stop, counts[i]); });
  }
  int64_t last = 0;
  double min_window = 1e300;
  for (int s = 10; s <= seconds; s += 10) {
    std::this_thread::sleep_until(start + std::chrono::seconds(s));
    const int64_t now = total();
    const double rate = static_cast<double>(now - last) / 10.0;
    min_window = std::min(min_window, rate);
    std::printf("%-8s window %3d-%3d s: %.0f/s\n", what, s - 10, s, rate);
    std::fflush(stdout);
    last = now;
  }
  std::this_thread::sleep_until(start + std::chrono::seconds(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  const double rate = static_cast<double>(total()) / secs;
  std::printf("%-8s total=%lld seconds=%.1f rate=%.0f/s slowest-10s-window=%.0f/s workers=%d\n",
              what, static_cast<long long>(total()), secs, rate,
              min_window == 1e300 ? rate : min_window, workers);
  std::fflush(stdout);
  return rate;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--seconds") a.seconds = std::stoi(v);
    else if (k == "--workers") a.workers = std::stoi(v);
    else if (k == "--batch") a.batch = std::stoi(v);
    else if (k == "--slots") a.slots = std::stoi(v);
    else if (k == "--phase") a.phase = v;
    else if (k == "--db") a.db = v;
    else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  if (a.db.empty()) {
    a.db = (std::filesystem::temp_directory_path() /
            ("coordinator_bench-" + std::to_string(getpid()) + ".db")).string();
  }
  std::filesystem::remove(a.db);
  auto store = SqliteStore::Open(a.db);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", std::string(store.status().message()).c_str());
    return 1;
  }
  wrpn::SystemClock clock;
  MetricsRegistry registry;
  CoordinatorOptions copts;
  copts.lease_ttl = std::chrono::seconds(120);
  auto coordinator = Coordinator::Create(store->get(), &clock, &registry, copts);
  if (!coordinator.ok()) return 1;
  Authenticator no_auth;
  ServerOptions sopts;
  sopts.grpc_listen = "127.0.0.1:0";
  sopts.http_listen = "";
  auto server = CoordinatorServer::Start(coordinator->get(), &no_auth, &registry, sopts);
  if (!server.ok()) {
    std::fprintf(stderr, "%s\n", std::string(server.status().message()).c_str());
    return 1;
  }
  const std::string target = "127.0.0.1:" + std::to_string((*server)->grpc_port());
  std::printf("coordinator_bench: db=%s workers=%d slots=%d seconds=%d batch=%d cores=%u\n",
              a.db.c_str(), a.workers, a.slots, a.seconds, a.batch,
              std::thread::hardware_concurrency());

  auto client = pb::Coordinator::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  auto submit = [&](const std::string& text) {
    pb::SubmitSweepRequest req;
    req.set_spec_text(text);
    pb::SubmitSweepResponse resp;
    const auto t0 = Clock::now();
    grpc::Status st = client->SubmitSweep(Ctx().get(), req, &resp);
    if (!st.ok()) {
      std::fprintf(stderr, "submit: %s\n", st.error_message().c_str());
      std::exit(1);
    }
    std::printf("submit   trials=%lld seconds=%.2f\n", static_cast<long long>(resp.trial_count()),
                std::chrono::duration<double>(Clock::now() - t0).count());
    return resp.trial_count();
  };

  // Each worker thread has its own channel, like separate worker processes.
  std::vector<std::unique_ptr<pb::WorkerService::Stub>> stubs;
  std::vector<std::string> ids;
  for (int i = 0; i < a.workers; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("grpc.channel_id", i);  // distinct connections
    stubs.push_back(pb::WorkerService::NewStub(
        grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args)));
    ids.push_back(Register(stubs.back().get(), a.slots));
  }

  if (a.phase == "both" || a.phase == "leases") {
    int64_t queued = 0;
    int sweeps = 0;
    // Enough queued trials that the workers never run dry at up to ~5,000 leases/s.
    while (queued < static_cast<int64_t>(a.seconds) * 5000 && sweeps < 4) {
      queued += submit(BigSweep(sweeps++));
    }
    Measure("leases", a.workers, a.seconds,
            [&](int i, const std::atomic<bool>& stop, std::atomic<int64_t>& n) {
      pb::AcquireTrialRequest req;
      req.set_worker_id(ids[i]);
      req.set_max_trials(a.slots);  // a worker asks for as many trials as it has free slots
      while (!stop.load(std::memory_order_relaxed)) {
        pb::AcquireTrialResponse resp;
        if (!stubs[i]->AcquireTrial(Ctx().get(), req, &resp).ok() || resp.leases_size() == 0) {
          return;
        }
        for (const pb::Lease& l : resp.leases()) {
          pb::CompleteTrialRequest done;
          done.mutable_lease()->set_lease_id(l.lease_id());
          done.mutable_lease()->set_fencing_token(l.fencing_token());
          done.mutable_result()->set_top1(50);
          pb::CompleteTrialResponse dr;
          if (!stubs[i]->CompleteTrial(Ctx().get(), done, &dr).ok()) return;
          n.fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  }
  if (a.phase == "both" || a.phase == "metrics") {
    submit("name: metrics\naxes: {network: lenet5, width: [1, 2, 3, 4], wbits: [1, 2, 3, 4, 5, 6, 7, 8], "
           "abits: [1, 2, 4, 8]}\n");
    std::vector<pb::LeaseRef> leases(a.workers);
    for (int i = 0; i < a.workers; ++i) {
      pb::AcquireTrialRequest req;
      req.set_worker_id(ids[i]);
      pb::AcquireTrialResponse resp;
      if (!stubs[i]->AcquireTrial(Ctx().get(), req, &resp).ok() || resp.leases_size() == 0) {
        std::fprintf(stderr, "no lease for the metrics phase\n");
        return 1;
      }
      leases[i].set_lease_id(resp.leases(0).lease_id());
      leases[i].set_fencing_token(resp.leases(0).fencing_token());
    }
    Measure("points", a.workers, a.seconds,
            [&](int i, const std::atomic<bool>& stop, std::atomic<int64_t>& n) {
      pb::ReportMetricsRequest req;
      *req.mutable_lease() = leases[i];
      static const char* kNames[] = {"train_loss", "test_loss", "top1", "top5", "lr"};
      for (int p = 0; p < a.batch; ++p) {
        auto* pt = req.add_points();
        pt->set_name(kNames[p % 5]);
        pt->set_step(p / 5);
        pt->set_value(0.5 + p);
        pt->set_wall_ms(1700000000000LL + p);
      }
      while (!stop.load(std::memory_order_relaxed)) {
        pb::ReportMetricsResponse resp;
        grpc::Status st = stubs[i]->ReportMetrics(Ctx().get(), req, &resp);
        if (!st.ok()) {
          std::fprintf(stderr, "report: %s\n", st.error_message().c_str());
          return;
        }
        n.fetch_add(resp.accepted(), std::memory_order_relaxed);
      }
    });
  }
  (*server)->Shutdown(std::chrono::seconds(5));
  server->reset();
  coordinator->reset();
  store->reset();
  std::filesystem::remove(a.db);
  std::filesystem::remove(a.db + "-wal");
  std::filesystem::remove(a.db + "-shm");
  return 0;
}
