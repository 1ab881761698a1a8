// wrpn: the command-line client. Wires the real process environment into RunCli.
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "client/cli.h"
#include "common/grpc_limits.h"

int main(int argc, char** argv) {
  wrpn::UseFastGrpcReconnects();
  wrpn::client::CliEnv env;
  env.out = &std::cout;
  env.err = &std::cerr;
  env.env = [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
  env.out_is_tty = isatty(STDOUT_FILENO) == 1;
  winsize ws{};
  if (env.out_is_tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
    env.term_width = ws.ws_col;
  std::vector<std::string> args(argv + 1, argv + argc);
  const int rc = wrpn::client::RunCli(args, env);
  std::cout.flush();
  return rc;
}
