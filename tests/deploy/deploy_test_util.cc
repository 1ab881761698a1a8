#include "tests/deploy/deploy_test_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace wrpn::deploytest {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<char*> CArgv(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (const auto& a : argv) out.push_back(const_cast<char*>(a.c_str()));
  out.push_back(nullptr);
  return out;
}

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return -1;
}

}  // namespace

CommandResult RunCommand(const std::vector<std::string>& argv, std::chrono::seconds timeout,
                         bool keep_stderr) {
  CommandResult result;
  if (argv.empty()) return result;
  int fds[2];
  if (pipe(fds) != 0) return result;
  auto cargv = CArgv(argv);
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return result;
  }
  if (pid == 0) {
    setpgid(0, 0);
    dup2(fds[1], STDOUT_FILENO);
    if (keep_stderr) {
      dup2(fds[1], STDERR_FILENO);
    } else {
      int null_out = open("/dev/null", O_WRONLY);
      if (null_out >= 0) dup2(null_out, STDERR_FILENO);
    }
    close(fds[0]);
    close(fds[1]);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    execvp(cargv[0], cargv.data());
    fprintf(stderr, "cannot run %s: %s\n", cargv[0], strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  const auto deadline = Clock::now() + timeout;
  bool timed_out = false;
  char buf[65536];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    result.output.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  if (timed_out) {
    kill(-pid, SIGKILL);
    result.output += "\n[killed: ran past " + std::to_string(timeout.count()) + " s]\n";
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = timed_out ? -1 : DecodeWaitStatus(status);
  return result;
}

std::string SourcePath(const std::string& relative) {
  return std::string(WRPN_SOURCE_DIR) + "/" + relative;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + path);
}

bool FileExists(const std::string& path) { return std::filesystem::exists(path); }

std::string FindOnPath(const std::vector<std::string>& names) {
  const char* path_env = std::getenv("PATH");
  if (!path_env) return "";
  for (const auto& name : names) {
    std::stringstream dirs(path_env);
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
      if (dir.empty()) continue;
      std::string candidate = dir + "/" + name;
      if (access(candidate.c_str(), X_OK) == 0) return candidate;
    }
  }
  return "";
}

std::vector<std::string> KustomizeCommand(const std::string& dir) {
  if (const char* k = std::getenv("WRPN_KUBECTL"); k && *k) return {k, "kustomize", dir};
  if (auto kubectl = FindOnPath({"kubectl"}); !kubectl.empty()) return {kubectl, "kustomize", dir};
  if (auto kustomize = FindOnPath({"kustomize"}); !kustomize.empty())
    return {kustomize, "build", dir};
  return {};
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/wrpn-deploy-test-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed for " + tmpl);
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    throw std::runtime_error("cannot bind a loopback port");
  }
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

HttpResponse HttpGet(int port, const std::string& target, std::chrono::milliseconds timeout,
                     const std::string& bearer) {
  HttpResponse response;
  const auto deadline = Clock::now() + timeout;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return response;
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return response;
  }
  std::string request = "GET " + target + " HTTP/1.0\r\nHost: 127.0.0.1:" +
                        std::to_string(port) + "\r\nConnection: close\r\n" +
                        (bearer.empty() ? "" : "Authorization: Bearer " + bearer + "\r\n") + "\r\n";
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    close(fd);
    return response;
  }
  std::string raw;
  char buf[65536];
  while (Clock::now() < deadline) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  auto header_end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/", 0) != 0 || header_end == std::string::npos) return response;
  auto sp = raw.find(' ');
  response.status = std::atoi(raw.c_str() + sp + 1);
  response.body = raw.substr(header_end + 4);
  return response;
}

std::string UrlEncode(const std::string& s) {
  std::string out;
  static const char* hex = "0123456789ABCDEF";
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::string& log_path)
    : log_path_(log_path) {
  auto cargv = CArgv(argv);
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    setpgid(0, 0);
    int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    execvp(cargv[0], cargv.data());
    fprintf(stderr, "cannot run %s: %s\n", cargv[0], strerror(errno));
    _exit(127);
  }
}

ChildProcess::~ChildProcess() { Stop(); }

bool ChildProcess::running() {
  if (pid_ < 0 || exit_status_) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_status_ = status;
    return false;
  }
  return true;
}

std::string ChildProcess::log() const {
  try {
    return ReadFile(log_path_);
  } catch (const std::exception&) {
    return "";
  }
}

