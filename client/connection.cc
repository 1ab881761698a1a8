#include "client/connection.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/grpc_limits.h"
#include "common/yaml_json.h"

namespace wrpn::client {

std::string DefaultConfigPath(const EnvFn& env) {
  if (auto p = env("WRPN_CONFIG"); p && !p->empty()) return *p;
  if (auto x = env("XDG_CONFIG_HOME"); x && !x->empty()) return *x + "/wrpn/config.yaml";
  if (auto h = env("HOME"); h && !h->empty()) return *h + "/.config/wrpn/config.yaml";
  return "";
}

absl::StatusOr<ConnectionSettings> ResolveSettings(const ConnectionFlags& flags, const EnvFn& env) {
  ConnectionSettings s;
  // Lowest precedence first: config file, then environment, then flags.
  const bool explicit_config = !flags.config.empty();
  const std::string path = explicit_config ? flags.config : DefaultConfigPath(env);
  std::ifstream in(path);
  if (!path.empty() && in) {
    std::stringstream ss;
    ss << in.rdbuf();
    auto doc = YamlToJson(ss.str());
    if (!doc.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", doc.status().message()));
    if (!doc->is_null()) {
      if (!doc->is_object())
        return absl::InvalidArgumentError(absl::StrCat(path, ": expected a mapping of settings"));
      for (auto it = doc->begin(); it != doc->end(); ++it) {
        const std::string& k = it.key();
        const auto& v = it.value();
        auto str = [&](std::string& dst) -> absl::Status {
          if (!v.is_string())
            return absl::InvalidArgumentError(absl::StrCat(path, ": ", k, ": expected a string"));
          dst = v.get<std::string>();
          return absl::OkStatus();
        };
        absl::Status st;
        if (k == "addr") st = str(s.addr), s.addr_from = path;
        else if (k == "token") st = str(s.token);
        else if (k == "tls_ca") st = str(s.tls_ca);
        else if (k == "tls") {
          if (!v.is_boolean())
            return absl::InvalidArgumentError(absl::StrCat(path, ": tls: expected true or false"));
          s.tls = v.get<bool>();
        } else if (k == "connect_timeout") {
          if (!v.is_number() || v.get<double>() <= 0)
            return absl::InvalidArgumentError(
                absl::StrCat(path, ": connect_timeout: expected seconds > 0"));
          s.connect_timeout = std::chrono::milliseconds(static_cast<int64_t>(v.get<double>() * 1000));
        } else {
          return absl::InvalidArgumentError(absl::StrCat(
              path, ": unknown key '", k, "' (expected addr, token, tls, tls_ca, connect_timeout)"));
        }
        if (!st.ok()) return st;
      }
    }
    s.config_path = path;
  } else if (explicit_config) {
    return absl::NotFoundError(absl::StrCat("--config: cannot read '", path, "'"));
  }
  if (auto v = env("WRPN_ADDR"); v && !v->empty()) s.addr = *v, s.addr_from = "WRPN_ADDR";
  if (auto v = env("WRPN_TOKEN"); v && !v->empty()) s.token = *v;
  if (auto v = env("WRPN_TLS_CA"); v && !v->empty()) s.tls_ca = *v;
  if (!flags.addr.empty()) s.addr = flags.addr, s.addr_from = "--addr";
  if (!flags.token.empty()) s.token = flags.token;
  if (!flags.tls_ca.empty()) s.tls_ca = flags.tls_ca;
  if (flags.tls) s.tls = true;
  if (flags.connect_timeout_s > 0)
    s.connect_timeout = std::chrono::milliseconds(static_cast<int64_t>(flags.connect_timeout_s * 1000));
  if (!s.tls_ca.empty()) s.tls = true;
  if (s.addr.find(':') == std::string::npos) s.addr += ":7070";
  return s;
}

int ExitCodeFor(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return kExitOk;
    case grpc::StatusCode::NOT_FOUND: return kExitNotFound;
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED: return kExitAuth;
    case grpc::StatusCode::UNAVAILABLE: return kExitUnreachable;
    default: return kExitFailed;
  }
}

Connection::Connection(ConnectionSettings settings) : settings_(std::move(settings)) {}

void Connection::EnsureConnected() {
  if (connected_) return;
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (settings_.tls) {
    grpc::SslCredentialsOptions opts;
    if (!settings_.tls_ca.empty()) {
      std::ifstream in(settings_.tls_ca);
      if (!in) throw CliError{kExitUsage, "cannot read TLS CA file '" + settings_.tls_ca + "'"};
      std::stringstream ss;
      ss << in.rdbuf();
      opts.pem_root_certs = ss.str();
    }
    creds = grpc::SslCredentials(opts);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments args;
  // Fail fast on reconnects too: the CLI never waits long for a coordinator that is not there.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetMaxReceiveMessageSize(kGrpcMaxResponseBytes);
  args.SetMaxSendMessageSize(kGrpcMaxRequestBytes);
  channel_ = grpc::CreateCustomChannel(settings_.addr, creds, args);
  if (!channel_->WaitForConnected(std::chrono::system_clock::now() + settings_.connect_timeout)) {
    throw CliError{
        kExitUnreachable,
        absl::StrCat("cannot reach the coordinator at ", settings_.addr, " (address from ",
                     settings_.addr_from, ") within ",
                     std::chrono::duration<double>(settings_.connect_timeout).count(),
                     " s; is wrpn-coordinator running there? Set --addr or WRPN_ADDR")};
  }
  stub_ = pb::Coordinator::NewStub(channel_);
  connected_ = true;
}

std::unique_ptr<grpc::ClientContext> Connection::Context(bool streaming) const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (!settings_.token.empty()) ctx->AddMetadata("authorization", "Bearer " + settings_.token);
  if (!streaming) ctx->set_deadline(std::chrono::system_clock::now() + settings_.rpc_timeout);
  return ctx;
}

pb::Coordinator::Stub& Connection::stub() {
  EnsureConnected();
  return *stub_;
}

void Connection::Throw(const grpc::Status& st, const std::string& what) const {
  const int code = ExitCodeFor(st.error_code());
  std::string msg = absl::StrCat(what, ": ", st.error_message());
  if (code == kExitNotFound) {
    msg = st.error_message() == what || st.error_message().empty()
              ? absl::StrCat(what, ": not found")
              : absl::StrCat(what, ": not found (", st.error_message(), ")");
  } else if (code == kExitAuth) {
    msg += settings_.token.empty()
               ? " (no token given: set --token, WRPN_TOKEN or `token:` in the config file)"
               : " (check the token: --token, WRPN_TOKEN or the config file)";
  } else if (code == kExitUnreachable) {
    msg = absl::StrCat(what, ": coordinator at ", settings_.addr,
                       " is unavailable: ", st.error_message());
  } else if (st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    msg = absl::StrCat(what, ": no answer from ", settings_.addr, " within ",
                       std::chrono::duration<double>(settings_.rpc_timeout).count(), " s");
  }
  throw CliError{code, msg};
}

}  // namespace wrpn::client
