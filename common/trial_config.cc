#include "common/trial_config.h"

#include <cmath>
#include <functional>
#include <map>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/network_spec.h"
#include "common/quant_scheme.h"
#include "common/status.h"

namespace wrpn {
namespace {

using json = nlohmann::json;
using Setter = std::function<absl::Status(const json&)>;

absl::Status TypeError(const std::string& field, const char* want, const json& v) {
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": expected ", want, ", got ", v.dump()));
}

template <typename T>
Setter Int(const std::string& field, T* out) {
  return [field, out](const json& v) -> absl::Status {
    if (!v.is_number_integer()) return TypeError(field, "an integer", v);
    *out = v.get<T>();
    return absl::OkStatus();
  };
}
Setter Num(const std::string& field, double* out) {
  return [field, out](const json& v) -> absl::Status {
    if (!v.is_number()) return TypeError(field, "a number", v);
    *out = v.get<double>();
    return absl::OkStatus();
  };
}
Setter Bool(const std::string& field, bool* out) {
  return [field, out](const json& v) -> absl::Status {
    if (!v.is_boolean()) return TypeError(field, "true or false", v);
    *out = v.get<bool>();
    return absl::OkStatus();
  };
}
Setter Str(const std::string& field, std::string* out) {
  return [field, out](const json& v) -> absl::Status {
    if (!v.is_string()) return TypeError(field, "a string", v);
    *out = v.get<std::string>();
    return absl::OkStatus();
  };
}

absl::Status ApplyObject(const json& j, const std::string& prefix,
                         const std::map<std::string, Setter>& setters) {
  if (!j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix.empty() ? "config" : prefix, ": expected an object"));
  }
  for (const auto& [key, value] : j.items()) {
    const std::string field = prefix.empty() ? key : prefix + "." + key;
    auto it = setters.find(key);
    if (it == setters.end()) {
      std::vector<std::string> known;
      for (const auto& [k, _] : setters) known.push_back(k);
      return absl::InvalidArgumentError(absl::StrCat(field, ": unknown field (known: ",
                                                     absl::StrJoin(known, ", "), ")"));
    }
    RETURN_IF_ERROR(it->second(value));
  }
  return absl::OkStatus();
}