void ChildProcess::Stop() {
  if (pid_ < 0 || !running()) return;
  kill(-pid_, SIGTERM);
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline) {
    if (!running()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(-pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  exit_status_ = status;
}

std::string BuiltBinary(const char* env_var, const char* built_path) {
  if (const char* env = std::getenv(env_var); env && *env) return env;
  if (built_path && *built_path && FileExists(built_path)) return built_path;
  return "";
}

std::vector<std::string> CoordinatorArgv(const std::string& binary, int grpc_port, int http_port,
                                         const std::string& db_path) {
  return {binary,
          "--listen=127.0.0.1:" + std::to_string(grpc_port),
          "--http-listen=127.0.0.1:" + std::to_string(http_port),
          "--db=" + db_path};
}

Exposition ParseExposition(const std::string& text) {
  Exposition e;
  std::istringstream in(text);
  std::string line;
  static const std::regex type_line(R"(^#\s*TYPE\s+([a-zA-Z_:][a-zA-Z0-9_:]*)\s+\w+)");
  static const std::regex sample_line(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)[\s{])");
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_search(line, m, type_line)) {
      e.families.insert(m[1]);
    } else if (!line.empty() && line[0] != '#' && std::regex_search(line, m, sample_line)) {
      e.samples.insert(m[1]);
    }
  }
  return e;
}

std::set<std::string> MetricNamesInPromQL(const std::string& expr) {
  // Blank out what cannot hold a metric name: string literals, label matchers, range and subquery
  // brackets, Grafana variables; then drop the label lists of by/without/on/ignoring/group_*.
  std::string s = std::regex_replace(expr, std::regex(R"("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')"),
                                     " \"\" ");
  s = std::regex_replace(s, std::regex(R"(\{[^}]*\})"), " ");
  s = std::regex_replace(s, std::regex(R"(\[[^\]]*\])"), " ");
  s = std::regex_replace(s, std::regex(R"(\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*)"), " ");
  s = std::regex_replace(
      s, std::regex(R"(\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\))"), " ");
  static const std::set<std::string> keywords = {
      "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
      "offset", "bool", "atan2", "inf", "nan", "Inf", "NaN", "start", "end"};
  std::set<std::string> names;
  static const std::regex ident(R"(([A-Za-z_:][A-Za-z0-9_:]*)\s*(\(?))");
  for (auto it = std::sregex_iterator(s.begin(), s.end(), ident); it != std::sregex_iterator();
       ++it) {
    const auto& m = *it;
    // Part of a number such as 1e3 or 0.5: skip identifiers glued to a preceding digit or dot.
    auto pos = static_cast<size_t>(m.position(1));
    if (pos > 0 && (std::isdigit(static_cast<unsigned char>(s[pos - 1])) || s[pos - 1] == '.'))
      continue;
    std::string name = m[1];
    if (!m[2].str().empty()) continue;  // a function call
    if (keywords.count(name)) continue;
    names.insert(name);
  }
  return names;
}

const std::set<std::string>& CoordinatorMetricNames() {
  static const std::set<std::string> names = {
      "wrpn_sweeps",
      "wrpn_trials",
      "wrpn_workers",
      "wrpn_trial_queue_wait_seconds",
      "wrpn_trial_duration_seconds",
      "wrpn_lease_expirations_total",
      "wrpn_trial_attempts_total",
      "wrpn_rpc_requests_total",
      "wrpn_rpc_duration_seconds",
      "wrpn_metric_points_ingested_total",
      "wrpn_trial_top1",
      "wrpn_worker_images_per_second",
      "wrpn_worker_gpu_memory_bytes",
      "wrpn_worker_data_wait_ms_per_step",
  };
  return names;
}

const std::set<std::string>& CoordinatorHistogramNames() {
  static const std::set<std::string> names = {
      "wrpn_trial_queue_wait_seconds", "wrpn_trial_duration_seconds", "wrpn_rpc_duration_seconds"};
  return names;
}

std::string FamilyOf(const std::string& series_name) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    std::string suf = suffix;
    if (series_name.size() > suf.size() &&
        series_name.compare(series_name.size() - suf.size(), suf.size(), suf) == 0) {
      std::string base = series_name.substr(0, series_name.size() - suf.size());
      if (CoordinatorHistogramNames().count(base)) return base;
    }
  }
  return series_name;
}

}  // namespace wrpn::deploytest
