#include "worker/agent/srun_launcher.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

extern char** environ;

namespace wrpn::agent {
namespace {

// Runs argv to completion (at most `timeout`), returning its exit code (-1: could not run or
// timed out) and its stdout in *out.
int RunAndWait(const std::vector<std::string>& argv, std::string* out,
               std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  std::vector<std::string> args = argv;
  std::vector<char*> cargv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, cargv[0], &fa, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    return -1;
  }
  ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  bool exited = false;
  char buf[4096];
  while (true) {
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0) out->append(buf, static_cast<size_t>(n));
    if (!exited && ::waitpid(pid, &status, WNOHANG) == pid) exited = true;
    if (exited && n == 0) break;
    if (std::chrono::steady_clock::now() > deadline) {
      if (!exited) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
      }
      ::close(fds[0]);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::close(fds[0]);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class SrunProcess final : public Process {
 public:
  SrunProcess(std::unique_ptr<Process> srun, SrunOptions options, std::string step_name)
      : srun_(std::move(srun)), options_(std::move(options)), step_name_(std::move(step_name)) {}
  ~SrunProcess() override {
    if (!srun_->Exited()) Kill();
  }
  int pid() const override { return srun_->pid(); }
  std::vector<std::string> TakeStdoutLines() override {
    std::vector<std::string> out;
    std::lock_guard<std::mutex> lock(mu_);
    for (std::string& line : srun_->TakeStdoutLines()) {
      auto labelled = SplitTaskLabel(line);
      if (!labelled) {
        out.push_back(std::move(line));
      } else if (labelled->first == 0) {
        out.push_back(std::move(labelled->second));
      } else {
        diverted_.push_back(absl::StrCat(labelled->first, ": (stdout) ", labelled->second));
      }
    }
    return out;
  }
  std::string StderrTail() const override { return srun_->StderrTail(); }
  std::vector<std::string> TakeStderrLines() override {
    std::vector<std::string> out = srun_->TakeStderrLines();
    std::lock_guard<std::mutex> lock(mu_);
    out.insert(out.end(), diverted_.begin(), diverted_.end());
    diverted_.clear();
    return out;
  }
  std::optional<ExitStatus> Exited() override { return srun_->Exited(); }
  void Terminate() override {
    const std::string step = FindStep();
    std::string ignored;
    if (!step.empty() &&
        RunAndWait({options_.scancel, "--signal=TERM", step}, &ignored) == 0) {
      return;
    }
    srun_->Terminate();  // no step yet (srun still waiting for it): srun withdraws the request
  }
  void Kill() override {
    const std::string step = FindStep();
    std::string ignored;
    if (!step.empty()) RunAndWait({options_.scancel, step}, &ignored);
    srun_->Kill();
  }

 private:
  // "<job>.<step>" of the running step named step_name_, or "".
  std::string FindStep() const {
    std::string out;
    std::vector<std::string> argv = {options_.squeue, "--noheader", "--steps", "--format=%i %j"};
    if (!options_.job_id.empty()) argv.push_back("--jobs=" + options_.job_id);
    if (RunAndWait(argv, &out) != 0) return "";
    for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
      std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (f.size() == 2 && f[1] == step_name_) return f[0];
    }
    return "";
  }

  const std::unique_ptr<Process> srun_;
  const SrunOptions options_;
  const std::string step_name_;
  mutable std::mutex mu_;
  std::vector<std::string> diverted_;
};

}  // namespace

std::optional<std::pair<int, std::string>> SplitTaskLabel(const std::string& line) {
  const size_t colon = line.find(": ");
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  const std::string id(absl::StripLeadingAsciiWhitespace(line.substr(0, colon)));
  int task = 0;
  if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos ||
      !absl::SimpleAtoi(id, &task)) {
    return std::nullopt;
  }
  return std::make_pair(task, line.substr(colon + 2));
}

std::vector<std::string> SrunArgv(const SrunOptions& o, const ProcessSpec& spec) {
  const SlurmStep& s = *spec.slurm_step;
  std::vector<std::string> argv = {
      o.srun,
      absl::StrCat("--nodes=", s.nodes),
      absl::StrCat("--ntasks=", s.nodes * s.tasks_per_node),
      absl::StrCat("--ntasks-per-node=", s.tasks_per_node),
      absl::StrCat("--job-name=", s.name),
      "--label",
      "--kill-on-bad-exit=0",
      absl::StrCat("--wait=", o.wait_s),
      "--export=ALL",
  };
  if (!spec.cwd.empty()) argv.push_back("--chdir=" + spec.cwd);
  if (s.gpus_per_node > 0) argv.push_back(absl::StrCat("--gpus-per-node=", s.gpus_per_node));
  argv.insert(argv.end(), o.extra_args.begin(), o.extra_args.end());
  argv.insert(argv.end(), spec.argv.begin(), spec.argv.end());
  return argv;
}

absl::StatusOr<std::unique_ptr<Process>> SrunLauncher::Launch(const ProcessSpec& spec) {
  if (!spec.slurm_step) return local_->Launch(spec);
  const SlurmStep& s = *spec.slurm_step;
  if (spec.argv.empty()) return absl::InvalidArgumentError("launch: empty argv");
  if (s.nodes < 1 || s.tasks_per_node < 1 || s.name.empty() ||
      s.name.find_first_of(" \t\n") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "slurm_step: nodes (", s.nodes, ") and tasks_per_node (", s.tasks_per_node,
        ") must be >= 1 and name ('", s.name, "') a non-empty word"));
  }
  ProcessSpec local = spec;
  local.slurm_step.reset();
  local.argv = SrunArgv(options_, spec);
  // Slurm gives each node's tasks their GPUs; the worker's own choice is for its node only.
  if (s.gpus_per_node > 0) local.env.erase("CUDA_VISIBLE_DEVICES");
  auto p = local_->Launch(local);
  if (!p.ok()) return p.status();
  return std::unique_ptr<Process>(new SrunProcess(*std::move(p), options_, s.name));
}

void SetUpSlurmStep(const pb::Lease& lease, int nproc, int master_port, bool cpu,
                    ProcessSpec* spec) {
  SlurmStep step;
  step.nodes = lease.rendezvous().nnodes();
  step.tasks_per_node = nproc;
  step.gpus_per_node = cpu ? 0 : lease.gpus_per_node();
  step.name = absl::StrCat("wrpn-t", lease.trial_id(), "-a", lease.attempt());
  spec->slurm_step = step;
  spec->env["MASTER_PORT"] = std::to_string(master_port);
}

}  // namespace wrpn::agent
