#include "common/sweep_spec.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <optional>
#include <tuple>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/network_spec.h"
#include "common/quant_scheme.h"
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

bool OneOfKeys(const std::string& k, const std::vector<std::string>& keys) {
  return std::find(keys.begin(), keys.end(), k) != keys.end();
}

absl::Status CheckSpecPath(const std::string& field, const std::string& path) {
  if (path.size() > 4096)
    return absl::InvalidArgumentError(absl::StrCat(field, ": is ", path.size(), " bytes; at most 4096 allowed"));
  if (path.find('\0') != std::string::npos)
    return absl::InvalidArgumentError(absl::StrCat(field, ": must not contain NUL bytes"));
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part == "..") {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": '", path, "' must not contain '..' (give a path under the worker's --data-dir "
          "or an absolute path under one of its --allow-data-root folders)"));
    }
  }
  return absl::OkStatus();
}

std::string Where(const std::string& path) { return path.empty() ? "the spec" : path; }
std::string Field(const std::string& path, const std::string& key) {
  return path.empty() ? key : absl::StrCat(path, ".", key);
}

// Collects every problem of a spec (each once, in the order found) so that a user sees all of
// them at once; ToStatus() joins them one per line.
class Problems {
 public:
  void Add(const absl::Status& st) {
    if (!st.ok()) Add(std::string(st.message()));
  }
  void Add(std::string msg) {
    if (!seen_.insert(msg).second) return;
    if (msgs_.size() < kMaxShown) msgs_.push_back(std::move(msg));
    else ++more_;
  }
  // Records `st` and says whether it was OK.
  bool Ok(const absl::Status& st) {
    Add(st);
    return st.ok();
  }
  bool empty() const { return msgs_.empty(); }
  size_t size() const { return msgs_.size() + more_; }
  absl::Status ToStatus() const {
    if (msgs_.empty()) return absl::OkStatus();
    std::string text = absl::StrJoin(msgs_, "\n");
    if (more_ > 0) absl::StrAppend(&text, "\n... and ", more_, " more problems");
    return absl::InvalidArgumentError(text);
  }

 private:
  // A hostile spec can have 100,000 problems; the first ones are shown, the rest counted.
  static constexpr size_t kMaxShown = 20;
  std::vector<std::string> msgs_;
  std::set<std::string> seen_;
  size_t more_ = 0;
};

// Reports every key of `obj` not in `allowed`; false when obj is not a map.
bool CheckKeys(const json& obj, const std::string& path, const std::vector<std::string>& allowed,
               Problems& problems) {
  if (!obj.is_object()) {
    problems.Add(absl::StrCat(Where(path), ": expected a map, got ", obj.dump()));
    return false;
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
    problems.Add(msg);
  }
  return true;
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
absl::Status ReadString(const json& o, const std::string& p, const char* k, std::string* out) {
  return Read(o, p, k, AsString, out);
}

// A list axis; a scalar is accepted as a one-element list. Absent -> *present = false; null ->
// present and empty.
std::vector<json> ReadList(const json& obj, const char* key, bool* present) {
  auto it = obj.find(key);
  *present = it != obj.end();
  if (!*present || it->is_null()) return {};
  if (it->is_array()) return std::vector<json>(it->begin(), it->end());
  return std::vector<json>{*it};
}

std::string Num(double v) { return absl::StrCat(v); }

absl::StatusOr<PrecisionPair> ParsePair(const json& v, const std::string& field) {
  PrecisionPair p;
  if (v.is_array() && v.size() == 2) {
    ASSIGN_OR_RETURN(int64_t w, AsInt(v[0], field));
    ASSIGN_OR_RETURN(int64_t a, AsInt(v[1], field));
    if (w != static_cast<int>(w) || a != static_cast<int>(a)) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": ", v.dump(), " is out of range"));
    }
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
    Problems keys;
    CheckKeys(v, field, {"wbits", "abits"}, keys);
    RETURN_IF_ERROR(keys.ToStatus());
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

// Reports an absent or empty required list; true when the list has values.
bool NonEmpty(bool present, size_t n, const std::string& field, Problems& problems) {
  if (!present) {
    problems.Add(absl::StrCat(field, ": missing"));
    return false;
  }
  if (n == 0) {
    problems.Add(absl::StrCat(field, ": must not be empty"));
    return false;
  }
  return true;
}

