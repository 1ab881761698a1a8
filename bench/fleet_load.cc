// Load generator for a running wrpn-coordinator over real gRPC (bench/scale.sh starts one and
// reads its memory). Two phases:
//   fleet: N simulated workers, each registered, holding one lease, heartbeating every
//          --heartbeat seconds and streaming --points-per-sec metric points in batches every
//          --batch-seconds, for --seconds. Reports heartbeat and ReportMetrics latency
//          (p50/p99/max), how late the schedule ran, RPC errors, and checks that every accepted
//          point is stored (GetTrialMetrics per trial afterwards).
//   sweep: submits a --trials-trial CPU sweep, lets --workers simulated workers (--slots leases
//          each) acquire and complete every trial with a fake result, then times GetGrid.
//   huge:  sends one ReportMetrics request of --huge-mib MiB (default 1024); it must be refused
//          with RESOURCE_EXHAUSTED.
// Each phase ends with a COUNTS line (bench/bench_report.h). Exit status: 0 done; 1 the work was
// refused or lost (FAILED lines say why; no rates); 3 (fleet) done and nothing lost, but the load
// was not sustained (p99 heartbeat >= 50 ms or the generator fell behind its schedule).
// Usage: fleet_load --target HOST:PORT --phase fleet|sweep|huge [--workers N] [--seconds S]
//                   [--heartbeat S] [--points-per-sec P] [--batch-seconds S] [--threads T]
//                   [--channels C] [--trials N] [--slots K]
// Simulated workers are spread over T threads (each an event loop of blocking calls) and C
// distinct channels (TCP connections); real workers would each have their own connection.
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <queue>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_report.h"
#include "nlohmann/json.hpp"
#include "wrpn/v1/coordinator.grpc.pb.h"

namespace pb = ::wrpn::v1;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

namespace {

struct Args {
  std::string target = "127.0.0.1:7070";
  std::string phase = "fleet";
  int workers = 1000;
  int seconds = 60;
  double heartbeat = 10;
  double points_per_sec = 10;
  double batch_seconds = 5;
  int threads = 8;
  int channels = 64;
  int trials = 99840;
  int slots = 16;
  int64_t huge_mib = 1024;
};

std::unique_ptr<grpc::ClientContext> Ctx(int seconds = 30) {
  auto c = std::make_unique<grpc::ClientContext>();
  c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return c;
}

// Setup RPCs (register, first lease) wait for the connection instead of failing on a connect
// that fails transiently while 64 connections open at once under load (seen once as UNAVAILABLE
// "failed to connect ... No such file or directory" before any request reached the coordinator);
// the real agent retries registration the same way. The timed phases keep failing fast.
std::unique_ptr<grpc::ClientContext> SetupCtx() {
  auto c = Ctx(120);
  c->set_wait_for_ready(true);
  return c;
}

std::string g_phase = "setup";  // the phase Die reports

[[noreturn]] void Die(const std::string& what, const grpc::Status& st) {
  wrpn::bench::Fail("fleet_load", g_phase,
                    what + " failed: " + st.error_message() + " (code " +
                        std::to_string(static_cast<int>(st.error_code())) + ")");
}

// A CPU sweep of lenet5 with at least `n` trials: 16 weight x 10 activation bit widths x
// ceil(n / 160) seeds (n = 100,000 gives exactly 100,000, the coordinator's limit per sweep).
std::string SweepSpec(const std::string& name, int n) {
  const int seeds = std::max(1, (n + 159) / 160);
  std::string wbits, abits, seed_list;
  for (int i = 1; i <= 16; ++i) wbits += (i > 1 ? "," : "") + std::to_string(i);
  for (int i = 1; i <= 10; ++i) abits += (i > 1 ? "," : "") + std::to_string(i);
  for (int i = 0; i < seeds; ++i) seed_list += (i ? "," : "") + std::to_string(i);
  return "name: " + name + "\naxes: {network: lenet5, width: [1], wbits: [" + wbits +
         "], abits: [" + abits + "], seed: [" + seed_list +
         "]}\nrecipe: {epochs: 1}\nmax_attempts: 3\n";
}

std::vector<std::shared_ptr<grpc::Channel>> Channels(const std::string& target, int n) {
  std::vector<std::shared_ptr<grpc::Channel>> out;
  for (int i = 0; i < n; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("wrpn.channel_index", i);  // distinct arguments: distinct connections
    out.push_back(grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
  }
  return out;
}

double Pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(std::ceil(p * v.size()) - 1));
  return v[i];
}

