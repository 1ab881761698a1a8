// Coordinator throughput over real gRPC: simulated workers against an in-process coordinator
// (SQLite on disk, WAL) on 127.0.0.1.
//   leases:  each worker loops AcquireTrial -> CompleteTrial; reports leases dispatched per second.
//            Checked: leases granted == leases completed == trials the sweeps count as succeeded,
//            the queue never ran dry, no RPC failed.
//   metrics: each worker holds one lease and loops ReportMetrics with batches of new points (steps
//            and wall times advance every batch); reports distinct metric points stored per
//            second. Checked: points accepted == points sent == rows in the database, per trial.
// A phase whose work was refused or skipped prints FAILED lines with the reason instead of its
// rates and the benchmark exits 1 (bench/bench_report.h).
// Usage: coordinator_bench [--seconds 60] [--workers 8] [--batch 1000] [--phase both|leases|metrics]
//                          [--slots 4] [--db PATH] [--repeat-batch]
// Each simulated worker has `slots` CPU slots and asks for that many trials per AcquireTrial.
// --repeat-batch re-sends each worker's first batch (the resend a fixed coordinator stores once):
// the metrics phase must then fail; the `bench` ctest checks that it does.
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <sqlite3.h>

#include "bench/bench_report.h"
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
  bool repeat_batch = false;
};

constexpr int kTrialsPerSeed = 40 * 16 * 16;
constexpr int kMaxSeedsPerSweep = 9;

// 40 widths x 16 x 16 bit pairs x `seeds` seeds (at most 9: 92,160 CPU trials of lenet5).
std::string BigSweep(int n, int seeds) {
  std::string widths, bits, seed_list;
  for (int i = 1; i <= 40; ++i) widths += (i > 1 ? "," : "") + std::to_string(i * 0.2).substr(0, 4);
  for (int i = 1; i <= 16; ++i) bits += (i > 1 ? "," : "") + std::to_string(i);
  for (int i = 0; i < seeds; ++i) seed_list += (i ? "," : "") + std::to_string(i + kMaxSeedsPerSweep * n);
  return "name: bench-" + std::to_string(n) + "\naxes: {network: lenet5, width: [" + widths +
         "], wbits: [" + bits + "], abits: [" + bits + "], seed: [" + seed_list +
         "]}\nrecipe: {epochs: 1}\n";
}

std::unique_ptr<grpc::ClientContext> Ctx() {
  auto c = std::make_unique<grpc::ClientContext>();
  c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return c;
}

std::string RpcError(const char* rpc, const grpc::Status& st) {
  return std::string(rpc) + " failed: " + st.error_message();
}

std::string Register(pb::WorkerService::Stub* stub, int slots) {
  pb::RegisterWorkerRequest req;
  req.set_name("bench");
  req.set_max_cpu_trials(slots);
  pb::RegisterWorkerResponse resp;
  grpc::Status st = stub->RegisterWorker(Ctx().get(), req, &resp);
  if (!st.ok()) {
    wrpn::bench::Fail("coordinator_bench", "register", RpcError("RegisterWorker", st));
  }
  return resp.worker_id();
}

struct Measured {
  int64_t total = 0;      // what the workers counted
  double seconds = 0;
  double min_window = 0;  // the slowest 10 s window's rate (the overall rate for shorter runs)
  std::vector<std::string> errors;  // why a worker stopped before the end, one per worker
};

// A worker's loop: adds what it did to `n` as it goes, returns when `stop` is set ("") or when
// its work is refused (the reason).
using Body = std::function<std::string(int, const std::atomic<bool>&, std::atomic<int64_t>&)>;

