// The trial commands: list (with filters), show (results, attempts, latest metrics) and metrics.
#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/command_groups.h"
#include "client/grid.h"
#include "client/output.h"
#include "client/proto_json.h"
#include "client/worker_gpus.h"

namespace wrpn::client {
namespace {

std::string Opt(bool has, double v, int decimals) { return has ? Fixed(v, decimals) : ""; }

std::string Bits(int w, int a) { return absl::StrFormat("%d/%d", w, a); }

pb::TrialState ParseTrialState(const std::string& s) {
  if (s.empty() || s == "any") return pb::TRIAL_STATE_UNSPECIFIED;
  for (auto st : {pb::TRIAL_QUEUED, pb::TRIAL_RUNNING, pb::TRIAL_SUCCEEDED, pb::TRIAL_FAILED,
                  pb::TRIAL_CANCELLED, pb::TRIAL_PRUNED})
    if (TrialStateName(st) == s) return st;
  throw CliError{kExitUsage, absl::StrCat("--state: unknown state '", s,
                                          "' (expected queued, running, succeeded, failed, cancelled, pruned)")};
}

std::vector<pb::Trial> ListTrials(Connection& c, int64_t sweep, const TrialFilter& f) {
  pb::ListTrialsRequest req;
  req.set_sweep_id(sweep);
  req.set_page_size(1000);
  req.set_state(ParseTrialState(f.state));
  req.set_network(f.network);
  if (f.width > 0) req.set_width(f.width);
  if (f.wbits >= 0) req.set_wbits(f.wbits);
  if (f.abits >= 0) req.set_abits(f.abits);
  std::vector<pb::Trial> out;
  for (;;) {
    pb::ListTrialsResponse resp;
    c.Check(c.stub().ListTrials(c.Context().get(), req, &resp), absl::StrCat("list trials of sweep ", sweep));
    for (const auto& t : resp.trials()) out.push_back(t);
    if (resp.next_page_token().empty()) break;
    req.set_page_token(resp.next_page_token());
  }
  return out;
}

int TrialList(Invocation& inv, int64_t sweep, const TrialFilter& f) {
  Connection& c = inv.conn();
  (void)GetSweep(c, sweep);  // NOT_FOUND for an unknown sweep rather than an empty list
  const auto trials = ListTrials(c, sweep, f);
  Table t;
  t.columns = {"ID", "NETWORK", "WIDTH", "W/A", "SCHEME", "SEED", "STATE", "ATTEMPTS", "TOP1", "TOP5", "IMG/S", "COST", "NOTE"};
  t.right = {true, false, true, true, false, true, false, true, true, true, true, true, false};
  nlohmann::json j = nlohmann::json::array();
  for (const auto& tr : trials) {
    const std::string st = TrialStateName(tr.state());
    std::string note = tr.state() == pb::TRIAL_QUEUED ? tr.pending_reason() : tr.error();
    if (tr.state() == pb::TRIAL_PRUNED && tr.has_pruned_top1()) note = PrunedText(tr.pruned_epoch(), tr.pruned_top1());
    if (note.size() > 60) note = note.substr(0, 57) + "...";
    t.rows.push_back({absl::StrCat(tr.id()), tr.network(), WidthLabel(tr.width()), Bits(tr.wbits(), tr.abits()),
                      tr.scheme(), absl::StrCat(tr.seed()), Cell(st, StateColor(st)), absl::StrCat(tr.attempts()),
                      Opt(tr.has_final_top1(), tr.final_top1(), 2), Opt(tr.has_final_top5(), tr.final_top5(), 2),
                      Opt(tr.has_images_per_sec(), tr.images_per_sec(), 0), Fixed(tr.cost_uniform(), 3), note});
    nlohmann::json tj = ProtoJson(tr);
    tj.erase("trial_config_json");
    j.push_back(tj);
  }
  if (trials.empty() && inv.format() == Format::kTable) {
    inv.out() << "no trials match in sweep " << sweep << "\n";
    return kExitOk;
  }
  inv.Emit(t, j);
  return kExitOk;
}

pb::GetTrialResponse GetTrial(Connection& c, int64_t id) {
  pb::GetTrialRequest req;
  req.set_trial_id(id);
  pb::GetTrialResponse resp;
  c.Check(c.stub().GetTrial(c.Context().get(), req, &resp), absl::StrCat("trial ", id));
  return resp;
}

std::string OutcomeName(pb::AttemptOutcome o) {
  switch (o) {
    case pb::ATTEMPT_RUNNING: return "running";
    case pb::ATTEMPT_SUCCEEDED: return "succeeded";
    case pb::ATTEMPT_FAILED: return "failed";
    case pb::ATTEMPT_EXPIRED: return "expired";
    case pb::ATTEMPT_CANCELLED: return "cancelled";
    case pb::ATTEMPT_RUNG: return "rung";
    default: return "unknown";
  }
}

int TrialShow(Invocation& inv, int64_t id) {
  Connection& c = inv.conn();
  const pb::GetTrialResponse r = GetTrial(c, id);
  const Format f = inv.format();
  if (f == Format::kJson || f == Format::kYaml) {
    nlohmann::json j = ProtoJson(r);
    if (j.contains("trial") && j["trial"].contains("trial_config_json")) {
      auto cfg = nlohmann::json::parse(j["trial"]["trial_config_json"].get<std::string>(), nullptr, false);
      j["trial"].erase("trial_config_json");
      if (!cfg.is_discarded()) j["trial"]["trial_config"] = cfg;
    }
    inv.EmitJson(j);
    return kExitOk;
  }
  const pb::Trial& t = r.trial();
  const std::string st = TrialStateName(t.state());
  Table d;
  d.title = absl::StrFormat("trial %d (sweep %d, #%d)", t.id(), t.sweep_id(), t.index());
  d.columns = {"FIELD", "VALUE"};
  d.rows = {{"network", absl::StrFormat("%s %s, weights %d bits, activations %d bits, scheme %s, seed %d",
                                        t.network(), WidthLabel(t.width()), t.wbits(), t.abits(), t.scheme(),
                                        t.seed())},
            {"state", Cell(st, StateColor(st))},
            {"attempts", absl::StrCat(t.attempts())},
            {"top-1 final / best", absl::StrCat(Opt(t.has_final_top1(), t.final_top1(), 2), " / ",
                                                Opt(t.has_best_top1(), t.best_top1(), 2))},
            {"top-5 final", Opt(t.has_final_top5(), t.final_top5(), 2)},
            {"images/s", Opt(t.has_images_per_sec(), t.images_per_sec(), 0)},
            {"compute cost", absl::StrFormat("%.4f uniform, %.4f first/last FP32", t.cost_uniform(), t.cost_first_last_fp32())},
            {"resources", TrialResources(t)},
            {"checkpoint", t.checkpoint_path().empty() ? "-" : absl::StrFormat("epoch %d: %s", t.checkpoint_epoch(), t.checkpoint_path())},
            {"queued / started / finished (UTC)", absl::StrCat(UtcTime(t.queued_ms()), " / ", UtcTime(t.started_ms()), " / ", UtcTime(t.finished_ms()))}};
  if (!t.pending_reason().empty()) d.rows.push_back({"pending", t.pending_reason()});
  if (t.stop_at_epoch() > 0)
    d.rows.push_back({"trains to", absl::StrFormat("epoch %d (a rung of its Pareto-pruned sweep)", t.stop_at_epoch())});
  if (t.state() == pb::TRIAL_PRUNED && t.has_pruned_top1())
    d.rows.push_back({"pruned", Cell(PrunedText(t.pruned_epoch(), t.pruned_top1()), Color::kDim)});
  if (!t.error().empty()) d.rows.push_back({"error", Cell(t.error(), Color::kRed)});
  Table a;
  a.title = "attempts";
  a.columns = {"#", "OUTCOME", "WORKERS", "STARTED (UTC)", "ENDED (UTC)", "REASON"};
  a.right = {true};
  for (const auto& at : r.attempts()) {
    const std::string o = OutcomeName(at.outcome());
    a.rows.push_back({absl::StrCat(at.attempt()), Cell(o, StateColor(o == "expired" ? "failed" : o)),
                      absl::StrJoin(at.worker_ids(), ","), UtcTime(at.started_ms()), UtcTime(at.ended_ms()), at.reason()});
  }
  Table m;
  m.title = "latest metrics";
  m.columns = {"METRIC", "STEP", "VALUE"};
  m.right = {false, true, true};
  for (const auto& p : r.last_metrics())
    m.rows.push_back({p.name(), absl::StrCat(p.step()), absl::StrFormat("%.6g", p.value())});
  if (f == Format::kCsv) {
    inv.out() << RenderCsv(d);
    return kExitOk;
  }
  for (const Table* tb : {&d, &a, &m}) {
    if (tb != &d && tb->rows.empty()) continue;
    if (tb != &d) inv.out() << "\n";
    inv.out() << (f == Format::kMarkdown ? RenderMarkdown(*tb) : RenderText(*tb, inv.color_on()));
  }
  return kExitOk;
}

int TrialMetrics(Invocation& inv, int64_t id, const std::string& name) {
  Connection& c = inv.conn();
  pb::GetTrialMetricsRequest req;
  req.set_trial_id(id);
  req.set_name(name);
  pb::GetTrialMetricsResponse resp;
  c.Check(c.stub().GetTrialMetrics(c.Context().get(), req, &resp), absl::StrCat("metrics of trial ", id));
  const Format f = inv.format();
  if (f == Format::kJson || f == Format::kYaml) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& p : resp.points())
      j.push_back({{"name", p.name()}, {"step", p.step()}, {"value", p.value()}, {"wall_ms", p.wall_ms()}});
    inv.EmitJson({{"trial_id", id}, {"points", j}});
    return kExitOk;
  }
  // Wide form: one row per step, one column per metric (in first-seen order).
  std::vector<std::string> names;
  std::map<int64_t, std::map<std::string, double>> rows;
  for (const auto& p : resp.points()) {
    if (std::find(names.begin(), names.end(), p.name()) == names.end()) names.push_back(p.name());
    rows[p.step()][p.name()] = p.value();
  }
  Table t;
  t.columns = {"step"};
  for (const auto& n : names) t.columns.push_back(n);
  t.right.assign(t.columns.size(), true);
  for (const auto& [step, vals] : rows) {
    std::vector<Cell> row{absl::StrCat(step)};
    for (const auto& n : names) {
      auto it = vals.find(n);
      row.push_back(it == vals.end() ? "" : absl::StrFormat("%.6g", it->second));
    }
    t.rows.push_back(std::move(row));
  }
  if (rows.empty() && f == Format::kTable) {
    inv.out() << "trial " << id << " has reported no metrics" << (name.empty() ? "" : " named " + name) << "\n";
    return kExitOk;
  }
  inv.Emit(t, nullptr);
  return kExitOk;
}

}  // namespace