// Parses a list of bit widths (the wbits or abits axis), reporting each bad value.
std::vector<int> ParseBitsList(const std::vector<json>& list, const std::string& field,
                               Problems& problems) {
  std::vector<int> out;
  for (const auto& item : list) {
    auto v = AsInt(item, field);
    if (!problems.Ok(v.status())) continue;
    if (*v != static_cast<int>(*v) || !IsValidBits(static_cast<int>(*v))) {
      problems.Add(absl::StrCat(field, ": ", *v, " is not a valid bit width (1..16 or 32)"));
      continue;
    }
    if (std::find(out.begin(), out.end(), *v) != out.end()) {
      problems.Add(absl::StrCat(field, ": duplicate value ", *v));
      continue;
    }
    out.push_back(static_cast<int>(*v));
  }
  return out;
}

// The block's `scheme` list (default [wrpn]); values are checked by CheckAxes.
void ParseSchemes(const json& obj, const std::string& path, AxesBlock& b, Problems& problems) {
  bool present;
  auto schemes = ReadList(obj, "scheme", &present);
  if (!present || (schemes.empty() && !obj.at("scheme").is_array())) return;
  b.schemes.clear();
  if (schemes.empty()) problems.Add(absl::StrCat(Field(path, "scheme"), ": must not be empty"));
  for (const auto& v : schemes) {
    auto name = AsString(v, Field(path, "scheme"));
    if (problems.Ok(name.status())) b.schemes.push_back(*name);
  }
  if (b.schemes.empty()) b.schemes = {kDefaultScheme};
}

// Parses one block of axes, reporting every problem found; the block is usable (for further
// checks) only when nothing was reported.
AxesBlock ParseAxes(const json& obj, const std::string& path, Problems& problems) {
  AxesBlock b;
  if (!CheckKeys(obj, path, {"network", "width", "precision", "wbits", "abits", "seed", "scheme"},
                 problems)) {
    return b;
  }
  bool present;
  auto nets = ReadList(obj, "network", &present);
  if (NonEmpty(present, nets.size(), Field(path, "network"), problems)) {
    for (const auto& n : nets) {
      auto s = AsString(n, Field(path, "network"));
      if (problems.Ok(s.status())) b.networks.push_back(*s);
    }
  }
  auto widths = ReadList(obj, "width", &present);
  if (NonEmpty(present, widths.size(), Field(path, "width"), problems)) {
    for (const auto& w : widths) {
      auto d = AsDouble(w, Field(path, "width"));
      if (problems.Ok(d.status())) b.widths.push_back(*d);
    }
  }
  bool has_prec, has_w, has_a;
  auto prec = ReadList(obj, "precision", &has_prec);
  auto wl = ReadList(obj, "wbits", &has_w);
  auto al = ReadList(obj, "abits", &has_a);
  // protobuf's JSON form omits empty repeated fields: an absent list next to a present one is
  // treated as absent.
  has_prec = has_prec && (!prec.empty() || (!has_w && !has_a));
  if (has_prec && (has_w || has_a)) {
    problems.Add(absl::StrCat(Where(path), ": give either precision or wbits and abits, not both"));
  } else if (has_prec) {
    if (NonEmpty(true, prec.size(), Field(path, "precision"), problems)) {
      // [4, 4] alone is one pair, not two one-bit values.
      if (prec.size() == 2 && prec[0].is_number() && prec[1].is_number()) {
        prec = {json::array({prec[0], prec[1]})};
      }
      for (const auto& p : prec) {
        auto pair = ParsePair(p, Field(path, "precision"));
        if (problems.Ok(pair.status())) b.precisions.push_back(*pair);
      }
    }
  } else if (!has_w && !has_a) {
    problems.Add(absl::StrCat(Where(path), ": missing precision (or wbits and abits)"));
  } else {
    std::vector<int> ws, as;
    if (NonEmpty(has_w, wl.size(), Field(path, "wbits"), problems)) {
      ws = ParseBitsList(wl, Field(path, "wbits"), problems);
    }
    if (NonEmpty(has_a, al.size(), Field(path, "abits"), problems)) {
      as = ParseBitsList(al, Field(path, "abits"), problems);
    }
    for (int w : ws)
      for (int a : as) b.precisions.push_back({w, a});
  }
  auto seeds = ReadList(obj, "seed", &present);
  if (present) {
    b.seeds.clear();
    if (seeds.empty() && obj.at("seed").is_array()) {
      problems.Add(absl::StrCat(Field(path, "seed"), ": must not be empty"));
    }
    for (const auto& s : seeds) {
      auto v = AsInt(s, Field(path, "seed"));
      if (problems.Ok(v.status())) b.seeds.push_back(*v);
    }
    if (b.seeds.empty()) b.seeds = {0};
  }
  ParseSchemes(obj, path, b, problems);
  return b;
}

