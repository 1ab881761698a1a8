#include "common/sweep_spec.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <tuple>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/network_spec.h"
#include "common/status.h"
#include "common/yaml_json.h"

namespace wrpn {
namespace {

using nlohmann::json;

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string Where(const std::string& path) { return path.empty() ? "the spec" : path; }
std::string Field(const std::string& path, const std::string& key) {
  return path.empty() ? key : absl::StrCat(path, ".", key);
}

absl::Status CheckKeys(const json& obj, const std::string& path,
                       const std::vector<std::string>& allowed) {
  if (!obj.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(path), ": expected a map, got ", obj.dump()));
  }
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (std::find(allowed.begin(), allowed.end(), it.key()) != allowed.end()) continue;
    std::string best;
    size_t best_d = 3;
    for (const auto& a : allowed) {
      size_t d = EditDistance(it.key(), a);
      if (d < best_d) best_d = d, best = a;
    }
    std::string msg = absl::StrCat("unknown key '", it.key(), "' in ", Where(path));
    if (!best.empty()) absl::StrAppend(&msg, " (did you mean '", best, "'?)");
    else absl::StrAppend(&msg, " (allowed: ", absl::StrJoin(allowed, ", "), ")");
    return absl::InvalidArgumentError(msg);
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> AsInt(const json& v, const std::string& field) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::floor(d) == d && std::abs(d) < 9e15) return static_cast<int64_t>(d);
  }
  if (v.is_string()) {  // protobuf's JSON form prints int64 as strings
    int64_t out;
    if (absl::SimpleAtoi(v.get<std::string>(), &out)) return out;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": expected an integer, got ", v.dump()));
}

absl::StatusOr<double> AsDouble(const json& v, const std::string& field) {
  if (v.is_number()) return v.get<double>();
  return absl::InvalidArgumentError(absl::StrCat(field, ": expected a number, got ", v.dump()));
}

absl::StatusOr<std::string> AsString(const json& v, const std::string& field) {
  if (v.is_string()) return v.get<std::string>();
  return absl::InvalidArgumentError(absl::StrCat(field, ": expected a string, got ", v.dump()));
}

absl::StatusOr<bool> AsBool(const json& v, const std::string& field) {
  if (v.is_boolean()) return v.get<bool>();
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": expected true or false, got ", v.dump()));
}

// Reads obj[key] into *out when present (null counts as absent).
template <typename T, typename F>
absl::Status Read(const json& obj, const std::string& path, const char* key, F conv, T* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return absl::OkStatus();
  auto v = conv(*it, Field(path, key));
  if (!v.ok()) return v.status();
  *out = static_cast<T>(*v);
  return absl::OkStatus();
}

absl::Status ReadInt(const json& o, const std::string& p, const char* k, int* out) {
  int64_t v = *out;
  RETURN_IF_ERROR(Read(o, p, k, AsInt, &v));
  if (v < INT32_MIN || v > INT32_MAX) {
    return absl::InvalidArgumentError(absl::StrCat(Field(p, k), ": ", v, " is out of range"));
  }
  *out = static_cast<int>(v);
  return absl::OkStatus();
}
absl::Status ReadInt64(const json& o, const std::string& p, const char* k, int64_t* out) {
  return Read(o, p, k, AsInt, out);
}
absl::Status ReadDouble(const json& o, const std::string& p, const char* k, double* out) {
  return Read(o, p, k, AsDouble, out);
}
absl::Status ReadString(const json& o, const std::string& p, const char* k, std::string* out) {
  return Read(o, p, k, AsString, out);
}
absl::Status ReadBool(const json& o, const std::string& p, const char* k, bool* out) {
  return Read(o, p, k, AsBool, out);
}

// A list axis; a scalar is accepted as a one-element list. Absent -> *present = false; null ->
// present and empty.
absl::StatusOr<std::vector<json>> ReadList(const json& obj, const char* key, bool* present) {
  auto it = obj.find(key);
  *present = it != obj.end();
  if (!*present || it->is_null()) return std::vector<json>{};
  if (it->is_array()) return std::vector<json>(it->begin(), it->end());
  return std::vector<json>{*it};
}