// Runs `body` on `workers` threads for `seconds`; prints the rate of every 10 s window.
Measured Measure(const char* what, int workers, int seconds, const Body& body) {
  std::atomic<bool> stop{false};
  std::vector<std::atomic<int64_t>> counts(workers);
  for (auto& c : counts) c = 0;
  auto total = [&] {
    int64_t n = 0;
    for (auto& c : counts) n += c.load(std::memory_order_relaxed);
    return n;
  };
  std::vector<std::string> errors(workers);
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (int i = 0; i < workers; ++i) {
    threads.emplace_back([&, i] { errors[i] = body(i, stop, counts[i]); });
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
  Measured m;
  m.total = total();
  m.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  m.min_window = min_window == 1e300 ? static_cast<double>(m.total) / m.seconds : min_window;
  for (int i = 0; i < workers; ++i) {
    if (!errors[i].empty()) m.errors.push_back("worker " + std::to_string(i) + ": " + errors[i]);
  }
  return m;
}

void AddRates(wrpn::bench::Report& r, const Measured& m, int workers) {
  r.Count("workers", workers);
  for (const std::string& e : m.errors) r.Expect(false, e);
  r.Rate("seconds", m.seconds, 1)
      .Rate("rate_per_s", static_cast<double>(m.total) / m.seconds)
      .Rate("slowest_10s_window_per_s", m.min_window);
}

// Metric rows per trial in the database file, read over a separate SQLite connection.
std::map<int64_t, int64_t> StoredPointsPerTrial(const std::string& path, std::string* error) {
  std::map<int64_t, int64_t> out;
  sqlite3* db = nullptr;
  sqlite3_stmt* q = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "SELECT trial_id, COUNT(*) FROM metrics GROUP BY trial_id", -1, &q,
                         nullptr) != SQLITE_OK) {
    *error = std::string("cannot count the stored points: ") + sqlite3_errmsg(db);
  } else {
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) out[sqlite3_column_int64(q, 0)] = sqlite3_column_int64(q, 1);
    if (rc != SQLITE_DONE) *error = std::string("cannot count the stored points: ") + sqlite3_errmsg(db);
  }
  sqlite3_finalize(q);
  sqlite3_close(db);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--repeat-batch") {
      a.repeat_batch = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "coordinator_bench: %s needs a value\n", k.c_str());
      return 2;
    }
    const std::string v = argv[++i];
    try {
      if (k == "--seconds") a.seconds = std::stoi(v);
      else if (k == "--workers") a.workers = std::stoi(v);
      else if (k == "--batch") a.batch = std::stoi(v);
      else if (k == "--slots") a.slots = std::stoi(v);
      else if (k == "--phase") a.phase = v;
      else if (k == "--db") a.db = v;
      else {
        std::fprintf(stderr, "coordinator_bench: unknown flag %s\n", k.c_str());
        return 2;
      }
    } catch (const std::exception&) {
      std::fprintf(stderr, "coordinator_bench: %s: not a number: %s\n", k.c_str(), v.c_str());
      return 2;
    }
  }
  if (a.seconds < 1 || a.workers < 1 || a.batch < 5 || a.slots < 1 ||
      (a.phase != "both" && a.phase != "leases" && a.phase != "metrics")) {
    std::fprintf(stderr, "coordinator_bench: --seconds, --workers, --slots must be >= 1, --batch >= 5, "
                         "--phase both|leases|metrics\n");
    return 2;
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
  std::printf("coordinator_bench: commit=%s db=%s workers=%d slots=%d seconds=%d batch=%d cores=%u\n",
              wrpn::bench::Commit(), a.db.c_str(), a.workers, a.slots, a.seconds, a.batch,
              std::thread::hardware_concurrency());

  auto client = pb::Coordinator::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  auto submit = [&](const std::string& text) {
    pb::SubmitSweepRequest req;
    req.set_spec_text(text);
    pb::SubmitSweepResponse resp;
    const auto t0 = Clock::now();
    grpc::Status st = client->SubmitSweep(Ctx().get(), req, &resp);
    if (!st.ok()) {
      wrpn::bench::Fail("coordinator_bench", "submit", RpcError("SubmitSweep", st));
    }
    std::printf("submit   trials=%lld seconds=%.2f\n", static_cast<long long>(resp.trial_count()),
                std::chrono::duration<double>(Clock::now() - t0).count());
    return resp;
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

  auto close_coordinator = [&] {
    if (*server) (*server)->Shutdown(std::chrono::seconds(5));
    server->reset();
    coordinator->reset();
    store->reset();
  };
  bool ok = true;
  if (a.phase == "both" || a.phase == "leases") {
    // Enough queued trials that the workers never run dry at up to 5,000 leases/s.
    std::vector<int64_t> sweeps;
    int64_t queued = 0;
    for (int seeds = static_cast<int>((a.seconds * 5000LL + kTrialsPerSeed - 1) / kTrialsPerSeed);
         seeds > 0; seeds -= kMaxSeedsPerSweep) {
      auto resp = submit(BigSweep(static_cast<int>(sweeps.size()), std::min(seeds, kMaxSeedsPerSweep)));
      sweeps.push_back(resp.sweep_id());
      queued += resp.trial_count();
    }
    std::atomic<int64_t> granted{0};
    const Measured m = Measure("leases", a.workers, a.seconds,
                               [&](int i, const std::atomic<bool>& stop, std::atomic<int64_t>& n) {
      pb::AcquireTrialRequest req;
      req.set_worker_id(ids[i]);
      req.set_max_trials(a.slots);  // a worker asks for as many trials as it has free slots
      while (!stop.load(std::memory_order_relaxed)) {
        pb::AcquireTrialResponse resp;
        grpc::Status st = stubs[i]->AcquireTrial(Ctx().get(), req, &resp);
        if (!st.ok()) return RpcError("AcquireTrial", st);
        if (resp.leases_size() == 0) return std::string("AcquireTrial granted nothing: the queue ran dry");
        granted.fetch_add(resp.leases_size(), std::memory_order_relaxed);
        for (const pb::Lease& l : resp.leases()) {
          pb::CompleteTrialRequest done;
          done.mutable_lease()->set_lease_id(l.lease_id());
          done.mutable_lease()->set_fencing_token(l.fencing_token());
          done.mutable_result()->set_top1(50);
          pb::CompleteTrialResponse dr;
          st = stubs[i]->CompleteTrial(Ctx().get(), done, &dr);
          if (!st.ok()) return RpcError("CompleteTrial", st);
          n.fetch_add(1, std::memory_order_relaxed);
        }
      }
      return std::string();
    });
    int64_t succeeded = 0;
    for (int64_t id : sweeps) {
      pb::GetSweepRequest req;
      req.set_sweep_id(id);
      pb::GetSweepResponse resp;
      grpc::Status st = client->GetSweep(Ctx().get(), req, &resp);
      if (st.ok()) succeeded += resp.sweep().counts().succeeded();
      else std::printf("leases: %s\n", RpcError("GetSweep", st).c_str());
    }
    wrpn::bench::Report r("coordinator_bench", "leases");
    r.Count("queued", queued).Count("granted", granted).Count("completed", m.total)
        .Count("sweeps_succeeded", succeeded).Count("slots", a.slots)
        .Expect(m.total > 0, "no lease was completed")
        .Expect(granted == m.total, "leases granted != leases completed")
        .Expect(succeeded == m.total, "trials the sweeps count as succeeded != leases completed");
    AddRates(r, m, a.workers);
    ok = r.Finish() && ok;
  }
  if (a.phase == "both" || a.phase == "metrics") {
    submit("name: metrics\naxes: {network: lenet5, width: [1, 2, 3, 4], wbits: [1, 2, 3, 4, 5, 6, 7, 8], "
           "abits: [1, 2, 4, 8]}\n");
    std::vector<pb::LeaseRef> leases(a.workers);
    std::vector<int64_t> trial_of(a.workers);
    for (int i = 0; i < a.workers; ++i) {
      pb::AcquireTrialRequest req;
      req.set_worker_id(ids[i]);
      pb::AcquireTrialResponse resp;
      if (!stubs[i]->AcquireTrial(Ctx().get(), req, &resp).ok() || resp.leases_size() == 0) {
        wrpn::bench::Fail("coordinator_bench", "points", "no lease for the metrics phase");
      }
      leases[i].set_lease_id(resp.leases(0).lease_id());
      leases[i].set_fencing_token(resp.leases(0).fencing_token());
      trial_of[i] = resp.leases(0).trial_id();
    }
    std::vector<int64_t> sent(a.workers, 0), accepted(a.workers, 0);
    const Measured m = Measure("points", a.workers, a.seconds,
                               [&](int i, const std::atomic<bool>& stop, std::atomic<int64_t>& n) {
      static const char* kNames[] = {"train_loss", "test_loss", "top1", "top5", "lr"};
      const int per_name = a.batch / 5;
      pb::ReportMetricsRequest req;
      *req.mutable_lease() = leases[i];
      for (int64_t b = 0; !stop.load(std::memory_order_relaxed); ++b) {
        // Batch b carries steps b * per_name ... (b + 1) * per_name - 1 of each name, so every
        // point is new; --repeat-batch sends batch 0 again and again.
        if (b == 0 || !a.repeat_batch) {
          req.clear_points();
          for (int p = 0; p < per_name * 5; ++p) {
            const int64_t step = b * per_name + p / 5;
            auto* pt = req.add_points();
            pt->set_name(kNames[p % 5]);
            pt->set_step(step);
            pt->set_value(1.0 / static_cast<double>(step + 1));
            pt->set_wall_ms(1700000000000LL + step);
          }
        }
        pb::ReportMetricsResponse resp;
        grpc::Status st = stubs[i]->ReportMetrics(Ctx().get(), req, &resp);
        if (!st.ok()) return RpcError("ReportMetrics", st);
        sent[i] += req.points_size();
        accepted[i] += resp.accepted();
        n.fetch_add(resp.accepted(), std::memory_order_relaxed);
      }
      return std::string();
    });
    // Counted once the coordinator has closed the database (it may hold it locked).
    close_coordinator();
    int64_t total_sent = 0, total_accepted = 0, total_stored = 0, short_trials = 0;
    std::string count_error;
    const auto stored = StoredPointsPerTrial(a.db, &count_error);
    for (int i = 0; i < a.workers; ++i) {
      total_sent += sent[i];
      total_accepted += accepted[i];
      const auto it = stored.find(trial_of[i]);
      const int64_t n = it == stored.end() ? 0 : it->second;
      total_stored += n;
      short_trials += n != sent[i];
    }
    wrpn::bench::Report r("coordinator_bench", "points");
    r.Count("batch", a.batch / 5 * 5).Count("sent", total_sent).Count("accepted", total_accepted)
        .Count("stored", total_stored).Count("trials_with_missing_points", short_trials)
        .Expect(count_error.empty(), count_error)
        .Expect(total_sent > 0, "no point was sent")
        .Expect(total_accepted == total_sent,
                "points accepted != points sent: the coordinator refused " +
                    std::to_string(total_sent - total_accepted) + " points as already stored")
        .Expect(total_stored == total_accepted, "points stored != points accepted")
        .Expect(short_trials == 0, "a trial's stored points != the points sent for it");
    AddRates(r, m, a.workers);
    ok = r.Finish() && ok;
  }
  close_coordinator();
  std::filesystem::remove(a.db);
  std::filesystem::remove(a.db + "-wal");
  std::filesystem::remove(a.db + "-shm");
  return ok ? 0 : 1;
}
