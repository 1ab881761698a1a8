// The CLI's argument checks, without a coordinator (issue 16): unknown commands, ids that
// overflow or are 0, a spec over the size limit refused before it is parsed, and every `wrpn ...`
// command line in docs/, README.md and deploy/ names a command the CLI has (its --help works).
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "client/cli.h"
#include "common/sweep_spec.h"

namespace wrpn::client {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct Result {
  int code = -1;
  std::string out, err;
};

// Runs the CLI in-process with an unreachable coordinator (a command that connected would exit 5).
Result RunWrpn(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  CliEnv env;
  env.out = &out;
  env.err = &err;
  const std::string home = ::testing::TempDir();
  env.env = [home](const std::string& k) -> std::optional<std::string> {
    if (k == "HOME") return home;
    if (k == "WRPN_ADDR") return std::string("127.0.0.1:1");
    return std::nullopt;
  };
  Result r;
  r.code = RunCli(args, env);
  r.out = out.str();
  r.err = err.str();
  return r;
}

TEST(CliArgs, UnknownCommandIsNamedAndTheCommandsListed) {
  Result r = RunWrpn({"bogus"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown command 'bogus'"));
  for (const char* c : {"sweep", "trial", "logs", "grid", "paper", "cost", "footprint", "plot",
                        "worker", "version"})
    EXPECT_THAT(r.err, HasSubstr("\n  " + std::string(c))) << r.err;
  r = RunWrpn({"--addr", "127.0.0.1:2", "bogus", "--help"});  // after a global option, before --help
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown command 'bogus'"));
  r = RunWrpn({"sweep", "bogus"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown command 'bogus' for 'wrpn sweep'"));
  EXPECT_THAT(r.err, HasSubstr("\n  submit"));
  EXPECT_EQ(RunWrpn({"sweep", "ls", "--help"}).code, 0);  // aliases are commands
  EXPECT_EQ(RunWrpn({"-o", "json", "version"}).code, 0);
}

TEST(CliArgs, IdsThatOverflowOrAreZeroAreUsageErrors) {
  for (std::vector<std::string> cmd :
       {std::vector<std::string>{"sweep", "show"}, {"sweep", "cancel"}, {"trial", "show"},
        {"trial", "logs"}, {"logs"}, {"grid"}, {"trial", "list"}}) {
    for (const char* bad : {"99999999999999999999", "9223372036854775808", "0", "-3", "1e3", "7x"}) {
      std::vector<std::string> args = cmd;
      args.push_back(bad);
      SCOPED_TRACE(::testing::PrintToString(args));
      Result r = RunWrpn(args);
      EXPECT_EQ(r.code, 2) << r.err;
      EXPECT_THAT(r.err, HasSubstr(bad));
    }
  }
  // The largest id is accepted (and then the coordinator is unreachable: exit 5).
  EXPECT_EQ(RunWrpn({"sweep", "show", "9223372036854775807"}).code, 5);
}

TEST(CliArgs, OversizedSpecIsRefusedBeforeParsingWithTheLimit) {
  const std::string path = std::filesystem::path(::testing::TempDir()) / "big-spec.yaml";
  {
    std::ofstream f(path);
    f << "name: big\naxes:\n  network: lenet5\n  width: [";
    for (size_t n = 0; n <= kMaxSweepSpecBytes; n += 3) f << "1, ";
    f << "1]\n";
  }
  Result r = RunWrpn({"sweep", "submit", path, "--dry-run"});
  EXPECT_EQ(r.code, 1) << r.err;  // not 5: nothing was sent
  EXPECT_THAT(r.err, HasSubstr("bytes; the coordinator accepts at most " +
                               std::to_string(kMaxSweepSpecBytes)));
  EXPECT_THAT(r.err, Not(HasSubstr("aliases")));
  std::filesystem::remove(path);
}

// Every `wrpn ...` command line the documentation and the deployment files show.
struct DocCommand {
  std::string where;  // file:line
  std::string line;   // "wrpn sweep submit x.yaml --watch"
};

std::vector<DocCommand> DocCommands() {
  const std::filesystem::path root = WRPN_SOURCE_DIR;
  std::vector<std::filesystem::path> files = {root / "README.md"};
  for (const char* dir : {"docs", "deploy"})
    for (const auto& e : std::filesystem::recursive_directory_iterator(root / dir))
      if (e.is_regular_file() && e.path().extension() != ".png") files.push_back(e.path());
  // In backticks anywhere; at the start of a line (after an optional `$ `) in a fenced block.
  static const std::regex quoted(R"(`((?:[\w./-]*/)?wrpn [^`]+)`)");
  static const std::regex fenced(R"(^\s*(?:\$ )?((?:[\w./-]*/)?wrpn [^#|>;&]*))");
  std::vector<DocCommand> out;
  for (const auto& f : files) {
    std::ifstream in(f);
    const bool markdown = f.extension() == ".md";
    bool in_fence = false;
    int n = 0;
    for (std::string line; std::getline(in, line);) {
      ++n;
      const std::string where = std::filesystem::relative(f, root).string() + ":" + std::to_string(n);
      const size_t first = line.find_first_not_of(' ');
      if (markdown && first != std::string::npos && line.compare(first, 3, "```") == 0) {
        in_fence = !in_fence;
        continue;
      }
      for (auto it = std::sregex_iterator(line.begin(), line.end(), quoted);
           it != std::sregex_iterator(); ++it)
        out.push_back({where, (*it)[1]});
      std::smatch m;
      if (markdown && in_fence && std::regex_search(line, m, fenced)) out.push_back({where, m[1]});
    }
  }
  return out;
}

TEST(DocsCommands, EveryWrpnCommandInTheDocsIsOneTheCliHas) {
  const std::vector<DocCommand> commands = DocCommands();
  ASSERT_GE(commands.size(), 20u) << "the extraction found too few command lines";
  const std::string global_help = RunWrpn({"--help"}).out;
  static const std::regex word(R"(^[a-z][a-z-]*$)");
  std::set<std::string> paths;
  for (const DocCommand& c : commands) {
    SCOPED_TRACE(c.where + ": " + c.line);
    std::istringstream tokens(c.line.substr(c.line.find("wrpn ") + 5));
    std::vector<std::string> path, flags;
    bool in_path = true;
    for (std::string t; tokens >> t;) {
      if (t.rfind("--", 0) == 0 && t.size() > 2) flags.push_back(t.substr(0, t.find('=')));
      if (in_path && std::regex_match(t, word)) path.push_back(t);
      else in_path = false;
    }
    ASSERT_FALSE(path.empty()) << "no command named";
    std::vector<std::string> args = path;
    args.push_back("--help");
    Result r = RunWrpn(args);
    EXPECT_EQ(r.code, 0) << "`wrpn " << ::testing::PrintToString(path) << " --help` failed: "
                         << r.err;
    if (r.code != 0) continue;
    paths.insert(::testing::PrintToString(path));
    // A command, not a group: `wrpn trial TRIAL_ID` is not a command.
    EXPECT_THAT(r.out, Not(HasSubstr("SUBCOMMAND"))) << "names a group, not a command";
    for (const auto& f : flags)
      EXPECT_TRUE(r.out.find(f) != std::string::npos || global_help.find(f) != std::string::npos)
          << "the command has no flag " << f;
  }
  EXPECT_GE(paths.size(), 8u);
}

}  // namespace
}  // namespace wrpn::client
