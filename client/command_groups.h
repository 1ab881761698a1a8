#pragma once
// Internal to client/: the groups of `wrpn` commands that RunCli (commands.cc) puts together, each
// in a file named for it. A group holds its commands' flag values (CLI11 writes them while parsing,
// so the group must outlive the parse) and registers its subcommands on the app; the exit code of
// the command that ran goes to `rc`. Not thread-safe.
#include <cstdint>
#include <functional>
#include <string>

#include <CLI/CLI.hpp>

#include "client/connection.h"
#include "client/context.h"

namespace wrpn::client {

// A CLI11 callback that runs `fn` and keeps its exit code in `rc`.
std::function<void()> Runs(int& rc, std::function<int()> fn);

// sweep submit, list, show, watch, cancel and retry (sweep_commands.cc).
struct SweepCommands {
  std::string spec_path, state;
  bool watch = false, dry_run = false, pruned = false;
  int64_t id = 0;
  int limit = 0;
  void Add(CLI::App& app, Invocation& inv, int& rc);
};

// The sweep `id` (exit 3 when the coordinator has none); sweep_commands.cc.
pb::Sweep GetSweep(Connection& c, int64_t id);

struct TrialFilter {
  std::string state, network;
  double width = 0;
  int wbits = -1, abits = -1;
};

// trial list, show and metrics (trial_commands.cc). Returns the `trial` command.
struct TrialCommands {
  int64_t id = 0;
  TrialFilter tf;
  std::string metric_name;
  CLI::App* Add(CLI::App& app, Invocation& inv, int& rc);
};

// `trial logs` under `trial`, and `wrpn logs`, the same command at the top (log_commands.cc).
struct LogCommands {
  int64_t id = 0;
  bool follow = false, prefix = false;
  int tail = 0;
  void Add(CLI::App& app, CLI::App* trial, Invocation& inv, int& rc);
};

// paper: the paper's tables (paper_command.cc).
struct PaperCommand {
  std::string which, paper_file;
  void Add(CLI::App& app, Invocation& inv, int& rc);
};

// worker list and version (worker_commands.cc).
struct WorkerCommands {
  void Add(CLI::App& app, Invocation& inv, int& rc);
};

}  // namespace wrpn::client