CLI::App* TrialCommands::Add(CLI::App& app, Invocation& inv, int& rc) {
  auto run = [&](std::function<int()> fn) { return Runs(rc, std::move(fn)); };
  CLI::App* trial = app.add_subcommand("trial", "list trials of a sweep, show one, read its metrics");
  trial->require_subcommand(1);
  auto* tlist = trial->add_subcommand("list", "list the trials of a sweep");
  tlist->alias("ls");
  tlist->add_option("SWEEP", id, "sweep id")->required();
  tlist->add_option("--state", tf.state, "queued, running, succeeded, failed or cancelled");
  tlist->add_option("--network", tf.network, "only this network");
  tlist->add_option("--width", tf.width, "only this width multiplier");
  tlist->add_option("--wbits", tf.wbits, "only these weight bits");
  tlist->add_option("--abits", tf.abits, "only these activation bits");
  tlist->footer("\nExamples:\n  wrpn trial list 3\n  wrpn trial list 3 --state failed\n  wrpn trial list 3 --width 2 -o csv");
  tlist->callback(run([&] { return TrialList(inv, id, tf); }));

  auto* tshow = trial->add_subcommand("show", "show one trial: results, attempts, latest metrics");
  tshow->add_option("TRIAL", id, "trial id")->required();
  tshow->footer("\nExamples:\n  wrpn trial show 17\n  wrpn trial show 17 -o json   # includes the trial config");
  tshow->callback(run([&] { return TrialShow(inv, id); }));

  auto* tmetrics = trial->add_subcommand("metrics", "a trial's metric series, one row per epoch");
  tmetrics->add_option("TRIAL", id, "trial id")->required();
  tmetrics->add_option("--name", metric_name, "only this metric (top1, top5, train_loss, test_loss, images_per_sec, ...)");
  tmetrics->footer("\nExamples:\n  wrpn trial metrics 17\n  wrpn trial metrics 17 -o csv > trial17.csv\n"
                   "  wrpn trial metrics 17 --name top1 -o json");
  tmetrics->callback(run([&] { return TrialMetrics(inv, id, metric_name); }));
  return trial;
}

}  // namespace wrpn::client
