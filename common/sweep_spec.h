#pragma once
// The sweep spec: what a user submits (networks x widths x bit pairs x seeds, dataset, recipe,
// resources), its parser (YAML or JSON), its validator and its expansion into trials. Shared by the
// CLI and the coordinator so both reject the same specs with the same messages. Plain values and
// stateless functions; thread-safe.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "common/gpu_share.h"
#include "common/search_spec.h"
#include "common/trial_config.h"

namespace wrpn {

inline constexpr int64_t kMaxTrialsPerSweep = 100000;
inline constexpr double kMaxWidth = 8.0;
inline constexpr size_t kMaxSweepNameBytes = 256;
// A spec's text, as a file and as SubmitSweep.spec_text: the coordinator and the CLI refuse a
// larger one before parsing it (a 50 MB spec took 21 s and 2.9 GB to parse).
inline constexpr size_t kMaxSweepSpecBytes = 1 << 20;

struct PrecisionPair {
  int wbits = 32;
  int abits = 32;
  bool operator==(const PrecisionPair& o) const { return wbits == o.wbits && abits == o.abits; }
};

// One block of axes: the product network x width x precision x scheme x seed. `precision` is filled from
// either the `precision` list or the product `wbits` x `abits` when parsed.
struct AxesBlock {
  std::vector<std::string> networks;
  std::vector<double> widths;
  std::vector<PrecisionPair> precisions;
  std::vector<int64_t> seeds{0};
  std::vector<std::string> schemes{"wrpn"};  // quantization schemes (common/quant_scheme.h)
};

// The `resources` section; its fields are rows of the field table (trial_config_fields.inc).
struct Resources {
#define WRPN_RESOURCES_FIELD(type, name, def, help, check) type name = def;
#include "common/trial_config_fields.inc"
  // gpu_share is exactly 1.0 / k once parsed (common/gpu_share.h).
  bool uses_gpu() const { return gpus_per_node > 0 || gpu_share > 0; }
  GpuAmount gpu_amount() const { return {gpus_per_node, ShareDenominatorOf(gpu_share)}; }
};
// The rows of the resources section, in the table's order.
std::vector<FieldInfo> ResourcesFields();

struct SweepSpec {
  std::string name;
  std::vector<AxesBlock> axes;
  // The spec's `recipe` and `dataset` sections applied over TrialConfig's defaults; network,
  // width, bits and seed are filled per trial. `recipe.device` defaults to cuda when the trial
  // has GPUs, cpu otherwise.
  TrialConfig base;
  Resources resources;
  int max_attempts = 3;
  int priority = 0;
  SearchSpec search;  // the `search` section (common/search_spec.h): grid unless it says pareto
};

// One point of the expanded grid.
struct TrialPoint {
  std::string network;
  double width = 1;
  int wbits = 32;
  int abits = 32;
  int64_t seed = 0;
  std::string scheme = "wrpn";
};

// Parses a spec file's text (YAML or JSON), then validates it. An invalid spec gives
// InvalidArgument listing every problem found, one per line; each names the field and the
// offending value, e.g. `axes.width: 0 is out of range (0, 8]` or
// `unknown key 'widht' in axes (did you mean 'width'?)`.
absl::StatusOr<SweepSpec> ParseSweepSpec(std::string_view text);
// Same from an already parsed JSON document.
absl::StatusOr<SweepSpec> SweepSpecFromJson(const nlohmann::json& doc);
// Canonical JSON form (parses back to an equal spec).
nlohmann::json SweepSpecToJson(const SweepSpec& spec);

// Checks values: known networks, bits in 1..16 or 32, 0 < width <= 8, no duplicate or empty
// axes, no trial listed twice, at most kMaxTrialsPerSweep trials, and the recipe and dataset by
// the trial-config rules (ValidateTrialConfig) for every network of the spec; every problem, one
// per line. Called by the parsers; exposed for specs built in code.
[[nodiscard]] absl::Status ValidateSweepSpec(const SweepSpec& spec);

// Number of trials (before de-duplication; valid specs have none).
int64_t CountTrials(const SweepSpec& spec);
// Trials in a fixed order: blocks in order, then network, width, precision, scheme, seed.
std::vector<TrialPoint> ExpandSweep(const SweepSpec& spec);

// The trial config `wrpn-train train --config` reads for one trial of the sweep.
TrialConfig MakeTrialConfig(const SweepSpec& spec, const TrialPoint& point);
nlohmann::json TrialConfigJson(const SweepSpec& spec, const TrialPoint& point);

}  // namespace wrpn
