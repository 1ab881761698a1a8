#pragma once
// What an attempt's trainers have said so far: the trainer events (common/trainer_protocol.h)
// applied in order, the metric points and the checkpoint not yet reported. Plain data and a pure
// function; owned by the agent's run of the attempt.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/trainer_protocol.h"
#include "worker/agent/coordinator_client.h"

namespace wrpn::agent {

struct AttemptProgress {
  int64_t epoch = 0, epochs = 0, step = 0;
  int64_t start_epoch = -1;
  std::optional<FinishedEvent> finished;        // the leader's
  std::optional<FailedEvent> failed;            // the leader's, else the first rank's
  int failed_rank = -1;
  std::optional<InterruptedEvent> interrupted;  // the leader's
  std::vector<pb::MetricPoint> points;          // not yet reported
  std::optional<CheckpointEvent> checkpoint;    // the newest, not yet reported
};

struct EventEffect {
  std::string note;         // a line for the attempt's log ("" = none)
  bool checkpoint = false;  // a new checkpoint to report (after the points before it)
};

// Applies one event of global rank `rank`. A failure counts from every rank (the leader's
// wins); everything else only from the leader (rank 0 of node 0). `wall_ms` stamps the points.
EventEffect ApplyEvent(AttemptProgress& progress, const TrainerEvent& event, int rank, bool leader,
                       int64_t wall_ms);

}  // namespace wrpn::agent