std::string Num(double v) { return absl::StrCat(v); }

absl::StatusOr<PrecisionPair> ParsePair(const json& v, const std::string& field) {
  PrecisionPair p;
  if (v.is_array() && v.size() == 2) {
    ASSIGN_OR_RETURN(int64_t w, AsInt(v[0], field));
    ASSIGN_OR_RETURN(int64_t a, AsInt(v[1], field));
    p.wbits = static_cast<int>(w), p.abits = static_cast<int>(a);
    return p;
  }
  if (v.is_string()) {  // "4/2" = wbits 4, abits 2
    const std::string s = v.get<std::string>();
    auto slash = s.find('/');
    int w, a;
    if (slash != std::string::npos && absl::SimpleAtoi(s.substr(0, slash), &w) &&
        absl::SimpleAtoi(s.substr(slash + 1), &a)) {
      p.wbits = w, p.abits = a;
      return p;
    }
  }
  if (v.is_object()) {
    RETURN_IF_ERROR(CheckKeys(v, field, {"wbits", "abits"}));
    if (!v.contains("wbits") || !v.contains("abits")) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": a precision needs both wbits and abits, got ", v.dump()));
    }
    RETURN_IF_ERROR(ReadInt(v, field, "wbits", &p.wbits));
    RETURN_IF_ERROR(ReadInt(v, field, "abits", &p.abits));
    return p;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      field, ": expected [wbits, abits], \"wbits/abits\" or {wbits, abits}, got ", v.dump()));
}

absl::Status NonEmpty(bool present, size_t n, const std::string& field) {
  if (present && n == 0) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": must not be empty"));
  }
  if (!present) return absl::InvalidArgumentError(absl::StrCat(field, ": missing"));
  return absl::OkStatus();
}

