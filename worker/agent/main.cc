// wrpn-worker: wires GrpcCoordinatorClient, ForkExecLauncher, SystemClock and the Agent together.
// SIGTERM/SIGINT drain (trainers checkpoint, attempts are reported as interrupted); a second
// signal ends the trainers at once.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <optional>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/clock.h"
#include "common/grpc_limits.h"
#include "common/worker_labels.h"
#include "worker/agent/agent.h"
#include "worker/agent/coordinator_client.h"
#include "worker/agent/gpus.h"
#include "worker/agent/process_launcher.h"
#include "worker/agent/slurm_worker.h"
#include "worker/agent/srun_launcher.h"

namespace {

namespace fs = std::filesystem;
using namespace wrpn::agent;

std::atomic<bool> g_stop{false};
std::atomic<int> g_signals{0};

void OnSignal(int) {
  g_signals.fetch_add(1);
  g_stop.store(true);
}

std::string Hostname() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "worker";
  return buf;
}

std::string DefaultTrainer(const char* argv0) {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) self = argv0;
  for (const fs::path& p : {self.parent_path() / "wrpn-train",
                            self.parent_path().parent_path() / "trainer" / "wrpn-train"}) {
    if (fs::exists(p, ec)) return p.string();
  }
  return "wrpn-train";
}

std::string FindInPath(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  if (!path) return name;
  for (auto dir : absl::StrSplit(path, ':')) {
    fs::path p = fs::path(std::string(dir)) / name;
    if (::access(p.c_str(), X_OK) == 0) return p.string();
  }
  return name;
}

// A bad flag value: printed as "wrpn-worker: <message>", exit status 2.
struct UsageError {
  std::string message;
};

// The flags that are not AgentOptions fields as such.
struct WorkerFlags {
  std::string coordinator = "127.0.0.1:7070";
  std::string token_file, tls_ca;
  std::string gpus = "auto";
  std::vector<std::string> labels;
  double grace_s = 30, stall_s = 0, metrics_s = 5, acquire_s = 1, retention_h = 24 * 7;
  double poll_s = 0.2;
  int log_tail_kib = 64;
  bool slurm = false;
  int slurm_step_nodes = 0;
  SrunOptions srun;
  bool show_capabilities = false;
  bool mps = false;
  double fake_gpu_memory_gb = 0;  // memory of each GPU of a --gpus count
  std::string mps_control;        // the MPS control the worker started (--mps)
};

void AddConnectionFlags(CLI::App& app, WorkerFlags& f, AgentOptions& opt) {
  app.set_config("--config", "", "TOML/INI file with any of these options");
  app.add_option("--coordinator", f.coordinator, "coordinator gRPC address host:port")
      ->capture_default_str();
  app.add_option("--token-file", f.token_file,
                 "file holding the worker-role bearer token (or set WRPN_TOKEN)");
  app.add_option("--tls-ca", f.tls_ca, "PEM CA certificate: use TLS and trust this CA");
  app.add_option("--name", opt.name, "worker name")->capture_default_str();
  app.add_option("--address", opt.address,
                 "host or IP the worker's gang peers can reach (default: --name)");
}

void AddCapabilityFlags(CLI::App& app, WorkerFlags& f, AgentOptions& opt) {
  app.add_option("--gpus", f.gpus, "auto (nvidia-smi), none, or a count N (GPUs 0..N-1)")
      ->capture_default_str();
  app.add_option("--cpus", opt.cpus, "CPU cores to advertise")->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--label", f.labels, "key=value label (repeatable)");
  app.add_option("--max-cpu-trials", opt.max_cpu_trials, "concurrent 0-GPU trials")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--cpu-ranks", opt.cpu_ranks,
                 "trainer processes per 0-GPU trial on this node (same on every worker of a gang)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_flag("--show-capabilities", f.show_capabilities,
               "print what the worker would register (GPUs, CPUs, labels) and exit");
  app.add_flag("--mps", f.mps,
               "run GPU trials as clients of an NVIDIA MPS control daemon this worker starts "
               "(nvidia-cuda-mps-control must be installed; fractional trials get their share "
               "of the SMs as CUDA_MPS_ACTIVE_THREAD_PERCENTAGE); off by default");
  app.add_option("--gpu-memory-gb", f.fake_gpu_memory_gb,
                 "memory of each GPU given by a count in --gpus (GiB; 0 = unknown: trials' "
                 "gpu_memory_gb is not checked against it)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
}

