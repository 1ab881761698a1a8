#include "worker/agent/process_launcher.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/status.h"

extern char** environ;

namespace wrpn::agent {

std::string ExitStatus::Describe() const {
  if (signal != 0) {
    const char* name = sigabbrev_np(signal);
    return absl::StrCat("killed by signal ", signal, name ? absl::StrCat(" (SIG", name, ")") : "");
  }
  return absl::StrCat("exit code ", exit_code);
}

namespace {

class ForkExecProcess final : public Process {
 public:
  ForkExecProcess(pid_t pid, int out_fd, int err_fd, size_t tail)
      : pid_(pid), tail_limit_(tail) {
    reader_ = std::thread([this, out_fd, err_fd] { ReadLoop(out_fd, err_fd); });
  }
  ~ForkExecProcess() override {
    if (!done_.load()) Kill();
    reader_.join();
  }
  int pid() const override { return pid_; }
  std::vector<std::string> TakeStdoutLines() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> out;
    out.swap(lines_);
    return out;
  }
  std::vector<std::string> TakeStderrLines() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> out(err_lines_.begin(), err_lines_.end());
    err_lines_.clear();
    return out;
  }
  std::string StderrTail() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return err_.size() > tail_limit_ ? err_.substr(err_.size() - tail_limit_) : err_;
  }
  std::optional<ExitStatus> Exited() override {
    if (!done_.load()) return std::nullopt;
    std::lock_guard<std::mutex> lock(mu_);
    if (!lines_.empty()) return std::nullopt;  // let the caller read every line first
    return status_;
  }
  void Terminate() override { Signal(SIGTERM); }
  void Kill() override { Signal(SIGKILL); }

 private:
  void Signal(int sig) {
    if (reaped_.load()) return;
    // The group (the child and whatever it started; Launch made the child its leader), or the
    // child alone should the group be gone. Once: a second SIGTERM means "hurry" to some.
    if (::kill(-pid_, sig) != 0) ::kill(pid_, sig);
  }

  void Append(int fd, const char* data, size_t n, std::string& partial) {
    std::lock_guard<std::mutex> lock(mu_);
    if (fd == 1) {
      partial.append(data, n);
      size_t start = 0;
      for (size_t nl; (nl = partial.find('\n', start)) != std::string::npos; start = nl + 1) {
        lines_.push_back(partial.substr(start, nl - start));
      }
      partial.erase(0, start);
      if (partial.size() > (1u << 20)) {  // a line longer than 1 MiB is not an event; drop it
        partial.clear();
      }
    } else {
      err_.append(data, n);
      if (err_.size() > 2 * tail_limit_ + 4096) err_.erase(0, err_.size() - tail_limit_);
      partial.append(data, n);
      size_t start = 0;
      for (size_t nl; (nl = partial.find('\n', start)) != std::string::npos; start = nl + 1) {
        err_lines_.push_back(partial.substr(start, nl - start));
        if (err_lines_.size() > kMaxErrLines) err_lines_.pop_front();
      }
      partial.erase(0, start);
      if (partial.size() > 64 * 1024) {  // an endless line: pass it on in pieces
        err_lines_.push_back(partial);
        partial.clear();
      }
    }
  }

  void ReadLoop(int out_fd, int err_fd) {
    pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
    std::string partial_out, partial_err;
    int open = 2;
    int wstatus = 0;
    bool exited = false;
    int drain_polls = 0;
    char buf[65536];
    while (open > 0) {
      int r = ::poll(fds, 2, 100);
      if (r < 0 && errno != EINTR) break;
      for (int i = 0; i < 2; ++i) {
        if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
        if (n > 0) {
          Append(i + 1, buf, static_cast<size_t>(n), i == 0 ? partial_out : partial_err);
        } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
          ::close(fds[i].fd);
          fds[i].fd = -1;
          --open;
        }
      }
      if (!exited && ::waitpid(pid_, &wstatus, WNOHANG) == pid_) {
        exited = true;
        reaped_.store(true);
      }
      // Descendants may hold the pipes open after the child exited; give them a moment to
      // finish writing, then end them.
      if (exited && open > 0 && ++drain_polls == 20) ::kill(-pid_, SIGKILL);
      if (exited && open > 0 && drain_polls > 40) break;
    }
    for (auto& f : fds) {
      if (f.fd >= 0) ::close(f.fd);
    }
    if (!exited) {
      while (::waitpid(pid_, &wstatus, 0) < 0 && errno == EINTR) {
      }
      reaped_.store(true);
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (!partial_out.empty()) lines_.push_back(partial_out);
    if (!partial_err.empty()) err_lines_.push_back(partial_err);
    if (WIFSIGNALED(wstatus)) status_.signal = WTERMSIG(wstatus);
    else status_.exit_code = WEXITSTATUS(wstatus);
    done_.store(true);
  }

  const pid_t pid_;
  const size_t tail_limit_;
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
  static constexpr size_t kMaxErrLines = 10000;
  std::string err_;
  std::deque<std::string> err_lines_;
  ExitStatus status_;
  std::atomic<bool> done_{false};
  std::atomic<bool> reaped_{false};
  std::thread reader_;
};