const std::vector<std::string>& RecipeKeys() {
  static const std::vector<std::string> keys = TrialConfigKeys(FieldSection::kRecipe);
  return keys;
}
const std::vector<std::string>& DatasetKeys() {
  static const std::vector<std::string> keys = TrialConfigKeys(FieldSection::kDataset);
  return keys;
}

// protobuf's JSON form prints int64 fields as strings; turn digit strings of the section's
// 64-bit fields back into numbers.
json IntsFromStrings(json obj, FieldSection section) {
  for (const FieldInfo& f : TrialConfigFields()) {
    if (f.section != section || (f.type != FieldType::kInt64 && f.type != FieldType::kUint64))
      continue;
    auto it = obj.find(f.key);
    int64_t v;
    if (it != obj.end() && it->is_string() && absl::SimpleAtoi(it->get<std::string>(), &v)) {
      *it = v;
    }
  }
  return obj;
}

// ---- the resources section, from the field table (trial_config_fields.inc)

using ResourcesRow = fields::FieldRow<Resources>;

struct NodesNeedGpus {
  std::string operator()(int v, const Resources& r) const {
    if (v < 1 || v > 1024) return absl::StrCat(v, " is out of range [1, 1024]");
    if (v > 1 && r.gpu_share > 0) {
      return absl::StrCat(v, " with gpu_share ", FormatShare(r.gpu_share),
                          ": a gang (nodes > 1) takes whole GPUs only");
    }
    if (v > 1 && r.gpus_per_node == 0) {
      return absl::StrCat(v, " needs gpus_per_node >= 1 (multi-node trials run on GPUs)");
    }
    return "";
  }
};

// 0 (whole GPUs) or a fraction 1/k of one GPU, and not with whole GPUs too.
struct GpuShareFraction {
  std::string operator()(double v, const Resources& r) const {
    if (v == 0) return "";
    if (ShareDenominatorOf(v) == 0) {
      return absl::StrCat(Num(v), " must be a fraction 1/k of one GPU (k = 2..",
                          kMaxGpuShareDenominator, "); give whole GPUs as gpus_per_node");
    }
    if (r.gpus_per_node > 0) return "give either gpus_per_node or gpu_share, not both";
    return "";
  }
};

struct GpuMemoryNeedsGpu {
  std::string operator()(double v, const Resources& r) const {
    if (!std::isfinite(v) || v < 0 || v > kMaxGpuMemoryGb) {
      return absl::StrCat(Num(v), " is out of range [0, ", kMaxGpuMemoryGb, "]");
    }
    if (v > 0 && !r.uses_gpu()) {
      return absl::StrCat(Num(v), " needs a GPU trial (gpus_per_node > 0); CPU trials have no "
                                  "GPU memory");
    }
    return "";
  }
};

