#pragma once
// The `prepare` subcommand of wrpn-train (flags, progress bar, exit code), wired by main.cc.
#include <memory>

#include "CLI/CLI.hpp"
#include "worker/trainer/prepare.h"

namespace wrpn::trainer {

struct PrepareCommand {
  CLI::App* app = nullptr;
  PrepareOptions options;
};

std::unique_ptr<PrepareCommand> AddPrepareCommand(CLI::App& app);
// Runs it once `app` parsed it; prints to stderr; returns the process exit code.
int RunPrepareCommand(const PrepareCommand& command);

}  // namespace wrpn::trainer
