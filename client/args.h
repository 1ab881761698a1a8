#pragma once
// Argument checks shared by the whole `wrpn` command tree, applied once after it is built:
// sweep and trial ids, unknown command names. Pure functions of the CLI11 tree and the arguments;
// not thread-safe (CLI11 is not).
#include <optional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace wrpn::client {

// Every positional ID, SWEEP or TRIAL argument in `app`'s tree must be a whole number from 1 to
// 2^63-1 written in digits: CLI11 alone turned 99999999999999999999 into 9223372036854775807 and
// accepted 0. A bad one is a usage error (exit 2) naming the argument and the value.
void CheckIdArguments(CLI::App* app);

// When `args` name a command that `app` does not have (`wrpn bogus`, `wrpn sweep bogus`), the
// message to print: "unknown command 'bogus'" and the commands there are. nullopt otherwise
// (including when --help comes first).
std::optional<std::string> UnknownCommand(const CLI::App& app, const std::vector<std::string>& args);

}  // namespace wrpn::client
