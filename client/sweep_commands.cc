// The sweep commands: submit (validated locally first), list, show, watch, cancel and retry.
#include <algorithm>
#include <sstream>

#include "absl/strings/str_split.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/command_groups.h"
#include "client/grid.h"
#include "client/output.h"
#include "client/proto_json.h"
#include "client/spec_file.h"
#include "common/sweep_spec.h"
#include "common/yaml_json.h"

namespace wrpn::client {
namespace {

pb::SweepState ParseSweepState(const std::string& s) {
  if (s.empty() || s == "any") return pb::SWEEP_STATE_UNSPECIFIED;
  for (auto st : {pb::SWEEP_QUEUED, pb::SWEEP_RUNNING, pb::SWEEP_SUCCEEDED, pb::SWEEP_FAILED,
                  pb::SWEEP_CANCELLED})
    if (SweepStateName(st) == s) return st;
  throw CliError{kExitUsage, absl::StrCat("--state: unknown state '", s,
                                          "' (expected queued, running, succeeded, failed, cancelled)")};
}

int SweepSubmit(Invocation& inv, const std::string& path, bool watch, bool dry_run) {
  const std::string text = ReadSweepSpecFile(path);
  auto spec = ParseSweepSpec(text);
  if (!spec.ok()) {
    std::string msg = absl::StrCat(path, ": invalid sweep spec, nothing submitted:");
    // The shared validator lists every problem, one per line.
    for (absl::string_view p : absl::StrSplit(spec.status().message(), '\n'))
      absl::StrAppend(&msg, "\n  ", p);
    throw CliError{kExitFailed, msg};
  }
  const int64_t count = CountTrials(*spec);
  pb::SubmitSweepRequest req;
  req.set_spec_text(text);
  req.set_dry_run(dry_run);
  pb::SubmitSweepResponse resp;
  Connection& c = inv.conn();
  c.Check(c.stub().SubmitSweep(c.Context().get(), req, &resp), "submit " + path);
  const Format f = inv.format();
  if (f == Format::kJson || f == Format::kYaml) {
    inv.EmitJson({{"sweep_id", resp.sweep_id()}, {"trial_count", resp.trial_count()},
                  {"name", spec->name}, {"dry_run", dry_run}});
  } else if (dry_run) {
    inv.out() << absl::StrFormat("%s is valid: %d trials (dry run, nothing submitted)\n", path,
                                 resp.trial_count() ? resp.trial_count() : count);
  } else {
    inv.out() << absl::StrFormat("sweep %d submitted: %s, %d trials\n", resp.sweep_id(),
                                 spec->name.empty() ? path : spec->name, resp.trial_count());
    if (!watch)
      inv.out() << absl::StrFormat("next: wrpn sweep watch %d   then: wrpn grid %d --paper\n",
                                   resp.sweep_id(), resp.sweep_id());
  }
  if (watch && !dry_run) return WatchSweep(inv, resp.sweep_id());
  return kExitOk;
}

std::string CountsText(const pb::TrialCounts& c) {
  return absl::StrFormat("%d/%d", c.succeeded() + c.failed() + c.cancelled() + c.pruned(), c.total());
}

int SweepList(Invocation& inv, const std::string& state, int limit) {
  Connection& c = inv.conn();
  pb::ListSweepsRequest req;
  req.set_state(ParseSweepState(state));
  req.set_page_size(std::min(limit > 0 ? limit : 1000, 1000));
  std::vector<pb::Sweep> sweeps;
  for (;;) {
    pb::ListSweepsResponse resp;
    c.Check(c.stub().ListSweeps(c.Context().get(), req, &resp), "list sweeps");
    for (const auto& s : resp.sweeps()) sweeps.push_back(s);
    if (resp.next_page_token().empty() || (limit > 0 && static_cast<int>(sweeps.size()) >= limit)) break;
    req.set_page_token(resp.next_page_token());
  }
  if (limit > 0 && static_cast<int>(sweeps.size()) > limit) sweeps.resize(limit);
  Table t;
  t.columns = {"ID",     "NAME",      "STATE",  "DONE",   "SUCCEEDED", "RUNNING",       "QUEUED",
               "FAILED", "CANCELLED", "PRUNED", "PRIORITY", "CREATED (UTC)"};
  t.right = {true, false, false, true, true, true, true, true, true, true, true, false};
  nlohmann::json j = nlohmann::json::array();
  for (const auto& s : sweeps) {
    const std::string st = SweepStateName(s.state());
    const auto& n = s.counts();
    t.rows.push_back({absl::StrCat(s.id()), s.name(), Cell(st, StateColor(st)), CountsText(n),
                      absl::StrCat(n.succeeded()), absl::StrCat(n.running()),
                      absl::StrCat(n.queued()),
                      Cell(absl::StrCat(n.failed()), n.failed() ? Color::kRed : Color::kNone),
                      absl::StrCat(n.cancelled()), absl::StrCat(n.pruned()), absl::StrCat(s.priority()),
                      UtcTime(s.created_ms())});
    j.push_back(ProtoJson(s));
  }
  if (sweeps.empty() && inv.format() == Format::kTable) {
    inv.out() << "no sweeps" << (state.empty() ? "" : " in state " + state)
              << " (submit one: wrpn sweep submit examples/sweeps/fashion-quick.yaml)\n";
    return kExitOk;
  }
  inv.Emit(t, j);
  return kExitOk;
}

}  // namespace

pb::Sweep GetSweep(Connection& c, int64_t id) {
  pb::GetSweepRequest req;
  req.set_sweep_id(id);
  pb::GetSweepResponse resp;
  c.Check(c.stub().GetSweep(c.Context().get(), req, &resp), absl::StrCat("sweep ", id));
  return resp.sweep();
}

namespace {

int SweepShow(Invocation& inv, int64_t id) {
  Connection& c = inv.conn();
  const pb::Sweep s = GetSweep(c, id);
  const Format f = inv.format();
  if (f == Format::kJson || f == Format::kYaml) {
    inv.EmitJson(ProtoJson(s));
    return kExitOk;
  }
  const std::string st = SweepStateName(s.state());
  const auto& n = s.counts();
  Table t;
  t.title = absl::StrFormat("sweep %d", s.id());
  t.columns = {"FIELD", "VALUE"};
  t.rows = {{"name", s.name()},
            {"state", Cell(st, StateColor(st))},
            {"trials", absl::StrCat(absl::StrFormat("%d total: %d succeeded, %d running, %d queued, %d failed, %d cancelled",
                                                    n.total(), n.succeeded(), n.running(), n.queued(), n.failed(),
                                                    n.cancelled()),
                                    n.pruned() > 0 ? absl::StrFormat(", %d pruned", n.pruned()) : "")},
            {"priority", absl::StrCat(s.priority())},
            {"max attempts", absl::StrCat(s.max_attempts())},
            {"created (UTC)", UtcTime(s.created_ms())}};
  if (f == Format::kCsv) {
    inv.out() << RenderCsv(t);
    return kExitOk;
  }
  if (f == Format::kMarkdown) inv.out() << RenderMarkdown(t);
  else inv.out() << RenderText(t, inv.color_on());
  inv.out() << "\nspec:\n";
  std::istringstream spec(JsonToYaml(ProtoJson(s.spec())));
  for (std::string line; std::getline(spec, line);) inv.out() << "  " << line << "\n";
  return kExitOk;
}

int SweepCancel(Invocation& inv, int64_t id) {
  Connection& c = inv.conn();
  pb::CancelSweepRequest req;
  req.set_sweep_id(id);
  pb::CancelSweepResponse resp;
  c.Check(c.stub().CancelSweep(c.Context().get(), req, &resp), absl::StrCat("cancel sweep ", id));
  const Format f = inv.format();
  if (f == Format::kJson || f == Format::kYaml)
    inv.EmitJson({{"sweep_id", id}, {"cancelled_trials", resp.cancelled_trials()}});
  else
    inv.out() << absl::StrFormat("sweep %d cancelled: %d trials stopped or dequeued\n", id, resp.cancelled_trials());
  return kExitOk;
}

int SweepRetry(Invocation& inv, int64_t id, bool pruned) {
  Connection& c = inv.conn();
  pb::RetrySweepRequest req;
  req.set_sweep_id(id);
  req.set_pruned(pruned);
  pb::RetrySweepResponse resp;
  c.Check(c.stub().RetrySweep(c.Context().get(), req, &resp), absl::StrCat("retry sweep ", id));
  const Format f = inv.format();
  if (f == Format::kJson || f == Format::kYaml)
    inv.EmitJson({{"sweep_id", id}, {"requeued_trials", resp.requeued_trials()}});
  else if (resp.requeued_trials() == 0)
    inv.out() << absl::StrFormat("sweep %d: no failed%s or cancelled trials to retry\n", id, pruned ? ", pruned" : "");
  else
    inv.out() << absl::StrFormat("sweep %d: re-queued %d failed%s or cancelled trials%s\n", id, resp.requeued_trials(),
                                 pruned ? ", pruned" : "", pruned ? " (pruned ones to the end)" : "");
  return kExitOk;
}

}  // namespace

void SweepCommands::Add(CLI::App& app, Invocation& inv, int& rc) {
  auto run = [&](std::function<int()> fn) { return Runs(rc, std::move(fn)); };
  CLI::App* sweep = app.add_subcommand("sweep", "submit, list, show, watch, cancel and retry sweeps");
  sweep->require_subcommand(1);
  auto* submit = sweep->add_subcommand("submit", "validate a sweep spec locally, then submit it");
  submit->add_option("SPEC", spec_path, "sweep spec file (YAML or JSON)")->required();
  submit->add_flag("--watch,-w", watch, "watch the sweep after submitting (exit code as for `sweep watch`)");
  submit->add_flag("--dry-run", dry_run, "validate and count trials on the coordinator; submit nothing");
  submit->footer("\nExamples:\n  wrpn sweep submit examples/sweeps/fashion-quick.yaml\n"
                 "  wrpn sweep submit my-sweep.yaml --watch\n  wrpn sweep submit my-sweep.yaml --dry-run -o json\n\n"
                 "An invalid spec is reported with the offending field (exit 1); nothing is submitted.");
  submit->callback(run([&] { return SweepSubmit(inv, spec_path, watch, dry_run); }));

  auto* list = sweep->add_subcommand("list", "list sweeps with their trial counts");
  list->alias("ls");
  list->add_option("--state", state, "only sweeps in this state: queued, running, succeeded, failed, cancelled");
  list->add_option("--limit", limit, "at most this many sweeps");
  list->footer("\nExamples:\n  wrpn sweep list\n  wrpn sweep list --state running -o json");
  list->callback(run([&] { return SweepList(inv, state, limit); }));

  auto* show = sweep->add_subcommand("show", "show one sweep: state, counts and its spec");
  show->add_option("ID", id, "sweep id")->required();
  show->footer("\nExamples:\n  wrpn sweep show 3\n  wrpn sweep show 3 -o yaml");
  show->callback(run([&] { return SweepShow(inv, id); }));

  auto* sw_watch = sweep->add_subcommand("watch", "follow a sweep until it finishes");
  sw_watch->add_option("ID", id, "sweep id")->required();
  sw_watch->footer("\nOn a terminal: one progress bar per running trial (epoch, top-1, images/s) and an\n"
                   "overall bar with done/running/queued/failed and an ETA. Otherwise one line per trial\n"
                   "state change. Exit 0 when every trial succeeded, 1 when the sweep failed or was cancelled.\n\n"
                   "Examples:\n  wrpn sweep watch 3\n  wrpn sweep watch 3 | tee watch.log");
  sw_watch->callback(run([&] { return WatchSweep(inv, id); }));

  auto* cancel = sweep->add_subcommand("cancel", "cancel a sweep: dequeue its queued trials and stop running ones");
  cancel->add_option("ID", id, "sweep id")->required();
  cancel->footer("\nExamples:\n  wrpn sweep cancel 3");
  cancel->callback(run([&] { return SweepCancel(inv, id); }));

  auto* retry = sweep->add_subcommand("retry", "re-queue a sweep's failed and cancelled trials");
  retry->add_option("ID", id, "sweep id")->required();
  retry->add_flag("--pruned", pruned,
                  "also resume the trials a Pareto-pruned sweep pruned at a rung, to the end (docs/pareto.md)");
  retry->footer("\nExamples:\n  wrpn sweep retry 3\n  wrpn sweep retry 3 --pruned");
  retry->callback(run([&] { return SweepRetry(inv, id, pruned); }));
}

}  // namespace wrpn::client
