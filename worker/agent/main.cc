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

}  // namespace

int main(int argc, char** argv) {
  wrpn::UseFastGrpcReconnects();
  CLI::App app{"wrpn-worker: runs wrpn trials leased from a coordinator as wrpn-train processes"};
  std::string coordinator = "127.0.0.1:7070";
  std::string token_file, tls_ca;
  AgentOptions opt;
  opt.name = Hostname();
  opt.address = "";
  opt.cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  opt.trainer = DefaultTrainer(argv[0]);
  opt.work_dir = "wrpn-work";
  std::string gpus = "auto";
  std::vector<std::string> labels;
  double grace_s = 30, stall_s = 0, metrics_s = 5, acquire_s = 1, retention_h = 24 * 7, poll_s = 0.2;
  int log_tail_kib = 64;

  app.set_config("--config", "", "TOML/INI file with any of these options");
  app.add_option("--coordinator", coordinator, "coordinator gRPC address host:port")
      ->capture_default_str();
  app.add_option("--token-file", token_file,
                 "file holding the worker-role bearer token (or set WRPN_TOKEN)");
  app.add_option("--tls-ca", tls_ca, "PEM CA certificate: use TLS and trust this CA");
  app.add_option("--name", opt.name, "worker name")->capture_default_str();
  app.add_option("--address", opt.address,
                 "host or IP the worker's gang peers can reach (default: --name)");
  app.add_option("--gpus", gpus, "auto (nvidia-smi), none, or a count N (GPUs 0..N-1)")
      ->capture_default_str();
  app.add_option("--cpus", opt.cpus, "CPU cores to advertise")->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--label", labels, "key=value label (repeatable)");
  app.add_option("--max-cpu-trials", opt.max_cpu_trials, "concurrent 0-GPU trials")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--cpu-ranks", opt.cpu_ranks,
                 "trainer processes per 0-GPU trial on this node (same on every worker of a gang)")
      ->check(CLI::PositiveNumber)->capture_default_str();
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
  app.add_option("--rendezvous-port", opt.rendezvous_port,
                 "port rank 0 of a multi-node trial hosts its TCPStore on when this worker is "
                 "rank 0 (registered with --address; 0 = a free port, reported to the coordinator)")
      ->check(CLI::Range(0, 65535))->capture_default_str();
  app.add_option("--rendezvous-timeout", opt.rendezvous_timeout_s,
                 "seconds the ranks of a multi-rank trial wait for each other (0 = the "
                 "trainer's default, 60)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--grace", grace_s, "seconds between SIGTERM and SIGKILL for a trainer")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--stall-timeout", stall_s,
                 "seconds a trainer may print nothing before it is taken as hung, stopped and "
                 "its attempt failed (retried); set above the longest quiet stretch of a trial "
                 "(0 = off)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--metrics-interval", metrics_s, "seconds metric points are batched at most")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--acquire-interval", acquire_s, "seconds between requests for work when idle")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--poll-interval", poll_s, "seconds between passes of the agent loop")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--retention-hours", retention_h,
                 "delete attempt folders and stale checkpoints older than this")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--log-tail-kib", log_tail_kib, "stderr kept per trainer rank and attempt (KiB)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_flag("--keep-checkpoints", opt.keep_checkpoints,
               "keep a trial's checkpoints after it succeeded");
  bool slurm = false;
  int slurm_step_nodes = 0;
  SrunOptions srun;
  app.add_flag("--slurm", slurm,
               "inside a Slurm job: name, CPUs, GPUs and labels from the job's environment "
               "(slurm-<job>-<node>, SLURM_CPUS_ON_NODE, CUDA_VISIBLE_DEVICES); flags given "
               "explicitly win (deploy/slurm)");
  app.add_option("--slurm-step-nodes", slurm_step_nodes,
                 "implies --slurm: take gang trials of up to N nodes alone and start each as one "
                 "`srun -N <nodes>` step in this job's allocation (N <= SLURM_JOB_NUM_NODES; "
                 "0 = off: gangs are spread over one worker per node)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--srun-arg", srun.extra_args,
                 "extra argument for the srun of a gang step (repeatable; --srun-arg=--partition=gpu)");
  bool mps = false;
  double fake_gpu_memory_gb = 0;
  app.add_flag("--mps", mps,
               "run GPU trials as clients of an NVIDIA MPS control daemon this worker starts "
               "(nvidia-cuda-mps-control must be installed; fractional trials get their share "
               "of the SMs as CUDA_MPS_ACTIVE_THREAD_PERCENTAGE); off by default");
  app.add_option("--gpu-memory-gb", fake_gpu_memory_gb,
                 "memory of each GPU given by a count in --gpus (GiB; 0 = unknown: trials' "
                 "gpu_memory_gb is not checked against it)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  bool show_capabilities = false;
  app.add_flag("--show-capabilities", show_capabilities,
               "print what the worker would register (GPUs, CPUs, labels) and exit");
  CLI11_PARSE(app, argc, argv);

  std::optional<SlurmJob> slurm_job;
  if (slurm || slurm_step_nodes > 0) {
    auto job = ReadSlurmJob(ProcessEnv());
    if (!job.ok()) {
      std::cerr << "wrpn-worker: " << job.status().message() << "\n";
      return 2;
    }
    slurm_job = *job;
    if (!app.count("--name")) opt.name = SlurmWorkerName(*job);
    if (!app.count("--address") && opt.address.empty()) opt.address = Hostname();
    if (!app.count("--cpus") && job->cpus_on_node > 0) opt.cpus = job->cpus_on_node;
    opt.labels["slurm.job_id"] = job->job_id;
    if (!job->node.empty()) opt.labels["slurm.node"] = job->node;
    if (slurm_step_nodes > job->num_nodes) {
      std::cerr << "wrpn-worker: --slurm-step-nodes: " << slurm_step_nodes
                << " is more than the job's " << job->num_nodes << " node(s) (SLURM_JOB_NUM_NODES)\n";
      return 2;
    }
    if (slurm_step_nodes > 1) opt.labels[wrpn::kSlurmStepNodesLabel] = std::to_string(slurm_step_nodes);
  }
  if (opt.address.empty()) opt.address = opt.name;
  for (const std::string& l : labels) {
    auto eq = l.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "wrpn-worker: --label: expected key=value, got '" << l << "'\n";
      return 2;
    }
    opt.labels[l.substr(0, eq)] = l.substr(eq + 1);
  }
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0 && !opt.labels.count("memory_bytes"))
    opt.labels["memory_bytes"] = std::to_string(static_cast<int64_t>(pages) * page);
  if (gpus == "auto") {
    opt.gpus = DetectGpus();
    if (slurm_job) opt.gpus = SlurmGpus(*slurm_job, opt.gpus);
  } else if (gpus != "none") {
    int n = 0;
    if (!absl::SimpleAtoi(gpus, &n) || n < 0) {
      std::cerr << "wrpn-worker: --gpus: expected auto, none or a count, got '" << gpus << "'\n";
      return 2;
    }
    for (int i = 0; i < n; ++i) {
      pb::Gpu g;
      g.set_index(i);
      g.set_name("gpu");
      g.set_memory_bytes(static_cast<int64_t>(std::llround(fake_gpu_memory_gb * (1LL << 30))));
      opt.gpus.push_back(g);
    }
  }
  if (show_capabilities) {
    std::cout << "name " << opt.name << "\naddress " << opt.address << "\ncpus " << opt.cpus
              << "\ngpus " << opt.gpus.size() << "\n";
    for (const auto& g : opt.gpus) {
      std::cout << "gpu " << g.index() << " \"" << g.name() << "\" " << g.memory_bytes()
                << " bytes\n";
    }
    for (const auto& [k, v] : opt.labels) std::cout << "label " << k << "=" << v << "\n";
    return 0;
  }
  opt.trainer = FindInPath(opt.trainer);
  if (::access(opt.trainer.c_str(), X_OK) != 0) {
    std::cerr << "wrpn-worker: --trainer: '" << opt.trainer
              << "' is not an executable file (build wrpn-train or pass its path)\n";
    return 2;
  }
  std::error_code ec;
  fs::create_directories(opt.work_dir, ec);
  if (ec) {
    std::cerr << "wrpn-worker: --work-dir: cannot create '" << opt.work_dir << "': "
              << ec.message() << "\n";
    return 2;
  }
  opt.grace = std::chrono::milliseconds(static_cast<int64_t>(grace_s * 1000));
  opt.stall_timeout = std::chrono::milliseconds(static_cast<int64_t>(stall_s * 1000));
  opt.metrics_interval = std::chrono::milliseconds(static_cast<int64_t>(metrics_s * 1000));
  opt.acquire_interval = std::chrono::milliseconds(static_cast<int64_t>(acquire_s * 1000));
  opt.retention = std::chrono::hours(static_cast<int64_t>(std::max(1.0, retention_h)));
  opt.log_tail_bytes = static_cast<size_t>(log_tail_kib) * 1024;
  std::string mps_control;
  if (mps) {
    mps_control = FindMpsControl();
    if (mps_control.empty()) {
      std::cerr << "wrpn-worker: --mps: nvidia-cuda-mps-control is not on PATH (install the "
                   "NVIDIA driver's MPS tools or run without --mps)\n";
      return 2;
    }
    auto dirs = StartMpsDaemon(mps_control, (fs::path(opt.work_dir) / "mps").string());
    if (!dirs.ok()) {
      std::cerr << "wrpn-worker: " << dirs.status().message() << "\n";
      return 2;
    }
    opt.mps = *dirs;
  }

  GrpcClientOptions copt;
  copt.target = coordinator;
  copt.tls_ca = tls_ca;
  if (!token_file.empty()) {
    std::ifstream in(token_file);
    if (!in) {
      std::cerr << "wrpn-worker: --token-file: cannot read '" << token_file << "'\n";
      return 2;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    copt.token = std::string(absl::StripAsciiWhitespace(ss.str()));
  } else if (const char* t = std::getenv("WRPN_TOKEN")) {
    copt.token = t;
  }
  ::unsetenv("WRPN_TOKEN");  // the trainers inherit the environment; they do not need it
  auto client = MakeGrpcCoordinatorClient(copt);
  if (!client.ok()) {
    std::cerr << "wrpn-worker: " << client.status().message() << "\n";
    return 2;
  }

  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  wrpn::SystemClock clock;
  ForkExecLauncher local_launcher;
  srun.srun = FindInPath("srun");
  srun.squeue = FindInPath("squeue");
  srun.scancel = FindInPath("scancel");
  if (slurm_job) srun.job_id = slurm_job->allocation_id;
  srun.wait_s = static_cast<int>(std::ceil(grace_s));
  SrunLauncher srun_launcher(&local_launcher, srun);
  ProcessLauncher& launcher = slurm_step_nodes > 1 ? static_cast<ProcessLauncher&>(srun_launcher)
                                                   : local_launcher;
  Agent agent(client->get(), &launcher, &clock, opt);
  std::cerr << "wrpn-worker: " << opt.name << " -> " << coordinator << ", trainer "
            << opt.trainer << ", " << opt.gpus.size() << " GPU(s), work dir " << opt.work_dir
            << "\n";
  // A second signal while draining ends the worker at once.
  std::atomic<bool> finished{false};
  std::thread watchdog([&] {
    while (!finished.load() && g_signals.load() < 2)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (!finished.load()) {
      std::cerr << "wrpn-worker: second signal, exiting without waiting for trainers\n";
      std::_Exit(130);  // the trainers get SIGTERM through their parent-death signal
    }
  });
  agent.Run(g_stop, std::chrono::milliseconds(static_cast<int64_t>(poll_s * 1000)));
  finished.store(true);
  watchdog.join();
  StopMpsDaemon(mps_control, opt.mps);
  std::cerr << "wrpn-worker: stopped\n";
  return 0;
}
