// wrpn-fake-train: a stand-in for wrpn-train in fault-injection tests. It speaks the trainer's
// protocol (`train --config trial.json`; one JSON event per line on stdout: started, epoch,
// checkpoint, finished, interrupted; human lines on stderr; exit 0 ok, 4 interrupted after a
// checkpoint) without LibTorch, and its accuracy is a deterministic function of the trial's
// (network, width, wbits, abits, seed), so grids of disturbed and undisturbed runs compare equal.
//
// It resumes from <checkpoint_dir>/last.pt (a JSON {"epoch": E}) when the config says resume, and
// on SIGTERM writes a checkpoint, prints `interrupted` and exits 4, like wrpn-train. Only RANK 0
// prints events (other ranks of a multi-rank trial just sleep through the epochs). With
// stop_at_epoch (a Pareto rung) it stops once that many epochs are done, as wrpn-train does.
//
// Knobs (environment, inherited from the worker that starts it):
//   WRPN_FAKE_EPOCH_MS       sleep per epoch (default 50)
//   WRPN_FAKE_HANG_EPOCH     at the start of this epoch stop all output, ignore SIGTERM and sleep
//                            forever (a hung trainer)
//   WRPN_FAKE_CRASH_EPOCH    abort() at the start of this epoch (a crashing trainer)
//   WRPN_FAKE_FAULT_ATTEMPTS comma-separated attempts the two faults above apply to (default 1)
//   WRPN_FAKE_FAULT_RANK     the RANK they apply to (default 0)
//   WRPN_FAKE_PID_DIR        write an empty file <dir>/<pid> named after the process at start,
//                            with "trial attempt rank gpu=<CUDA_VISIBLE_DEVICES>
//                            share=<WRPN_GPU_SHARE>" inside, so tests can find (and clean up)
//                            every trainer they caused
// A trial whose config asks for a GPU (device other than cpu) fails as a config error unless the
// worker set CUDA_VISIBLE_DEVICES and WRPN_GPU_SHARE, as wrpn-train fails without a GPU.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::atomic<bool> g_stop{false};
void OnTerm(int) { g_stop.store(true); }

long EnvLong(const char* name, long fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  return std::strtol(v, nullptr, 10);
}

bool FaultApplies(int attempt, int rank) {
  if (rank != EnvLong("WRPN_FAKE_FAULT_RANK", 0)) return false;
  const char* v = std::getenv("WRPN_FAKE_FAULT_ATTEMPTS");
  std::string list = v && *v ? v : "1";
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty() && std::atoi(item.c_str()) == attempt) return true;
  }
  return false;
}

void Emit(const json& e) { std::cout << e.dump() << std::endl; }

// The "accuracy" of a trial: 60..90 %, a function of the cell and seed only.
double FinalTop1(const json& c) {
  std::ostringstream key;
  key << c.value("network", std::string()) << "|" << c.value("width", 1.0) << "|"
      << c.value("wbits", 32) << "|" << c.value("abits", 32) << "|" << c.value("seed", 0);
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char ch : key.str()) h = (h ^ ch) * 1099511628211ULL;
  return 60.0 + static_cast<double>(h % 3001) / 100.0;
}

void SaveCheckpoint(const fs::path& dir, int64_t epoch) {
  if (dir.empty()) return;
  std::error_code ec;
  fs::create_directories(dir, ec);
  const fs::path tmp = dir / "last.pt.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << json{{"epoch", epoch}}.dump() << "\n";
  }
  fs::rename(tmp, dir / "last.pt", ec);
}

