// ProtoJson (client/proto_json.h): a reflection walk over the message's fields.
#include "client/proto_json.h"

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

namespace wrpn::client {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

nlohmann::json Double(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  if (d == std::floor(d) && std::fabs(d) < 1e15) return static_cast<int64_t>(d);
  return d;
}

nlohmann::json Enum(int number, const FieldDescriptor* f) {
  if (const auto* v = f->enum_type()->FindValueByNumber(number)) return v->name();
  return number;
}

// Element `i` of a repeated field, or the singular value when i < 0.
nlohmann::json Value(const Message& m, const FieldDescriptor* f, int i, bool defaults) {
  const Reflection* r = m.GetReflection();
  const bool rep = i >= 0;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return rep ? r->GetRepeatedInt32(m, f, i) : r->GetInt32(m, f);
    case FieldDescriptor::CPPTYPE_INT64:
      return rep ? r->GetRepeatedInt64(m, f, i) : r->GetInt64(m, f);
    case FieldDescriptor::CPPTYPE_UINT32:
      return rep ? r->GetRepeatedUInt32(m, f, i) : r->GetUInt32(m, f);
    case FieldDescriptor::CPPTYPE_UINT64:
      return rep ? r->GetRepeatedUInt64(m, f, i) : r->GetUInt64(m, f);
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return Double(rep ? r->GetRepeatedDouble(m, f, i) : r->GetDouble(m, f));
    case FieldDescriptor::CPPTYPE_FLOAT:
      return Double(rep ? r->GetRepeatedFloat(m, f, i) : r->GetFloat(m, f));
    case FieldDescriptor::CPPTYPE_BOOL:
      return rep ? r->GetRepeatedBool(m, f, i) : r->GetBool(m, f);
    case FieldDescriptor::CPPTYPE_ENUM:
      return Enum(rep ? r->GetRepeatedEnumValue(m, f, i) : r->GetEnumValue(m, f), f);
    case FieldDescriptor::CPPTYPE_STRING:
      return rep ? r->GetRepeatedString(m, f, i) : r->GetString(m, f);
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return ProtoJson(rep ? r->GetRepeatedMessage(m, f, i) : r->GetMessage(m, f), defaults);
  }
  return nullptr;
}

// A map field is a repeated (key, value) entry message; keys print as strings.
nlohmann::json Map(const Message& m, const FieldDescriptor* f, bool defaults) {
  nlohmann::json out = nlohmann::json::object();
  const Reflection* r = m.GetReflection();
  const FieldDescriptor* key = f->message_type()->map_key();
  const FieldDescriptor* value = f->message_type()->map_value();
  for (int i = 0; i < r->FieldSize(m, f); ++i) {
    const Message& entry = r->GetRepeatedMessage(m, f, i);
    nlohmann::json k = Value(entry, key, -1, defaults);
    out[k.is_string() ? k.get<std::string>() : k.dump()] = Value(entry, value, -1, defaults);
  }
  return out;
}

nlohmann::json Field(const Message& m, const FieldDescriptor* f, bool defaults) {
  if (f->is_map()) return Map(m, f, defaults);
  if (!f->is_repeated()) return Value(m, f, -1, defaults);
  nlohmann::json out = nlohmann::json::array();
  const int n = m.GetReflection()->FieldSize(m, f);
  for (int i = 0; i < n; ++i) out.push_back(Value(m, f, i, defaults));
  return out;
}

// Whether protobuf's printer would write this field.
bool Printed(const Message& m, const FieldDescriptor* f, bool defaults) {
  const Reflection* r = m.GetReflection();
  if (f->is_repeated()) return defaults || r->FieldSize(m, f) > 0;
  if (f->has_presence()) return r->HasField(m, f);
  return defaults || r->HasField(m, f);
}

// google.protobuf.Value, Struct and ListValue print as the JSON they hold, as protobuf's printer
// writes them; nullopt for any other message.
std::optional<nlohmann::json> WellKnown(const Message& m, bool defaults) {
  const auto* d = m.GetDescriptor();
  const Reflection* r = m.GetReflection();
  const std::string& name = d->full_name();
  if (name == "google.protobuf.Struct") return Map(m, d->FindFieldByName("fields"), defaults);
  if (name == "google.protobuf.ListValue") return Field(m, d->FindFieldByName("values"), defaults);
  if (name != "google.protobuf.Value") return std::nullopt;
  const FieldDescriptor* kind = r->GetOneofFieldDescriptor(m, d->FindOneofByName("kind"));
  if (kind == nullptr || kind->name() == "null_value") return nlohmann::json(nullptr);
  return Value(m, kind, -1, defaults);
}

}  // namespace

nlohmann::json ProtoJson(const Message& m, bool print_defaults) {
  if (std::optional<nlohmann::json> j = WellKnown(m, print_defaults)) return *std::move(j);
  nlohmann::json out = nlohmann::json::object();
  const auto* d = m.GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (Printed(m, f, print_defaults)) out[f->name()] = Field(m, f, print_defaults);
  }
  return out;
}

}  // namespace wrpn::client
