#include "client/args.h"

#include <algorithm>

#include <CLI/CLI.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace wrpn::client {
namespace {

std::string CheckId(const std::string& text) {
  int64_t v = 0;
  const bool digits = !text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) {
    return absl::ascii_isdigit(c);
  });
  if (!digits || !absl::SimpleAtoi(text, &v))
    return absl::StrCat("must be a whole number from 1 to 9223372036854775807, got '", text, "'");
  if (v == 0) return "must be 1 or more, got 0 (ids start at 1)";
  return "";
}

// The option of `app` or of an app above it (flags before or after a subcommand) named `name`.
const CLI::Option* FindOption(const CLI::App* app, const std::string& name) {
  for (; app != nullptr; app = app->get_parent())
    if (const CLI::Option* o = app->get_option_no_throw(name)) return o;
  return nullptr;
}

std::string CommandList(const CLI::App& app) {
  std::string out;
  for (const CLI::App* sub : app.get_subcommands({})) {
    absl::StrAppend(&out, "\n  ", sub->get_name());
    if (!sub->get_description().empty()) {
      absl::StrAppend(&out, std::string(sub->get_name().size() < 12 ? 12 - sub->get_name().size() : 1, ' '),
                      sub->get_description());
    }
  }
  return out;
}

}  // namespace

void CheckIdArguments(CLI::App* app) {
  for (CLI::App* sub : app->get_subcommands({})) CheckIdArguments(sub);
  for (CLI::Option* o : app->get_options()) {
    if (!o->get_positional()) continue;
    const std::string name = o->get_name();
    if (name == "ID" || name == "SWEEP" || name == "TRIAL")
      o->check(CLI::Validator(CheckId, "", "id"));
  }
}

std::optional<std::string> UnknownCommand(const CLI::App& app,
                                          const std::vector<std::string>& args) {
  const CLI::App* at = &app;
  std::string path = "wrpn";
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") return std::nullopt;
    if (a.size() > 1 && a[0] == '-') {
      if (a == "-h" || a == "--help") return std::nullopt;
      if (a.find('=') != std::string::npos) continue;
      const CLI::Option* o = FindOption(at, a);
      if (o != nullptr && o->get_expected_min() > 0) ++i;  // skip its value
      continue;
    }
    if (at->get_subcommands({}).empty()) return std::nullopt;  // a leaf: an argument
    const CLI::App* sub = nullptr;
    for (const CLI::App* s : at->get_subcommands({}))
      if (s->check_name(a)) sub = s;
    if (sub == nullptr) {
      return absl::StrCat("unknown command '", a, "'", at == &app ? "" : absl::StrCat(" for '", path, "'"),
                          "; the commands are:", CommandList(*at),
                          "\nRun '", path, " --help' for usage.");
    }
    at = sub;
    absl::StrAppend(&path, " ", sub->get_name());
  }
  return std::nullopt;
}

}  // namespace wrpn::client
