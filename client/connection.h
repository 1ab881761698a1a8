#pragma once
// How the CLI reaches the coordinator: settings resolved from flags > environment (WRPN_ADDR,
// WRPN_TOKEN, WRPN_TLS_CA) > config file ($XDG_CONFIG_HOME/wrpn/config.yaml, else
// $HOME/.config/wrpn/config.yaml), and a Connection that owns the channel and the stubs and turns
// gRPC failures into CLI exit codes. A Connection is used from one thread at a time (the stubs
// themselves are thread-safe).
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "wrpn/v1/coordinator.grpc.pb.h"

namespace wrpn::client {

namespace pb = ::wrpn::v1;

// Exit codes every command uses.
enum ExitCode : int {
  kExitOk = 0,
  kExitFailed = 1,       // the operation ran and failed (invalid spec, failed sweep, ...)
  kExitUsage = 2,        // bad flags or arguments
  kExitNotFound = 3,     // no such sweep, trial, table, ...
  kExitAuth = 4,         // missing, unknown or insufficient token
  kExitUnreachable = 5,  // no coordinator answered at the address
};

// Thrown by command code, caught once in RunCli, printed as "wrpn: <message>".
struct CliError {
  int code;
  std::string message;
};

using EnvFn = std::function<std::optional<std::string>(const std::string&)>;

struct ConnectionSettings {
  std::string addr = "127.0.0.1:7070";
  std::string token;
  std::string tls_ca;  // PEM file; set = TLS with this root
  bool tls = false;    // TLS with the system roots (or tls_ca)
  std::chrono::milliseconds connect_timeout{3000};
  std::chrono::milliseconds rpc_timeout{30000};
  std::string addr_from = "default";  // flag | env | config file path | default
  std::string config_path;            // the file consulted ("" = none found)
};

// Flags as given; empty = not given.
struct ConnectionFlags {
  std::string addr, token, tls_ca, config;
  bool tls = false;
  double connect_timeout_s = 0;
};

// Resolves the settings. Errors (unreadable or malformed config file, unknown key) name the file
// and the key.
absl::StatusOr<ConnectionSettings> ResolveSettings(const ConnectionFlags& flags, const EnvFn& env);
// The config file that would be read: $WRPN_CONFIG, else $XDG_CONFIG_HOME/wrpn/config.yaml,
// else $HOME/.config/wrpn/config.yaml ("" when none of those is set).
std::string DefaultConfigPath(const EnvFn& env);

class Connection {
 public:
  explicit Connection(ConnectionSettings settings);
  const ConnectionSettings& settings() const { return settings_; }

  // Waits up to connect_timeout for the channel; throws CliError{kExitUnreachable} naming the
  // address when it does not come up. Called once, before the first RPC.
  void EnsureConnected();
  // A context with the bearer token and the RPC deadline.
  std::unique_ptr<grpc::ClientContext> Context(bool streaming = false) const;
  pb::Coordinator::Stub& stub();

  // Throws the CliError for a failed call (`what` says what was asked, e.g. "get sweep 7").
  [[noreturn]] void Throw(const grpc::Status& st, const std::string& what) const;
  void Check(const grpc::Status& st, const std::string& what) const {
    if (!st.ok()) Throw(st, what);
  }

 private:
  ConnectionSettings settings_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::Coordinator::Stub> stub_;
  bool connected_ = false;
};

// Maps a gRPC status code to the CLI's exit code.
int ExitCodeFor(grpc::StatusCode code);

}  // namespace wrpn::client
