#pragma once
// The contract between `wrpn-train` and the process that runs it (the worker agent, `wrpn-train
// launch`): exit codes, failure kinds and the JSON-lines events the trainer writes on stdout.
// The trainer writes events only through ToJson, the agent reads them only through ParseEvent,
// and the coordinator accepts exactly the failure kinds listed here (the proto enum FailureKind
// has the same numbers). Pure functions and plain data; thread-safe.
#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace wrpn {

// Process exit codes of `wrpn-train`.
enum ExitCode : int {
  kExitOk = 0,
  kExitInternal = 1,     // a bug or a LibTorch/CUDA failure
  kExitBadConfig = 2,    // the config (or a flag) is invalid; retrying will not help
  kExitDataError = 3,    // the dataset is missing, truncated or corrupt
  kExitInterrupted = 4,  // stopped by SIGTERM/SIGINT, stop_after_epochs or stop_at_epoch, after a checkpoint
  kExitRendezvous = 5,   // not every rank of a multi-rank trial arrived within the timeout
  kExitResources = 6,    // the GPU ran out of memory (the trial's cap or a crowded GPU)
};

// Why an attempt failed. The numbers are the wire values of wrpn.v1.FailureKind.
enum class FailureKind : int {
  kConfig = 1,       // the trial config is invalid: final, never retried
  kData = 2,         // the dataset is missing, truncated or corrupt
  kRendezvous = 3,   // a rank of a multi-rank trial never arrived
  kInternal = 4,     // a bug, a LibTorch/CUDA failure, a crash, a stall
  kInterrupted = 5,  // stopped on purpose (drain, SIGTERM) after a checkpoint
  kResources = 6,    // out of GPU memory: retried after the backoff (its neighbours may be gone)
  kLaunch = 7,       // the worker could not start the trainer (its binary missing or not
                     // executable, the attempt folder unusable): the worker's fault, not the
                     // trial's; re-queued at once and not counted against max_attempts
};
inline constexpr std::array<FailureKind, 7> kAllFailureKinds = {
    FailureKind::kConfig,      FailureKind::kData,      FailureKind::kRendezvous,
    FailureKind::kInternal,    FailureKind::kInterrupted, FailureKind::kResources,
    FailureKind::kLaunch};

// "config", "data", "rendezvous", "internal", "interrupted", "resources", "launch".
absl::string_view FailureKindName(FailureKind k);
// The kind named `name`; nullopt when no kind has that name.
std::optional<FailureKind> FailureKindFromName(absl::string_view name);
// The kind of a trainer that ended without a "failed" event: by exit code, or internal for a
// signal or an unknown code.
FailureKind FailureKindForExit(int exit_code, int signal);
// What the coordinator does with an attempt that failed with this kind.
bool FailureIsRetried(FailureKind k);       // all but config
bool FailureBacksOff(FailureKind k);        // retried after the retry backoff: all but
                                            // interrupted and launch
bool FailureCountsAsAttempt(FailureKind k);  // against the sweep's max_attempts: all but launch

// Metric names of the "epoch" event, as stored by the coordinator.
namespace metric {
inline constexpr absl::string_view kTrainLoss = "train_loss";
inline constexpr absl::string_view kTrainTop1 = "train_top1";
inline constexpr absl::string_view kTestLoss = "test_loss";
inline constexpr absl::string_view kTop1 = "top1";
inline constexpr absl::string_view kTop5 = "top5";
inline constexpr absl::string_view kLr = "lr";
inline constexpr absl::string_view kImagesPerSec = "images_per_sec";
inline constexpr absl::string_view kSeconds = "seconds";
inline constexpr absl::string_view kGpuMemoryBytes = "gpu_memory_bytes";
inline constexpr absl::string_view kAllreduceWaitMsPerStep = "allreduce_wait_ms_per_step";
inline constexpr absl::string_view kDataWaitMsPerStep = "data_wait_ms_per_step";
}  // namespace metric

struct StartedEvent {
  nlohmann::json config = nlohmann::json::object();  // the trial config as the trainer read it
  int64_t parameters = 0, train_size = 0, test_size = 0, steps_per_epoch = 0;
  int64_t start_epoch = 0, start_step = 0;
  std::string device;
  int64_t world_size = 1;
  std::string backend = "none";
  double cost_uniform = 0, cost_first_last_fp32 = 0;
  int64_t epochs() const;  // config.epochs, 0 when absent
};

// A metric the trainer could not measure is NaN (null in JSON) and is not stored.
struct EpochEvent {
  static constexpr double kAbsent = std::numeric_limits<double>::quiet_NaN();
  int64_t epoch = 0, epochs = 0;
  double train_loss = kAbsent, train_top1 = kAbsent, test_loss = kAbsent, top1 = kAbsent;
  double top5 = kAbsent, lr = kAbsent, images_per_sec = kAbsent, seconds = kAbsent;
  double gpu_memory_bytes = kAbsent, allreduce_wait_ms_per_step = kAbsent;
  double data_wait_ms_per_step = kAbsent;  // this rank's wait for its next batch
  // Every metric above, by its metric:: name, in declaration order.
  std::vector<std::pair<absl::string_view, double>> Metrics() const;
};

struct CheckpointEvent {
  int64_t epoch = 0, step = 0;
  std::string path;
};

struct FinishedEvent {
  double top1 = 0, top5 = 0, test_loss = 0, best_top1 = 0;
  int64_t epochs = 0;
  double images_per_sec = 0, cost_uniform = 0, cost_first_last_fp32 = 0, fma_ratio = 0;
};

struct InterruptedEvent {
  int64_t epoch = 0, step = 0;
  bool checkpointed = false;
};

struct FailedEvent {
  FailureKind kind = FailureKind::kInternal;
  std::string reason;
  std::optional<int64_t> rank;  // multi-rank trials: the global rank that failed
};

using TrainerEvent = std::variant<StartedEvent, EpochEvent, CheckpointEvent, FinishedEvent,
                                  InterruptedEvent, FailedEvent>;

// {"event": "started" | "epoch" | "checkpoint" | "finished" | "interrupted" | "failed", ...}
nlohmann::json ToJson(const TrainerEvent& e);
// "started", "epoch", ...
absl::string_view EventName(const TrainerEvent& e);

// Reads one event object. Errors name the field: `epoch.top1: must be a number`.
[[nodiscard]] absl::StatusOr<TrainerEvent> ParseEvent(const nlohmann::json& j);
// Reads one line of trainer stdout. nullopt: the line is not an event (not a JSON object with
// an "event" key), which callers ignore; an error: an event that is malformed.
[[nodiscard]] absl::StatusOr<std::optional<TrainerEvent>> ParseEventLine(absl::string_view line);

}  // namespace wrpn
