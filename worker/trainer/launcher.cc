#include "worker/trainer/launcher.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <chrono>
#include <cstring>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/trainer_protocol.h"

namespace wrpn::trainer {
namespace {

using json = nlohmann::json;
std::atomic<int> g_forward_signal{0};
void OnSignal(int sig) { g_forward_signal.store(sig); }

struct Rank {
  int rank = 0;
  pid_t pid = -1;
  int out_fd = -1;
  std::string partial;
  bool exited = false;
  int status = 0;
  std::optional<FailedEvent> failed;  // the rank's own "failed" event, if any
};

std::string Describe(const Rank& r) {
  if (WIFSIGNALED(r.status)) {
    return absl::StrCat("rank ", r.rank, " was killed by signal ", WTERMSIG(r.status), " (",
                        strsignal(WTERMSIG(r.status)), ")");
  }
  std::string s = absl::StrCat("rank ", r.rank, " exited with code ", WEXITSTATUS(r.status));
  if (r.failed) s += ": " + r.failed->reason;
  return s;
}

bool Failed(const Rank& r) { return r.exited && !(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0); }

void Drain(Rank& r, bool forward) {
  char buf[65536];
  while (true) {
    const ssize_t n = ::read(r.out_fd, buf, sizeof buf);
    if (n <= 0) return;
    r.partial.append(buf, static_cast<size_t>(n));
    size_t nl;
    while ((nl = r.partial.find('\n')) != std::string::npos) {
      const std::string line = r.partial.substr(0, nl);
      r.partial.erase(0, nl + 1);
      const absl::StatusOr<std::optional<TrainerEvent>> e = ParseEventLine(line);
      if (e.ok() && *e && std::holds_alternative<FailedEvent>(**e)) {
        r.failed = std::get<FailedEvent>(**e);
        continue;  // the launcher reports failures itself
      }
      if (forward) std::cout << line << std::endl;
    }
  }
}

}  // namespace

int PickFreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

int LaunchLocalRanks(const LaunchOptions& o) {
  const int world = o.nproc * o.nnodes;
  const int port = o.master_port > 0 ? o.master_port : PickFreePort();
  std::vector<Rank> ranks(o.nproc);
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  for (int local = 0; local < o.nproc; ++local) {
    Rank& r = ranks[local];
    r.rank = o.node_rank * o.nproc + local;
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      std::cerr << "wrpn-train: pipe: " << std::strerror(errno) << "\n";
      return 1;
    }
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::dup2(fds[1], STDOUT_FILENO);
      ::setenv("RANK", std::to_string(r.rank).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(local).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(o.nproc).c_str(), 1);
      ::setenv("MASTER_ADDR", o.master_addr.c_str(), 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      std::vector<char*> argv;
      argv.push_back(const_cast<char*>(o.executable.c_str()));
      for (const auto& a : o.rank_args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(o.executable.c_str(), argv.data());
      std::cerr << "wrpn-train: cannot start rank " << r.rank << ": " << std::strerror(errno) << "\n";
      ::_exit(127);
    }
    ::close(fds[1]);
    r.pid = pid;
    r.out_fd = fds[0];
    ::fcntl(r.out_fd, F_SETFL, O_NONBLOCK);
  }

  const Rank* first_failure = nullptr;
  std::chrono::steady_clock::time_point kill_deadline{};
  bool terminating = false;
  auto terminate_all = [&](int sig) {
    for (auto& r : ranks)
      if (!r.exited) ::kill(r.pid, sig);
  };
  while (true) {
    std::vector<pollfd> pfds;
    for (auto& r : ranks) pfds.push_back({r.out_fd, POLLIN, 0});
    ::poll(pfds.data(), pfds.size(), 100);
    for (auto& r : ranks) Drain(r, r.rank == 0);
    if (const int sig = g_forward_signal.exchange(0); sig != 0) {
      terminate_all(SIGTERM);  // ranks checkpoint and exit "interrupted"
      if (!terminating) kill_deadline = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(o.grace_seconds));
      terminating = true;
    }
    bool all_done = true;
    for (auto& r : ranks) {
      if (r.exited) continue;
      int status = 0;
      if (::waitpid(r.pid, &status, WNOHANG) == r.pid) {
        r.exited = true;
        r.status = status;
        Drain(r, r.rank == 0);
      } else {
        all_done = false;
      }
    }
    // The root cause: a rank that died by a signal beats ranks that then lost their peer.
    for (auto& r : ranks) {
      if (!Failed(r)) continue;
      if (!first_failure || (WIFSIGNALED(r.status) && !WIFSIGNALED(first_failure->status) &&
                             !terminating)) {
        first_failure = &r;
      }
    }
    if (first_failure && !terminating) {
      terminating = true;
      terminate_all(SIGTERM);
      kill_deadline = std::chrono::steady_clock::now() +
                      std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                          std::chrono::duration<double>(o.grace_seconds));
    }
    if (all_done) break;
    if (terminating && std::chrono::steady_clock::now() > kill_deadline) terminate_all(SIGKILL);
  }
  for (auto& r : ranks) ::close(r.out_fd);

  if (!first_failure) return 0;
  const bool exited = WIFEXITED(first_failure->status);
  if (exited && WEXITSTATUS(first_failure->status) == kExitInterrupted) return kExitInterrupted;
  FailedEvent e;
  e.kind = first_failure->failed ? first_failure->failed->kind
           : exited ? FailureKindForExit(WEXITSTATUS(first_failure->status), 0)
                    : FailureKind::kInternal;
  e.rank = first_failure->rank;
  e.reason = Describe(*first_failure);
  std::cout << ToJson(e).dump() << std::endl;
  std::cerr << "wrpn-train: " << e.reason << "\n";
  if (WIFEXITED(first_failure->status) && WEXITSTATUS(first_failure->status) != 0) {
    return WEXITSTATUS(first_failure->status);
  }
  return 1;
}

}  // namespace wrpn::trainer