const std::vector<ResourcesRow>& ResourcesRows() {
  static const std::vector<ResourcesRow>* rows = [] {
    using namespace fields;  // the checks the table names
    auto* v = new std::vector<ResourcesRow>();
#define WRPN_RESOURCES_FIELD(type, name, def, help, check)                                  \
  v->push_back(MakeRow<Resources, type>(                                                    \
      FieldInfo{#name, "resources." #name, FieldSection::kResources, FieldType::kInt, "", help}, \
      Parse::kLenient, [](auto& r) -> auto& { return r.name; }, check));
#include "common/trial_config_fields.inc"
    return v;
  }();
  return *rows;
}

std::vector<std::string> ResourcesKeys() {
  std::vector<std::string> keys;
  for (const ResourcesRow& r : ResourcesRows()) keys.emplace_back(r.info.key);
  return keys;
}

// True for what the gpus_per_node row reads itself: null, a whole number, a digit string.
bool WholeGpus(const json& v) {
  int64_t n;
  return v.is_null() || v.is_number_integer() || v.is_number_unsigned() ||
         (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()) ||
         (v.is_string() && absl::SimpleAtoi(v.get<std::string>(), &n));
}

// `gpus_per_node: 0.25` (or "1/4") is spelled gpu_share in the canonical form: the section
// with such a value moved there, or the error naming gpus_per_node (the fractions allowed).
json FractionAsShare(json section, Problems& problems) {
  auto it = section.find("gpus_per_node");
  if (it == section.end() || WholeGpus(*it)) return section;
  absl::StatusOr<GpuAmount> amount = ParseGpuAmount(*it, "resources.gpus_per_node");
  section.erase("gpus_per_node");
  if (!problems.Ok(amount.status())) return section;
  if (!amount->fractional()) {
    section["gpus_per_node"] = amount->whole;
    return section;
  }
  auto given = section.find("gpu_share");
  if (given != section.end() && given->is_number() &&
      ShareDenominatorOf(given->get<double>()) != amount->denominator) {
    problems.Add("resources: give either gpus_per_node or gpu_share, not both");
  }
  section["gpu_share"] = 1.0 / amount->denominator;
  return section;
}

void ParseResources(const json& given, Resources& out, Problems& problems) {
  if (!CheckKeys(given, "resources", ResourcesKeys(), problems)) return;
  const json section = FractionAsShare(given, problems);
  for (const ResourcesRow& r : ResourcesRows()) {
    if (auto it = section.find(r.info.key); it != section.end()) problems.Add(r.read(out, *it));
  }
  // 0.333 is 1/3: one spelling of each fraction from here on.
  if (const int k = ShareDenominatorOf(out.gpu_share); k > 0) out.gpu_share = 1.0 / k;
}

// Field errors from the trial-config parser are reported under recipe.* / dataset.*.
std::string SectionMessage(const absl::Status& st) {
  std::string msg(st.message());
  if (msg.rfind("dataset", 0) != 0) msg = "recipe." + msg;
  return msg;
}

// Applies the recipe and dataset sections over TrialConfig's defaults. Each recipe key and the
// dataset section are first checked on their own over the defaults, so that every bad field is
// reported, then together (for rules that relate fields).
std::optional<TrialConfig> ParseBase(const json& recipe, const json& dataset, int gpus,
                                     const std::string& network, Problems& problems) {
  json cfg = TrialConfigToJson(TrialConfig{});
  cfg["network"] = network;
  cfg["device"] = gpus > 0 ? "cuda" : "cpu";
  const size_t before = problems.size();
  json merged = cfg;
  if (!recipe.is_null() && CheckKeys(recipe, "recipe", RecipeKeys(), problems)) {
    const json r = IntsFromStrings(recipe, FieldSection::kRecipe);
    for (auto it = r.begin(); it != r.end(); ++it) {
      if (!OneOfKeys(it.key(), RecipeKeys())) continue;
      json one = cfg;
      one[it.key()] = it.value();
      auto c = TrialConfigFromJson(one);
      if (!c.ok()) problems.Add(SectionMessage(c.status()));
      merged[it.key()] = it.value();
    }
  }
  if (!dataset.is_null() && CheckKeys(dataset, "dataset", DatasetKeys(), problems)) {
    json d = IntsFromStrings(dataset, FieldSection::kDataset);
    json ds = cfg["dataset"];
    for (auto it = d.begin(); it != d.end(); ++it) {
      if (OneOfKeys(it.key(), DatasetKeys())) ds[it.key()] = it.value();
    }
    json one = cfg;
    one["dataset"] = ds;
    auto c = TrialConfigFromJson(one);
    if (!c.ok()) problems.Add(SectionMessage(c.status()));
    merged["dataset"] = ds;
  }
  if (problems.size() != before) return std::nullopt;
  auto c = TrialConfigFromJson(merged);
  if (!c.ok()) {
    problems.Add(SectionMessage(c.status()));
    return std::nullopt;
  }
  return *c;
}

std::string OutOfRange(const std::string& field, const std::string& value,
                       const std::string& rule) {
  return absl::StrCat(field, ": ", value, " ", rule);
}

// Reports every value problem of the axes: unknown networks, bad bits, widths out of range,
// duplicates, too many trials, trials listed twice. `report_empty` is false where the parser has
// already reported missing, empty or unreadable lists.
void CheckAxes(const SweepSpec& spec, Problems& problems, bool report_empty = true) {
  if (spec.axes.empty()) {
    problems.Add("axes: must not be empty");
    return;
  }
  const size_t before = problems.size();
  for (size_t i = 0; i < spec.axes.size(); ++i) {
    const AxesBlock& b = spec.axes[i];
    const std::string p = spec.axes.size() == 1 ? "axes" : absl::StrCat("axes[", i, "]");
    if (report_empty) {
      if (b.networks.empty()) problems.Add(p + ".network: must not be empty");
      if (b.widths.empty()) problems.Add(p + ".width: must not be empty");
      if (b.precisions.empty()) problems.Add(p + ".precision: must not be empty");
      if (b.seeds.empty()) problems.Add(p + ".seed: must not be empty");
    }
    // Duplicates are found with sets: a spec may list 100,000 values (a linear scan per value
    // made validation quadratic, seconds of CPU per request).
    std::set<std::string> seen_networks;
    std::set<double> seen_widths;
    std::set<std::pair<int, int>> seen_precisions;
    std::set<int64_t> seen_seeds;
    for (size_t j = 0; j < b.networks.size(); ++j) {
      if (!IsKnownNetwork(b.networks[j])) {
        problems.Add(absl::StrCat(p, ".network: unknown network '", b.networks[j],
                                  "' (known: ", absl::StrJoin(KnownNetworks(), ", "), ")"));
      } else if (!seen_networks.insert(b.networks[j]).second) {
        problems.Add(absl::StrCat(p, ".network: duplicate value '", b.networks[j], "'"));
      }
    }
    for (size_t j = 0; j < b.widths.size(); ++j) {
      double w = b.widths[j];
      if (!(w > 0) || w > kMaxWidth || !std::isfinite(w)) {
        problems.Add(OutOfRange(p + ".width", Num(w), "is out of range (0, 8]"));
      } else if (!seen_widths.insert(w).second) {
        problems.Add(absl::StrCat(p, ".width: duplicate value ", Num(w)));
      }
    }
    for (size_t j = 0; j < b.precisions.size(); ++j) {
      const PrecisionPair& q = b.precisions[j];
      bool ok = true;
      if (!IsValidBits(q.wbits)) {
        ok = false;
        problems.Add(absl::StrCat(p, ".precision: wbits ", q.wbits,
                                  " is not a valid bit width (1..16 or 32)"));
      }
      if (!IsValidBits(q.abits)) {
        ok = false;
        problems.Add(absl::StrCat(p, ".precision: abits ", q.abits,
                                  " is not a valid bit width (1..16 or 32)"));
      }
      if (ok && !seen_precisions.emplace(q.wbits, q.abits).second) {
        problems.Add(absl::StrCat(p, ".precision: duplicate value ", q.wbits, "/", q.abits));
      }
    }
    std::set<std::string> seen_schemes;
    for (const std::string& scheme : b.schemes) {
      if (!ParseQuantScheme(scheme)) {
        problems.Add(absl::StrCat(p, ".scheme: unknown scheme '", scheme, "' (known: ",
                                  absl::StrJoin(KnownQuantSchemes(), ", "), ")"));
      } else if (!seen_schemes.insert(scheme).second) {
        problems.Add(absl::StrCat(p, ".scheme: duplicate value '", scheme, "'"));
      }
    }
    for (size_t j = 0; j < b.seeds.size(); ++j) {
      if (b.seeds[j] < 0) {
        problems.Add(absl::StrCat(p, ".seed: ", b.seeds[j], " must be >= 0"));
      } else if (!seen_seeds.insert(b.seeds[j]).second) {
        problems.Add(absl::StrCat(p, ".seed: duplicate value ", b.seeds[j]));
      }
    }
  }
  const int64_t n = CountTrials(spec);
  if (n > kMaxTrialsPerSweep) {
    problems.Add(absl::StrCat("axes: the grid has ", n, " trials, more than the limit of ",
                              kMaxTrialsPerSweep));
    return;
  }
  if (spec.axes.size() > 1 && problems.size() == before) {
    std::set<std::tuple<std::string, double, int, int, int64_t, std::string>> seen;
    for (const TrialPoint& t : ExpandSweep(spec)) {
      if (!seen.emplace(t.network, t.width, t.wbits, t.abits, t.seed, t.scheme).second) {
        problems.Add(absl::StrCat("axes: trial network=", t.network, " width=", Num(t.width),
                                  " wbits=", t.wbits, " abits=", t.abits, " seed=", t.seed,
                                  " scheme=", t.scheme, " is listed by more than one block"));
        return;
      }
    }
  }
}

// Reports every problem of the recipe (per network of the spec), resources and max_attempts.
// `check_recipe` is false where the recipe could not be parsed (its problems are reported).
void CheckRest(const SweepSpec& spec, Problems& problems, bool check_recipe = true) {
  std::set<std::string> networks;
  if (check_recipe) {
    for (const AxesBlock& b : spec.axes) {
      for (const std::string& n : b.networks)
        if (IsKnownNetwork(n)) networks.insert(n);
    }
  }
  if (check_recipe) problems.Add(ValidateSearchSpec(spec.search, spec.base.epochs));
  for (const std::string& net : networks) {
    TrialConfig c = spec.base;
    c.network = net;
    if (!spec.axes.empty() && !spec.axes[0].widths.empty()) c.width = spec.axes[0].widths[0];
    if (!spec.axes.empty() && !spec.axes[0].precisions.empty()) {
      c.wbits = spec.axes[0].precisions[0].wbits;
      c.abits = spec.axes[0].precisions[0].abits;
    }
    if (absl::Status st = ValidateTrialConfig(c); !st.ok()) {
      problems.Add(absl::StrCat(SectionMessage(st), " (network ", net, ")"));
    }
  }
  // Rules relating the recipe to a scheme (e.g. weight_scale is wrpn's), once per scheme.
  std::set<std::string> schemes;
  if (check_recipe) {
    for (const AxesBlock& b : spec.axes)
      for (const std::string& s : b.schemes)
        if (ParseQuantScheme(s)) schemes.insert(s);
  }
  for (const std::string& scheme : schemes) {
    if (spec.base.weight_scale > 0 && scheme != kDefaultScheme) {
      problems.Add(absl::StrCat("recipe.weight_scale: is a rule of the wrpn scheme's weight quantizer; "
                                "scheme ", scheme, " sets its own range"));
    }
  }
  for (const ResourcesRow& r : ResourcesRows()) {
    if (std::string what = r.check(spec.resources); !what.empty())
      problems.Add(absl::StrCat(r.info.name, ": ", what));
  }
  if (spec.max_attempts < 1 || spec.max_attempts > 100)
    problems.Add(
        OutOfRange("max_attempts", absl::StrCat(spec.max_attempts), "is out of range [1, 100]"));
  if (spec.name.size() > kMaxSweepNameBytes)
    problems.Add(absl::StrCat("name: is ", spec.name.size(), " bytes; at most ",
                              kMaxSweepNameBytes, " allowed"));
  // Dataset paths are resolved by each worker under its --data-dir (relative) or checked against
  // its allowed roots (absolute); a `..` component could climb out of either.
  if (absl::Status st = CheckSpecPath("dataset.path", spec.base.dataset.path); !st.ok())
    problems.Add(st);
}

}  // namespace

