// `wrpn worker list` and `wrpn version`.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/cli.h"
#include "client/command_groups.h"
#include "client/grid.h"
#include "client/output.h"
#include "client/proto_json.h"

namespace wrpn::client {
namespace {

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

}  // namespace

void WorkerCommands::Add(CLI::App& app, Invocation& inv, int& rc) {
  auto run = [&](std::function<int()> fn) { return Runs(rc, std::move(fn)); };
  CLI::App* worker = app.add_subcommand("worker", "workers registered with the coordinator");
  worker->require_subcommand(1);
  auto* wlist = worker->add_subcommand("list", "list workers: state, GPUs, running trials");
  wlist->alias("ls");
  wlist->footer("\nExamples:\n  wrpn worker list\n  wrpn worker list -o json");
  wlist->callback(run([&] { return WorkerList(inv); }));

  auto* version = app.add_subcommand("version", "print the client version");
  version->footer("\nExamples:\n  wrpn version\n  wrpn version -o json");
  version->callback(run([&] { return Version(inv); }));
}

}  // namespace wrpn::client
