#pragma once
// SrunLauncher: starts a trial whose ProcessSpec carries a SlurmStep as one `srun` job step over
// several nodes of the Slurm allocation this worker runs in (Slurm places and starts the ranks;
// each wrpn-train takes RANK, WORLD_SIZE, LOCAL_RANK and MASTER_ADDR from Slurm,
// worker/trainer/slurm_env.h); every other spec goes to the wrapped local launcher. The returned
// Process is srun itself: stdout is task 0's (srun --label, the label removed; other tasks'
// stdout lines go to stderr with their label), stderr every task's, labelled. Terminate sends
// SIGTERM to the step's tasks with `scancel --signal=TERM` (signalling srun would cancel the step
// and SIGKILL them before they checkpoint); Kill cancels the step and kills srun. Thread-safety as
// Process/ProcessLauncher; Terminate and Kill run squeue/scancel and wait for them (< 10 s).
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "worker/agent/coordinator_client.h"
#include "worker/agent/process_launcher.h"

namespace wrpn::agent {

struct SrunOptions {
  std::string srun = "srun";        // paths (main resolves them in PATH)
  std::string squeue = "squeue";
  std::string scancel = "scancel";
  std::string job_id;               // the allocation's SLURM_JOB_ID
  int wait_s = 30;                  // srun --wait: once one task ended, the others get this long
  std::vector<std::string> extra_args;  // added before the program (--srun-arg)
};

class SrunLauncher final : public ProcessLauncher {
 public:
  // Borrows `local` (for specs without a SlurmStep, and to start srun itself).
  SrunLauncher(ProcessLauncher* local, SrunOptions options)
      : local_(local), options_(std::move(options)) {}
  absl::StatusOr<std::unique_ptr<Process>> Launch(const ProcessSpec& spec) override;
  // The local launcher's answer (the allocation's nodes share the worker's file system).
  [[nodiscard]] absl::Status CanExecute(const std::string& program) const override {
    return local_->CanExecute(program);
  }

 private:
  ProcessLauncher* const local_;
  const SrunOptions options_;
};

// The srun command line for `spec` (which has a slurm_step).
std::vector<std::string> SrunArgv(const SrunOptions& options, const ProcessSpec& spec);

// "3: text" (srun --label; the task id may be padded with spaces) -> {3, "text"}.
std::optional<std::pair<int, std::string>> SplitTaskLabel(const std::string& line);

// The spec of a gang lease that this worker starts whole as one step over the lease's nnodes:
// `nproc` tasks per node, MASTER_PORT `master_port`, GPUs from Slurm unless the trial runs on
// the CPU (`cpu`: its "GPUs" are device slots); the rest of the distributed environment comes
// from Slurm in each task.
void SetUpSlurmStep(const pb::Lease& lease, int nproc, int master_port, bool cpu,
                    ProcessSpec* spec);

}  // namespace wrpn::agent