absl::Status Invalid(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

// The quantization scheme and the FP32 initialisation (docs/recipe.md).
absl::Status ValidateSchemeFields(const TrialConfig& c) {
  const auto scheme = ParseQuantScheme(c.scheme);
  if (!scheme) {
    return Invalid("scheme", absl::StrCat("unknown scheme '", c.scheme, "' (known: ",
                                          absl::StrJoin(KnownQuantSchemes(), ", "), ")"));
  }
  if (c.weight_scale > 0 && *scheme != QuantScheme::kWrpn) {
    return Invalid("weight_scale", absl::StrCat("is a rule of the wrpn scheme's weight quantizer; ",
                                                "scheme ", c.scheme, " sets its own range"));
  }
  if (!c.init_from.empty() && c.init_from != kInitFromFp32) {
    return Invalid("init_from", absl::StrCat("must be empty or '", kInitFromFp32, "', got '",
                                             c.init_from, "'"));
  }
  if (!c.init_checkpoint.empty() && c.init_from.empty()) {
    return Invalid("init_checkpoint", "needs init_from: fp32");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TrialConfig> TrialConfigFromJson(const json& j) {
  TrialConfig c;
  DatasetConfig& d = c.dataset;
  const std::map<std::string, Setter> dataset_setters = {
      {"kind", Str("dataset.kind", &d.kind)},
      {"path", Str("dataset.path", &d.path)},
      {"train_subset", Int("dataset.train_subset", &d.train_subset)},
      {"test_subset", Int("dataset.test_subset", &d.test_subset)},
      {"augment", Bool("dataset.augment", &d.augment)},
      {"image_size", Int("dataset.image_size", &d.image_size)},
      {"channels", Int("dataset.channels", &d.channels)},
      {"height", Int("dataset.height", &d.height)},
      {"width", Int("dataset.width", &d.width)},
      {"classes", Int("dataset.classes", &d.classes)},
      {"train_size", Int("dataset.train_size", &d.train_size)},
      {"test_size", Int("dataset.test_size", &d.test_size)},
  };
  const std::map<std::string, Setter> setters = {
      {"network", Str("network", &c.network)},
      {"width", Num("width", &c.width)},
      {"wbits", Int("wbits", &c.wbits)},
      {"abits", Int("abits", &c.abits)},
      {"dataset", [&](const json& v) { return ApplyObject(v, "dataset", dataset_setters); }},
      {"epochs", Int("epochs", &c.epochs)},
      {"batch_size", Int("batch_size", &c.batch_size)},
      {"optimizer", Str("optimizer", &c.optimizer)},
      {"lr", Num("lr", &c.lr)},
      {"momentum", Num("momentum", &c.momentum)},
      {"nesterov", Bool("nesterov", &c.nesterov)},
      {"weight_decay", Num("weight_decay", &c.weight_decay)},
      {"schedule", Str("schedule", &c.schedule)},
      {"warmup_epochs", Num("warmup_epochs", &c.warmup_epochs)},
      {"step_epochs", Int("step_epochs", &c.step_epochs)},
      {"gamma", Num("gamma", &c.gamma)},
      {"seed", Int("seed", &c.seed)},
      {"device", Str("device", &c.device)},
      {"amp", Bool("amp", &c.amp)},
      {"channels_last", Bool("channels_last", &c.channels_last)},
      {"num_workers", Int("num_workers", &c.num_workers)},
      {"threads", Int("threads", &c.threads)},
      {"checkpoint_dir", Str("checkpoint_dir", &c.checkpoint_dir)},
      {"resume", Bool("resume", &c.resume)},
      {"stop_after_epochs", Int("stop_after_epochs", &c.stop_after_epochs)},
      {"weight_scale", Num("weight_scale", &c.weight_scale)},
      {"cpu_cores", Int("cpu_cores", &c.cpu_cores)},
      {"scheme", Str("scheme", &c.scheme)},
      {"init_from", Str("init_from", &c.init_from)},
      {"init_checkpoint", Str("init_checkpoint", &c.init_checkpoint)},
  };
  RETURN_IF_ERROR(ApplyObject(j, "", setters));
  RETURN_IF_ERROR(ValidateTrialConfig(c));
  return c;
}

absl::StatusOr<TrialConfig> TrialConfigFromJsonText(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("config: not valid JSON");
  return TrialConfigFromJson(j);
}

json TrialConfigToJson(const TrialConfig& c) {
  const DatasetConfig& d = c.dataset;
  json dataset = {{"kind", d.kind},
                  {"path", d.path},
                  {"train_subset", d.train_subset},
                  {"test_subset", d.test_subset},
                  {"augment", d.augment},
                  {"image_size", d.image_size}};
  if (d.kind == "synthetic") {
    dataset.update({{"channels", d.channels},
                    {"height", d.height},
                    {"width", d.width},
                    {"classes", d.classes},
                    {"train_size", d.train_size},
                    {"test_size", d.test_size}});
  }
  return json{{"network", c.network},
              {"width", c.width},
              {"wbits", c.wbits},
              {"abits", c.abits},
              {"dataset", dataset},
              {"epochs", c.epochs},
              {"batch_size", c.batch_size},
              {"optimizer", c.optimizer},
              {"lr", c.lr},
              {"momentum", c.momentum},
              {"nesterov", c.nesterov},
              {"weight_decay", c.weight_decay},
              {"schedule", c.schedule},
              {"warmup_epochs", c.warmup_epochs},
              {"step_epochs", c.step_epochs},
              {"gamma", c.gamma},
              {"seed", c.seed},
              {"device", c.device},
              {"amp", c.amp},
              {"channels_last", c.channels_last},
              {"num_workers", c.num_workers},
              {"threads", c.threads},
              {"checkpoint_dir", c.checkpoint_dir},
              {"resume", c.resume},
              {"stop_after_epochs", c.stop_after_epochs},
              {"weight_scale", c.weight_scale},
              {"cpu_cores", c.cpu_cores},
              {"scheme", c.scheme},
              {"init_from", c.init_from},
              {"init_checkpoint", c.init_checkpoint}};
}

absl::Status ValidateTrialConfig(const TrialConfig& c) {
  if (!IsKnownNetwork(c.network)) {
    return Invalid("network", absl::StrCat("unknown network '", c.network, "' (known: ",
                                           absl::StrJoin(KnownNetworks(), ", "), ")"));
  }
  if (!(c.width > 0) || !std::isfinite(c.width) || c.width > 8) {
    return Invalid("width", absl::StrCat("must be > 0 and <= 8, got ", c.width));
  }
  if (!IsValidBits(c.wbits)) {
    return Invalid("wbits", absl::StrCat("must be 1..16 or 32, got ", c.wbits));
  }
  if (!IsValidBits(c.abits)) {
    return Invalid("abits", absl::StrCat("must be 1..16 or 32, got ", c.abits));
  }
  const DatasetConfig& d = c.dataset;
  static const std::vector<std::string> kKinds = {"fashion_mnist", "mnist", "cifar10",
                                                  "imagefolder", "packed", "synthetic"};
  if (std::find(kKinds.begin(), kKinds.end(), d.kind) == kKinds.end()) {
    return Invalid("dataset.kind", absl::StrCat("unknown dataset kind '", d.kind, "' (known: ",
                                                absl::StrJoin(kKinds, ", "), ")"));
  }
  if (d.path.empty() && d.kind != "synthetic" && d.kind != "fashion_mnist") {
    return Invalid("dataset.path", absl::StrCat("required for dataset kind '", d.kind, "'"));
  }
  if (d.train_subset < 0) return Invalid("dataset.train_subset", "must be >= 0");
  if (d.test_subset < 0) return Invalid("dataset.test_subset", "must be >= 0");
  if (d.image_size < 0 || d.image_size > 4096) {
    return Invalid("dataset.image_size", absl::StrCat("must be 0..4096, got ", d.image_size));
  }
  if (d.kind == "synthetic") {
    if (d.channels < 1 || d.channels > 16)
      return Invalid("dataset.channels", absl::StrCat("must be 1..16, got ", d.channels));
    if (d.height < 1 || d.height > 1024)
      return Invalid("dataset.height", absl::StrCat("must be 1..1024, got ", d.height));
    if (d.width < 1 || d.width > 1024)
      return Invalid("dataset.width", absl::StrCat("must be 1..1024, got ", d.width));
    if (d.classes < 2 || d.classes > 100000)
      return Invalid("dataset.classes", absl::StrCat("must be 2..100000, got ", d.classes));
    if (d.train_size < 1) return Invalid("dataset.train_size", "must be >= 1");
    if (d.test_size < 1) return Invalid("dataset.test_size", "must be >= 1");
  }
  if (c.epochs < 1) return Invalid("epochs", absl::StrCat("must be >= 1, got ", c.epochs));
  if (c.batch_size < 1) {
    return Invalid("batch_size", absl::StrCat("must be >= 1, got ", c.batch_size));
  }
  if (c.optimizer != "sgd" && c.optimizer != "adam") {
    return Invalid("optimizer", absl::StrCat("must be sgd or adam, got '", c.optimizer, "'"));
  }
  if (!(c.lr > 0) || !std::isfinite(c.lr)) {
    return Invalid("lr", absl::StrCat("must be > 0, got ", c.lr));
  }
  if (!(c.momentum >= 0 && c.momentum < 1)) {
    return Invalid("momentum", absl::StrCat("must be in [0, 1), got ", c.momentum));
  }
  if (c.nesterov && c.optimizer == "sgd" && c.momentum == 0) {
    return Invalid("nesterov", "needs momentum > 0");
  }
  if (!(c.weight_decay >= 0) || !std::isfinite(c.weight_decay)) {
    return Invalid("weight_decay", absl::StrCat("must be >= 0, got ", c.weight_decay));
  }
  static const std::vector<std::string> kSchedules = {"cosine", "step", "onecycle", "constant"};
  if (std::find(kSchedules.begin(), kSchedules.end(), c.schedule) == kSchedules.end()) {
    return Invalid("schedule", absl::StrCat("unknown schedule '", c.schedule, "' (known: ",
                                            absl::StrJoin(kSchedules, ", "), ")"));
  }
  if (!(c.warmup_epochs >= 0) || c.warmup_epochs >= c.epochs) {
    return Invalid("warmup_epochs",
                   absl::StrCat("must be >= 0 and < epochs, got ", c.warmup_epochs));
  }
  if (c.step_epochs < 1) return Invalid("step_epochs", "must be >= 1");
  if (!(c.gamma > 0 && c.gamma <= 1)) {
    return Invalid("gamma", absl::StrCat("must be in (0, 1], got ", c.gamma));
  }
  const bool cuda = c.device == "cuda" || c.device.rfind("cuda:", 0) == 0;
  if (c.device != "cpu" && !cuda) {
    return Invalid("device", absl::StrCat("must be cpu, cuda or cuda:N, got '", c.device, "'"));
  }
  if (c.device.rfind("cuda:", 0) == 0) {
    const std::string idx = c.device.substr(5);
    if (idx.empty() || idx.find_first_not_of("0123456789") != std::string::npos) {
      return Invalid("device", absl::StrCat("bad CUDA device index in '", c.device, "'"));
    }
  }
  if (c.amp && !cuda) return Invalid("amp", "bf16 autocast needs a CUDA device");
  if (c.channels_last && !cuda) return Invalid("channels_last", "needs a CUDA device");
  if (c.num_workers < -1 || c.num_workers > 64) {
    return Invalid("num_workers", absl::StrCat("must be -1 (auto) or 0..64, got ", c.num_workers));
  }
  if (c.cpu_cores < 0 || c.cpu_cores > 4096) {
    return Invalid("cpu_cores", absl::StrCat("must be 0..4096, got ", c.cpu_cores));
  }
  if (c.threads < 0 || c.threads > 1024) return Invalid("threads", "must be 0..1024");
  if (c.resume && c.checkpoint_dir.empty()) {
    return Invalid("resume", "needs checkpoint_dir");
  }
  if (c.stop_after_epochs < 0) return Invalid("stop_after_epochs", "must be >= 0");
  if (!(c.weight_scale >= 0) || !std::isfinite(c.weight_scale)) {
    return Invalid("weight_scale", absl::StrCat("must be >= 0, got ", c.weight_scale));
  }
  RETURN_IF_ERROR(ValidateSchemeFields(c));
  return absl::OkStatus();
}

}  // namespace wrpn
