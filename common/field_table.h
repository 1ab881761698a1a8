#pragma once
// The machinery behind the field table (common/trial_config_fields.inc): what one row is at run
// time (FieldInfo, plus FieldRow<S> with the member's parser, writer and check), and the checks a
// row can name. Header-only; rows are built once and shared read-only by every thread.
#include <cmath>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace wrpn {

// Where a sweep spec sets a field (trial_config_fields.inc, "section").
enum class FieldSection {
  kAxis,       // per trial, from the axes
  kDataset,    // the spec's `dataset` section = the trial config's "dataset" object
  kRecipe,     // the spec's `recipe` section
  kRun,        // the worker or wrpn-train's command line only
  kResources,  // the spec's `resources` section
};
enum class FieldType { kInt, kInt64, kUint64, kDouble, kBool, kString };

struct FieldInfo {
  std::string key;        // JSON key in its object: "train_subset"
  std::string name;       // as errors spell it: "dataset.train_subset"
  FieldSection section;
  FieldType type;
  std::string flag;       // wrpn-train train flag ("" for resources)
  std::string help;
  bool synthetic_only = false;  // dataset: checked and written only for kind synthetic
};

// The JSON value of a command-line flag's text for the field ("--wbits 2" -> 2); the error
// names the flag.
[[nodiscard]] absl::StatusOr<nlohmann::json> FieldValueFromText(const FieldInfo& f,
                                                               const std::string& text);

namespace fields {

template <typename T>
constexpr FieldType TypeOf() {
  if constexpr (std::is_same_v<T, bool>) return FieldType::kBool;
  else if constexpr (std::is_same_v<T, int>) return FieldType::kInt;
  else if constexpr (std::is_same_v<T, int64_t>) return FieldType::kInt64;
  else if constexpr (std::is_same_v<T, uint64_t>) return FieldType::kUint64;
  else if constexpr (std::is_same_v<T, double>) return FieldType::kDouble;
  else {
    static_assert(std::is_same_v<T, std::string>, "field types: int, int64_t, uint64_t, double, bool, std::string");
    return FieldType::kString;
  }
}

// How a JSON value is read. kStrict (trial configs): the JSON type must match. kLenient (a sweep
// spec's resources, which may come from protobuf's JSON form): null is absent, integral numbers
// and digit strings count as integers.
enum class Parse { kStrict, kLenient };

absl::Status ReadValue(const nlohmann::json& v, const std::string& name, Parse mode, int* out);
absl::Status ReadValue(const nlohmann::json& v, const std::string& name, Parse mode, int64_t* out);
absl::Status ReadValue(const nlohmann::json& v, const std::string& name, Parse mode, uint64_t* out);
absl::Status ReadValue(const nlohmann::json& v, const std::string& name, Parse mode, double* out);
absl::Status ReadValue(const nlohmann::json& v, const std::string& name, Parse mode, bool* out);
absl::Status ReadValue(const nlohmann::json& v, const std::string& name, Parse mode,
                       std::string* out);

// One row over struct S: reads, writes and checks the member it names.
template <typename S>
struct FieldRow {
  FieldInfo info;
  std::function<absl::Status(S&, const nlohmann::json&)> read;  // error names the field
  std::function<nlohmann::json(const S&)> write;
  std::function<std::string(const S&)> check;  // "" when valid, else the rule broken
};

// `member` is a generic lambda returning a reference to the field in an S (const or not);
// `check(value, s)` returns "" or what is wrong.
template <typename S, typename T, typename Member, typename Check>
FieldRow<S> MakeRow(FieldInfo info, Parse mode, Member member, Check check) {
  info.type = TypeOf<T>();
  const std::string name = info.name;
  FieldRow<S> row{std::move(info), nullptr, nullptr, nullptr};
  row.read = [name, mode, member](S& s, const nlohmann::json& v) {
    return ReadValue(v, name, mode, &member(s));
  };
  row.write = [member](const S& s) { return nlohmann::json(member(s)); };
  row.check = [member, check](const S& s) -> std::string { return check(member(s), s); };
  return row;
}

// ---- checks a row can name: each returns "" or the rule broken, without the field's name.

inline std::string Got(double v) { return absl::StrCat(", got ", v); }

struct Any {
  template <typename T, typename S>
  std::string operator()(const T&, const S&) const { return ""; }
};
struct AtLeast {
  explicit AtLeast(double lo) : lo(lo) {}
  double lo;
  template <typename T, typename S>
  std::string operator()(const T& v, const S&) const {
    const double d = static_cast<double>(v);
    return d >= lo && std::isfinite(d) ? "" : absl::StrCat("must be >= ", lo, Got(d));
  }
};
struct Between {
  Between(double lo, double hi) : lo(lo), hi(hi) {}
  double lo, hi;
  template <typename T, typename S>
  std::string operator()(const T& v, const S&) const {
    const double d = static_cast<double>(v);
    return d >= lo && d <= hi ? "" : absl::StrCat("must be ", lo, "..", hi, Got(d));
  }
};
struct Positive {
  template <typename T, typename S>
  std::string operator()(const T& v, const S&) const {
    const double d = static_cast<double>(v);
    return d > 0 && std::isfinite(d) ? "" : absl::StrCat("must be > 0", Got(d));
  }
};
struct PositiveAtMost {
  explicit PositiveAtMost(double hi) : hi(hi) {}
  double hi;
  template <typename T, typename S>
  std::string operator()(const T& v, const S&) const {
    const double d = static_cast<double>(v);
    return d > 0 && d <= hi ? "" : absl::StrCat("must be > 0 and <= ", hi, Got(d));
  }
};
struct HalfOpen {  // [lo, hi)
  HalfOpen(double lo, double hi) : lo(lo), hi(hi) {}
  double lo, hi;
  template <typename T, typename S>
  std::string operator()(const T& v, const S&) const {
    const double d = static_cast<double>(v);
    return d >= lo && d < hi ? "" : absl::StrCat("must be in [", lo, ", ", hi, ")", Got(d));
  }
};
// A sweep spec's style: "3 is out of range [0, 64]".
struct InRange {
  InRange(double lo, double hi) : lo(lo), hi(hi) {}
  double lo, hi;
  template <typename T, typename S>
  std::string operator()(const T& v, const S&) const {
    const double d = static_cast<double>(v);
    return d >= lo && d <= hi ? "" : absl::StrCat(d, " is out of range [", lo, ", ", hi, "]");
  }
};
struct OneOf {
  OneOf(std::string what, std::initializer_list<const char*> values)
      : what(std::move(what)), values(values.begin(), values.end()) {}
  std::string what;  // "schedule" -> "unknown schedule 'x' (known: ...)"
  std::vector<std::string> values;
  template <typename S>
  std::string operator()(const std::string& v, const S&) const {
    for (const auto& x : values)
      if (x == v) return "";
    return absl::StrCat("unknown ", what, " '", v, "' (known: ", absl::StrJoin(values, ", "), ")");
  }
};

}  // namespace fields
}  // namespace wrpn