absl::StatusOr<AxesBlock> ParseAxes(const json& obj, const std::string& path) {
  RETURN_IF_ERROR(CheckKeys(obj, path, {"network", "width", "precision", "wbits", "abits", "seed"}));
  AxesBlock b;
  bool present;
  ASSIGN_OR_RETURN(auto nets, ReadList(obj, "network", &present));
  RETURN_IF_ERROR(NonEmpty(present, nets.size(), Field(path, "network")));
  for (const auto& n : nets) {
    ASSIGN_OR_RETURN(std::string s, AsString(n, Field(path, "network")));
    b.networks.push_back(s);
  }
  ASSIGN_OR_RETURN(auto widths, ReadList(obj, "width", &present));
  RETURN_IF_ERROR(NonEmpty(present, widths.size(), Field(path, "width")));
  for (const auto& w : widths) {
    ASSIGN_OR_RETURN(double d, AsDouble(w, Field(path, "width")));
    b.widths.push_back(d);
  }
  bool has_prec, has_w, has_a;
  ASSIGN_OR_RETURN(auto prec, ReadList(obj, "precision", &has_prec));
  ASSIGN_OR_RETURN(auto wl, ReadList(obj, "wbits", &has_w));
  ASSIGN_OR_RETURN(auto al, ReadList(obj, "abits", &has_a));
  // protobuf's JSON form omits empty repeated fields: an absent list next to a present one is
  // treated as absent.
  has_prec = has_prec && (!prec.empty() || (!has_w && !has_a));
  if (has_prec && (has_w || has_a)) {
    return absl::InvalidArgumentError(absl::StrCat(
        Where(path), ": give either precision or wbits and abits, not both"));
  }
  if (has_prec) {
    RETURN_IF_ERROR(NonEmpty(true, prec.size(), Field(path, "precision")));
    // [4, 4] alone is one pair, not two one-bit values.
    if (prec.size() == 2 && prec[0].is_number() && prec[1].is_number()) {
      prec = {json::array({prec[0], prec[1]})};
    }
    for (const auto& p : prec) {
      ASSIGN_OR_RETURN(PrecisionPair pair, ParsePair(p, Field(path, "precision")));
      b.precisions.push_back(pair);
    }
  } else {
    if (!has_w && !has_a) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(path), ": missing precision (or wbits and abits)"));
    }
    RETURN_IF_ERROR(NonEmpty(has_w, wl.size(), Field(path, "wbits")));
    RETURN_IF_ERROR(NonEmpty(has_a, al.size(), Field(path, "abits")));
    std::vector<int> ws, as;
    for (const auto& w : wl) {
      ASSIGN_OR_RETURN(int64_t v, AsInt(w, Field(path, "wbits")));
      if (!IsValidBits(static_cast<int>(v)) || v != static_cast<int>(v)) {
        return absl::InvalidArgumentError(absl::StrCat(
            Field(path, "wbits"), ": ", v, " is not a valid bit width (1..16 or 32)"));
      }
      if (std::find(ws.begin(), ws.end(), v) != ws.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat(Field(path, "wbits"), ": duplicate value ", v));
      }
      ws.push_back(static_cast<int>(v));
    }
    for (const auto& a : al) {
      ASSIGN_OR_RETURN(int64_t v, AsInt(a, Field(path, "abits")));
      if (!IsValidBits(static_cast<int>(v)) || v != static_cast<int>(v)) {
        return absl::InvalidArgumentError(absl::StrCat(
            Field(path, "abits"), ": ", v, " is not a valid bit width (1..16 or 32)"));
      }
      if (std::find(as.begin(), as.end(), v) != as.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat(Field(path, "abits"), ": duplicate value ", v));
      }
      as.push_back(static_cast<int>(v));
    }
    for (int w : ws)
      for (int a : as) b.precisions.push_back({w, a});
  }
  ASSIGN_OR_RETURN(auto seeds, ReadList(obj, "seed", &present));
  if (present) {
    if (seeds.empty() && obj.at("seed").is_array()) {
      return absl::InvalidArgumentError(absl::StrCat(Field(path, "seed"), ": must not be empty"));
    }
    b.seeds.clear();
    for (const auto& s : seeds) {
      ASSIGN_OR_RETURN(int64_t v, AsInt(s, Field(path, "seed")));
      b.seeds.push_back(v);
    }
    if (b.seeds.empty()) b.seeds = {0};
  }
  return b;
}

const std::vector<std::string>& RecipeKeys() {
  static const std::vector<std::string> keys = {
      "epochs", "batch_size", "optimizer", "lr", "momentum", "nesterov", "weight_decay",
      "schedule", "warmup_epochs", "step_epochs", "gamma", "device", "amp", "channels_last",
      "num_workers", "threads", "weight_scale"};
  return keys;
}
const std::vector<std::string>& DatasetKeys() {
  static const std::vector<std::string> keys = {
      "kind", "path", "train_subset", "test_subset", "augment", "image_size",
      "channels", "height", "width", "classes", "train_size", "test_size"};
  return keys;
}

// protobuf's JSON form prints int64 fields as strings; turn digit strings back into numbers.
json IntsFromStrings(json obj, const std::vector<std::string>& keys) {
  for (const auto& k : keys) {
    auto it = obj.find(k);
    int64_t v;
    if (it != obj.end() && it->is_string() && absl::SimpleAtoi(it->get<std::string>(), &v)) {
      *it = v;
    }
  }
  return obj;
}

