#pragma once
// The configuration of one training trial: what `wrpn-train train --config trial.json` reads and
// what the coordinator hands a worker. The fields are declared once, in the field table
// (common/trial_config_fields.inc: key, flag, help, default, check); the structs, JSON parser,
// serialiser, validator, the sweep spec's key lists and wrpn-train's flags come from it.
// Plain data and stateless functions, thread-safe.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/field_table.h"

namespace wrpn {

// The "dataset" object: kind (fashion_mnist | mnist | cifar10 | imagefolder | packed |
// synthetic), path, subsets, augmentation, crop size and the synthetic dataset's shape.
struct DatasetConfig {
#define WRPN_DATASET_FIELD(type, name, def, flag, help, check) type name = def;
#define WRPN_SYNTHETIC_FIELD(type, name, def, flag, help, check) type name = def;
#include "common/trial_config_fields.inc"
};

struct TrialConfig {
#define WRPN_TRIAL_FIELD(section, type, name, def, flag, help, check) type name = def;
#include "common/trial_config_fields.inc"
  DatasetConfig dataset;
};

// Every field of TrialConfig and its dataset, in the table's order (dataset fields named
// "dataset.<key>").
const std::vector<FieldInfo>& TrialConfigFields();
// The JSON keys of one section, in the table's order (kDataset: keys within "dataset").
std::vector<std::string> TrialConfigKeys(FieldSection section);
// Sets the field's value in a trial-config JSON object (dataset fields in its "dataset" object).
void SetTrialConfigJson(nlohmann::json& config, const FieldInfo& field, nlohmann::json value);

// Parses and validates a trial config; unknown keys are errors. Every error names the field.
[[nodiscard]] absl::StatusOr<TrialConfig> TrialConfigFromJson(const nlohmann::json& j);
// Reads one without validating it (unknown keys and wrong types are still errors), for a caller
// that fills fields in before ValidateTrialConfig.
[[nodiscard]] absl::StatusOr<TrialConfig> ReadTrialConfig(const nlohmann::json& j);
[[nodiscard]] absl::StatusOr<TrialConfig> TrialConfigFromJsonText(const std::string& text);
// Every field (the synthetic dataset's shape only for kind synthetic).
nlohmann::json TrialConfigToJson(const TrialConfig& c);
// Checks every field in the table's order, naming the field and the value of the first bad one.
[[nodiscard]] absl::Status ValidateTrialConfig(const TrialConfig& c);

}  // namespace wrpn