std::vector<FieldInfo> ResourcesFields() {
  std::vector<FieldInfo> out;
  for (const ResourcesRow& r : ResourcesRows()) out.push_back(r.info);
  return out;
}

absl::StatusOr<SweepSpec> SweepSpecFromJson(const json& doc) {
  Problems problems;
  if (!CheckKeys(doc, "", {"name", "dataset", "axes", "recipe", "resources", "max_attempts",
                           "priority", "search"},
                 problems)) {
    return problems.ToStatus();
  }
  SweepSpec spec;
  problems.Add(ReadString(doc, "", "name", &spec.name));
  auto axes = doc.find("axes");
  const size_t before_axes = problems.size();
  if (axes == doc.end() || axes->is_null()) {
    problems.Add("axes: missing (give network, width, precision, seed)");
  } else if (axes->is_array()) {
    if (axes->empty()) problems.Add("axes: must not be empty");
    for (size_t i = 0; i < axes->size(); ++i) {
      spec.axes.push_back(ParseAxes((*axes)[i], absl::StrCat("axes[", i, "]"), problems));
    }
  } else {
    spec.axes.push_back(ParseAxes(*axes, "axes", problems));
  }
  if (!spec.axes.empty()) CheckAxes(spec, problems, /*report_empty=*/problems.size() == before_axes);
  if (auto it = doc.find("resources"); it != doc.end() && !it->is_null()) {
    ParseResources(*it, spec.resources, problems);
  }
  problems.Add(ReadInt(doc, "", "max_attempts", &spec.max_attempts));
  problems.Add(ReadInt(doc, "", "priority", &spec.priority));
  if (auto it = doc.find("search"); it != doc.end()) {
    absl::StatusOr<SearchSpec> search = SearchSpecFromJson(*it);
    if (problems.Ok(search.status())) spec.search = *std::move(search);
  }
  // The recipe is checked against the spec's first known network (network-dependent rules, e.g.
  // the input size, are checked for every network below).
  std::string first_net = "lenet5";
  for (const AxesBlock& b : spec.axes) {
    for (const std::string& n : b.networks)
      if (IsKnownNetwork(n)) {
        first_net = n;
        break;
      }
    if (first_net != "lenet5") break;
  }
  const json null_json;
  auto rit = doc.find("recipe");
  auto dit = doc.find("dataset");
  const size_t before_base = problems.size();
  auto base = ParseBase(rit == doc.end() ? null_json : *rit, dit == doc.end() ? null_json : *dit,
                        spec.resources.uses_gpu() ? 1 : 0, first_net, problems);
  if (base) spec.base = *base;
  CheckRest(spec, problems, /*check_recipe=*/problems.size() == before_base);
  RETURN_IF_ERROR(problems.ToStatus());
  return spec;
}

