#include "worker/trainer/prepare_command.h"

#include <unistd.h>

#include <chrono>
#include <memory>
#include <cstdio>
#include <string>

#include "absl/strings/str_format.h"
#include "worker/trainer/trainer.h"

namespace wrpn::trainer {
namespace {

// A one-line progress bar on stderr: redrawn in place on a terminal (at most 10 times a
// second), a line per 10% otherwise (logs).
class ProgressBar {
 public:
  ProgressBar() : tty_(::isatty(2) == 1), start_(Clock::now()) {}
  void Update(int64_t done, int64_t total, int64_t bytes) {
    const auto now = Clock::now();
    const double pct = total > 0 ? 100.0 * done / total : 100;
    if (tty_) {
      if (done < total && now - last_ < std::chrono::milliseconds(100)) return;
    } else if (done < total && static_cast<int>(pct / 10) == last_decile_) {
      return;
    }
    last_ = now;
    last_decile_ = static_cast<int>(pct / 10);
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double rate = secs > 0 ? done / secs : 0;
    const int filled = static_cast<int>(pct * kWidth / 100);
    const std::string bar = std::string(filled, '#') + std::string(kWidth - filled, '.');
    std::fprintf(stderr, "%sprepare [%s] %5.1f%% %lld/%lld images, %.1f MiB, %.0f img/s, ETA %.0fs%s",
                 tty_ ? "\r" : "", bar.c_str(), pct, static_cast<long long>(done),
                 static_cast<long long>(total), bytes / 1048576.0, rate,
                 rate > 0 ? (total - done) / rate : 0.0, tty_ ? (done == total ? "\n" : "") : "\n");
    std::fflush(stderr);
  }

 private:
  using Clock = std::chrono::steady_clock;
  static constexpr int kWidth = 30;
  bool tty_;
  Clock::time_point start_, last_{};
  int last_decile_ = -1;
};

}  // namespace

std::unique_ptr<PrepareCommand> AddPrepareCommand(CLI::App& app) {
  auto cmd = std::make_unique<PrepareCommand>();
  PrepareOptions& o = cmd->options;
  cmd->app = app.add_subcommand(
      "prepare", "Pack an image-folder tree (train/ and val/) into one memory-mappable dataset file");
  cmd->app->add_option("--imagefolder", o.imagefolder, "root folder holding train/<class>/ and val/<class>/")
      ->required();
  cmd->app->add_option("--out", o.out, "the packed file to write (atomically)")->required();
  cmd->app->add_option("--max-side", o.max_side, "resize so the longer side is at most this (never enlarges)")
      ->capture_default_str();
  cmd->app->add_option("--quality", o.quality, "JPEG quality of the re-encoded images (1..100)")
      ->capture_default_str();
  cmd->app->add_option("--encoding", o.encoding,
                       "records as re-encoded JPEG, or raw RGB pixels (~10x the size at --quality 90, no "
                       "decode when training: the fastest to read)")
      ->check(CLI::IsMember({"jpeg", "raw"}))
      ->capture_default_str();
  cmd->app->add_option("--threads", o.threads, "encoding threads (0 = all cores)")->capture_default_str();
  cmd->app->footer(
      "Example: wrpn-train prepare --imagefolder /data/imagenet --out /data/imagenet.wrpnpak\n"
      "Then train with dataset {kind: packed, path: /data/imagenet.wrpnpak}.");
  return cmd;
}

int RunPrepareCommand(const PrepareCommand& cmd) {
  PrepareOptions o = cmd.options;
  auto bar = std::make_shared<ProgressBar>();
  o.progress = [bar](int64_t done, int64_t total, int64_t bytes) { bar->Update(done, total, bytes); };
  auto stats = PreparePacked(o);
  if (!stats.ok()) {
    std::fprintf(stderr, "\nwrpn-train prepare: %s\n", std::string(stats.status().message()).c_str());
    return stats.status().code() == absl::StatusCode::kInvalidArgument ? kExitBadConfig : kExitDataError;
  }
  std::fprintf(stderr, "wrote %s: %lld train + %lld val images, %d classes, %.1f MiB\n", o.out.c_str(),
               static_cast<long long>(stats->train), static_cast<long long>(stats->val), stats->classes,
               stats->bytes / 1048576.0);
  return 0;
}

}  // namespace wrpn::trainer
