#include "common/trainer_protocol.h"

#include "absl/strings/str_cat.h"

namespace wrpn {
namespace {

using nlohmann::json;

// Reads the fields of one event object; the first bad field is kept and names the event.
class Reader {
 public:
  Reader(const json& j, absl::string_view event) : j_(j), event_(event) {}
  template <typename T>
  void Get(const char* key, T& out, bool required = false) {
    if (!status_.ok()) return;
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) {
      if (required) status_ = Bad(key, "is required");
      return;
    }
    if constexpr (std::is_same_v<T, bool>) {
      if (!it->is_boolean()) return Fail(key, "must be true or false");
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (!it->is_string()) return Fail(key, "must be a string");
    } else if constexpr (std::is_integral_v<T>) {
      if (!it->is_number_integer()) return Fail(key, "must be an integer");
    } else {
      if (!it->is_number()) return Fail(key, "must be a number");
    }
    out = it->get<T>();
  }
  const absl::Status& status() const { return status_; }
  absl::Status Bad(const char* key, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(event_, ".", key, ": ", what));
  }

 private:
  void Fail(const char* key, absl::string_view what) { status_ = Bad(key, what); }
  const json& j_;
  absl::string_view event_;
  absl::Status status_;
};

template <typename T>
absl::StatusOr<TrainerEvent> Done(const Reader& r, T&& e) {
  if (!r.status().ok()) return r.status();
  return TrainerEvent(std::forward<T>(e));
}

absl::StatusOr<TrainerEvent> ParseStarted(const json& j) {
  Reader r(j, "started");
  StartedEvent e;
  if (auto it = j.find("config"); it != j.end()) {
    if (!it->is_object()) return r.Bad("config", "must be an object");
    e.config = *it;
  }
  r.Get("parameters", e.parameters);
  r.Get("train_size", e.train_size);
  r.Get("test_size", e.test_size);
  r.Get("steps_per_epoch", e.steps_per_epoch);
  r.Get("start_epoch", e.start_epoch);
  r.Get("start_step", e.start_step);
  r.Get("device", e.device);
  r.Get("world_size", e.world_size);
  r.Get("backend", e.backend);
  r.Get("cost_uniform", e.cost_uniform);
  r.Get("cost_first_last_fp32", e.cost_first_last_fp32);
  return Done(r, std::move(e));
}

absl::StatusOr<TrainerEvent> ParseEpoch(const json& j) {
  Reader r(j, "epoch");
  EpochEvent e;
  r.Get("epoch", e.epoch, true);
  r.Get("epochs", e.epochs);
  r.Get("train_loss", e.train_loss);
  r.Get("train_top1", e.train_top1);
  r.Get("test_loss", e.test_loss);
  r.Get("top1", e.top1);
  r.Get("top5", e.top5);
  r.Get("lr", e.lr);
  r.Get("images_per_sec", e.images_per_sec);
  r.Get("seconds", e.seconds);
  r.Get("gpu_memory_bytes", e.gpu_memory_bytes);
  r.Get("allreduce_wait_ms_per_step", e.allreduce_wait_ms_per_step);
  r.Get("data_wait_ms_per_step", e.data_wait_ms_per_step);
  return Done(r, std::move(e));
}

absl::StatusOr<TrainerEvent> ParseCheckpoint(const json& j) {
  Reader r(j, "checkpoint");
  CheckpointEvent e;
  r.Get("epoch", e.epoch, true);
  r.Get("step", e.step);
  r.Get("path", e.path, true);
  return Done(r, std::move(e));
}

absl::StatusOr<TrainerEvent> ParseFinished(const json& j) {
  Reader r(j, "finished");
  FinishedEvent e;
  r.Get("top1", e.top1, true);
  r.Get("top5", e.top5);
  r.Get("test_loss", e.test_loss);
  r.Get("best_top1", e.best_top1);
  r.Get("epochs", e.epochs);
  r.Get("images_per_sec", e.images_per_sec);
  r.Get("cost_uniform", e.cost_uniform);
  r.Get("cost_first_last_fp32", e.cost_first_last_fp32);
  r.Get("fma_ratio", e.fma_ratio);
  return Done(r, std::move(e));
}

absl::StatusOr<TrainerEvent> ParseInterrupted(const json& j) {
  Reader r(j, "interrupted");
  InterruptedEvent e;
  r.Get("epoch", e.epoch, true);
  r.Get("step", e.step);
  r.Get("checkpointed", e.checkpointed);
  return Done(r, std::move(e));
}

absl::StatusOr<TrainerEvent> ParseFailed(const json& j) {
  Reader r(j, "failed");
  FailedEvent e;
  std::string kind;
  r.Get("kind", kind, true);
  r.Get("reason", e.reason);
  int64_t rank = -1;
  r.Get("rank", rank);
  if (!r.status().ok()) return r.status();
  std::optional<FailureKind> k = FailureKindFromName(kind);
  if (!k) return r.Bad("kind", absl::StrCat("unknown kind '", kind, "'"));
  if (*k == FailureKind::kLaunch)  // uncounted: a trainer saying so would retry itself forever
    return r.Bad("kind",
                 "'launch' is the agent's kind (a trainer that could not start), not a trainer's");
  e.kind = *k;
  if (rank >= 0) e.rank = rank;
  return Done(r, std::move(e));
}

