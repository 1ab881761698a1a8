#pragma once
// The `wrpn` command line: RunCli parses the arguments and runs one command against the
// coordinator (gRPC stubs only) or locally (cost, footprint). Everything a command touches in the
// outside world comes through CliEnv, so tests run it in-process. One RunCli call at a time per
// CliEnv.
#include <chrono>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "client/connection.h"

namespace wrpn::client {

struct CliEnv {
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
  EnvFn env;                  // getenv
  bool out_is_tty = false;    // stdout is a terminal: colour and progress bars allowed
  int term_width = 100;
  std::chrono::milliseconds watch_refresh{1000};  // progress-bar redraw period on a terminal
  // Test seam: called once `sweep watch` has printed the sweep's first state.
  std::function<void()> on_watch_started;
};

// Returns the exit code (ExitCode). `args` excludes the program name.
int RunCli(const std::vector<std::string>& args, CliEnv& env);

// The client's version, "0.1.0".
const char* ClientVersion();

}  // namespace wrpn::client