// Sleeps `ms`, waking early when SIGTERM arrived; true when it did.
bool SleepOrStop(long ms) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < end) {
    if (g_stop.load()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return g_stop.load();
}

int Usage() {
  Emit({{"event", "failed"}, {"kind", "config"}, {"reason", "usage: wrpn-fake-train train --config FILE"}});
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGTERM, OnTerm);
  std::signal(SIGINT, OnTerm);
  if (argc < 2 || std::string(argv[1]) != "train") return Usage();
  std::string config_path;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) config_path = argv[++i];
    else if (a.rfind("--config=", 0) == 0) config_path = a.substr(9);
    else if (a == "--rendezvous-timeout" && i + 1 < argc) ++i;  // accepted, unused
  }
  if (config_path.empty()) return Usage();
  std::ifstream in(config_path);
  json c = json::parse(in, nullptr, false);
  if (c.is_discarded() || !c.is_object()) {
    Emit({{"event", "failed"}, {"kind", "config"}, {"reason", "cannot read " + config_path}});
    return 2;
  }
  const int rank = static_cast<int>(EnvLong("RANK", 0));
  const int attempt = static_cast<int>(EnvLong("WRPN_ATTEMPT", 1));
  const int64_t trial = EnvLong("WRPN_TRIAL_ID", 0);
  const bool leader = rank == 0;
  // A GPU trial (device cuda) needs a GPU the worker gave it, as wrpn-train refuses one without.
  const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
  const char* share = std::getenv("WRPN_GPU_SHARE");
  if (c.value("device", std::string("cpu")) != "cpu" && (!visible || !*visible || !share)) {
    Emit({{"event", "failed"}, {"kind", "config"},
          {"reason", "device: '" + c.value("device", std::string()) +
                         "' requested but the worker gave no GPU (CUDA_VISIBLE_DEVICES, WRPN_GPU_SHARE)"}});
    return 2;
  }
  if (const char* d = std::getenv("WRPN_FAKE_PID_DIR"); d && *d) {
    std::ofstream(fs::path(d) / std::to_string(::getpid()))
        << trial << " " << attempt << " " << rank << " gpu=" << (visible ? visible : "")
        << " share=" << (share ? share : "") << "\n";
  }
  const long epoch_ms = EnvLong("WRPN_FAKE_EPOCH_MS", 50);
  const bool fault = FaultApplies(attempt, rank);
  const long hang_epoch = fault ? EnvLong("WRPN_FAKE_HANG_EPOCH", -1) : -1;
  const long crash_epoch = fault ? EnvLong("WRPN_FAKE_CRASH_EPOCH", -1) : -1;

  const int64_t epochs = c.value("epochs", int64_t{1});
  // A Pareto rung (stop_at_epoch, absolute like wrpn-train's): checkpoint, interrupted, exit 4.
  const int64_t stop_at = c.value("stop_at_epoch", int64_t{0});
  auto at_stop = [&](int64_t e) { return stop_at > 0 && e >= stop_at && e < epochs; };
  const fs::path ckpt_dir = c.value("checkpoint_dir", std::string());
  int64_t epoch = 0;
  if (c.value("resume", false) && !ckpt_dir.empty()) {
    std::ifstream ck(ckpt_dir / "last.pt");
    json saved = json::parse(ck, nullptr, false);
    if (!saved.is_discarded() && saved.is_object()) epoch = saved.value("epoch", int64_t{0});
  }
  const double final_top1 = FinalTop1(c);
  if (leader) {
    Emit({{"event", "started"}, {"config", c}, {"start_epoch", epoch}, {"start_step", 0},
          {"world_size", EnvLong("WORLD_SIZE", 1)}, {"device", "cpu"}, {"backend", "fake"}});
  }
  std::cerr << "fake trainer: trial " << trial << " attempt " << attempt << " rank " << rank
            << " starting at epoch " << epoch << " of " << epochs << std::endl;
  while (epoch < epochs) {
    if (at_stop(epoch)) {  // resumed at or past the rung: trains nothing, stops again
      if (leader) {
        Emit({{"event", "interrupted"}, {"epoch", epoch}, {"step", 0}, {"checkpointed", !ckpt_dir.empty()}});
      }
      return 4;
    }
    if (epoch == hang_epoch) {
      std::signal(SIGTERM, SIG_IGN);
      std::signal(SIGINT, SIG_IGN);
      for (;;) ::pause();
    }
    if (epoch == crash_epoch) std::abort();
    if (SleepOrStop(epoch_ms)) {
      if (leader) {
        SaveCheckpoint(ckpt_dir, epoch);
        Emit({{"event", "interrupted"}, {"epoch", epoch}, {"step", 0},
              {"checkpointed", !ckpt_dir.empty()}});
      }
      return 4;
    }
    const double top1 = final_top1 * static_cast<double>(epoch + 1) / static_cast<double>(epochs);
    if (leader) {
      Emit({{"event", "epoch"}, {"epoch", epoch}, {"epochs", epochs}, {"train_loss", 1.0 / (epoch + 1)},
            {"train_top1", top1}, {"test_loss", 1.0 / (epoch + 1)}, {"top1", top1},
            {"top5", std::min(100.0, top1 + 5)}, {"lr", 0.1}, {"images_per_sec", 1000.0},
            {"seconds", epoch_ms / 1000.0}});
    }
    std::cerr << "epoch " << epoch << " top1 " << top1 << std::endl;
    ++epoch;
    if (leader) {
      SaveCheckpoint(ckpt_dir, epoch);
      if (!ckpt_dir.empty())
        Emit({{"event", "checkpoint"}, {"epoch", epoch}, {"step", 0},
              {"path", (ckpt_dir / "last.pt").string()}});
    }
  }
  if (leader) {
    Emit({{"event", "finished"}, {"top1", final_top1}, {"top5", std::min(100.0, final_top1 + 5)},
          {"test_loss", 0.5}, {"best_top1", final_top1}, {"epochs", epochs},
          {"images_per_sec", 1000.0}, {"cost_uniform", 1.0}, {"cost_first_last_fp32", 1.0},
          {"fma_ratio", 1.0}});
  }
  std::cerr << "finished top1 " << final_top1 << std::endl;
  return 0;
}
