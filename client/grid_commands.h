#pragma once
// The `wrpn grid` and `wrpn plot` commands: fetch a sweep's grid (GetGrid, the paper joined on the
// coordinator) and render it as tables, CSV, the API's JSON, or gnuplot figures. Not thread-safe
// (one Invocation).
#include <CLI/CLI.hpp>

#include "client/context.h"

namespace wrpn::client {

// Each adds its subcommand to `app`; the command's exit code goes to `*rc`.
void AddGridCommand(CLI::App& app, Invocation& inv, int* rc);
void AddPlotCommand(CLI::App& app, Invocation& inv, int* rc);

}  // namespace wrpn::client
