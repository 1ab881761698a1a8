#pragma once
// FakeProcessLauncher: an agent::ProcessLauncher whose processes are puppets. Each launch records
// its ProcessSpec and returns a FakeProcess whose state (stdout lines, stderr, exit, signals
// received) the test drives through the shared FakeProcessState. Thread-safe.
#include <signal.h>

#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "worker/agent/process_launcher.h"

namespace wrpn::agent {

struct FakeProcessState {
  std::mutex mu;
  ProcessSpec spec;
  std::deque<std::string> stdout_lines;
  std::string stderr_text;  // the whole stderr so far
  std::deque<std::string> stderr_lines;  // not yet taken
  std::optional<ExitStatus> exit;
  std::vector<int> signals;  // received, in order
  // When set, a SIGTERM makes the process print these lines and exit with this code.
  std::vector<std::string> on_term_lines;
  std::optional<int> on_term_exit;

  void Print(const std::string& line) {
    std::lock_guard<std::mutex> lock(mu);
    stdout_lines.push_back(line);
  }
  void PrintErr(const std::string& line) {
    std::lock_guard<std::mutex> lock(mu);
    stderr_text += line + "\n";
    stderr_lines.push_back(line);
  }
  void ExitWith(int code) {
    std::lock_guard<std::mutex> lock(mu);
    exit = ExitStatus{code, 0};
  }
  void KilledBy(int sig) {
    std::lock_guard<std::mutex> lock(mu);
    exit = ExitStatus{-1, sig};
  }
  std::vector<int> Signals() {
    std::lock_guard<std::mutex> lock(mu);
    return signals;
  }
};

class FakeProcess final : public Process {
 public:
  FakeProcess(std::shared_ptr<FakeProcessState> s, int pid) : s_(std::move(s)), pid_(pid) {}
  int pid() const override { return pid_; }
  std::vector<std::string> TakeStdoutLines() override {
    std::lock_guard<std::mutex> lock(s_->mu);
    std::vector<std::string> out(s_->stdout_lines.begin(), s_->stdout_lines.end());
    s_->stdout_lines.clear();
    return out;
  }
  std::string StderrTail() const override {
    std::lock_guard<std::mutex> lock(s_->mu);
    return s_->stderr_text;
  }
  std::vector<std::string> TakeStderrLines() override {
    std::lock_guard<std::mutex> lock(s_->mu);
    std::vector<std::string> out(s_->stderr_lines.begin(), s_->stderr_lines.end());
    s_->stderr_lines.clear();
    return out;
  }
  std::optional<ExitStatus> Exited() override {
    std::lock_guard<std::mutex> lock(s_->mu);
    if (!s_->stdout_lines.empty()) return std::nullopt;
    return s_->exit;
  }
  void Terminate() override { Signal(SIGTERM); }
  void Kill() override { Signal(SIGKILL); }

 private:
  void Signal(int sig) {
    std::lock_guard<std::mutex> lock(s_->mu);
    s_->signals.push_back(sig);
    if (s_->exit) return;
    if (sig == SIGKILL) {
      s_->exit = ExitStatus{-1, SIGKILL};
    } else if (s_->on_term_exit) {
      for (const auto& l : s_->on_term_lines) s_->stdout_lines.push_back(l);
      s_->exit = ExitStatus{*s_->on_term_exit, 0};
    }
  }
  std::shared_ptr<FakeProcessState> s_;
  int pid_;
};

class FakeProcessLauncher final : public ProcessLauncher {
 public:
  absl::StatusOr<std::unique_ptr<Process>> Launch(const ProcessSpec& spec) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (spec.argv.empty()) return absl::InvalidArgumentError("launch: empty argv");
    if (absl::Status s = CanExecuteLocked(spec.argv[0]); !s.ok()) return s;
    if (!fail_next.ok()) {
      absl::Status s = fail_next;
      fail_next = absl::OkStatus();
      return s;
    }
    auto state = std::make_shared<FakeProcessState>();
    state->spec = spec;
    if (term_exit) {
      state->on_term_exit = term_exit;
      state->on_term_lines = term_lines;
    }
    launched.push_back(state);
    return std::unique_ptr<Process>(new FakeProcess(state, 1000 + static_cast<int>(launched.size())));
  }
  absl::Status CanExecute(const std::string& program) const override {
    std::lock_guard<std::mutex> lock(mu_);
    return CanExecuteLocked(program);
  }
  // Programs that are not there, as ForkExecLauncher refuses them (Launch and CanExecute).
  void SetMissing(const std::string& program, bool missing) {
    std::lock_guard<std::mutex> lock(mu_);
    if (missing) missing_.insert(program);
    else missing_.erase(program);
  }
  std::shared_ptr<FakeProcessState> at(size_t i) {
    std::lock_guard<std::mutex> lock(mu_);
    return i < launched.size() ? launched[i] : nullptr;
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mu_);
    return launched.size();
  }

  absl::Status fail_next = absl::OkStatus();
  // Default SIGTERM behaviour of processes launched from now on (trainer-like: exit 4).
  std::optional<int> term_exit;
  std::vector<std::string> term_lines;
  std::vector<std::shared_ptr<FakeProcessState>> launched;

 private:
  absl::Status CanExecuteLocked(const std::string& program) const {
    if (missing_.count(program) == 0) return absl::OkStatus();
    return absl::NotFoundError(absl::StrCat("launch: '", program, "': No such file or directory"));
  }
  mutable std::mutex mu_;
  std::set<std::string> missing_;
};

}  // namespace wrpn::agent