struct ToJsonVisitor {
  json operator()(const StartedEvent& e) const {
    return {{"event", "started"},          {"config", e.config},
            {"parameters", e.parameters},  {"train_size", e.train_size},
            {"test_size", e.test_size},    {"steps_per_epoch", e.steps_per_epoch},
            {"start_epoch", e.start_epoch}, {"start_step", e.start_step},
            {"device", e.device},          {"world_size", e.world_size},
            {"backend", e.backend},        {"cost_uniform", e.cost_uniform},
            {"cost_first_last_fp32", e.cost_first_last_fp32}};
  }
  json operator()(const EpochEvent& e) const {
    json j = {{"event", "epoch"}, {"epoch", e.epoch}, {"epochs", e.epochs}};
    for (const auto& [name, v] : e.Metrics()) j[std::string(name)] = v;
    return j;
  }
  json operator()(const CheckpointEvent& e) const {
    return {{"event", "checkpoint"}, {"epoch", e.epoch}, {"step", e.step}, {"path", e.path}};
  }
  json operator()(const FinishedEvent& e) const {
    return {{"event", "finished"},
            {"top1", e.top1},
            {"top5", e.top5},
            {"test_loss", e.test_loss},
            {"best_top1", e.best_top1},
            {"epochs", e.epochs},
            {"images_per_sec", e.images_per_sec},
            {"cost_uniform", e.cost_uniform},
            {"cost_first_last_fp32", e.cost_first_last_fp32},
            {"fma_ratio", e.fma_ratio}};
  }
  json operator()(const InterruptedEvent& e) const {
    return {{"event", "interrupted"},
            {"epoch", e.epoch},
            {"step", e.step},
            {"checkpointed", e.checkpointed}};
  }
  json operator()(const FailedEvent& e) const {
    json j = {{"event", "failed"}, {"kind", FailureKindName(e.kind)}, {"reason", e.reason}};
    if (e.rank) j["rank"] = *e.rank;
    return j;
  }
};

}  // namespace

absl::string_view FailureKindName(FailureKind k) {
  switch (k) {
    case FailureKind::kConfig: return "config";
    case FailureKind::kData: return "data";
    case FailureKind::kRendezvous: return "rendezvous";
    case FailureKind::kInternal: return "internal";
    case FailureKind::kInterrupted: return "interrupted";
    case FailureKind::kResources: return "resources";
    case FailureKind::kLaunch: return "launch";
  }
  return "internal";
}

std::optional<FailureKind> FailureKindFromName(absl::string_view name) {
  for (FailureKind k : kAllFailureKinds) {
    if (FailureKindName(k) == name) return k;
  }
  return std::nullopt;
}

FailureKind FailureKindForExit(int exit_code, int signal) {
  if (signal != 0) return FailureKind::kInternal;
  switch (exit_code) {
    case kExitBadConfig: return FailureKind::kConfig;
    case kExitDataError: return FailureKind::kData;
    case kExitInterrupted: return FailureKind::kInterrupted;
    case kExitRendezvous: return FailureKind::kRendezvous;
    case kExitResources: return FailureKind::kResources;
    default: return FailureKind::kInternal;
  }
}

bool FailureIsRetried(FailureKind k) { return k != FailureKind::kConfig; }
bool FailureBacksOff(FailureKind k) {
  return k != FailureKind::kInterrupted && k != FailureKind::kLaunch;
}
bool FailureCountsAsAttempt(FailureKind k) { return k != FailureKind::kLaunch; }

int64_t StartedEvent::epochs() const {
  auto it = config.find("epochs");
  return it != config.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

std::vector<std::pair<absl::string_view, double>> EpochEvent::Metrics() const {
  return {{metric::kTrainLoss, train_loss},
          {metric::kTrainTop1, train_top1},
          {metric::kTestLoss, test_loss},
          {metric::kTop1, top1},
          {metric::kTop5, top5},
          {metric::kLr, lr},
          {metric::kImagesPerSec, images_per_sec},
          {metric::kSeconds, seconds},
          {metric::kGpuMemoryBytes, gpu_memory_bytes},
          {metric::kAllreduceWaitMsPerStep, allreduce_wait_ms_per_step},
          {metric::kDataWaitMsPerStep, data_wait_ms_per_step}};
}

json ToJson(const TrainerEvent& e) { return std::visit(ToJsonVisitor{}, e); }

absl::string_view EventName(const TrainerEvent& e) {
  static constexpr absl::string_view kNames[] = {"started",  "epoch",       "checkpoint",
                                                "finished", "interrupted", "failed"};
  return kNames[e.index()];
}

absl::StatusOr<TrainerEvent> ParseEvent(const json& j) {
  if (!j.is_object()) return absl::InvalidArgumentError("event: must be a JSON object");
  auto it = j.find("event");
  if (it == j.end() || !it->is_string()) return absl::InvalidArgumentError("event: must be a string");
  const std::string& name = it->get_ref<const std::string&>();
  if (name == "started") return ParseStarted(j);
  if (name == "epoch") return ParseEpoch(j);
  if (name == "checkpoint") return ParseCheckpoint(j);
  if (name == "finished") return ParseFinished(j);
  if (name == "interrupted") return ParseInterrupted(j);
  if (name == "failed") return ParseFailed(j);
  return absl::InvalidArgumentError(absl::StrCat("event: unknown event '", name, "'"));
}

absl::StatusOr<std::optional<TrainerEvent>> ParseEventLine(absl::string_view line) {
  json j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("event")) {
    return std::optional<TrainerEvent>();
  }
  absl::StatusOr<TrainerEvent> e = ParseEvent(j);
  if (!e.ok()) return e.status();
  return std::optional<TrainerEvent>(*std::move(e));
}

}  // namespace wrpn
