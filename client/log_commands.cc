// `wrpn trial logs` / `wrpn logs`: a trial's log lines as the coordinator keeps them, optionally
// followed until the trial finishes.
#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/command_groups.h"
#include "client/output.h"

namespace wrpn::client {
namespace {

int TrialLogs(Invocation& inv, int64_t id, bool follow, bool prefix, int tail) {
  Connection& c = inv.conn();
  const Format f = inv.format();
  const bool structured = f == Format::kJson || f == Format::kYaml;
  if (structured && follow) throw CliError{kExitUsage, "trial logs: -f prints plain lines; drop -o json/yaml"};
  int64_t after = 0;
  nlohmann::json all = nlohmann::json::array();
  bool first = true;
  for (;;) {
    pb::GetTrialLogsRequest req;
    req.set_trial_id(id);
    req.set_after_seq(after);
    pb::GetTrialLogsResponse resp;
    c.Check(c.stub().GetTrialLogs(c.Context().get(), req, &resp), absl::StrCat("logs of trial ", id));
    int start = 0;
    if (first) {
      if (tail > 0 && resp.lines_size() > tail) start = resp.lines_size() - tail;
      if (resp.dropped() > 0 && !structured)
        inv.err() << absl::StrFormat("(%d earlier lines are no longer kept)\n", resp.dropped());
      if (resp.last_seq() == 0 && !follow && !structured)
        inv.err() << "trial " << id << " has no log lines yet (workers send them while it runs)\n";
    }
    for (int i = start; i < resp.lines_size(); ++i) {
      const pb::LogLine& l = resp.lines(i);
      if (structured) {
        all.push_back({{"seq", l.seq()}, {"time_ms", l.time_ms()}, {"attempt", l.attempt()},
                       {"rank", l.rank()}, {"line", l.line()}});
      } else if (prefix) {
        inv.out() << absl::StrFormat("%s a%d %s  %s\n", UtcTime(l.time_ms()), l.attempt(),
                                     l.rank() < 0 ? std::string("agent") : absl::StrCat("r", l.rank()), l.line());
      } else {
        inv.out() << l.line() << "\n";
      }
    }
    for (const auto& l : resp.lines()) after = std::max(after, l.seq());
    inv.out().flush();
    first = false;
    // A page short of the last seq: fetch the rest now.
    if (after < resp.last_seq()) continue;
    if (!follow || (resp.trial_finished() && after >= resp.last_seq())) break;
    std::this_thread::sleep_for(inv.env().watch_refresh);
  }
  if (structured) inv.EmitJson({{"trial_id", id}, {"lines", all}});
  return kExitOk;
}

}  // namespace

void LogCommands::Add(CLI::App& app, CLI::App* trial, Invocation& inv, int& rc) {
  auto run = [&](std::function<int()> fn) { return Runs(rc, std::move(fn)); };
  auto* tlogs = trial->add_subcommand("logs", "a trial's log lines (trainer stderr and worker notes) as the coordinator keeps them");
  tlogs->add_option("TRIAL", id, "trial id")->required();
  tlogs->add_flag("-f,--follow", follow, "keep printing new lines until the trial finishes");
  tlogs->add_flag("--prefix", prefix, "prefix each line with its time, attempt and rank");
  tlogs->add_option("--tail", tail, "only the last N lines already stored");
  tlogs->footer("\nThe coordinator keeps the last 5000 lines per trial, in memory (lost when it restarts).\n\n"
                "Examples:\n  wrpn trial logs 17\n  wrpn trial logs 17 -f\n  wrpn trial logs 17 --tail 50 --prefix");
  tlogs->callback(run([&] { return TrialLogs(inv, id, follow, prefix, tail); }));

  // `wrpn logs TRIAL [-f]`, like `kubectl logs`: the same as `wrpn trial logs`.
  auto* logs = app.add_subcommand("logs", "a trial's log lines; -f follows them (= wrpn trial logs)");
  logs->add_option("TRIAL", id, "trial id")->required();
  logs->add_flag("-f,--follow", follow, "keep printing new lines until the trial finishes");
  logs->add_flag("--prefix", prefix, "prefix each line with its time, attempt and rank");
  logs->add_option("--tail", tail, "only the last N lines already stored");
  logs->footer("\nExamples:\n  wrpn logs 17\n  wrpn logs 17 -f");
  logs->callback(run([&] { return TrialLogs(inv, id, follow, prefix, tail); }));
}

}  // namespace wrpn::client
