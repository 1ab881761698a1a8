#pragma once
// Per-invocation state shared by the command implementations (internal to client/): global flags,
// the output format and colour decision, and the lazily opened Connection. Not thread-safe.
#include <memory>
#include <string>

#include "client/cli.h"
#include "client/connection.h"
#include "client/output.h"
#include "nlohmann/json.hpp"

namespace wrpn::client {

class Invocation {
 public:
  explicit Invocation(CliEnv* env) : env_(env) {}
  CliEnv& env() { return *env_; }
  std::ostream& out() { return *env_->out; }
  std::ostream& err() { return *env_->err; }

  ConnectionFlags flags;
  std::string output = "table";
  std::string color = "auto";

  Format format();  // throws CliError{kExitUsage} for an unknown -o value
  bool color_on() const;
  bool progress_on() const;  // progress bars: stdout is a terminal that is not "dumb"
  Connection& conn();        // resolves settings and connects on first use

  // Prints `t` in the chosen format (json/yaml print `j`).
  void Emit(const Table& t, const nlohmann::json& j);
  void EmitJson(const nlohmann::json& j);  // json/yaml; table/csv/markdown are handled by callers

 private:
  CliEnv* env_;
  std::unique_ptr<Connection> conn_;
};

// Watches a sweep until it finishes; returns the exit code (0 succeeded, 1 failed or cancelled).
int WatchSweep(Invocation& inv, int64_t sweep_id);

}  // namespace wrpn::client
