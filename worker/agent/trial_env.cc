#include "worker/agent/trial_env.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/gpu_share.h"

namespace wrpn::agent {

std::map<std::string, std::string> TrialEnvironment(const TrialPlacement& p) {
  std::map<std::string, std::string> env;
  env["CUDA_VISIBLE_DEVICES"] = absl::StrJoin(p.device_indices, ",");
  if (p.device_indices.empty()) return env;
  env[kGpuShareEnv] = p.gpu_share > 0 ? FormatShare(p.gpu_share) : "1";
  if (p.gpu_memory_bytes > 0) env[kGpuMemoryBytesEnv] = absl::StrCat(p.gpu_memory_bytes);
  if (p.mps.enabled()) {
    env["CUDA_MPS_PIPE_DIRECTORY"] = p.mps.pipe_dir;
    env["CUDA_MPS_LOG_DIRECTORY"] = p.mps.log_dir;
    if (p.gpu_share > 0) {
      const int pct = std::clamp(static_cast<int>(std::lround(p.gpu_share * 100)), 1, 100);
      env["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"] = absl::StrCat(pct);
    }
  }
  return env;
}

int RankCores(int cpus, int worker_gpus, double trial_gpus, int max_cpu_trials, int ranks) {
  const double share = trial_gpus > 0 && worker_gpus > 0
                           ? std::min(1.0, trial_gpus / worker_gpus)
                           : 1.0 / std::max(1, max_cpu_trials);
  return std::max(1, static_cast<int>(std::floor(cpus * share / std::max(1, ranks) + 1e-9)));
}

std::string FindMpsControl() {
  const char* path = std::getenv("PATH");
  if (!path) return "";
  for (absl::string_view dir : absl::StrSplit(path, ':')) {
    if (dir.empty()) continue;
    const std::filesystem::path p = std::filesystem::path(std::string(dir)) / "nvidia-cuda-mps-control";
    if (::access(p.c_str(), X_OK) == 0) return p.string();
  }
  return "";
}

namespace {

std::string Quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string MpsEnv(const MpsDirs& d) {
  return absl::StrCat("CUDA_MPS_PIPE_DIRECTORY=", Quoted(d.pipe_dir), " CUDA_MPS_LOG_DIRECTORY=",
                      Quoted(d.log_dir), " ");
}

}  // namespace

absl::StatusOr<MpsDirs> StartMpsDaemon(const std::string& control, const std::string& root) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path base = fs::absolute(root, ec).lexically_normal();
  MpsDirs d{(base / "pipe").string(), (base / "log").string()};
  fs::create_directories(d.pipe_dir, ec);
  if (!ec) fs::create_directories(d.log_dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("--mps: cannot create ", base.string(), ": ", ec.message()));
  }
  const std::string cmd = absl::StrCat(MpsEnv(d), Quoted(control), " -d");
  if (const int rc = std::system(cmd.c_str()); rc != 0) {
    return absl::InternalError(absl::StrCat("--mps: `", cmd, "` failed (status ", rc, ")"));
  }
  return d;
}

void StopMpsDaemon(const std::string& control, const MpsDirs& dirs) {
  if (!dirs.enabled()) return;
  const std::string cmd = absl::StrCat("echo quit | ", MpsEnv(dirs), Quoted(control));
  (void)std::system(cmd.c_str());
}

}  // namespace wrpn::agent
