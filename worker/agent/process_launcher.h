#pragma once
// ProcessLauncher: the seam through which the agent starts trainer processes. A Process is one
// running child: its stdout arrives as complete lines, its stderr is kept as a bounded tail, and
// it can be signalled. ForkExecLauncher is the real implementation (fork/exec, own process group,
// pipes read by one thread per child); tests use a fake. Process methods are thread-safe.
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace wrpn::agent {

// A process started as one Slurm job step over several nodes of the allocation the worker runs
// in (SrunLauncher, srun_launcher.h): `tasks_per_node` copies of argv on each of `nodes` nodes.
struct SlurmStep {
  int nodes = 1;
  int tasks_per_node = 1;
  int gpus_per_node = 0;  // > 0: Slurm assigns them (--gpus-per-node) and sets CUDA_VISIBLE_DEVICES
  std::string name;       // the step's name (how the launcher finds it to signal it)
};

struct ProcessSpec {
  std::vector<std::string> argv;              // argv[0]: the program's path (relative: to the
                                              // agent's working directory, not to `cwd`)
  std::map<std::string, std::string> env;     // added to (or replacing in) the agent's environment
  std::string cwd;                            // "" = the agent's
  size_t stderr_tail_bytes = 64 * 1024;       // how much of stderr to keep (the newest bytes)
  std::optional<SlurmStep> slurm_step;        // set: start as a Slurm step (SrunLauncher only)
};

struct ExitStatus {
  int exit_code = -1;  // set when the process exited normally
  int signal = 0;      // set when a signal ended it
  bool ok() const { return signal == 0 && exit_code == 0; }
  // "exit code 3" or "killed by signal 9 (SIGKILL)".
  std::string Describe() const;
};

class Process {
 public:
  virtual ~Process() = default;
  virtual int pid() const = 0;
  // Complete stdout lines received since the last call, in order.
  virtual std::vector<std::string> TakeStdoutLines() = 0;
  // The newest stderr bytes (at most ProcessSpec::stderr_tail_bytes).
  virtual std::string StderrTail() const = 0;
  // Complete stderr lines received since the last call (at most the newest 10,000 are held).
  virtual std::vector<std::string> TakeStderrLines() = 0;
  // Set once the process has exited and its output has been read to the end. Non-blocking.
  virtual std::optional<ExitStatus> Exited() = 0;
  // SIGTERM / SIGKILL to the process and everything it started (its process group).
  virtual void Terminate() = 0;
  virtual void Kill() = 0;
};

class ProcessLauncher {
 public:
  virtual ~ProcessLauncher() = default;
  // Starts the process, or says why it could not: then nothing runs. A program that cannot be
  // executed (missing, not executable, a working directory it cannot enter) is NotFound or
  // FailedPrecondition, naming the path; the process never starts with it.
  virtual absl::StatusOr<std::unique_ptr<Process>> Launch(const ProcessSpec& spec) = 0;
  // OK when `program` (an absolute path) is a regular file this process may execute. A cheap
  // check the agent repeats before it takes trials again after a launch failed. Thread-safe.
  [[nodiscard]] virtual absl::Status CanExecute(const std::string& program) const = 0;
};

// fork/exec. The child gets its own process group, stdin from /dev/null, and SIGTERM when the
// thread that launched it dies (so a killed agent does not leave trainers running). Must be
// called from a long-lived thread (the agent's loop). Refuses a spec with a slurm_step. A child
// that cannot enter `cwd` or execve the program reports it through a close-on-exec pipe, so
// Launch returns that error instead of a process that exits 127.
class ForkExecLauncher final : public ProcessLauncher {
 public:
  absl::StatusOr<std::unique_ptr<Process>> Launch(const ProcessSpec& spec) override;
  [[nodiscard]] absl::Status CanExecute(const std::string& program) const override;
};

}  // namespace wrpn::agent
