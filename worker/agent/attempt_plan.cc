#include "worker/agent/attempt_plan.h"

#include <algorithm>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "worker/agent/srun_launcher.h"

namespace wrpn::agent {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string Absolute(const fs::path& p) {
  std::error_code ec;
  return fs::absolute(p, ec).lexically_normal().string();
}

bool OnGpu(const pb::Lease& lease) { return lease.gpus_per_node() > 0 || lease.gpu_share() > 0; }

void PlaceRanks(const pb::Lease& lease, const AgentOptions& options, AttemptPlan& plan) {
  plan.gang = lease.has_rendezvous() && lease.rendezvous().nnodes() > 1;
  plan.single_step = plan.gang && lease.rendezvous().single_step();
  plan.node_rank = plan.gang ? lease.rendezvous().node_rank() : 0;
  plan.nnodes = plan.gang ? lease.rendezvous().nnodes() : 1;
  plan.nproc = lease.gpus_per_node() > 0 ? lease.gpus_per_node()
               : OnGpu(lease)             ? 1  // a fraction of one GPU
                                          : std::max(1, options.cpu_ranks);
  plan.world_size = plan.nnodes * plan.nproc;
}

void PlaceFolders(const pb::Lease& lease, const AgentOptions& options, AttemptPlan& plan) {
  plan.dir = Absolute(fs::path(options.work_dir) / "attempts" /
                      absl::StrCat("t", lease.trial_id(), "-a", lease.attempt(), "-n",
                                   plan.node_rank));
  plan.ckpt_dir = (fs::path(CheckpointRoot(options)) / absl::StrCat("trial-", lease.trial_id()) /
                   (plan.node_rank == 0 ? absl::StrCat("attempt-", lease.attempt())
                                        : absl::StrCat("attempt-", lease.attempt(), "-node-",
                                                       plan.node_rank)))
                      .string();
  plan.config_path = (fs::path(plan.dir) / "trial.json").string();
}

// Checkpoints are only ever written under the checkpoint root; a path elsewhere is not ours to
// read (or to copy into a trial).
void PlanResume(const pb::Lease& lease, const AgentOptions& options, AttemptPlan& plan) {
  const std::string& src = lease.resume_checkpoint();
  if (src.empty()) return;
  const std::string root = CheckpointRoot(options);
  if (CheckPathUnderRoots("resume_checkpoint", src, {root}).ok()) {
    plan.resume_from = src;
    return;
  }
  plan.notes.push_back(absl::StrCat("checkpoint ", src, " is outside this worker's checkpoint root ",
                                    root, "; starting from epoch 0"));
}

// recipe.init_from: fp32: the FP32 trial's final checkpoint the coordinator hands over. Like
// every checkpoint this worker reads it must lie under the checkpoint root; the trial config's
// own value (none is sent) never counts.
absl::Status PlanInit(const pb::Lease& lease, const AgentOptions& options, TrialConfig& c) {
  c.init_checkpoint.clear();
  const std::string& src = lease.init_checkpoint();
  if (src.empty()) return absl::OkStatus();
  if (absl::Status st = CheckPathUnderRoots("init_checkpoint", src, {CheckpointRoot(options)});
      !st.ok()) {
    return st;
  }
  c.init_checkpoint = src;
  return absl::OkStatus();
}

// An empty dataset.path becomes <data_dir>/<kind> (fashion_mnist -> fashion-mnist), a relative
// one is taken under data_dir; then the path must lie under data_dir or an allowed root.
absl::Status PlaceDataset(const AgentOptions& options, DatasetConfig& d) {
  if (d.kind == "synthetic") return absl::OkStatus();  // reads no files
  if (!options.data_dir.empty()) {
    std::string sub = d.kind;
    std::replace(sub.begin(), sub.end(), '_', '-');
    if (d.path.empty()) d.path = (fs::path(options.data_dir) / sub).string();
    else if (fs::path(d.path).is_relative()) d.path = (fs::path(options.data_dir) / d.path).string();
  }
  if (d.path.empty()) return absl::OkStatus();
  std::vector<std::string> roots = options.allowed_data_roots;
  if (!options.data_dir.empty()) roots.push_back(options.data_dir);
  return CheckPathUnderRoots("dataset.path", d.path, roots);
}

// The lease's config with what this worker decides: checkpoint folder, dataset path, device and
// the cores of each rank (shared among the ranks of every trial this worker may run at once).
absl::Status PlanConfig(const pb::Lease& lease, const AgentOptions& options, AttemptPlan& plan) {
  const json j = json::parse(lease.trial_config_json(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("trial_config_json is not a JSON object");
  }
  absl::StatusOr<TrialConfig> read = ReadTrialConfig(j);
  if (!read.ok()) return read.status();
  TrialConfig& c = plan.config = *std::move(read);
  c.checkpoint_dir = plan.ckpt_dir;
  c.resume = false;
  if (absl::Status st = PlaceDataset(options, c.dataset); !st.ok()) return st;
  if (absl::Status st = PlanInit(lease, options, c); !st.ok()) return st;
  c.stop_at_epoch = static_cast<int>(lease.stop_at_epoch());  // a Pareto rung; 0 = the end
  if (!OnGpu(lease)) c.device = "cpu";
  const int rank_cores =
      RankCores(options.cpus, static_cast<int>(options.gpus.size()),
                lease.gpu_share() > 0 ? lease.gpu_share() : lease.gpus_per_node(),
                options.max_cpu_trials, plan.nproc);
  // A fraction of a GPU shares its host's cores with its neighbours: intra-op threads too.
  if ((c.device == "cpu" || lease.gpu_share() > 0) && c.threads == 0) c.threads = rank_cores;
  if (c.cpu_cores == 0) c.cpu_cores = rank_cores;  // the loader's threads
  return ValidateTrialConfig(c);
}

// A gang's store: the lease's port, unless rank 0's worker registered a fixed one in its
// address ("host:port", --rendezvous-port); node 0 picks one when it is 0, the others need it.
absl::Status PlanRendezvous(const pb::Lease& lease, AttemptPlan& plan) {
  if (!plan.gang) return absl::OkStatus();
  plan.master_port = lease.rendezvous().master_port();
  SplitHostPort(lease.rendezvous().master_addr(), &plan.master_addr, &plan.master_port);
  plan.hosts_store = plan.node_rank == 0;
  if (!plan.hosts_store && plan.master_port == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("the coordinator sent node rank ", plan.node_rank,
                     " no rendezvous port (rank 0 has not reported one)"));
  }
  return absl::OkStatus();
}

}  // namespace