void AddFolderFlags(CLI::App& app, AgentOptions& opt) {
  app.add_option("--trainer", opt.trainer, "path of wrpn-train")->capture_default_str();
  app.add_option("--work-dir", opt.work_dir, "folder for attempt folders")->capture_default_str();
  app.add_option("--checkpoint-dir", opt.checkpoint_dir,
                 "checkpoint root (default <work-dir>/checkpoints); a shared mount, the same path "
                 "on every worker, for multi-machine setups");
  app.add_option("--data-dir", opt.data_dir,
                 "datasets root: trials without a dataset path read <data-dir>/<kind> "
                 "(e.g. fashion-mnist); relative paths are taken under it; dataset paths "
                 "outside it and the --allow-data-root folders fail the trial")
      ->capture_default_str();
  app.add_option("--allow-data-root", opt.allowed_data_roots,
                 "folder besides --data-dir that a trial's dataset path may name (repeatable; "
                 "'/' turns confinement off)");
  app.add_flag("--keep-checkpoints", opt.keep_checkpoints,
               "keep a trial's checkpoints after it succeeded");
}

void AddTimingFlags(CLI::App& app, WorkerFlags& f, AgentOptions& opt) {
  app.add_option("--rendezvous-port", opt.rendezvous_port,
                 "port rank 0 of a multi-node trial hosts its TCPStore on when this worker is "
                 "rank 0 (registered with --address; 0 = a free port, reported to the coordinator)")
      ->check(CLI::Range(0, 65535))->capture_default_str();
  app.add_option("--rendezvous-timeout", opt.rendezvous_timeout_s,
                 "seconds the ranks of a multi-rank trial wait for each other (0 = the "
                 "trainer's default, 60)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--grace", f.grace_s, "seconds between SIGTERM and SIGKILL for a trainer")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--stall-timeout", f.stall_s,
                 "seconds a trainer may print nothing before it is taken as hung, stopped and "
                 "its attempt failed (retried); set above the longest quiet stretch of a trial "
                 "(0 = off)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--metrics-interval", f.metrics_s, "seconds metric points are batched at most")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--acquire-interval", f.acquire_s, "seconds between requests for work when idle")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--poll-interval", f.poll_s, "seconds between passes of the agent loop")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--retention-hours", f.retention_h,
                 "delete attempt folders and stale checkpoints older than this")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--log-tail-kib", f.log_tail_kib, "stderr kept per trainer rank and attempt (KiB)")
      ->check(CLI::PositiveNumber)->capture_default_str();
}

void AddSlurmFlags(CLI::App& app, WorkerFlags& f) {
  app.add_flag("--slurm", f.slurm,
               "inside a Slurm job: name, CPUs, GPUs and labels from the job's environment "
               "(slurm-<job>-<node>, SLURM_CPUS_ON_NODE, CUDA_VISIBLE_DEVICES); flags given "
               "explicitly win (deploy/slurm)");
  app.add_option("--slurm-step-nodes", f.slurm_step_nodes,
                 "implies --slurm: take gang trials of up to N nodes alone and start each as one "
                 "`srun -N <nodes>` step in this job's allocation (N <= SLURM_JOB_NUM_NODES; "
                 "0 = off: gangs are spread over one worker per node)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--srun-arg", f.srun.extra_args,
                 "extra argument for the srun of a gang step (repeatable; --srun-arg=--partition=gpu)");
}

