#pragma once
// The configuration of one training trial: what `wrpn-train train --config trial.json` reads and
// what the coordinator hands a worker. Plain data plus JSON (de)serialisation and validation;
// stateless functions, thread-safe.
#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace wrpn {

struct DatasetConfig {
  std::string kind = "fashion_mnist";  // fashion_mnist | mnist | cifar10 | imagefolder | packed | synthetic
  std::string path;                    // folder holding the files (packed: the file); default per kind
  int64_t train_subset = 0;            // 0 = whole split
  int64_t test_subset = 0;
  bool augment = true;                 // random crop + flip (imagefolder: random-resized crop)
  int image_size = 0;                  // imagefolder, packed: crop size (default 224); 0 = native size
  // synthetic only
  int channels = 1, height = 28, width = 28, classes = 10;
  int64_t train_size = 1024, test_size = 256;
};

struct TrialConfig {
  std::string network = "lenet5";
  double width = 1.0;
  int wbits = 32;
  int abits = 32;
  DatasetConfig dataset;

  int epochs = 10;
  int batch_size = 128;  // global batch (split across ranks)
  std::string optimizer = "sgd";  // sgd | adam
  double lr = 0.05;
  double momentum = 0.9;
  bool nesterov = true;
  double weight_decay = 5e-4;
  std::string schedule = "cosine";  // cosine | step | onecycle | constant
  double warmup_epochs = 0;
  int step_epochs = 30;  // step schedule: multiply lr by gamma every step_epochs
  double gamma = 0.1;
  uint64_t seed = 0;

  std::string device = "cpu";  // cpu | cuda | cuda:N
  bool amp = false;            // bf16 autocast (CUDA only)
  bool channels_last = false;  // CUDA only
  int num_workers = -1;        // data-loading threads; -1 = from cpu_cores, 0 = on the training thread
  int threads = 0;             // intra-op threads; 0 = LibTorch default

  std::string checkpoint_dir;  // empty = no checkpoints
  bool resume = false;         // continue from checkpoint_dir/last.pt when it exists
  int stop_after_epochs = 0;   // > 0: checkpoint and exit "interrupted" after this many epochs
  double weight_scale = 0;     // recipe: static per-layer quantizer scale (0 = default rule)
  int cpu_cores = 0;           // cores this rank was given (the agent sets it); 0 = cores / local ranks
  std::string scheme = "wrpn";  // quantizers: wrpn | lsq | pact | dorefa (common/quant_scheme.h)
  std::string init_from;        // "" | fp32: start from init_checkpoint (a quantized trial only)
  std::string init_checkpoint;  // the FP32 trial's final checkpoint (the agent sets it)
};

// Parses and validates a trial config; unknown keys are errors. Every error names the field.
[[nodiscard]] absl::StatusOr<TrialConfig> TrialConfigFromJson(const nlohmann::json& j);
[[nodiscard]] absl::StatusOr<TrialConfig> TrialConfigFromJsonText(const std::string& text);
nlohmann::json TrialConfigToJson(const TrialConfig& c);
// Checks ranges and combinations, naming the field and the value.
[[nodiscard]] absl::Status ValidateTrialConfig(const TrialConfig& c);

}  // namespace wrpn
