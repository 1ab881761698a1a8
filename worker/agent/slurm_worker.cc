#include "worker/agent/slurm_worker.h"

#include <cstdlib>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace wrpn::agent {
namespace {

absl::StatusOr<int> Positive(const std::string& name, const std::string& v) {
  int x = 0;
  if (!absl::SimpleAtoi(v, &x) || x < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": expected a positive integer, got '", v, "'"));
  }
  return x;
}

}  // namespace

absl::StatusOr<SlurmJob> ReadSlurmJob(const EnvLookup& env) {
  SlurmJob job;
  const auto id = env("SLURM_JOB_ID");
  if (!id || id->empty()) {
    return absl::FailedPreconditionError(
        "--slurm: SLURM_JOB_ID is not set: this worker is not running inside a Slurm job "
        "(start it from an sbatch script, deploy/slurm/wrpn-worker.sbatch)");
  }
  job.allocation_id = job.job_id = *id;
  const auto array_job = env("SLURM_ARRAY_JOB_ID"), array_task = env("SLURM_ARRAY_TASK_ID");
  if (array_job && array_task && !array_job->empty() && !array_task->empty())
    job.job_id = absl::StrCat(*array_job, "_", *array_task);
  if (auto n = env("SLURMD_NODENAME"); n && !n->empty()) job.node = *n;
  if (auto c = env("SLURM_CPUS_ON_NODE"); c && !c->empty()) {
    absl::StatusOr<int> v = Positive("SLURM_CPUS_ON_NODE", *c);
    if (!v.ok()) return v.status();
    job.cpus_on_node = *v;
  }
  if (auto n = env("SLURM_JOB_NUM_NODES"); n && !n->empty()) {
    absl::StatusOr<int> v = Positive("SLURM_JOB_NUM_NODES", *n);
    if (!v.ok()) return v.status();
    job.num_nodes = *v;
  }
  if (auto g = env("CUDA_VISIBLE_DEVICES"); g && !g->empty()) {
    std::vector<int> indices;
    for (absl::string_view part : absl::StrSplit(*g, ',')) {
      int x = 0;
      if (!absl::SimpleAtoi(part, &x) || x < 0) {
        indices.clear();  // GPU UUIDs or MIG names: keep what nvidia-smi finds
        break;
      }
      indices.push_back(x);
    }
    if (!indices.empty()) job.gpu_indices = indices;
  }
  return job;
}

std::string SlurmWorkerName(const SlurmJob& job) {
  return job.node.empty() ? absl::StrCat("slurm-", job.job_id)
                          : absl::StrCat("slurm-", job.job_id, "-", job.node);
}

std::vector<pb::Gpu> SlurmGpus(const SlurmJob& job, const std::vector<pb::Gpu>& detected) {
  if (!job.gpu_indices) return detected;
  std::vector<pb::Gpu> out;
  for (int i : *job.gpu_indices) {
    pb::Gpu g;
    g.set_index(i);
    g.set_name("gpu");
    for (const pb::Gpu& d : detected) {
      if (d.index() == i) g = d;
    }
    out.push_back(g);
  }
  return out;
}

EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    return v ? std::optional<std::string>(v) : std::nullopt;
  };
}

}  // namespace wrpn::agent
