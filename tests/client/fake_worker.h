#pragma once
// FakeWorker: a worker that speaks the WorkerService RPCs but trains nothing. For each lease it
// reports per-epoch metrics (train_loss, test_loss, top1, top5, images_per_sec) and a checkpoint
// from the lease's resume epoch on, then completes the trial with a top-1 from a deterministic
// model of width and bits (SyntheticTop1), or fails it when `fail` says so. Like wrpn-train, it
// stops at the lease's stop_at_epoch (a Pareto rung) and reports `interrupted` there. Used by the CLI tests and the
// wrpn-fake-worker tool. Not thread-safe; one per thread.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "nlohmann/json.hpp"
#include "wrpn/v1/coordinator.grpc.pb.h"

namespace wrpn::testing {

namespace pb = ::wrpn::v1;

// A made-up but WRPN-shaped accuracy: lower precision costs accuracy, activations more than
// weights, and width buys it back. Deterministic; seeds move it by a few hundredths.
inline double SyntheticTop1(double width, int wbits, int abits, int64_t seed) {
  auto loss = [](int bits, double scale) { return bits >= 32 ? 0.0 : scale * std::pow(2.0, 1.0 - bits) * 2.0; };
  double top1 = 89.0 - loss(wbits, 1.2) - loss(abits, 2.0) + 1.6 * std::log2(width);
  return std::round((top1 + 0.03 * static_cast<double>(seed % 5)) * 100.0) / 100.0;
}

class FakeWorker {
 public:
  FakeWorker(pb::WorkerService::Stub* stub, std::string token, int cpu_slots = 2,
             std::string name = "fake-worker")
      : stub_(stub), token_(std::move(token)) {
    pb::RegisterWorkerRequest req;
    req.set_name(name);
    req.set_address("127.0.0.1");
    req.set_cpus(2);
    req.set_max_cpu_trials(cpu_slots);
    pb::RegisterWorkerResponse resp;
    status_ = stub_->RegisterWorker(Ctx().get(), req, &resp);
    id_ = resp.worker_id();
  }
  const grpc::Status& status() const { return status_; }
  const std::string& id() const { return id_; }

  // Pause after each epoch (the tool uses it so `sweep watch` has something to show).
  std::chrono::milliseconds epoch_delay{0};
  // Returns a failure reason for trials that should fail ("" = succeed).
  std::function<std::string(const nlohmann::json& config)> fail;

  // Runs every lease it gets until the coordinator has none left; returns trials run.
  int RunAll() {
    int n = 0;
    for (;;) {
      pb::AcquireTrialRequest req;
      req.set_worker_id(id_);
      req.set_max_trials(1);
      pb::AcquireTrialResponse resp;
      status_ = stub_->AcquireTrial(Ctx().get(), req, &resp);
      if (!status_.ok() || resp.leases_size() == 0) return n;
      for (const pb::Lease& l : resp.leases()) {
        if (!Run(l)) return n;
        ++n;
      }
    }
  }

  bool Run(const pb::Lease& l) {
    const auto cfg = nlohmann::json::parse(l.trial_config_json());
    const int epochs = cfg.value("epochs", 1);
    const double width = cfg.value("width", 1.0);
    const int wbits = cfg.value("wbits", 32), abits = cfg.value("abits", 32);
    const double top1 = SyntheticTop1(width, wbits, abits, cfg.value("seed", int64_t{0}));
    pb::LeaseRef ref;
    ref.set_lease_id(l.lease_id());
    ref.set_fencing_token(l.fencing_token());
    const int stop = l.stop_at_epoch() > 0 && l.stop_at_epoch() < epochs ? static_cast<int>(l.stop_at_epoch()) : epochs;
    for (int e = static_cast<int>(l.resume_epoch()) + 1; e <= stop; ++e) {
      pb::ReportMetricsRequest m;
      *m.mutable_lease() = ref;
      const double acc = top1 - 3.0 * (epochs - e);
      const std::pair<const char*, double> points[] = {
          {"train_loss", 1.0 / e}, {"test_loss", 1.2 / e}, {"top1", acc},
          {"top5", std::min(100.0, acc + 9.0)}, {"images_per_sec", 1000.0 + 100 * wbits}};
      for (const auto& [name, value] : points) {
        auto* p = m.add_points();
        p->set_name(name);
        p->set_step(e - 1);  // like wrpn-worker: the trainer's 0-based epoch index
        p->set_value(value);
      }
      pb::ReportMetricsResponse mr;
      status_ = stub_->ReportMetrics(Ctx().get(), m, &mr);
      if (!status_.ok()) return false;
      pb::ReportLogsRequest logs;
      *logs.mutable_lease() = ref;
      logs.set_rank(0);
      logs.add_lines("epoch " + std::to_string(e) + "/" + std::to_string(epochs) + " top1 " +
                     std::to_string(acc));
      pb::ReportLogsResponse lr;
      status_ = stub_->ReportLogs(Ctx().get(), logs, &lr);
      if (!status_.ok()) return false;
      pb::ReportCheckpointRequest ck;
      *ck.mutable_lease() = ref;
      ck.set_epoch(e);
      ck.set_path("/tmp/wrpn-fake/" + std::to_string(l.trial_id()) + "/epoch" + std::to_string(e) + ".pt");
      pb::ReportCheckpointResponse cr;
      status_ = stub_->ReportCheckpoint(Ctx().get(), ck, &cr);
      if (!status_.ok()) return false;
      if (epoch_delay.count() > 0) {
        std::this_thread::sleep_for(epoch_delay);
        pb::HeartbeatRequest hb;
        hb.set_worker_id(id_);
        auto* lp = hb.add_leases();
        *lp->mutable_lease() = ref;
        lp->set_epoch(e);
        lp->set_fraction(static_cast<double>(e) / epochs);
        pb::HeartbeatResponse hr;
        (void)stub_->Heartbeat(Ctx().get(), hb, &hr);
      }
    }
    pb::CompleteTrialRequest done;
    *done.mutable_lease() = ref;
    const std::string reason = fail ? fail(cfg) : "";
    if (stop < epochs) {
      done.mutable_failure()->set_reason("interrupted at epoch " + std::to_string(stop) + " (checkpoint saved)");
      done.mutable_failure()->set_kind("interrupted");
    } else if (!reason.empty()) {
      done.mutable_failure()->set_reason(reason);
      done.mutable_failure()->set_kind("config");
    } else {
      done.mutable_result()->set_top1(top1);
      done.mutable_result()->set_top5(std::min(100.0, top1 + 9.0));
      done.mutable_result()->set_images_per_sec(1000.0 + 100 * wbits);
    }
    pb::CompleteTrialResponse dr;
    status_ = stub_->CompleteTrial(Ctx().get(), done, &dr);
    return status_.ok();
  }

 private:
  std::unique_ptr<grpc::ClientContext> Ctx() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    if (!token_.empty()) ctx->AddMetadata("authorization", "Bearer " + token_);
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return ctx;
  }

  pb::WorkerService::Stub* stub_;
  std::string token_;
  std::string id_;
  grpc::Status status_;
};

}  // namespace wrpn::testing