std::variant<AttemptPlan, FailedEvent> PlanAttempt(const pb::Lease& lease,
                                                   const AgentOptions& options,
                                                   const GpuSlots& gpus) {
  AttemptPlan plan;
  PlaceRanks(lease, options, plan);
  if (OnGpu(lease)) {
    absl::StatusOr<std::vector<int>> slots = gpus.Pick(lease, plan.nproc);
    if (!slots.ok()) {
      return FailedEvent{FailureKind::kInternal,
                         absl::StrCat("worker ", options.name, ": ", slots.status().message())};
    }
    plan.gpus = *std::move(slots);
    plan.gpu_units = GpuSlots::UnitsOf(lease);
  }
  PlaceFolders(lease, options, plan);
  PlanResume(lease, options, plan);
  if (absl::Status st = PlanConfig(lease, options, plan); !st.ok()) {
    return FailedEvent{FailureKind::kConfig, std::string(st.message())};
  }
  if (absl::Status st = PlanRendezvous(lease, plan); !st.ok()) {
    return FailedEvent{FailureKind::kInternal, std::string(st.message())};
  }
  return plan;
}

int Launches(const AttemptPlan& plan) { return plan.single_step ? 1 : plan.nproc; }

ProcessSpec RankSpec(const AttemptPlan& plan, const pb::Lease& lease, const AgentOptions& options,
                     int local, int master_port) {
  ProcessSpec spec;
  spec.argv = {options.trainer, "train", "--config", plan.config_path};
  if (plan.world_size > 1 && options.rendezvous_timeout_s > 0) {
    spec.argv.push_back("--rendezvous-timeout");
    spec.argv.push_back(absl::StrCat(options.rendezvous_timeout_s));
  }
  spec.cwd = plan.dir;
  spec.stderr_tail_bytes = options.log_tail_bytes;
  if (plan.single_step) {
    SetUpSlurmStep(lease, plan.nproc, master_port, plan.config.device == "cpu", &spec);
  } else if (plan.world_size > 1) {
    const std::string master_addr = plan.gang ? plan.master_addr : "127.0.0.1";
    spec.env["MASTER_ADDR"] = master_addr;
    spec.env["MASTER_PORT"] = std::to_string(master_port);
    spec.env["WORLD_SIZE"] = std::to_string(plan.world_size);
    spec.env["RANK"] = std::to_string(plan.node_rank * plan.nproc + local);
    spec.env["LOCAL_RANK"] = std::to_string(local);
    spec.env["LOCAL_WORLD_SIZE"] = std::to_string(plan.nproc);
    spec.env["GROUP_RANK"] = std::to_string(plan.node_rank);
    spec.env["NODE_RANK"] = std::to_string(plan.node_rank);
  }
  TrialPlacement place{{}, lease.gpu_share(), lease.gpu_memory_bytes(), options.mps};
  for (int g : plan.gpus) place.device_indices.push_back(options.gpus[g].index());
  for (auto& [k, v] : TrialEnvironment(place)) spec.env[k] = v;
  spec.env["WRPN_TRIAL_ID"] = std::to_string(lease.trial_id());
  spec.env["WRPN_ATTEMPT"] = std::to_string(lease.attempt());
  return spec;
}