absl::StatusOr<SweepSpec> ParseSweepSpec(std::string_view text) {
  if (text.size() > kMaxSweepSpecBytes) {
    return absl::InvalidArgumentError(absl::StrCat("sweep spec is ", text.size(),
                                                   " bytes; at most ", kMaxSweepSpecBytes,
                                                   " allowed (not parsed)"));
  }
  auto doc = YamlToJson(text);
  if (!doc.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("sweep spec is not valid YAML or JSON: ", doc.status().message()));
  }
  if (doc->is_null()) return absl::InvalidArgumentError("sweep spec is empty");
  return SweepSpecFromJson(*doc);
}

absl::Status ValidateSweepSpec(const SweepSpec& spec) {
  Problems problems;
  CheckAxes(spec, problems);
  CheckRest(spec, problems);
  return problems.ToStatus();
}

int64_t CountTrials(const SweepSpec& spec) {
  int64_t n = 0;
  for (const AxesBlock& b : spec.axes) {
    n += static_cast<int64_t>(b.networks.size()) * static_cast<int64_t>(b.widths.size()) *
         static_cast<int64_t>(b.precisions.size()) * static_cast<int64_t>(b.seeds.size()) *
         static_cast<int64_t>(b.schemes.size());
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
          for (const auto& scheme : b.schemes)
            for (int64_t s : b.seeds) out.push_back({n, w, p.wbits, p.abits, s, scheme});
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
                    {"seed", b.seeds},
                    {"scheme", b.schemes}});
  }
  doc["axes"] = axes;
  doc["resources"] = json::object();
  for (const ResourcesRow& r : ResourcesRows())
    doc["resources"][std::string(r.info.key)] = r.write(spec.resources);
  doc["max_attempts"] = spec.max_attempts;
  doc["priority"] = spec.priority;
  if (spec.search.mode != SearchMode::kGrid) doc["search"] = SearchSpecToJson(spec.search);
  return doc;
}

TrialConfig MakeTrialConfig(const SweepSpec& spec, const TrialPoint& point) {
  TrialConfig c = spec.base;
  c.network = point.network;
  c.width = point.width;
  c.wbits = point.wbits;
  c.abits = point.abits;
  c.seed = static_cast<uint64_t>(point.seed);
  c.scheme = point.scheme;
  return c;
}

json TrialConfigJson(const SweepSpec& spec, const TrialPoint& point) {
  return TrialConfigToJson(MakeTrialConfig(spec, point));
}

}  // namespace wrpn
