// Invocation (client/context.h): the output format and colour decisions, the lazily opened
// connection.
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

}  // namespace wrpn::client