std::string CheckpointRoot(const AgentOptions& options) {
  return Absolute(options.checkpoint_dir.empty() ? fs::path(options.work_dir) / "checkpoints"
                                                 : fs::path(options.checkpoint_dir));
}

absl::Status CheckPathUnderRoots(const std::string& field, const std::string& path,
                                 const std::vector<std::string>& roots) {
  std::error_code ec;
  const fs::path p = fs::absolute(path, ec).lexically_normal();
  for (const std::string& root : roots) {
    const fs::path r = fs::absolute(root, ec).lexically_normal();
    const fs::path rel = p.lexically_relative(r);
    if (!ec && !rel.empty() && *rel.begin() != "..") return absl::OkStatus();
  }
  if (roots.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": '", path, "' is outside the allowed folders (this worker allows none: it runs "
        "with an empty --data-dir and no --allow-data-root)"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": '", path, "' is outside the allowed folders (",
                   absl::StrJoin(roots, ", "), "); give a path under the worker's --data-dir or "
                   "add --allow-data-root"));
}

void SplitHostPort(const std::string& addr, std::string* host, int* port) {
  *host = addr;
  std::string h, p;
  if (!addr.empty() && addr[0] == '[') {
    auto close = addr.find("]:");
    if (close == std::string::npos) {
      if (addr.back() == ']') *host = addr.substr(1, addr.size() - 2);
      return;
    }
    h = addr.substr(1, close - 1);
    p = addr.substr(close + 2);
  } else {
    auto colon = addr.find(':');
    if (colon == std::string::npos || addr.find(':', colon + 1) != std::string::npos) return;
    h = addr.substr(0, colon);
    p = addr.substr(colon + 1);
  }
  int v = 0;
  if (h.empty() || p.empty() || p.find_first_not_of("0123456789") != std::string::npos ||
      p.size() > 5 || (v = std::stoi(p)) < 1 || v > 65535)
    return;
  *host = h;
  *port = v;
}

}  // namespace wrpn::agent