// What a child that never reached its program writes to the exec pipe.
struct ChildError {
  enum What : int { kChdir = 1, kExecve = 2 } what;
  int err;  // errno
};

// The child's ChildError, or nullopt once the pipe closed empty (execve succeeded).
std::optional<ChildError> ReadChildError(int fd) {
  ChildError e{};
  ssize_t n;
  while ((n = ::read(fd, &e, sizeof(e))) < 0 && errno == EINTR) {
  }
  if (n != static_cast<ssize_t>(sizeof(e))) return std::nullopt;
  return e;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Process>> ForkExecLauncher::Launch(const ProcessSpec& spec) {
  if (spec.argv.empty()) return absl::InvalidArgumentError("launch: empty argv");
  if (spec.slurm_step) {
    return absl::FailedPreconditionError(absl::StrCat(
        "launch: '", spec.argv[0], "' is to run as a Slurm step over ", spec.slurm_step->nodes,
        " nodes, which needs the srun launcher (wrpn-worker --slurm-step-nodes)"));
  }
  // A relative program is the agent's, not one inside spec.cwd, where the child runs it.
  std::error_code ec;
  const std::string program = std::filesystem::absolute(spec.argv[0], ec).string();
  if (ec) return absl::NotFoundError(absl::StrCat("launch: '", spec.argv[0], "': ", ec.message()));
  RETURN_IF_ERROR(CanExecute(program));
  // Everything the child needs is prepared before fork: only async-signal-safe calls after it.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos && spec.env.count(kv.substr(0, eq))) continue;
    env_strings.push_back(std::move(kv));
  }
  for (const auto& [k, v] : spec.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, argv;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = spec.argv;
  args[0] = program;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string cwd = spec.cwd;

  // out, err: the child's stdout and stderr. exec: closed by a successful execve (O_CLOEXEC);
  // before that the child writes a ChildError to it.
  int out[2], err[2], exec[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
  if (::pipe2(err, O_CLOEXEC) != 0) {
    const int e = errno;
    for (int fd : {out[0], out[1]}) ::close(fd);
    return absl::InternalError(absl::StrCat("pipe: ", strerror(e)));
  }
  if (::pipe2(exec, O_CLOEXEC) != 0) {
    const int e = errno;
    for (int fd : {out[0], out[1], err[0], err[1]}) ::close(fd);
    return absl::InternalError(absl::StrCat("pipe: ", strerror(e)));
  }
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    for (int fd : {out[0], out[1], err[0], err[1], exec[0], exec[1]}) ::close(fd);
    return absl::InternalError(absl::StrCat("fork: ", strerror(e)));
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);  // the agent died between fork and prctl
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) {
      const ChildError e{ChildError::kChdir, errno};
      (void)!::write(exec[1], &e, sizeof(e));
      ::_exit(127);
    }
    ::execve(argv[0], argv.data(), envp.data());
    const ChildError e{ChildError::kExecve, errno};
    (void)!::write(exec[1], &e, sizeof(e));
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also from the parent, so signalling the group works at once
  for (int fd : {out[1], err[1], exec[1]}) ::close(fd);
  const std::optional<ChildError> failed = ReadChildError(exec[0]);
  ::close(exec[0]);
  if (failed) {
    for (int fd : {out[0], err[0]}) ::close(fd);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    const char* why = strerror(failed->err);
    return absl::FailedPreconditionError(
        failed->what == ChildError::kChdir
            ? absl::StrCat("launch: cannot enter the working directory '", cwd, "': ", why)
            : absl::StrCat("launch: cannot execute '", program, "': ", why));
  }
  return std::unique_ptr<Process>(
      new ForkExecProcess(pid, out[0], err[0], spec.stderr_tail_bytes));
}

absl::Status ForkExecLauncher::CanExecute(const std::string& program) const {
  struct stat st;
  if (::stat(program.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("launch: '", program, "': ", strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::NotFoundError(absl::StrCat("launch: '", program, "' is not a regular file"));
  }
  if (::access(program.c_str(), X_OK) != 0) {
    return absl::NotFoundError(
        absl::StrCat("launch: '", program, "' is not executable: ", strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace wrpn::agent