pb::LeaseRef RefOf(const pb::Lease& l) {
  pb::LeaseRef r;
  r.set_lease_id(l.lease_id());
  r.set_fencing_token(l.fencing_token());
  return r;
}

int64_t SubmitSweep(pb::Coordinator::Stub* api, const std::string& spec) {
  pb::SubmitSweepRequest req;
  req.set_spec_text(spec);
  pb::SubmitSweepResponse resp;
  const auto t0 = Clock::now();
  grpc::Status st = api->SubmitSweep(Ctx(120).get(), req, &resp);
  if (!st.ok()) Die("SubmitSweep", st);
  std::printf("submit: sweep %lld, %lld trials in %.2f s\n", static_cast<long long>(resp.sweep_id()),
              static_cast<long long>(resp.trial_count()),
              std::chrono::duration<double>(Clock::now() - t0).count());
  return resp.sweep_id();
}

std::string Register(pb::WorkerService::Stub* stub, const std::string& name, int slots) {
  pb::RegisterWorkerRequest req;
  req.set_name(name);
  req.set_cpus(slots);
  req.set_max_cpu_trials(slots);
  pb::RegisterWorkerResponse resp;
  grpc::Status st = stub->RegisterWorker(SetupCtx().get(), req, &resp);
  if (!st.ok()) Die("RegisterWorker", st);
  return resp.worker_id();
}

// ---- fleet ----

struct SimWorker {
  pb::WorkerService::Stub* stub = nullptr;
  std::string id;
  pb::Lease lease;
  int64_t step = 0;
  int64_t accepted = 0;  // points the coordinator accepted
};

struct Event {
  Clock::time_point when;
  int worker;
  bool heartbeat;
  bool operator>(const Event& o) const { return when > o.when; }
};

struct ThreadStats {
  std::vector<double> hb_ms, metrics_ms, lag_ms;
  int64_t errors = 0, sent_points = 0;
  std::string first_error;
};

