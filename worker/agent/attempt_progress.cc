#include "worker/agent/attempt_progress.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace wrpn::agent {
namespace {

struct Apply {
  AttemptProgress& p;
  int rank;
  bool leader;
  int64_t wall_ms;

  EventEffect operator()(const FailedEvent& e) const {
    if (!p.failed || leader) {
      p.failed = e;
      p.failed_rank = rank;
    }
    return {};
  }
  EventEffect operator()(const StartedEvent& e) const {
    if (!leader) return {};
    p.start_epoch = e.start_epoch;
    p.epoch = p.start_epoch;
    p.epochs = e.epochs();
    return {absl::StrCat("trainer started at epoch ", p.start_epoch), false};
  }
  EventEffect operator()(const EpochEvent& e) const {
    if (!leader) return {};
    p.epoch = e.epoch + 1;
    if (e.epochs > 0) p.epochs = e.epochs;
    for (const auto& [name, v] : e.Metrics()) {
      if (!std::isfinite(v)) continue;
      pb::MetricPoint point;
      point.set_name(std::string(name));
      point.set_step(e.epoch);
      point.set_value(v);
      point.set_wall_ms(wall_ms);
      p.points.push_back(std::move(point));
    }
    return {};
  }
  EventEffect operator()(const CheckpointEvent& e) const {
    if (!leader || e.path.empty()) return {};
    p.checkpoint = e;  // only the newest matters
    return {"", true};
  }
  EventEffect operator()(const FinishedEvent& e) const {
    if (leader) p.finished = e;
    return {};
  }
  EventEffect operator()(const InterruptedEvent& e) const {
    if (!leader) return {};
    p.interrupted = e;
    p.epoch = e.epoch;
    p.step = e.step;
    return {};
  }
};

}  // namespace

EventEffect ApplyEvent(AttemptProgress& progress, const TrainerEvent& event, int rank, bool leader,
                       int64_t wall_ms) {
  return std::visit(Apply{progress, rank, leader, wall_ms}, event);
}

}  // namespace wrpn::agent
