// The wrpn command tree (CLI11): global connection/output flags, then sweep, trial, grid, paper,
// cost, footprint, plot, worker and version. Command bodies throw CliError; RunCli maps parse
// errors to exit 2 and prints "wrpn: <message>".
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/args.h"
#include "client/cli.h"
#include "client/context.h"
#include "client/footprint.h"
#include "client/grid.h"
#include "client/grid_commands.h"
#include "client/output.h"
#include "client/plot.h"
#include "client/spec_file.h"
#include "common/network_spec.h"
#include "common/sweep_spec.h"
#include "common/yaml_json.h"

namespace wrpn::client {

const char* ClientVersion() { return WRPN_CLIENT_VERSION; }

// ---------------------------------------------------------------------------------------------
// Invocation

Format Invocation::format() {
  auto f = ParseFormat(output);
  if (!f.ok()) throw CliError{kExitUsage, std::string(f.status().message())};
  return *f;
}

bool Invocation::color_on() const {
  if (color == "always") return true;
  if (color == "never") return false;
  if (auto v = env_->env("NO_COLOR"); v && !v->empty()) return false;
  if (auto t = env_->env("TERM"); t && *t == "dumb") return false;
  return env_->out_is_tty;
}

bool Invocation::progress_on() const {
  if (auto t = env_->env("TERM"); t && *t == "dumb") return false;
  return env_->out_is_tty;
}

Connection& Invocation::conn() {
  if (!conn_) {
    auto s = ResolveSettings(flags, env_->env);
    if (!s.ok()) throw CliError{kExitUsage, std::string(s.status().message())};
    conn_ = std::make_unique<Connection>(*s);
    conn_->EnsureConnected();
  }
  return *conn_;
}

void Invocation::EmitJson(const nlohmann::json& j) {
  if (format() == Format::kYaml) out() << JsonToYaml(j);
  else out() << j.dump(2) << "\n";
}

void Invocation::Emit(const Table& t, const nlohmann::json& j) {
  switch (format()) {
    case Format::kJson:
    case Format::kYaml: EmitJson(j); break;
    case Format::kCsv: out() << RenderCsv(t); break;
    case Format::kMarkdown: out() << RenderMarkdown(t); break;
    case Format::kTable: out() << RenderText(t, color_on()); break;
  }
}

namespace {
// Protobuf's JSON prints 64-bit integers as strings; scripts want numbers.
void Int64AsNumbers(const google::protobuf::Descriptor* d, nlohmann::json& j) {
  using FD = google::protobuf::FieldDescriptor;
  if (!j.is_object()) return;
  for (int i = 0; i < d->field_count(); ++i) {
    const FD* f = d->field(i);
    auto it = j.find(f->name());
    if (it == j.end()) continue;
    auto fix = [&](nlohmann::json& v) {
      if (f->cpp_type() == FD::CPPTYPE_MESSAGE && !f->is_map()) {
        Int64AsNumbers(f->message_type(), v);
      } else if ((f->cpp_type() == FD::CPPTYPE_INT64 || f->cpp_type() == FD::CPPTYPE_UINT64) &&
                 v.is_string()) {
        try {
          v = std::stoll(v.get<std::string>());
        } catch (...) {
        }
      }
    };
    if (it->is_array()) {
      for (auto& v : *it) fix(v);
    } else {
      fix(*it);
    }
  }
}
}  // namespace

nlohmann::json ProtoJson(const google::protobuf::Message& m, bool print_defaults) {
  std::string s;
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = print_defaults;
  (void)google::protobuf::util::MessageToJsonString(m, &s, o);
  nlohmann::json j = nlohmann::json::parse(s, nullptr, false);
  Int64AsNumbers(m.GetDescriptor(), j);
  return j;
}

namespace {

std::string ReadFileOr(const std::string& path, int code, const std::string& what) {
  std::ifstream in(path);
  if (!in) throw CliError{code, absl::StrCat(what, ": cannot read '", path, "'")};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Opt(bool has, double v, int decimals) { return has ? Fixed(v, decimals) : ""; }

std::string Bits(int w, int a) { return absl::StrFormat("%d/%d", w, a); }

pb::TrialState ParseTrialState(const std::string& s) {
  if (s.empty() || s == "any") return pb::TRIAL_STATE_UNSPECIFIED;
  for (auto st : {pb::TRIAL_QUEUED, pb::TRIAL_RUNNING, pb::TRIAL_SUCCEEDED, pb::TRIAL_FAILED,
                  pb::TRIAL_CANCELLED})
    if (TrialStateName(st) == s) return st;
  throw CliError{kExitUsage, absl::StrCat("--state: unknown state '", s,
                                          "' (expected queued, running, succeeded, failed, cancelled)")};
}

pb::SweepState ParseSweepState(const std::string& s) {
  if (s.empty() || s == "any") return pb::SWEEP_STATE_UNSPECIFIED;
  for (auto st : {pb::SWEEP_QUEUED, pb::SWEEP_RUNNING, pb::SWEEP_SUCCEEDED, pb::SWEEP_FAILED,
                  pb::SWEEP_CANCELLED})
    if (SweepStateName(st) == s) return st;
  throw CliError{kExitUsage, absl::StrCat("--state: unknown state '", s,
                                          "' (expected queued, running, succeeded, failed, cancelled)")};
}

// ---- sweep ----

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
  return absl::StrFormat("%d/%d", c.succeeded() + c.failed() + c.cancelled(), c.total());
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
  t.columns = {"ID", "NAME", "STATE", "DONE", "SUCCEEDED", "RUNNING", "QUEUED", "FAILED", "CANCELLED", "PRIORITY", "CREATED (UTC)"};
  t.right = {true, false, false, true, true, true, true, true, true, true, false};
  nlohmann::json j = nlohmann::json::array();
  for (const auto& s : sweeps) {
    const std::string st = SweepStateName(s.state());
    const auto& n = s.counts();
    t.rows.push_back({absl::StrCat(s.id()), s.name(), Cell(st, StateColor(st)), CountsText(n),
                      absl::StrCat(n.succeeded()), absl::StrCat(n.running()),
                      absl::StrCat(n.queued()),
                      Cell(absl::StrCat(n.failed()), n.failed() ? Color::kRed : Color::kNone),
                      absl::StrCat(n.cancelled()), absl::StrCat(s.priority()),
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

pb::Sweep GetSweep(Connection& c, int64_t id) {
  pb::GetSweepRequest req;
  req.set_sweep_id(id);
  pb::GetSweepResponse resp;
  c.Check(c.stub().GetSweep(c.Context().get(), req, &resp), absl::StrCat("sweep ", id));
  return resp.sweep();
}

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
            {"trials", absl::StrFormat("%d total: %d succeeded, %d running, %d queued, %d failed, %d cancelled",
                                       n.total(), n.succeeded(), n.running(), n.queued(), n.failed(), n.cancelled())},
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

int SweepRetry(Invocation& inv, int64_t id) {
  Connection& c = inv.conn();
  pb::RetrySweepRequest req;
  req.set_sweep_id(id);
  pb::RetrySweepResponse resp;
  c.Check(c.stub().RetrySweep(c.Context().get(), req, &resp), absl::StrCat("retry sweep ", id));
  const Format f = inv.format();
  if (f == Format::kJson || f == Format::kYaml)
    inv.EmitJson({{"sweep_id", id}, {"requeued_trials", resp.requeued_trials()}});
  else if (resp.requeued_trials() == 0)
    inv.out() << absl::StrFormat("sweep %d: no failed or cancelled trials to retry\n", id);
  else
    inv.out() << absl::StrFormat("sweep %d: re-queued %d failed or cancelled trials\n", id, resp.requeued_trials());
  return kExitOk;
}

// ---- trial ----

struct TrialFilter {
  std::string state, network;
  double width = 0;
  int wbits = -1, abits = -1;
};

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
  t.columns = {"ID", "NETWORK", "WIDTH", "W/A", "SEED", "STATE", "ATTEMPTS", "TOP1", "TOP5", "IMG/S", "COST", "NOTE"};
  t.right = {true, false, true, true, true, false, true, true, true, true, true, false};
  nlohmann::json j = nlohmann::json::array();
  for (const auto& tr : trials) {
    const std::string st = TrialStateName(tr.state());
    std::string note = tr.state() == pb::TRIAL_QUEUED ? tr.pending_reason() : tr.error();
    if (note.size() > 60) note = note.substr(0, 57) + "...";
    t.rows.push_back({absl::StrCat(tr.id()), tr.network(), WidthLabel(tr.width()), Bits(tr.wbits(), tr.abits()),
                      absl::StrCat(tr.seed()), Cell(st, StateColor(st)), absl::StrCat(tr.attempts()),
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
  d.rows = {{"network", absl::StrFormat("%s %s, weights %d bits, activations %d bits, seed %d", t.network(),
                                        WidthLabel(t.width()), t.wbits(), t.abits(), t.seed())},
            {"state", Cell(st, StateColor(st))},
            {"attempts", absl::StrCat(t.attempts())},
            {"top-1 final / best", absl::StrCat(Opt(t.has_final_top1(), t.final_top1(), 2), " / ",
                                                Opt(t.has_best_top1(), t.best_top1(), 2))},
            {"top-5 final", Opt(t.has_final_top5(), t.final_top5(), 2)},
            {"images/s", Opt(t.has_images_per_sec(), t.images_per_sec(), 0)},
            {"compute cost", absl::StrFormat("%.4f uniform, %.4f first/last FP32", t.cost_uniform(), t.cost_first_last_fp32())},
            {"resources", t.gpus_per_node() == 0
                              ? absl::StrFormat("CPU, %d node%s", std::max(1, t.nodes()), t.nodes() > 1 ? "s" : "")
                              : absl::StrFormat("%d GPUs per node x %d node%s", t.gpus_per_node(),
                                                std::max(1, t.nodes()), t.nodes() > 1 ? "s" : "")},
            {"checkpoint", t.checkpoint_path().empty() ? "-" : absl::StrFormat("epoch %d: %s", t.checkpoint_epoch(), t.checkpoint_path())},
            {"queued / started / finished (UTC)", absl::StrCat(UtcTime(t.queued_ms()), " / ", UtcTime(t.started_ms()), " / ", UtcTime(t.finished_ms()))}};
  if (!t.pending_reason().empty()) d.rows.push_back({"pending", t.pending_reason()});
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

// ---- paper ----

std::string CellNum(const nlohmann::json& v, int decimals) {
  return v.is_number() ? Fixed(v.get<double>(), decimals) : "";
}

int Paper(Invocation& inv, const std::string& which, const std::string& file) {
  std::string text;
  if (!file.empty()) {
    text = ReadFileOr(file, kExitUsage, "--file");
  } else {
    Connection& c = inv.conn();
    pb::GetPaperTablesResponse resp;
    c.Check(c.stub().GetPaperTables(c.Context().get(), {}, &resp), "paper tables");
    text = resp.tables_json();
  }
  const auto doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.contains("tables"))
    throw CliError{kExitFailed, "paper tables: not a JSON object with \"tables\""};
  std::vector<int> axis = doc.value("bits_axis", std::vector<int>{32, 8, 4, 2, 1});
  std::vector<nlohmann::json> chosen;
  for (const auto& t : doc["tables"])
    if (which.empty() || t.value("id", "") == which) chosen.push_back(t);
  if (chosen.empty()) {
    std::vector<std::string> ids;
    for (const auto& t : doc["tables"]) ids.push_back(t.value("id", "?"));
    throw CliError{kExitNotFound, absl::StrCat("paper: no table '", which, "' (have ", absl::StrJoin(ids, ", "), ")")};
  }
  const Format f = inv.format();
  if (f == Format::kJson || f == Format::kYaml) {
    if (which.empty()) inv.EmitJson(doc);
    else inv.EmitJson(chosen.front());
    return kExitOk;
  }
  std::vector<Table> tables;
  Table flat;  // CSV: one row per value
  flat.columns = {"table", "network", "width", "wbits", "abits", "top1", "cost"};
  for (const auto& t : chosen) {
    const std::string id = t.value("id", "");
    const std::string net = t.value("network", "");
    const double width = t.value("width", 1.0);
    for (const char* field : {"top1", "cost"}) {
      if (!t.contains(field) || !t[field].is_object()) continue;
      Table g;
      g.title = absl::StrFormat("%s: %s %s, %s (rows: weight bits, columns: activation bits)", id, net,
                                WidthLabel(width),
                                std::string(field) == "top1" ? "top-1 % on ImageNet" : "compute cost vs 1x 32/32");
      g.columns = {"w \\ a"};
      g.right = {false};
      for (int a : axis) g.columns.push_back(absl::StrCat("a", a)), g.right.push_back(true);
      for (int w : axis) {
        const std::string key = absl::StrCat(w);
        if (!t[field].contains(key)) continue;
        std::vector<Cell> row{absl::StrCat("w", w)};
        const auto& vals = t[field][key];
        for (size_t i = 0; i < axis.size(); ++i) {
          const auto v = i < vals.size() ? vals[i] : nlohmann::json();
          row.push_back(CellNum(v, std::string(field) == "top1" ? 1 : 1));
          if (v.is_number()) {
            flat.rows.push_back({id, net, absl::StrFormat("%g", width), key, absl::StrCat(axis[i]),
                                 std::string(field) == "top1" ? CellNum(v, 2) : "",
                                 std::string(field) == "cost" ? CellNum(v, 2) : ""});
          }
        }
        g.rows.push_back(std::move(row));
      }
      if (t.contains("notes")) g.notes.push_back("note: " + t["notes"].get<std::string>());
      if (t.contains("definition")) g.notes.push_back("definition: " + t["definition"].get<std::string>());
      tables.push_back(std::move(g));
    }
    if (t.contains("rows")) {
      Table r;
      r.title = absl::StrFormat("%s: %s%s, top-1 %% on ImageNet and compute cost vs 1x 32/32", id, net,
                                t.contains("variant") ? " (" + t["variant"].get<std::string>() + ")" : "");
      r.columns = {"WIDTH", "WBITS", "ABITS", "TOP1", "COST"};
      r.right = {true, true, true, true, true};
      for (const auto& row : t["rows"]) {
        const std::string w = absl::StrFormat("%g", row.value("width", 1.0));
        const std::string wb = absl::StrCat(row.value("wbits", 32)), ab = absl::StrCat(row.value("abits", 32));
        r.rows.push_back({w + "x", wb, ab, CellNum(row.value("top1", nlohmann::json()), 2),
                          CellNum(row.value("cost", nlohmann::json()), 2)});
        flat.rows.push_back({id, net, w, wb, ab, CellNum(row.value("top1", nlohmann::json()), 2),
                             CellNum(row.value("cost", nlohmann::json()), 2)});
      }
      tables.push_back(std::move(r));
    }
  }
  if (f == Format::kCsv) {
    inv.out() << RenderCsv(flat);
    return kExitOk;
  }
  if (which.empty()) inv.out() << doc.value("source", "") << "\n\n";
  for (size_t i = 0; i < tables.size(); ++i) {
    if (i) inv.out() << "\n";
    inv.out() << (f == Format::kMarkdown ? RenderMarkdown(tables[i]) : RenderText(tables[i], inv.color_on()));
  }
  return kExitOk;
}

// ---- cost / footprint (local, the shared model) ----

InputShape ParseInput(const std::string& network, const std::string& text) {
  InputShape in = DefaultInput(network);
  if (text.empty()) return in;
  char x1 = 0, x2 = 0;
  std::istringstream s(text);
  if (!(s >> in.channels >> x1 >> in.height >> x2 >> in.width) || x1 != 'x' || x2 != 'x' || !s.eof() ||
      in.channels < 1 || in.height < 1 || in.width < 1)
    throw CliError{kExitUsage, "--input: expected CxHxW (e.g. 3x224x224), got '" + text + "'"};
  return in;
}

void CheckModelArgs(const std::string& network, double width, int wbits, int abits) {
  if (!IsKnownNetwork(network))
    throw CliError{kExitUsage, absl::StrCat("--network: unknown network '", network, "' (known: ",
                                            absl::StrJoin(KnownNetworks(), ", "), ")")};
  if (!(width > 0 && width <= kMaxWidth))
    throw CliError{kExitUsage, absl::StrFormat("--width: %g is out of range (0, %g]", width, kMaxWidth)};
  if (!IsValidBits(wbits)) throw CliError{kExitUsage, absl::StrFormat("--wbits: %d is not 1..16 or 32", wbits)};
  if (!IsValidBits(abits)) throw CliError{kExitUsage, absl::StrFormat("--abits: %d is not 1..16 or 32", abits)};
}

std::string Count(int64_t n) {
  if (n >= 1000000000) return absl::StrFormat("%.2fG", n / 1e9);
  if (n >= 1000000) return absl::StrFormat("%.2fM", n / 1e6);
  if (n >= 1000) return absl::StrFormat("%.1fk", n / 1e3);
  return absl::StrCat(n);
}

int Cost(Invocation& inv, const std::string& network, double width, int wbits, int abits,
         const std::string& input_text, bool layers) {
  CheckModelArgs(network, width, wbits, abits);
  const InputShape input = ParseInput(network, input_text);
  auto spec = DescribeNetwork(network, width, input);
  if (!spec.ok()) throw CliError{kExitUsage, std::string(spec.status().message())};
  auto cost = ComputeCost(network, width, wbits, abits, input);
  if (!cost.ok()) throw CliError{kExitUsage, std::string(cost.status().message())};
  Table t;
  t.columns = {"LAYER", "KIND", "IN", "OUT", "K", "S", "OUTPUT", "PARAMS", "FMAS", "WBITS", "ABITS"};
  t.right = {false, false, true, true, true, true, true, true, true, true, true};
  nlohmann::json jl = nlohmann::json::array();
  for (const auto& l : spec->layers) {
    const int wb = l.quantized ? wbits : 32, ab = l.input_quantized ? abits : 32;
    t.rows.push_back({l.name, l.kind == LayerKind::kConv ? "conv" : "linear", absl::StrCat(l.in_channels),
                      absl::StrCat(l.out_channels), absl::StrCat(l.kernel_h), absl::StrCat(l.stride),
                      absl::StrFormat("%dx%d", l.out_h, l.out_w), Count(l.ParamCount()), Count(l.Fmas()),
                      absl::StrCat(wb), absl::StrCat(ab)});
    jl.push_back({{"name", l.name}, {"kind", l.kind == LayerKind::kConv ? "conv" : "linear"},
                  {"in_channels", l.in_channels}, {"out_channels", l.out_channels}, {"kernel", l.kernel_h},
                  {"stride", l.stride}, {"params", l.ParamCount()}, {"fmas", l.Fmas()}, {"wbits", wb},
                  {"abits_in", ab}});
  }
  const nlohmann::json j = {{"network", network}, {"width", width}, {"wbits", wbits}, {"abits", abits},
                            {"input", {input.channels, input.height, input.width}},
                            {"params", spec->ParamCount()}, {"fmas", cost->fmas},
                            {"baseline_fmas", cost->baseline_fmas}, {"fma_ratio", cost->fma_ratio},
                            {"cost_uniform", cost->cost_uniform},
                            {"cost_first_last_fp32", cost->cost_first_last_fp32}, {"layers", jl}};
  const Format f = inv.format();
  if (f == Format::kJson || f == Format::kYaml) {
    inv.EmitJson(j);
    return kExitOk;
  }
  Table s;
  s.title = absl::StrFormat("%s %s, weights %d bits, activations %d bits, input %dx%dx%d", network,
                            WidthLabel(width), wbits, abits, input.channels, input.height, input.width);
  s.columns = {"QUANTITY", "VALUE"};
  s.right = {false, true};
  s.rows = {{"parameters", Count(spec->ParamCount())},
            {"FMAs per image", Count(cost->fmas)},
            {"FMAs vs 1x", Fixed(cost->fma_ratio, 3)},
            {"compute cost vs 1x 32/32 (uniform)", Fixed(cost->cost_uniform, 3)},
            {"compute cost vs 1x 32/32 (first/last FP32)", Fixed(cost->cost_first_last_fp32, 3)}};
  if (f == Format::kCsv) {
    inv.out() << RenderCsv(layers ? t : s);
    return kExitOk;
  }
  const bool md = f == Format::kMarkdown;
  inv.out() << (md ? RenderMarkdown(s) : RenderText(s, inv.color_on()));
  if (layers) inv.out() << "\n" << (md ? RenderMarkdown(t) : RenderText(t, inv.color_on()));
  return kExitOk;
}

int Footprint(Invocation& inv, const FootprintArgs& args, const std::string& input_text) {
  CheckModelArgs(args.network, args.width, args.wbits, args.abits);
  return RunFootprint(inv, args, ParseInput(args.network, input_text));
}

// ---- worker / version ----

int WorkerList(Invocation& inv) {
  Connection& c = inv.conn();
  pb::ListWorkersResponse resp;
  c.Check(c.stub().ListWorkers(c.Context().get(), {}, &resp), "list workers");
  Table t;
  t.columns = {"ID", "NAME", "STATE", "GPUS", "FREE GPUS", "CPUS", "RUNNING TRIALS", "ADDRESS", "LAST HEARTBEAT (UTC)"};
  t.right = {false, false, false, true, true, true, false, false, false};
  nlohmann::json j = nlohmann::json::array();
  for (const auto& w : resp.workers()) {
    std::vector<std::string> running;
    for (int64_t r : w.running_trials()) running.push_back(absl::StrCat(r));
    t.rows.push_back({w.id(), w.name(), Cell(w.state(), StateColor(w.state())), absl::StrCat(w.gpus_size()),
                      absl::StrCat(w.free_gpus()), absl::StrCat(w.cpus()),
                      running.empty() ? "-" : absl::StrJoin(running, ","), w.address(),
                      UtcTime(w.last_heartbeat_ms())});
    j.push_back(ProtoJson(w));
  }
  if (resp.workers().empty() && inv.format() == Format::kTable) {
    inv.out() << "no workers registered (start one: wrpn-worker --coordinator ADDR)\n";
    return kExitOk;
  }
  inv.Emit(t, j);
  return kExitOk;
}

int Version(Invocation& inv) {
  const Format f = inv.format();
  if (f == Format::kJson || f == Format::kYaml) {
    inv.EmitJson({{"client", ClientVersion()}, {"api", "wrpn.v1"}});
  } else {
    inv.out() << "wrpn " << ClientVersion() << " (API wrpn.v1)\n";
  }
  return kExitOk;
}

constexpr const char* kGlobalHelp = R"(wrpn: submit Wide Reduced-Precision Network sweeps to a wrpn coordinator, watch them, and read
the accuracy / compute-cost grid laid out like the paper's tables.

Connection (highest precedence first): flags, then WRPN_ADDR / WRPN_TOKEN / WRPN_TLS_CA, then
$XDG_CONFIG_HOME/wrpn/config.yaml (default ~/.config/wrpn/config.yaml) with keys addr, token,
tls, tls_ca, connect_timeout.)";

constexpr const char* kGlobalFooter = R"(
Examples:
  wrpn sweep submit examples/sweeps/fashion-quick.yaml --watch
  wrpn sweep list
  wrpn grid 1 --paper
  wrpn grid 1 -o csv > grid.csv
  wrpn plot 1 --out pareto.png
  wrpn cost --network resnet34 --width 2 --wbits 2 --abits 4

Exit codes: 0 ok, 1 operation failed, 2 usage error, 3 not found, 4 authentication or permission,
5 coordinator unreachable.)";

}  // namespace

int RunCli(const std::vector<std::string>& args, CliEnv& env) {
  Invocation inv(&env);
  CLI::App app{kGlobalHelp, "wrpn"};
  app.fallthrough();
  app.require_subcommand(1);
  app.footer(kGlobalFooter);
  app.get_formatter()->column_width(34);
  app.add_option("--addr", inv.flags.addr, "coordinator address host:port (default 127.0.0.1:7070)");
  app.add_option("--token", inv.flags.token, "bearer token (viewer for reads, admin for submit/cancel/retry)");
  app.add_option("--tls-ca", inv.flags.tls_ca, "PEM CA file: connect with TLS and trust this CA");
  app.add_flag("--tls", inv.flags.tls, "connect with TLS using the system roots");
  app.add_option("--config", inv.flags.config, "config file (default $XDG_CONFIG_HOME/wrpn/config.yaml)");
  app.add_option("--connect-timeout", inv.flags.connect_timeout_s, "seconds to wait for the coordinator (default 3)");
  app.add_option("-o,--output", inv.output, "output format: table, json, yaml, csv or markdown");
  app.add_option("--color", inv.color, "auto (on a terminal, unless NO_COLOR is set), always or never")
      ->check(CLI::IsMember({"auto", "always", "never"}));

  int rc = kExitOk;
  auto run = [&](std::function<int()> fn) { return [&rc, fn] { rc = fn(); }; };

  // sweep
  CLI::App* sweep = app.add_subcommand("sweep", "submit, list, show, watch, cancel and retry sweeps");
  sweep->require_subcommand(1);
  std::string spec_path;
  bool watch = false, dry_run = false;
  int64_t id = 0;
  auto* submit = sweep->add_subcommand("submit", "validate a sweep spec locally, then submit it");
  submit->add_option("SPEC", spec_path, "sweep spec file (YAML or JSON)")->required();
  submit->add_flag("--watch,-w", watch, "watch the sweep after submitting (exit code as for `sweep watch`)");
  submit->add_flag("--dry-run", dry_run, "validate and count trials on the coordinator; submit nothing");
  submit->footer("\nExamples:\n  wrpn sweep submit examples/sweeps/fashion-quick.yaml\n"
                 "  wrpn sweep submit my-sweep.yaml --watch\n  wrpn sweep submit my-sweep.yaml --dry-run -o json\n\n"
                 "An invalid spec is reported with the offending field (exit 1); nothing is submitted.");
  submit->callback(run([&] { return SweepSubmit(inv, spec_path, watch, dry_run); }));

  std::string state;
  int limit = 0;
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
  retry->footer("\nExamples:\n  wrpn sweep retry 3");
  retry->callback(run([&] { return SweepRetry(inv, id); }));

  // trial
  CLI::App* trial = app.add_subcommand("trial", "list trials of a sweep, show one, read its metrics");
  trial->require_subcommand(1);
  TrialFilter tf;
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

  std::string metric_name;
  auto* tmetrics = trial->add_subcommand("metrics", "a trial's metric series, one row per epoch");
  tmetrics->add_option("TRIAL", id, "trial id")->required();
  tmetrics->add_option("--name", metric_name, "only this metric (top1, top5, train_loss, test_loss, images_per_sec, ...)");
  tmetrics->footer("\nExamples:\n  wrpn trial metrics 17\n  wrpn trial metrics 17 -o csv > trial17.csv\n"
                   "  wrpn trial metrics 17 --name top1 -o json");
  tmetrics->callback(run([&] { return TrialMetrics(inv, id, metric_name); }));

  bool follow = false, prefix = false;
  int tail = 0;
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

  AddGridCommand(app, inv, &rc);

  // paper
  std::string which, paper_file;
  auto* paper = app.add_subcommand("paper", "the paper's tables as stored by the coordinator");
  paper->add_option("TABLE", which, "table1 .. table5 (default: all)");
  paper->add_option("--file", paper_file, "read a tables JSON file instead of asking the coordinator (e.g. data/wrpn_tables.json)");
  paper->footer("\nExamples:\n  wrpn paper\n  wrpn paper table3\n  wrpn paper table4 -o csv\n  wrpn paper --file data/wrpn_tables.json");
  paper->callback(run([&] { return Paper(inv, which, paper_file); }));

  // cost / footprint
  std::string network = "resnet34", input_text;
  double width = 1;
  int wbits = 32, abits = 32;
  bool layers = false;
  auto* cost = app.add_subcommand("cost", "compute cost of a network at a width and bits (local, the shared model)");
  cost->add_option("--network", network, "lenet5, resnet20, resnet18, resnet34, resnet50, alexnet or inception_bn")->capture_default_str();
  cost->add_option("--width", width, "width multiplier")->capture_default_str();
  cost->add_option("--wbits", wbits, "weight bits (1..16 or 32)")->capture_default_str();
  cost->add_option("--abits", abits, "activation bits (1..16 or 32)")->capture_default_str();
  cost->add_option("--input", input_text, "input CxHxW (default: the network's own)");
  cost->add_flag("--layers", layers, "also print the per-layer table (CSV: only the layers)");
  cost->footer("\nCompute cost = FMAs x (weight bits + activation bits), relative to the same network at 1x and\n"
               "32/32 (the paper's Table 3 rule), and with the first and last layer kept at FP32.\n\n"
               "Examples:\n  wrpn cost --network resnet34 --width 2 --wbits 2 --abits 4\n"
               "  wrpn cost --network alexnet --width 2 --wbits 4 --abits 4 --layers\n  wrpn cost --network lenet5 -o json");
  cost->callback(run([&] { return Cost(inv, network, width, wbits, abits, input_text, layers); }));

  std::vector<int> batches;
  std::string fp_plot;
  auto* fp = app.add_subcommand("footprint", "training memory by batch size: activations vs weights (the paper's Figure 1)");
  fp->add_option("--network", network, "network")->capture_default_str();
  fp->add_option("--width", width, "width multiplier")->capture_default_str();
  fp->add_option("--wbits", wbits, "weight bits")->capture_default_str();
  fp->add_option("--abits", abits, "activation bits")->capture_default_str();
  fp->add_option("--batch", batches, "batch sizes, comma separated (default 1,32,64,128,256)")->delimiter(',');
  fp->add_option("--plot", fp_plot, "also draw stacked bars to FILE.png or FILE.svg (gnuplot)");
  std::string fp_measured;
  fp->add_option("--input", input_text, "input CxHxW (default: the network's own)");
  fp->add_option("--measured", fp_measured, "mark measured peaks from `wrpn-train describe --measure --json` output");
  fp->footer("\nExamples:\n  wrpn footprint --network resnet34 --batch 1,32,128,256\n"
             "  wrpn footprint --network alexnet --batch 1,64,256 --plot fig1.png\n  wrpn footprint --network resnet34 --abits 4 --wbits 4 -o csv");
  fp->callback(run([&] { return Footprint(inv, {network, width, wbits, abits, batches, fp_plot, fp_measured}, input_text); }));

  AddPlotCommand(app, inv, &rc);

  // worker
  CLI::App* worker = app.add_subcommand("worker", "workers registered with the coordinator");
  worker->require_subcommand(1);
  auto* wlist = worker->add_subcommand("list", "list workers: state, GPUs, running trials");
  wlist->alias("ls");
  wlist->footer("\nExamples:\n  wrpn worker list\n  wrpn worker list -o json");
  wlist->callback(run([&] { return WorkerList(inv); }));

  auto* version = app.add_subcommand("version", "print the client version");
  version->footer("\nExamples:\n  wrpn version\n  wrpn version -o json");
  version->callback(run([&] { return Version(inv); }));

  CheckIdArguments(&app);
  if (auto unknown = UnknownCommand(app, args)) {
    *env.err << "wrpn: " << *unknown << "\n";
    return kExitUsage;
  }
  std::vector<const char*> argv{"wrpn"};
  for (const auto& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::CallForHelp& e) {
    app.exit(e, *env.out, *env.err);
    return kExitOk;
  } catch (const CLI::CallForAllHelp& e) {
    app.exit(e, *env.out, *env.err);
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    *env.err << "wrpn: " << e.what() << "\nRun 'wrpn --help' (or 'wrpn COMMAND --help') for usage.\n";
    return kExitUsage;
  } catch (const CliError& e) {
    *env.err << "wrpn: " << e.message << "\n";
    return e.code;
  }
  return rc;
}

}  // namespace wrpn::client
