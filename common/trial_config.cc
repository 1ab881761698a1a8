#include "common/trial_config.h"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/network_spec.h"
#include "common/quant_scheme.h"
#include "common/status.h"

namespace wrpn {
namespace {

using json = nlohmann::json;
using Row = fields::FieldRow<TrialConfig>;

// ---- checks of the field table that read other fields (trial_config_fields.inc)

struct KnownNetwork {
  std::string operator()(const std::string& v, const TrialConfig&) const {
    if (IsKnownNetwork(v)) return "";
    return absl::StrCat("unknown network '", v, "' (known: ", absl::StrJoin(KnownNetworks(), ", "),
                        ")");
  }
};
struct ValidBits {
  std::string operator()(int v, const TrialConfig&) const {
    return IsValidBits(v) ? "" : absl::StrCat("must be 1..16 or 32, got ", v);
  }
};
struct DatasetPathRequired {
  std::string operator()(const std::string& v, const TrialConfig& c) const {
    const std::string& kind = c.dataset.kind;
    if (!v.empty() || kind == "synthetic" || kind == "fashion_mnist") return "";
    return absl::StrCat("required for dataset kind '", kind, "'");
  }
};
struct NesterovNeedsMomentum {
  std::string operator()(bool v, const TrialConfig& c) const {
    return v && c.optimizer == "sgd" && c.momentum == 0 ? "needs momentum > 0" : "";
  }
};
struct BelowEpochs {
  std::string operator()(double v, const TrialConfig& c) const {
    if (v >= 0 && v < c.epochs) return "";
    return absl::StrCat("must be >= 0 and < epochs, got ", v);
  }
};
bool IsCuda(const std::string& device) {
  return device == "cuda" || device.rfind("cuda:", 0) == 0;
}
struct CpuOrCuda {
  std::string operator()(const std::string& v, const TrialConfig&) const {
    if (v != "cpu" && !IsCuda(v)) return absl::StrCat("must be cpu, cuda or cuda:N, got '", v, "'");
    if (v.rfind("cuda:", 0) == 0) {
      const std::string idx = v.substr(5);
      if (idx.empty() || idx.find_first_not_of("0123456789") != std::string::npos) {
        return absl::StrCat("bad CUDA device index in '", v, "'");
      }
    }
    return "";
  }
};
struct NeedsCuda {
  explicit NeedsCuda(std::string why) : why(std::move(why)) {}
  std::string why;
  std::string operator()(bool v, const TrialConfig& c) const {
    return v && !IsCuda(c.device) ? why : "";
  }
};
struct NeedsCheckpointDir {
  std::string operator()(bool v, const TrialConfig& c) const {
    return v && c.checkpoint_dir.empty() ? "needs checkpoint_dir" : "";
  }
};

// The quantization scheme and the FP32 initialisation (docs/recipe.md).
struct KnownScheme {
  std::string operator()(const std::string& v, const TrialConfig&) const {
    if (ParseQuantScheme(v)) return "";
    return absl::StrCat("unknown scheme '", v, "' (known: ", absl::StrJoin(KnownQuantSchemes(), ", "), ")");
  }
};
struct InitFromRule {
  std::string operator()(const std::string& v, const TrialConfig&) const {
    if (v.empty() || v == kInitFromFp32) return "";
    return absl::StrCat("must be empty or '", kInitFromFp32, "', got '", v, "'");
  }
};
struct NeedsInitFrom {
  std::string operator()(const std::string& v, const TrialConfig& c) const {
    return !v.empty() && c.init_from.empty() ? "needs init_from: fp32" : "";
  }
};

// A synthetic-only row is checked only for kind synthetic.
Row SyntheticOnly(Row row) {
  row.info.synthetic_only = true;
  row.check = [inner = std::move(row.check)](const TrialConfig& c) -> std::string {
    return c.dataset.kind == "synthetic" ? inner(c) : "";
  };
  return row;
}

std::vector<Row> BuildRows() {
  using namespace fields;  // the checks the table names
  std::vector<Row> rows;
#define WRPN_TRIAL_FIELD(section, type, name, def, flag, help, check)                       \
  rows.push_back(MakeRow<TrialConfig, type>(                                                \
      FieldInfo{#name, #name, FieldSection::k##section, FieldType::kInt, flag, help},       \
      Parse::kStrict, [](auto& c) -> auto& { return c.name; }, check));
#define WRPN_DATASET_FIELD(type, name, def, flag, help, check)                              \
  rows.push_back(MakeRow<TrialConfig, type>(                                                \
      FieldInfo{#name, "dataset." #name, FieldSection::kDataset, FieldType::kInt, flag, help}, \
      Parse::kStrict, [](auto& c) -> auto& { return c.dataset.name; }, check));
#define WRPN_SYNTHETIC_FIELD(type, name, def, flag, help, check)                            \
  rows.push_back(SyntheticOnly(MakeRow<TrialConfig, type>(                                  \
      FieldInfo{#name, "dataset." #name, FieldSection::kDataset, FieldType::kInt, flag, help}, \
      Parse::kStrict, [](auto& c) -> auto& { return c.dataset.name; }, check)));
#include "common/trial_config_fields.inc"
  return rows;
}

const std::vector<Row>& Rows() {
  static const std::vector<Row>* rows = new std::vector<Row>(BuildRows());
  return *rows;
}

bool InDataset(const Row& r) { return r.info.section == FieldSection::kDataset; }

// Reads the members of one JSON object (the config or its "dataset") through the rows of that
// object; an unknown key is an error naming it and listing the known ones.
absl::Status ReadObject(const json& j, bool dataset, TrialConfig& c) {
  const std::string where = dataset ? "dataset" : "config";
  if (!j.is_object()) return absl::InvalidArgumentError(where + ": expected an object");
  for (const auto& item : j.items()) {
    const std::string& key = item.key();  // a named variable: lambdas may not capture bindings
    const json& value = item.value();
    if (!dataset && key == "dataset") {
      RETURN_IF_ERROR(ReadObject(value, true, c));
      continue;
    }
    const auto row = std::find_if(Rows().begin(), Rows().end(), [&](const Row& r) {
      return InDataset(r) == dataset && r.info.key == key;
    });
    if (row == Rows().end()) {
      std::vector<std::string> all;
      for (const Row& r : Rows())
        if (InDataset(r) == dataset) all.emplace_back(r.info.key);
      if (!dataset) all.push_back("dataset");
      std::sort(all.begin(), all.end());
      return absl::InvalidArgumentError(absl::StrCat(dataset ? "dataset." : "", key,
                                                     ": unknown field (known: ",
                                                     absl::StrJoin(all, ", "), ")"));
    }
    RETURN_IF_ERROR(row->read(c, value));
  }
  return absl::OkStatus();
}

}  // namespace

const std::vector<FieldInfo>& TrialConfigFields() {
  static const std::vector<FieldInfo>* infos = [] {
    auto* v = new std::vector<FieldInfo>();
    for (const Row& r : Rows()) v->push_back(r.info);
    return v;
  }();
  return *infos;
}

std::vector<std::string> TrialConfigKeys(FieldSection section) {
  std::vector<std::string> keys;
  for (const FieldInfo& f : TrialConfigFields())
    if (f.section == section) keys.emplace_back(f.key);
  return keys;
}

void SetTrialConfigJson(json& config, const FieldInfo& field, json value) {
  if (field.section != FieldSection::kDataset) {
    config[std::string(field.key)] = std::move(value);
    return;
  }
  json& d = config["dataset"];
  if (!d.is_object()) d = json::object();
  d[std::string(field.key)] = std::move(value);
}

absl::StatusOr<TrialConfig> ReadTrialConfig(const json& j) {
  TrialConfig c;
  RETURN_IF_ERROR(ReadObject(j, false, c));
  return c;
}

absl::StatusOr<TrialConfig> TrialConfigFromJson(const json& j) {
  ASSIGN_OR_RETURN(TrialConfig c, ReadTrialConfig(j));
  RETURN_IF_ERROR(ValidateTrialConfig(c));
  return c;
}

absl::StatusOr<TrialConfig> TrialConfigFromJsonText(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("config: not valid JSON");
  return TrialConfigFromJson(j);
}

json TrialConfigToJson(const TrialConfig& c) {
  json out = json::object();
  out["dataset"] = json::object();
  for (const Row& r : Rows()) {
    if (r.info.synthetic_only && c.dataset.kind != "synthetic") continue;
    SetTrialConfigJson(out, r.info, r.write(c));
  }
  return out;
}

absl::Status ValidateTrialConfig(const TrialConfig& c) {
  for (const Row& r : Rows()) {
    if (std::string what = r.check(c); !what.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(r.info.name, ": ", what));
    }
  }
  return absl::OkStatus();
}

}  // namespace wrpn