// Applies the recipe and dataset sections over TrialConfig's defaults. Field errors from the
// trial-config parser are reported under recipe.* / dataset.*.
absl::StatusOr<TrialConfig> ParseBase(const json& recipe, const json& dataset, int gpus,
                                      const std::string& network) {
  json cfg = TrialConfigToJson(TrialConfig{});
  cfg["network"] = network;
  cfg["device"] = gpus > 0 ? "cuda" : "cpu";
  if (!recipe.is_null()) {
    RETURN_IF_ERROR(CheckKeys(recipe, "recipe", RecipeKeys()));
    for (auto it = recipe.begin(); it != recipe.end(); ++it) cfg[it.key()] = it.value();
  }
  if (!dataset.is_null()) {
    RETURN_IF_ERROR(CheckKeys(dataset, "dataset", DatasetKeys()));
    json d = IntsFromStrings(dataset, {"train_subset", "test_subset", "train_size", "test_size"});
    // Only synthetic datasets carry shape fields in the config.
    json merged = cfg["dataset"];
    for (auto it = d.begin(); it != d.end(); ++it) merged[it.key()] = it.value();
    cfg["dataset"] = merged;
  }
  auto c = TrialConfigFromJson(cfg);
  if (!c.ok()) {
    std::string msg(c.status().message());
    if (msg.rfind("dataset", 0) != 0) msg = "recipe." + msg;
    return absl::InvalidArgumentError(msg);
  }
  return c;
}

absl::Status OutOfRange(const std::string& field, const std::string& value,
                        const std::string& rule) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", value, " ", rule));
}

template <typename T>
bool OneOf(const T& v, const std::vector<T>& set) {
  return std::find(set.begin(), set.end(), v) != set.end();
}

}  // namespace

absl::Status ValidateAxes(const SweepSpec& spec);

absl::StatusOr<SweepSpec> SweepSpecFromJson(const json& doc) {
  RETURN_IF_ERROR(CheckKeys(doc, "", {"name", "dataset", "axes", "recipe", "resources",
                                      "max_attempts", "priority"}));
  SweepSpec spec;
  RETURN_IF_ERROR(ReadString(doc, "", "name", &spec.name));
  auto axes = doc.find("axes");
  if (axes == doc.end() || axes->is_null()) {
    return absl::InvalidArgumentError("axes: missing (give network, width, precision, seed)");
  }
  if (axes->is_array()) {
    if (axes->empty()) return absl::InvalidArgumentError("axes: must not be empty");
    for (size_t i = 0; i < axes->size(); ++i) {
      ASSIGN_OR_RETURN(AxesBlock b, ParseAxes((*axes)[i], absl::StrCat("axes[", i, "]")));
      spec.axes.push_back(std::move(b));
    }
  } else {
    ASSIGN_OR_RETURN(AxesBlock b, ParseAxes(*axes, "axes"));
    spec.axes.push_back(std::move(b));
  }
  if (auto it = doc.find("resources"); it != doc.end() && !it->is_null()) {
    RETURN_IF_ERROR(CheckKeys(*it, "resources", {"gpus_per_node", "nodes"}));
    RETURN_IF_ERROR(ReadInt(*it, "resources", "gpus_per_node", &spec.resources.gpus_per_node));
    RETURN_IF_ERROR(ReadInt(*it, "resources", "nodes", &spec.resources.nodes));
  }
  RETURN_IF_ERROR(ReadInt(doc, "", "max_attempts", &spec.max_attempts));
  RETURN_IF_ERROR(ReadInt(doc, "", "priority", &spec.priority));
  RETURN_IF_ERROR(ValidateAxes(spec));
  const json null_json;
  auto rit = doc.find("recipe");
  auto dit = doc.find("dataset");
  ASSIGN_OR_RETURN(spec.base, ParseBase(rit == doc.end() ? null_json : *rit,
                                        dit == doc.end() ? null_json : *dit,
                                        spec.resources.gpus_per_node, spec.axes[0].networks[0]));
  RETURN_IF_ERROR(ValidateSweepSpec(spec));
  return spec;
}

absl::StatusOr<SweepSpec> ParseSweepSpec(std::string_view text) {
  auto doc = YamlToJson(text);
  if (!doc.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("sweep spec is not valid YAML or JSON: ", doc.status().message()));
  }
  if (doc->is_null()) return absl::InvalidArgumentError("sweep spec is empty");
  return SweepSpecFromJson(*doc);
}

