#include "worker/agent/attempt_folders.h"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace wrpn::agent {
namespace {

namespace fs = std::filesystem;

fs::file_time_type Newest(const fs::path& p) {
  std::error_code ec;
  auto t = fs::last_write_time(p, ec);
  for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    auto m = fs::last_write_time(it->path(), ec);
    if (!ec && m > t) t = m;
  }
  return t;
}

}  // namespace

absl::Status CreateAttemptFolders(const AttemptPlan& plan) {
  std::error_code ec;
  fs::create_directories(plan.dir, ec);
  if (!ec) fs::create_directories(plan.ckpt_dir, ec);
  if (!ec) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("cannot create the attempt folders ", plan.dir, " and ",
                                          plan.ckpt_dir, ": ", ec.message()));
}

absl::Status PlaceCheckpoint(const std::string& src, const std::string& ckpt_dir) {
  std::error_code ec;
  if (!fs::is_regular_file(src, ec)) {
    return absl::NotFoundError(absl::StrCat("checkpoint ", src, " is not readable on this worker"));
  }
  const fs::path dst = fs::path(ckpt_dir) / "last.pt";
  fs::remove(dst, ec);
  fs::create_hard_link(src, dst, ec);
  if (ec) {
    ec.clear();
    fs::copy_file(src, dst, fs::copy_options::overwrite_existing, ec);
  }
  if (!ec) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("cannot copy checkpoint ", src, " to ", dst.string(),
                                          ": ", ec.message()));
}

absl::Status WriteTrialConfig(const std::string& path, const TrialConfig& config) {
  {
    std::ofstream out(path + ".tmp");
    out << TrialConfigToJson(config).dump(2) << "\n";
    out.close();
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  }
  std::error_code ec;
  fs::rename(path + ".tmp", path, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot write ", path, ": ", ec.message()));
  return absl::OkStatus();
}

void WriteAttemptLogs(const std::string& dir,
                      const std::vector<std::pair<int, std::string>>& rank_tails,
                      const std::string& notes) {
  std::error_code ec;
  if (dir.empty() || !fs::is_directory(dir, ec)) return;
  for (const auto& [rank, tail] : rank_tails) {
    std::ofstream(fs::path(dir) / absl::StrCat("rank-", rank, ".log"), std::ios::trunc) << tail;
  }
  std::ofstream(fs::path(dir) / "agent.log", std::ios::trunc) << notes;
}

int RemoveOldFolders(const std::vector<std::string>& roots, const std::set<std::string>& in_use,
                     std::chrono::hours retention) {
  const auto cutoff = fs::file_time_type::clock::now() - retention;
  int removed = 0;
  for (const fs::path root : roots) {
    std::error_code ec;
    if (!fs::is_directory(root, ec)) continue;
    std::vector<fs::path> old;
    for (auto it = fs::directory_iterator(root, ec); !ec && it != fs::end(it); it.increment(ec)) {
      const fs::path p = fs::absolute(it->path(), ec).lexically_normal();
      if (in_use.count(p.string())) continue;
      if (Newest(p) < cutoff) old.push_back(p);
    }
    for (const auto& p : old) {
      std::error_code rm;
      fs::remove_all(p, rm);
      if (!rm) ++removed;
    }
  }
  return removed;
}

void RemoveTrialCheckpoints(const std::string& checkpoint_root, int64_t trial_id) {
  std::error_code ec;
  fs::remove_all(fs::path(checkpoint_root) / absl::StrCat("trial-", trial_id), ec);
}

}  // namespace wrpn::agent