// Name, address, cores and labels from the Slurm job, where no flag gave them.
std::optional<SlurmJob> ApplySlurmJob(const CLI::App& app, const WorkerFlags& f, AgentOptions& opt) {
  if (!f.slurm && f.slurm_step_nodes == 0) return std::nullopt;
  auto job = ReadSlurmJob(ProcessEnv());
  if (!job.ok()) throw UsageError{std::string(job.status().message())};
  if (!app.count("--name")) opt.name = SlurmWorkerName(*job);
  if (!app.count("--address") && opt.address.empty()) opt.address = Hostname();
  if (!app.count("--cpus") && job->cpus_on_node > 0) opt.cpus = job->cpus_on_node;
  opt.labels["slurm.job_id"] = job->job_id;
  if (!job->node.empty()) opt.labels["slurm.node"] = job->node;
  if (f.slurm_step_nodes > job->num_nodes) {
    throw UsageError{absl::StrCat("--slurm-step-nodes: ", f.slurm_step_nodes, " is more than the job's ",
                                  job->num_nodes, " node(s) (SLURM_JOB_NUM_NODES)")};
  }
  if (f.slurm_step_nodes > 1) {
    opt.labels[wrpn::kSlurmStepNodesLabel] = std::to_string(f.slurm_step_nodes);
  }
  return *job;
}

void ApplyCapabilities(const WorkerFlags& f, const std::optional<SlurmJob>& job, AgentOptions& opt) {
  if (opt.address.empty()) opt.address = opt.name;
  for (const std::string& l : f.labels) {
    auto eq = l.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw UsageError{"--label: expected key=value, got '" + l + "'"};
    }
    opt.labels[l.substr(0, eq)] = l.substr(eq + 1);
  }
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0 && !opt.labels.count("memory_bytes"))
    opt.labels["memory_bytes"] = std::to_string(static_cast<int64_t>(pages) * page);
  if (f.gpus == "auto") {
    opt.gpus = DetectGpus();
    if (job) opt.gpus = SlurmGpus(*job, opt.gpus);
  } else if (f.gpus != "none") {
    int n = 0;
    if (!absl::SimpleAtoi(f.gpus, &n) || n < 0) {
      throw UsageError{"--gpus: expected auto, none or a count, got '" + f.gpus + "'"};
    }
    for (int i = 0; i < n; ++i) {
      pb::Gpu g;
      g.set_index(i);
      g.set_name("gpu");
      g.set_memory_bytes(static_cast<int64_t>(std::llround(f.fake_gpu_memory_gb * (1LL << 30))));
      opt.gpus.push_back(g);
    }
  }
}

void ShowCapabilities(const AgentOptions& opt) {
  std::cout << "name " << opt.name << "\naddress " << opt.address << "\ncpus " << opt.cpus
            << "\ngpus " << opt.gpus.size() << "\n";
  for (const auto& g : opt.gpus) {
    std::cout << "gpu " << g.index() << " \"" << g.name() << "\" " << g.memory_bytes()
              << " bytes\n";
  }
  for (const auto& [k, v] : opt.labels) std::cout << "label " << k << "=" << v << "\n";
}

// The trainer, the work dir and the intervals.
void ApplyRunOptions(const WorkerFlags& f, AgentOptions& opt) {
  std::error_code ec;
  // Absolute: trainers run inside their attempt folders.
  opt.trainer = fs::absolute(FindInPath(opt.trainer), ec).string();
  if (ec || !ForkExecLauncher().CanExecute(opt.trainer).ok()) {
    throw UsageError{"--trainer: '" + opt.trainer +
                     "' is not an executable file (build wrpn-train or pass its path)"};
  }
  fs::create_directories(opt.work_dir, ec);
  if (ec) throw UsageError{"--work-dir: cannot create '" + opt.work_dir + "': " + ec.message()};
  const auto ms = [](double s) { return std::chrono::milliseconds(static_cast<int64_t>(s * 1000)); };
  opt.grace = ms(f.grace_s);
  opt.stall_timeout = ms(f.stall_s);
  opt.metrics_interval = ms(f.metrics_s);
  opt.acquire_interval = ms(f.acquire_s);
  opt.retention = std::chrono::hours(static_cast<int64_t>(std::max(1.0, f.retention_h)));
  opt.log_tail_bytes = static_cast<size_t>(f.log_tail_kib) * 1024;
}

// --mps: starts the MPS control daemon GPU trials run under (its folders in the work dir).
void StartMps(WorkerFlags& f, AgentOptions& opt) {
  if (!f.mps) return;
  f.mps_control = FindMpsControl();
  if (f.mps_control.empty()) {
    throw UsageError{"--mps: nvidia-cuda-mps-control is not on PATH (install the NVIDIA "
                     "driver's MPS tools or run without --mps)"};
  }
  auto dirs = StartMpsDaemon(f.mps_control, (fs::path(opt.work_dir) / "mps").string());
  if (!dirs.ok()) throw UsageError{std::string(dirs.status().message())};
  opt.mps = *dirs;
}