int Fleet(const Args& a) {
  auto channels = Channels(a.target, a.channels);
  auto api = pb::Coordinator::NewStub(channels[0]);
  const int64_t sweep = SubmitSweep(api.get(), SweepSpec("fleet-load", a.workers));
  std::vector<std::unique_ptr<pb::WorkerService::Stub>> stubs;
  for (auto& ch : channels) stubs.push_back(pb::WorkerService::NewStub(ch));
  std::vector<SimWorker> workers(a.workers);
  const auto setup0 = Clock::now();
  {
    std::vector<std::thread> ts;
    for (int t = 0; t < a.threads; ++t) {
      ts.emplace_back([&, t] {
        for (int i = t; i < a.workers; i += a.threads) {
          SimWorker& w = workers[i];
          w.stub = stubs[i % stubs.size()].get();
          w.id = Register(w.stub, "sim-" + std::to_string(i), 1);
          pb::AcquireTrialRequest req;
          req.set_worker_id(w.id);
          req.set_max_trials(1);
          pb::AcquireTrialResponse resp;
          grpc::Status st = w.stub->AcquireTrial(SetupCtx().get(), req, &resp);
          if (!st.ok()) Die("AcquireTrial", st);
          if (resp.leases_size() != 1) {
            wrpn::bench::Fail("fleet_load", g_phase, "worker " + std::to_string(i) + " got " +
                                                         std::to_string(resp.leases_size()) + " leases, not 1");
          }
          w.lease = resp.leases(0);
        }
      });
    }
    for (auto& t : ts) t.join();
  }
  std::printf("fleet: %d workers registered, each holding one lease of sweep %lld (setup %.1f s)\n",
              a.workers, static_cast<long long>(sweep),
              std::chrono::duration<double>(Clock::now() - setup0).count());
  std::fflush(stdout);

  const int per_batch = std::max(1, static_cast<int>(std::lround(a.points_per_sec * a.batch_seconds)));
  const auto hb_every = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(a.heartbeat));
  const auto batch_every = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(a.batch_seconds));
  const auto start = Clock::now() + std::chrono::seconds(1);
  const auto end = start + std::chrono::seconds(a.seconds);
  std::vector<ThreadStats> stats(a.threads);
  std::vector<std::thread> ts;
  for (int t = 0; t < a.threads; ++t) {
    ts.emplace_back([&, t] {
      ThreadStats& s = stats[t];
      std::priority_queue<Event, std::vector<Event>, std::greater<Event>> q;
      for (int i = t; i < a.workers; i += a.threads) {
        // Spread every worker's first heartbeat and batch over one period.
        q.push({start + hb_every * i / a.workers, i, true});
        q.push({start + batch_every * i / a.workers, i, false});
      }
      auto fail = [&](const char* what, const grpc::Status& st) {
        if (s.errors++ == 0) s.first_error = std::string(what) + ": " + st.error_message();
      };
      while (!q.empty()) {
        Event e = q.top();
        q.pop();
        if (e.when >= end) continue;
        std::this_thread::sleep_until(e.when);
        SimWorker& w = workers[e.worker];
        const auto t0 = Clock::now();
        s.lag_ms.push_back(std::chrono::duration<double, std::milli>(t0 - e.when).count());
        if (e.heartbeat) {
          pb::HeartbeatRequest req;
          req.set_worker_id(w.id);
          auto* p = req.add_leases();
          *p->mutable_lease() = RefOf(w.lease);
          p->set_fraction(0.5);
          pb::HeartbeatResponse resp;
          grpc::Status st = w.stub->Heartbeat(Ctx().get(), req, &resp);
          if (!st.ok()) fail("Heartbeat", st);
          else if (resp.commands_size() > 0) fail("Heartbeat", grpc::Status(grpc::StatusCode::ABORTED, "unexpected command (lease lost?)"));
          s.hb_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
          q.push({e.when + hb_every, e.worker, true});
        } else {
          pb::ReportMetricsRequest req;
          *req.mutable_lease() = RefOf(w.lease);
          const int64_t wall = std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch()).count();
          for (int k = 0; k < per_batch; ++k) {
            auto* p = req.add_points();
            p->set_name("train_loss");
            p->set_step(++w.step);
            p->set_value(1.0 / static_cast<double>(w.step));
            p->set_wall_ms(wall);
          }
          pb::ReportMetricsResponse resp;
          grpc::Status st = w.stub->ReportMetrics(Ctx().get(), req, &resp);
          s.sent_points += per_batch;
          if (!st.ok()) fail("ReportMetrics", st);
          else w.accepted += resp.accepted();
          s.metrics_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
          q.push({e.when + batch_every, e.worker, false});
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  ThreadStats all;
  for (auto& s : stats) {
    all.hb_ms.insert(all.hb_ms.end(), s.hb_ms.begin(), s.hb_ms.end());
    all.metrics_ms.insert(all.metrics_ms.end(), s.metrics_ms.begin(), s.metrics_ms.end());
    all.lag_ms.insert(all.lag_ms.end(), s.lag_ms.begin(), s.lag_ms.end());
    all.errors += s.errors;
    all.sent_points += s.sent_points;
    if (all.first_error.empty()) all.first_error = s.first_error;
  }
  int64_t accepted = 0;
  for (auto& w : workers) accepted += w.accepted;
  // Every accepted point must be stored.
  int64_t stored = 0, short_trials = 0;
  for (auto& w : workers) {
    pb::GetTrialMetricsRequest req;
    req.set_trial_id(w.lease.trial_id());
    req.set_name("train_loss");
    pb::GetTrialMetricsResponse resp;
    grpc::Status st = api->GetTrialMetrics(Ctx().get(), req, &resp);
    if (!st.ok()) Die("GetTrialMetrics", st);
    const int64_t n = resp.points_size();
    stored += n;
    if (n != w.accepted) ++short_trials;
  }
  const double secs = a.seconds;
  std::printf(
      "fleet: workers=%d seconds=%d heartbeats=%zu (%.0f/s) metric_batches=%zu (%.0f/s, %d points each)\n"
      "fleet: heartbeat latency ms p50=%.2f p99=%.2f max=%.2f\n"
      "fleet: ReportMetrics latency ms p50=%.2f p99=%.2f max=%.2f\n"
      "fleet: schedule lag ms p50=%.2f p99=%.2f max=%.2f\n"
      "fleet: points sent=%lld accepted=%lld stored=%lld (%.0f points/s) trials_with_missing_points=%lld "
      "rpc_errors=%lld%s%s\n",
      a.workers, a.seconds, all.hb_ms.size(), all.hb_ms.size() / secs, all.metrics_ms.size(),
      all.metrics_ms.size() / secs, per_batch, Pct(all.hb_ms, 0.5), Pct(all.hb_ms, 0.99),
      Pct(all.hb_ms, 1.0), Pct(all.metrics_ms, 0.5), Pct(all.metrics_ms, 0.99),
      Pct(all.metrics_ms, 1.0), Pct(all.lag_ms, 0.5), Pct(all.lag_ms, 0.99), Pct(all.lag_ms, 1.0),
      static_cast<long long>(all.sent_points), static_cast<long long>(accepted),
      static_cast<long long>(stored), stored / secs, static_cast<long long>(short_trials),
      static_cast<long long>(all.errors), all.first_error.empty() ? "" : " first_error=",
      all.first_error.c_str());
  // The offered load only counts if the generator kept to its schedule.
  const bool on_time = Pct(all.lag_ms, 0.99) < 1000.0;
  const bool fast = Pct(all.hb_ms, 0.99) < 50.0;
  wrpn::bench::Report r("fleet_load", "fleet");
  r.Count("workers", a.workers).Count("seconds", a.seconds)
      .Count("heartbeats", static_cast<int64_t>(all.hb_ms.size()))
      .Count("metric_batches", static_cast<int64_t>(all.metrics_ms.size()))
      .Count("points_sent", all.sent_points).Count("points_accepted", accepted)
      .Count("points_stored", stored).Count("trials_with_missing_points", short_trials)
      .Count("rpc_errors", all.errors)
      .Expect(all.errors == 0, "rpc errors, the first: " + all.first_error)
      .Expect(!all.hb_ms.empty() && !all.metrics_ms.empty(), "no heartbeat or no metric batch was sent")
      .Expect(accepted == all.sent_points, "points accepted != points sent")
      .Expect(stored == accepted && short_trials == 0, "points stored != points accepted")
      .Rate("heartbeats_per_s", all.hb_ms.size() / secs).Rate("points_per_s", stored / secs)
      .Rate("heartbeat_p99_ms", Pct(all.hb_ms, 0.99), 2)
      .Rate("report_metrics_p99_ms", Pct(all.metrics_ms, 0.99), 2)
      .Rate("schedule_lag_p99_ms", Pct(all.lag_ms, 0.99), 2)
      .Text("sustained", fast && on_time ? "yes" : "no");
  if (!r.Finish()) return 1;
  std::printf("fleet: %s\n",
              fast && on_time ? "OK (on schedule, nothing lost, p99 heartbeat < 50 ms)"
              : on_time       ? "NOT SUSTAINED (p99 heartbeat >= 50 ms; nothing lost)"
                              : "NOT SUSTAINED (the generator fell behind its schedule: p99 lag >= 1 s)");
  return fast && on_time ? 0 : 3;
}

// ---- sweep ----

double FakeTop1(const std::string& config_json) {
  json c = json::parse(config_json, nullptr, false);
  if (c.is_discarded()) return 0;
  const double w = c.value("width", 1.0), wb = c.value("wbits", 32), ab = c.value("abits", 32);
  return 80.0 + 2.0 * std::log2(w) + 0.3 * std::min(wb, 8.0) + 0.5 * std::min(ab, 8.0) +
         0.01 * static_cast<double>(c.value("seed", 0) % 7);
}

int Sweep(const Args& a) {
  auto channels = Channels(a.target, a.channels);
  auto api = pb::Coordinator::NewStub(channels[0]);
  const int64_t sweep = SubmitSweep(api.get(), SweepSpec("sweep-load", a.trials));
  {
    pb::GetSweepRequest req;
    req.set_sweep_id(sweep);
    pb::GetSweepResponse resp;
    grpc::Status st = api->GetSweep(Ctx().get(), req, &resp);
    if (!st.ok()) Die("GetSweep", st);
    const_cast<Args&>(a).trials = static_cast<int>(resp.sweep().counts().total());
  }
  std::vector<std::unique_ptr<pb::WorkerService::Stub>> stubs;
  for (auto& ch : channels) stubs.push_back(pb::WorkerService::NewStub(ch));
  std::atomic<int64_t> completed{0}, errors{0};
  std::atomic<bool> done{false};
  const auto t0 = Clock::now();
  std::vector<std::thread> ts;
  for (int t = 0; t < a.threads; ++t) {
    ts.emplace_back([&, t] {
      std::vector<std::pair<pb::WorkerService::Stub*, std::string>> mine;
      for (int i = t; i < a.workers; i += a.threads) {
        auto* stub = stubs[i % stubs.size()].get();
        mine.emplace_back(stub, Register(stub, "sweep-sim-" + std::to_string(i), a.slots));
      }
      while (!done.load()) {
        bool got = false;
        for (auto& [stub, id] : mine) {
          pb::AcquireTrialRequest req;
          req.set_worker_id(id);
          req.set_max_trials(a.slots);
          pb::AcquireTrialResponse resp;
          grpc::Status st = stub->AcquireTrial(Ctx().get(), req, &resp);
          if (!st.ok()) {
            ++errors;
            continue;
          }
          for (const pb::Lease& l : resp.leases()) {
            got = true;
            const double top1 = FakeTop1(l.trial_config_json());
            pb::ReportMetricsRequest m;
            *m.mutable_lease() = RefOf(l);
            auto* p = m.add_points();
            p->set_name("top1");
            p->set_step(0);
            p->set_value(top1);
            p->set_wall_ms(1);
            pb::ReportMetricsResponse mr;
            if (!stub->ReportMetrics(Ctx().get(), m, &mr).ok()) ++errors;
            pb::CompleteTrialRequest c;
            *c.mutable_lease() = RefOf(l);
            c.mutable_result()->set_top1(top1);
            c.mutable_result()->set_top5(99);
            c.mutable_result()->set_images_per_sec(1000);
            pb::CompleteTrialResponse cr;
            if (stub->CompleteTrial(Ctx().get(), c, &cr).ok()) ++completed;
            else ++errors;
          }
        }
        if (!got) {
          if (completed.load() >= a.trials) done = true;
          else std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
      }
    });
  }
  // Progress every 10 s; stop when the sweep is finished.
  for (;;) {
    std::this_thread::sleep_for(std::chrono::seconds(2));
    pb::GetSweepRequest req;
    req.set_sweep_id(sweep);
    pb::GetSweepResponse resp;
    grpc::Status st = api->GetSweep(Ctx().get(), req, &resp);
    if (!st.ok()) Die("GetSweep", st);
    const auto& s = resp.sweep();
    if (s.state() == pb::SWEEP_SUCCEEDED || s.state() == pb::SWEEP_FAILED) break;
    static int tick = 0;
    if (++tick % 5 == 0) {
      std::printf("sweep: %lld completed after %.0f s\n", static_cast<long long>(completed.load()),
                  std::chrono::duration<double>(Clock::now() - t0).count());
      std::fflush(stdout);
    }
  }
  done = true;
  for (auto& t : ts) t.join();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  pb::GetSweepResponse final_sweep;
  {
    pb::GetSweepRequest req;
    req.set_sweep_id(sweep);
    grpc::Status st = api->GetSweep(Ctx().get(), req, &final_sweep);
    if (!st.ok()) Die("GetSweep", st);
  }
  std::printf("sweep: %lld trials completed by %d simulated workers (%d slots each) in %.1f s (%.0f trials/s), rpc_errors=%lld\n",
              static_cast<long long>(completed.load()), a.workers, a.slots, secs,
              completed.load() / secs, static_cast<long long>(errors.load()));
  double grid_s = 1e300;
  int64_t cells = 0, seeds = 0, cells_done = 0;
  for (int i = 0; i < 3; ++i) {
    pb::GetGridRequest req;
    req.set_sweep_id(sweep);
    pb::GetGridResponse resp;
    const auto g0 = Clock::now();
    grpc::Status st = api->GetGrid(Ctx(60).get(), req, &resp);
    if (!st.ok()) Die("GetGrid", st);
    const double s = std::chrono::duration<double>(Clock::now() - g0).count();
    grid_s = std::min(grid_s, s);
    std::printf("sweep: GetGrid %d cells in %.3f s\n", resp.cells_size(), s);
    cells = resp.cells_size(), seeds = 0, cells_done = 0;
    for (const pb::GridCell& c : resp.cells()) {
      seeds += c.seeds_size();
      cells_done += c.state() == pb::TRIAL_SUCCEEDED;
    }
  }
  std::printf("sweep: id %lld\n", static_cast<long long>(sweep));
  const auto& counts = final_sweep.sweep().counts();
  wrpn::bench::Report r("fleet_load", "sweep");
  r.Count("trials", a.trials).Count("completed", completed.load())
      .Count("sweeps_succeeded", counts.succeeded()).Count("rpc_errors", errors.load())
      .Count("grid_cells", cells).Count("grid_cells_succeeded", cells_done).Count("grid_seeds", seeds)
      .Count("workers", a.workers).Count("slots", a.slots)
      .Expect(errors.load() == 0, "rpc errors")
      .Expect(final_sweep.sweep().state() == pb::SWEEP_SUCCEEDED, "the sweep did not succeed")
      .Expect(completed.load() == a.trials && counts.succeeded() == a.trials,
              "trials completed or succeeded != trials submitted")
      .Expect(cells == 160 && cells_done == cells && seeds == a.trials,
              "the grid does not hold 160 succeeded cells with every trial as a seed")
      .Rate("seconds", secs, 1).Rate("trials_per_s", completed.load() / secs)
      .Rate("get_grid_best_s", grid_s, 3);
  return r.Finish() ? 0 : 1;
}

// ---- huge ----

// One ReportMetrics request of about --huge-mib MiB (one metric point with a huge name): the
// coordinator must refuse it by its size (RESOURCE_EXHAUSTED) without taking the memory; the
// caller reads the coordinator's peak RSS afterwards.
int Huge(const Args& a) {
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(-1);
  auto ch = grpc::CreateCustomChannel(a.target, grpc::InsecureChannelCredentials(), args);
  auto stub = pb::WorkerService::NewStub(ch);
  pb::ReportMetricsRequest req;
  req.mutable_lease()->set_lease_id("l-1-0");
  req.mutable_lease()->set_fencing_token(1);
  auto* p = req.add_points();
  p->set_name(std::string(static_cast<size_t>(a.huge_mib) << 20, 'x'));
  p->set_value(1);
  pb::ReportMetricsResponse resp;
  const auto t0 = Clock::now();
  grpc::Status st = stub->ReportMetrics(Ctx(120).get(), req, &resp);
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("huge: ReportMetrics of %lld MiB -> code %d (%s) in %.2f s\n",
              static_cast<long long>(a.huge_mib), static_cast<int>(st.error_code()),
              st.error_message().substr(0, 120).c_str(), secs);
  wrpn::bench::Report r("fleet_load", "huge");
  r.Count("mib", a.huge_mib).Count("code", static_cast<int>(st.error_code()))
      .Expect(st.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED,
              "the request was not refused by its size (RESOURCE_EXHAUSTED)")
      .Rate("seconds", secs, 2);
  return r.Finish() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "fleet_load: %s needs a value\n", k.c_str());
      return 2;
    }
    const std::string v = argv[++i];
    try {
      if (k == "--target") a.target = v;
      else if (k == "--phase") a.phase = v;
      else if (k == "--workers") a.workers = std::stoi(v);
      else if (k == "--seconds") a.seconds = std::stoi(v);
      else if (k == "--heartbeat") a.heartbeat = std::stod(v);
      else if (k == "--points-per-sec") a.points_per_sec = std::stod(v);
      else if (k == "--batch-seconds") a.batch_seconds = std::stod(v);
      else if (k == "--threads") a.threads = std::stoi(v);
      else if (k == "--channels") a.channels = std::stoi(v);
      else if (k == "--trials") a.trials = std::stoi(v);
      else if (k == "--slots") a.slots = std::stoi(v);
      else if (k == "--huge-mib") a.huge_mib = std::stoll(v);
      else {
        std::fprintf(stderr, "fleet_load: unknown flag %s\n", k.c_str());
        return 2;
      }
    } catch (const std::exception&) {
      std::fprintf(stderr, "fleet_load: %s: not a number: %s\n", k.c_str(), v.c_str());
      return 2;
    }
  }
  if (a.workers < 1 || a.threads < 1 || a.channels < 1 || a.seconds < 1 || a.heartbeat <= 0 ||
      a.batch_seconds <= 0 || a.trials < 1 || a.trials > 100000 || a.slots < 1) {
    std::fprintf(stderr, "fleet_load: counts must be >= 1 (trials at most 100000)\n");
    return 2;
  }
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }
  g_phase = a.phase;
  std::printf("fleet_load: commit=%s phase=%s target=%s\n", wrpn::bench::Commit(), a.phase.c_str(),
              a.target.c_str());
  if (a.phase == "fleet") return Fleet(a);
  if (a.phase == "sweep") return Sweep(a);
  if (a.phase == "huge") return Huge(a);
  std::fprintf(stderr, "fleet_load: --phase must be fleet, sweep or huge\n");
  return 2;
}
