// Invocation (client/context.h): the output format and colour decisions, the lazily opened
// connection, and protobuf messages as JSON for -o json/yaml.
#include <google/protobuf/util/json_util.h>

#include "client/context.h"
#include "client/output.h"
#include "common/yaml_json.h"

namespace wrpn::client {

Format Invocation::format() {
  auto f = ParseFormat(output);
  if (!f.ok()) throw CliError{kExitUsage, std::string(f.status().message())};
  return *f;
}

bool Invocation::color_on() const {
  if (color == "always") return true;
  if (color == "never") return false;
  if (auto v = env_->env("NO_COLOR"); v && !v->empty()) return false;
  if (auto t = env_->env("TERM"); t && *t == "dumb") return false;
  return env_->out_is_tty;
}

bool Invocation::progress_on() const {
  if (auto t = env_->env("TERM"); t && *t == "dumb") return false;
  return env_->out_is_tty;
}

Connection& Invocation::conn() {
  if (!conn_) {
    auto s = ResolveSettings(flags, env_->env);
    if (!s.ok()) throw CliError{kExitUsage, std::string(s.status().message())};
    conn_ = std::make_unique<Connection>(*s);
    conn_->EnsureConnected();
  }
  return *conn_;
}

void Invocation::EmitJson(const nlohmann::json& j) {
  if (format() == Format::kYaml) out() << JsonToYaml(j);
  else out() << j.dump(2) << "\n";
}

void Invocation::Emit(const Table& t, const nlohmann::json& j) {
  switch (format()) {
    case Format::kJson:
    case Format::kYaml: EmitJson(j); break;
    case Format::kCsv: out() << RenderCsv(t); break;
    case Format::kMarkdown: out() << RenderMarkdown(t); break;
    case Format::kTable: out() << RenderText(t, color_on()); break;
  }
}

namespace {
// Protobuf's JSON prints 64-bit integers as strings; scripts want numbers.
void Int64AsNumbers(const google::protobuf::Descriptor* d, nlohmann::json& j) {
  using FD = google::protobuf::FieldDescriptor;
  if (!j.is_object()) return;
  for (int i = 0; i < d->field_count(); ++i) {
    const FD* f = d->field(i);
    auto it = j.find(f->name());
    if (it == j.end()) continue;
    auto fix = [&](nlohmann::json& v) {
      if (f->cpp_type() == FD::CPPTYPE_MESSAGE && !f->is_map()) {
        Int64AsNumbers(f->message_type(), v);
      } else if ((f->cpp_type() == FD::CPPTYPE_INT64 || f->cpp_type() == FD::CPPTYPE_UINT64) &&
                 v.is_string()) {
        try {
          v = std::stoll(v.get<std::string>());
        } catch (...) {
        }
      }
    };
    if (it->is_array()) {
      for (auto& v : *it) fix(v);
    } else {
      fix(*it);
    }
  }
}
}  // namespace

nlohmann::json ProtoJson(const google::protobuf::Message& m, bool print_defaults) {
  std::string s;
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = print_defaults;
  (void)google::protobuf::util::MessageToJsonString(m, &s, o);
  nlohmann::json j = nlohmann::json::parse(s, nullptr, false);
  Int64AsNumbers(m.GetDescriptor(), j);
  return j;
}

}  // namespace wrpn::client
