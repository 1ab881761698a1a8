// Helpers for the deployment tests: run a tool and capture its output, read repository files,
// start a process (the coordinator, Prometheus) on loopback and talk HTTP to it. Not thread-safe;
// each test owns the processes it starts and they are killed when their handle goes away.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace wrpn::deploytest {

struct CommandResult {
  int exit_code = -1;  // -1: could not run or killed by a signal
  std::string output;  // stdout and stderr together
};

// Runs argv (no shell) with a wall-clock limit; stdout is captured, and stderr with it unless
// keep_stderr is false (then stderr is dropped: for tools that print warnings next to YAML).
CommandResult RunCommand(const std::vector<std::string>& argv,
                         std::chrono::seconds timeout = std::chrono::seconds(60),
                         bool keep_stderr = true);

// Absolute path of a file in the source tree (relative path as in the repository).
std::string SourcePath(const std::string& relative);
std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& content);
bool FileExists(const std::string& path);

// The first of `names` found on PATH, or "".
std::string FindOnPath(const std::vector<std::string>& names);

// argv that renders a kustomization directory: `kubectl kustomize DIR`, else `kustomize build DIR`.
// Empty when neither tool is installed.
std::vector<std::string> KustomizeCommand(const std::string& dir);

// A fresh directory under $TMPDIR (or /tmp), removed with its content on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
int FreeLoopbackPort();

struct HttpResponse {
  int status = 0;  // 0: no connection or no valid answer
  std::string body;
};
// Minimal HTTP/1.0 GET against 127.0.0.1:port, with `Authorization: Bearer <bearer>` if given.
HttpResponse HttpGet(int port, const std::string& target,
                     std::chrono::milliseconds timeout = std::chrono::milliseconds(3000),
                     const std::string& bearer = "");
std::string UrlEncode(const std::string& s);

// A child process with its output redirected to a log file; SIGTERM then SIGKILL on destruction.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, const std::string& log_path);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  bool running();  // false once it has exited
  std::string log() const;
  void Stop();

 private:
  pid_t pid_ = -1;
  std::string log_path_;
  std::optional<int> exit_status_;
};

// $env_var if set, else built_path if that file exists, else "".
std::string BuiltBinary(const char* env_var, const char* built_path);

// Where the built coordinator and worker are: $WRPN_COORDINATOR / $WRPN_WORKER, else the paths
// CMake knew at build time (WRPN_COORDINATOR_BIN / WRPN_WORKER_BIN, defined for the test that
// includes this), else "" (not built in this tree).
#ifndef WRPN_COORDINATOR_BIN
#define WRPN_COORDINATOR_BIN ""
#endif
#ifndef WRPN_WORKER_BIN
#define WRPN_WORKER_BIN ""
#endif
inline std::string CoordinatorBinary() { return BuiltBinary("WRPN_COORDINATOR", WRPN_COORDINATOR_BIN); }
inline std::string WorkerBinary() { return BuiltBinary("WRPN_WORKER", WRPN_WORKER_BIN); }

// The command line the tests start the coordinator with: gRPC and HTTP on loopback, a fresh db,
// no tokens (loopback only). Flag names are the coordinator's; keep them in step with
// deploy/compose and deploy/k8s (the live test checks those flags against --help).
std::vector<std::string> CoordinatorArgv(const std::string& binary, int grpc_port, int http_port,
                                         const std::string& db_path);

// The names of the metric families a Prometheus text exposition declares (# TYPE lines) and of
// every sample's metric name.
struct Exposition {
  std::set<std::string> families;
  std::set<std::string> samples;
};
Exposition ParseExposition(const std::string& text);

// Metric names used in a PromQL expression (functions, keywords, label names, label values,
// durations and Grafana variables are not metric names).
std::set<std::string> MetricNamesInPromQL(const std::string& expr);

// The metrics the coordinator exports (issue 4) and the histogram series derived from them.
const std::set<std::string>& CoordinatorMetricNames();
const std::set<std::string>& CoordinatorHistogramNames();
// Base family name of a series name: foo_bucket/_sum/_count -> foo for known histograms.
std::string FamilyOf(const std::string& series_name);

}  // namespace wrpn::deploytest
