#include "common/field_table.h"

#include <climits>

#include "absl/strings/numbers.h"

namespace wrpn {
namespace fields {
namespace {

using json = nlohmann::json;

absl::Status TypeError(const std::string& name, const char* want, const json& v) {
  return absl::InvalidArgumentError(absl::StrCat(name, ": expected ", want, ", got ", v.dump()));
}

// Integers: JSON integers; in lenient mode also integral numbers and digit strings (protobuf's
// JSON form prints int64 as strings).
absl::Status ReadInteger(const json& v, const std::string& name, Parse mode, int64_t* out) {
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": ", v.dump(), " is out of range"));
    }
    *out = v.get<int64_t>();
    return absl::OkStatus();
  }
  if (mode == Parse::kLenient) {
    if (v.is_number_float()) {
      const double d = v.get<double>();
      if (std::floor(d) == d && std::abs(d) < 9e15) {
        *out = static_cast<int64_t>(d);
        return absl::OkStatus();
      }
    }
    if (v.is_string() && absl::SimpleAtoi(v.get<std::string>(), out)) return absl::OkStatus();
  }
  return TypeError(name, "an integer", v);
}

bool Absent(const json& v, Parse mode) { return mode == Parse::kLenient && v.is_null(); }

}  // namespace

absl::Status ReadValue(const json& v, const std::string& name, Parse mode, int* out) {
  if (Absent(v, mode)) return absl::OkStatus();
  int64_t x = 0;
  if (absl::Status st = ReadInteger(v, name, mode, &x); !st.ok()) return st;
  if (x < INT_MIN || x > INT_MAX) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": ", x, " is out of range"));
  }
  *out = static_cast<int>(x);
  return absl::OkStatus();
}

absl::Status ReadValue(const json& v, const std::string& name, Parse mode, int64_t* out) {
  if (Absent(v, mode)) return absl::OkStatus();
  return ReadInteger(v, name, mode, out);
}

absl::Status ReadValue(const json& v, const std::string& name, Parse mode, uint64_t* out) {
  if (Absent(v, mode)) return absl::OkStatus();
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return absl::OkStatus();
  }
  int64_t x = 0;
  if (absl::Status st = ReadInteger(v, name, mode, &x); !st.ok()) return st;
  *out = static_cast<uint64_t>(x);
  return absl::OkStatus();
}

absl::Status ReadValue(const json& v, const std::string& name, Parse mode, double* out) {
  if (Absent(v, mode)) return absl::OkStatus();
  if (!v.is_number()) return TypeError(name, "a number", v);
  *out = v.get<double>();
  return absl::OkStatus();
}

absl::Status ReadValue(const json& v, const std::string& name, Parse mode, bool* out) {
  if (Absent(v, mode)) return absl::OkStatus();
  if (!v.is_boolean()) return TypeError(name, "true or false", v);
  *out = v.get<bool>();
  return absl::OkStatus();
}

absl::Status ReadValue(const json& v, const std::string& name, Parse mode, std::string* out) {
  if (Absent(v, mode)) return absl::OkStatus();
  if (!v.is_string()) return TypeError(name, "a string", v);
  *out = v.get<std::string>();
  return absl::OkStatus();
}

}  // namespace fields

absl::StatusOr<nlohmann::json> FieldValueFromText(const FieldInfo& f, const std::string& text) {
  const auto bad = [&](const char* want) {
    return absl::InvalidArgumentError(absl::StrCat(f.flag.empty() ? f.name : f.flag,
                                                   ": expected ", want, ", got '", text, "'"));
  };
  switch (f.type) {
    case FieldType::kInt:
    case FieldType::kInt64: {
      int64_t v;
      if (!absl::SimpleAtoi(text, &v)) return bad("an integer");
      return nlohmann::json(v);
    }
    case FieldType::kUint64: {
      uint64_t v;
      if (!absl::SimpleAtoi(text, &v)) return bad("a non-negative integer");
      return nlohmann::json(v);
    }
    case FieldType::kDouble: {
      double v;
      if (!absl::SimpleAtod(text, &v)) return bad("a number");
      return nlohmann::json(v);
    }
    case FieldType::kBool: {
      bool v;
      if (!absl::SimpleAtob(text, &v)) return bad("true or false");
      return nlohmann::json(v);
    }
    case FieldType::kString:
      return nlohmann::json(text);
  }
  return bad("a value");
}

}  // namespace wrpn
