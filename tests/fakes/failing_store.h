#pragma once
// FailingStore: a Store decorator whose Apply fails (UNAVAILABLE, writing nothing) while
// `fail_applies` > 0, to test that callers keep memory and disk in agreement. Borrows the wrapped
// store; not thread-safe (like the stores it wraps).
#include "server/store.h"

namespace wrpn::server {

class FailingStore final : public Store {
 public:
  explicit FailingStore(Store* inner) : inner_(inner) {}
  int fail_applies = 0;

  absl::Status Apply(const Mutation& m) override {
    if (fail_applies > 0) {
      --fail_applies;
      return absl::UnavailableError("disk full (injected)");
    }
    return inner_->Apply(m);
  }
  absl::StatusOr<Snapshot> Load() override { return inner_->Load(); }
  absl::StatusOr<std::vector<MetricRecord>> Metrics(int64_t trial_id,
                                                    std::string_view name) override {
    return inner_->Metrics(trial_id, name);
  }
  absl::StatusOr<std::vector<EventRecord>> Events(int64_t sweep_id, int64_t after_seq,
                                                  int limit) override {
    return inner_->Events(sweep_id, after_seq, limit);
  }
  absl::StatusOr<int64_t> PruneEvents(int64_t before_ms) override {
    return inner_->PruneEvents(before_ms);
  }
  absl::Status PutPaperTables(const PaperTables& tables) override {
    return inner_->PutPaperTables(tables);
  }
  absl::StatusOr<PaperTables> GetPaperTables() override { return inner_->GetPaperTables(); }

 private:
  Store* inner_;
};

}  // namespace wrpn::server