absl::Status ValidateAxes(const SweepSpec& spec) {
  if (spec.axes.empty()) return absl::InvalidArgumentError("axes: must not be empty");
  for (size_t i = 0; i < spec.axes.size(); ++i) {
    const AxesBlock& b = spec.axes[i];
    const std::string p = spec.axes.size() == 1 ? "axes" : absl::StrCat("axes[", i, "]");
    if (b.networks.empty()) return absl::InvalidArgumentError(p + ".network: must not be empty");
    if (b.widths.empty()) return absl::InvalidArgumentError(p + ".width: must not be empty");
    if (b.precisions.empty())
      return absl::InvalidArgumentError(p + ".precision: must not be empty");
    if (b.seeds.empty()) return absl::InvalidArgumentError(p + ".seed: must not be empty");
    for (size_t j = 0; j < b.networks.size(); ++j) {
      if (!IsKnownNetwork(b.networks[j])) {
        return absl::InvalidArgumentError(
            absl::StrCat(p, ".network: unknown network '", b.networks[j],
                         "' (known: ", absl::StrJoin(KnownNetworks(), ", "), ")"));
      }
      if (std::find(b.networks.begin(), b.networks.begin() + j, b.networks[j]) !=
          b.networks.begin() + j) {
        return absl::InvalidArgumentError(
            absl::StrCat(p, ".network: duplicate value '", b.networks[j], "'"));
      }
    }
    for (size_t j = 0; j < b.widths.size(); ++j) {
      double w = b.widths[j];
      if (!(w > 0) || w > kMaxWidth || !std::isfinite(w)) {
        return OutOfRange(p + ".width", Num(w), "is out of range (0, 8]");
      }
      if (std::find(b.widths.begin(), b.widths.begin() + j, w) != b.widths.begin() + j) {
        return absl::InvalidArgumentError(absl::StrCat(p, ".width: duplicate value ", Num(w)));
      }
    }
    for (size_t j = 0; j < b.precisions.size(); ++j) {
      const PrecisionPair& q = b.precisions[j];
      if (!IsValidBits(q.wbits)) {
        return absl::InvalidArgumentError(absl::StrCat(
            p, ".precision: wbits ", q.wbits, " is not a valid bit width (1..16 or 32)"));
      }
      if (!IsValidBits(q.abits)) {
        return absl::InvalidArgumentError(absl::StrCat(
            p, ".precision: abits ", q.abits, " is not a valid bit width (1..16 or 32)"));
      }
      if (std::find(b.precisions.begin(), b.precisions.begin() + j, q) !=
          b.precisions.begin() + j) {
        return absl::InvalidArgumentError(
            absl::StrCat(p, ".precision: duplicate value ", q.wbits, "/", q.abits));
      }
    }
    for (size_t j = 0; j < b.seeds.size(); ++j) {
      if (b.seeds[j] < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(p, ".seed: ", b.seeds[j], " must be >= 0"));
      }
      if (std::find(b.seeds.begin(), b.seeds.begin() + j, b.seeds[j]) != b.seeds.begin() + j) {
        return absl::InvalidArgumentError(absl::StrCat(p, ".seed: duplicate value ", b.seeds[j]));
      }
    }
  }
  const int64_t n = CountTrials(spec);
  if (n > kMaxTrialsPerSweep) {
    return absl::InvalidArgumentError(absl::StrCat("axes: the grid has ", n,
                                                   " trials, more than the limit of ",
                                                   kMaxTrialsPerSweep));
  }
  if (spec.axes.size() > 1) {
    std::set<std::tuple<std::string, double, int, int, int64_t>> seen;
    for (const TrialPoint& t : ExpandSweep(spec)) {
      if (!seen.emplace(t.network, t.width, t.wbits, t.abits, t.seed).second) {
        return absl::InvalidArgumentError(absl::StrCat(
            "axes: trial network=", t.network, " width=", Num(t.width), " wbits=", t.wbits,
            " abits=", t.abits, " seed=", t.seed, " is listed by more than one block"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateSweepSpec(const SweepSpec& spec) {
  RETURN_IF_ERROR(ValidateAxes(spec));
  std::set<std::string> networks;
  for (const AxesBlock& b : spec.axes) networks.insert(b.networks.begin(), b.networks.end());
  for (const std::string& net : networks) {
    TrialConfig c = spec.base;
    c.network = net;
    c.width = spec.axes[0].widths[0];
    c.wbits = spec.axes[0].precisions[0].wbits;
    c.abits = spec.axes[0].precisions[0].abits;
    if (absl::Status st = ValidateTrialConfig(c); !st.ok()) {
      std::string msg(st.message());
      if (msg.rfind("dataset", 0) != 0) msg = "recipe." + msg;
      return absl::InvalidArgumentError(absl::StrCat(msg, " (network ", net, ")"));
    }
  }
  if (spec.resources.gpus_per_node < 0 || spec.resources.gpus_per_node > 64)
    return OutOfRange("resources.gpus_per_node", absl::StrCat(spec.resources.gpus_per_node),
                      "is out of range [0, 64]");
  if (spec.resources.nodes < 1 || spec.resources.nodes > 1024)
    return OutOfRange("resources.nodes", absl::StrCat(spec.resources.nodes),
                      "is out of range [1, 1024]");
  if (spec.resources.nodes > 1 && spec.resources.gpus_per_node == 0)
    return OutOfRange("resources.nodes", absl::StrCat(spec.resources.nodes),
                      "needs gpus_per_node >= 1 (multi-node trials run on GPUs)");
  if (spec.max_attempts < 1 || spec.max_attempts > 100)
    return OutOfRange("max_attempts", absl::StrCat(spec.max_attempts), "is out of range [1, 100]");
  return absl::OkStatus();
}

int64_t CountTrials(const SweepSpec& spec) {
  int64_t n = 0;
  for (const AxesBlock& b : spec.axes) {
    n += static_cast<int64_t>(b.networks.size()) * static_cast<int64_t>(b.widths.size()) *
         static_cast<int64_t>(b.precisions.size()) * static_cast<int64_t>(b.seeds.size());
  }
  return n;
}

std::vector<TrialPoint> ExpandSweep(const SweepSpec& spec) {
  std::vector<TrialPoint> out;
  out.reserve(static_cast<size_t>(std::min<int64_t>(CountTrials(spec), kMaxTrialsPerSweep + 1)));
  for (const AxesBlock& b : spec.axes)
    for (const auto& n : b.networks)
      for (double w : b.widths)
        for (const auto& p : b.precisions)
          for (int64_t s : b.seeds) out.push_back({n, w, p.wbits, p.abits, s});
  return out;
}

json SweepSpecToJson(const SweepSpec& spec) {
  json doc;
  doc["name"] = spec.name;
  json base = TrialConfigToJson(spec.base);
  doc["dataset"] = base["dataset"];
  json recipe = json::object();
  for (const auto& k : RecipeKeys()) recipe[k] = base[k];
  doc["recipe"] = recipe;
  json axes = json::array();
  for (const AxesBlock& b : spec.axes) {
    json prec = json::array();
    for (const auto& p : b.precisions) prec.push_back({{"wbits", p.wbits}, {"abits", p.abits}});
    axes.push_back({{"network", b.networks},
                    {"width", b.widths},
                    {"precision", prec},
                    {"seed", b.seeds}});
  }
  doc["axes"] = axes;
  doc["resources"] = {{"gpus_per_node", spec.resources.gpus_per_node},
                      {"nodes", spec.resources.nodes}};
  doc["max_attempts"] = spec.max_attempts;
  doc["priority"] = spec.priority;
  return doc;
}

TrialConfig MakeTrialConfig(const SweepSpec& spec, const TrialPoint& point) {
  TrialConfig c = spec.base;
  c.network = point.network;
  c.width = point.width;
  c.wbits = point.wbits;
  c.abits = point.abits;
  c.seed = static_cast<uint64_t>(point.seed);
  return c;
}

json TrialConfigJson(const SweepSpec& spec, const TrialPoint& point) {
  return TrialConfigToJson(MakeTrialConfig(spec, point));
}

}  // namespace wrpn