std::unique_ptr<CoordinatorClient> ConnectClient(const WorkerFlags& f) {
  GrpcClientOptions copt;
  copt.target = f.coordinator;
  copt.tls_ca = f.tls_ca;
  if (!f.token_file.empty()) {
    std::ifstream in(f.token_file);
    if (!in) throw UsageError{"--token-file: cannot read '" + f.token_file + "'"};
    std::stringstream ss;
    ss << in.rdbuf();
    copt.token = std::string(absl::StripAsciiWhitespace(ss.str()));
  } else if (const char* t = std::getenv("WRPN_TOKEN")) {
    copt.token = t;
  }
  ::unsetenv("WRPN_TOKEN");  // the trainers inherit the environment; they do not need it
  auto client = MakeGrpcCoordinatorClient(copt);
  if (!client.ok()) throw UsageError{std::string(client.status().message())};
  return *std::move(client);
}

void InstallSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

// Runs the agent until a signal drains it; a second signal while draining ends the worker at
// once (the trainers get SIGTERM through their parent-death signal).
int RunWorker(WorkerFlags& f, const std::optional<SlurmJob>& job, const AgentOptions& opt,
              CoordinatorClient* client) {
  InstallSignalHandlers();
  wrpn::SystemClock clock;
  ForkExecLauncher local_launcher;
  f.srun.srun = FindInPath("srun");
  f.srun.squeue = FindInPath("squeue");
  f.srun.scancel = FindInPath("scancel");
  if (job) f.srun.job_id = job->allocation_id;
  f.srun.wait_s = static_cast<int>(std::ceil(f.grace_s));
  SrunLauncher srun_launcher(&local_launcher, f.srun);
  ProcessLauncher& launcher = f.slurm_step_nodes > 1 ? static_cast<ProcessLauncher&>(srun_launcher)
                                                     : local_launcher;
  Agent agent(client, &launcher, &clock, opt);
  std::cerr << "wrpn-worker: " << opt.name << " -> " << f.coordinator << ", trainer "
            << opt.trainer << ", " << opt.gpus.size() << " GPU(s), work dir " << opt.work_dir
            << "\n";
  std::atomic<bool> finished{false};
  std::thread watchdog([&] {
    while (!finished.load() && g_signals.load() < 2)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (!finished.load()) {
      std::cerr << "wrpn-worker: second signal, exiting without waiting for trainers\n";
      std::_Exit(130);
    }
  });
  agent.Run(g_stop, std::chrono::milliseconds(static_cast<int64_t>(f.poll_s * 1000)));
  finished.store(true);
  watchdog.join();
  StopMpsDaemon(f.mps_control, opt.mps);
  std::cerr << "wrpn-worker: stopped\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  wrpn::UseFastGrpcReconnects();
  CLI::App app{"wrpn-worker: runs wrpn trials leased from a coordinator as wrpn-train processes"};
  WorkerFlags flags;
  AgentOptions opt;
  opt.name = Hostname();
  opt.cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  opt.trainer = DefaultTrainer(argv[0]);
  opt.work_dir = "wrpn-work";
  AddConnectionFlags(app, flags, opt);
  AddCapabilityFlags(app, flags, opt);
  AddFolderFlags(app, opt);
  AddTimingFlags(app, flags, opt);
  AddSlurmFlags(app, flags);
  CLI11_PARSE(app, argc, argv);
  try {
    const std::optional<SlurmJob> job = ApplySlurmJob(app, flags, opt);
    ApplyCapabilities(flags, job, opt);
    if (flags.show_capabilities) {
      ShowCapabilities(opt);
      return 0;
    }
    ApplyRunOptions(flags, opt);
    const std::unique_ptr<CoordinatorClient> client = ConnectClient(flags);
    StartMps(flags, opt);
    return RunWorker(flags, job, opt, client.get());
  } catch (const UsageError& e) {
    std::cerr << "wrpn-worker: " << e.message << "\n";
    return 2;
  }
}
