// ForkExecLauncher with /bin/sh children: output capture, exit status, signals, environment.
#include "worker/agent/process_launcher.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace wrpn::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

// Waits (bounded) for the process to exit, collecting its stdout lines.
ExitStatus Wait(Process& p, std::vector<std::string>* lines = nullptr,
                std::chrono::seconds limit = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    for (auto& l : p.TakeStdoutLines()) {
      if (lines) lines->push_back(l);
    }
    if (auto e = p.Exited()) return *e;
    if (std::chrono::steady_clock::now() > deadline) {
      p.Kill();
      ADD_FAILURE() << "process did not exit in time";
      return {};
    }
    std::this_thread::sleep_for(10ms);
  }
}

ProcessSpec Sh(const std::string& script) {
  ProcessSpec s;
  s.argv = {"/bin/sh", "-c", script};
  return s;
}

TEST(ForkExecLauncherTest, CapturesStdoutLinesStderrAndTheExitCode) {
  ForkExecLauncher launcher;
  auto spec = Sh("echo '{\"event\":\"a\"}'; printf 'two\\nthree'; echo oops >&2; exit 3");
  auto p = launcher.Launch(spec);
  ASSERT_TRUE(p.ok()) << p.status();
  std::vector<std::string> lines;
  ExitStatus e = Wait(**p, &lines);
  EXPECT_EQ(e.exit_code, 3);
  EXPECT_EQ(e.signal, 0);
  EXPECT_EQ(e.Describe(), "exit code 3");
  EXPECT_THAT(lines, ElementsAre("{\"event\":\"a\"}", "two", "three"));
  EXPECT_EQ((*p)->StderrTail(), "oops\n");
  EXPECT_THAT((*p)->TakeStderrLines(), ElementsAre("oops"));
  EXPECT_TRUE((*p)->TakeStderrLines().empty());
}

TEST(ForkExecLauncherTest, KeepsOnlyTheNewestStderrBytes) {
  ForkExecLauncher launcher;
  auto spec = Sh("i=0; while [ $i -lt 2000 ]; do echo line$i >&2; i=$((i+1)); done");
  spec.stderr_tail_bytes = 100;
  auto p = launcher.Launch(spec);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(Wait(**p).ok());
  const std::string tail = (*p)->StderrTail();
  EXPECT_EQ(tail.size(), 100u);
  EXPECT_THAT(tail, HasSubstr("line1999\n"));
}

TEST(ForkExecLauncherTest, PassesEnvironmentAndWorkingDirectory) {
  ForkExecLauncher launcher;
  auto spec = Sh("echo \"$RANK $MASTER_PORT $(pwd)\"");
  spec.env = {{"RANK", "3"}, {"MASTER_PORT", "29500"}};
  spec.cwd = "/tmp";
  auto p = launcher.Launch(spec);
  ASSERT_TRUE(p.ok());
  std::vector<std::string> lines;
  EXPECT_TRUE(Wait(**p, &lines).ok());
  EXPECT_THAT(lines, ElementsAre("3 29500 /tmp"));
}

TEST(ForkExecLauncherTest, TerminateReachesTheTrapAndKillEndsEverything) {
  ForkExecLauncher launcher;
  // Like the trainer: SIGTERM makes it say so and exit 4.
  auto p = launcher.Launch(Sh("trap 'echo interrupted; exit 4' TERM; echo ready; "
                              "while true; do sleep 0.05; done"));
  ASSERT_TRUE(p.ok());
  std::vector<std::string> lines;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (lines.empty() && std::chrono::steady_clock::now() < deadline) {
    for (auto& l : (*p)->TakeStdoutLines()) lines.push_back(l);
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_THAT(lines, ElementsAre("ready"));
  (*p)->Terminate();
  ExitStatus e = Wait(**p, &lines);
  EXPECT_EQ(e.exit_code, 4);
  EXPECT_THAT(lines, ElementsAre("ready", "interrupted"));

  auto q = launcher.Launch(Sh("trap '' TERM; while true; do sleep 0.05; done"));
  ASSERT_TRUE(q.ok());
  std::this_thread::sleep_for(100ms);
  (*q)->Terminate();
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE((*q)->Exited().has_value()) << "it ignores SIGTERM";
  (*q)->Kill();
  ExitStatus k = Wait(**q);
  EXPECT_EQ(k.signal, SIGKILL);
  EXPECT_EQ(k.Describe(), "killed by signal 9 (SIGKILL)");
}

TEST(ForkExecLauncherTest, AnExitedParentDoesNotWaitForDescendantsHoldingThePipes) {
  ForkExecLauncher launcher;
  auto p = launcher.Launch(Sh("sleep 60 & echo started; exit 0"));
  ASSERT_TRUE(p.ok());
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::string> lines;
  EXPECT_TRUE(Wait(**p, &lines).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 15s);
  EXPECT_THAT(lines, ElementsAre("started"));
}

TEST(ForkExecLauncherTest, RejectsAMissingProgram) {
  ForkExecLauncher launcher;
  ProcessSpec spec;
  spec.argv = {"/nonexistent/wrpn-train", "train"};
  auto p = launcher.Launch(spec);
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("/nonexistent/wrpn-train"));
}

// A fresh folder under the test's temp dir, removed at the end.
class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("wrpn-launch-" + std::to_string(::getpid()) + "-" + std::to_string(++count_));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path Write(const std::string& name, const std::string& text,
                              std::filesystem::perms perms) const {
    const auto p = path_ / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << text;
    std::filesystem::permissions(p, perms);
    return p;
  }

 private:
  static inline int count_ = 0;
  std::filesystem::path path_;
};

constexpr auto kExec = std::filesystem::perms::owner_all;
constexpr auto kNoExec = std::filesystem::perms::owner_read | std::filesystem::perms::owner_write;

TEST(ForkExecLauncherTest, ARelativeProgramIsTheAgentsNotOneInsideTheChildsCwd) {
  TempDir dir;
  dir.Write("bin/prog", "#!/bin/sh\necho \"ran in $(pwd)\"\n", kExec);
  const auto before = std::filesystem::current_path();
  std::filesystem::current_path(dir.path());
  ForkExecLauncher launcher;
  ProcessSpec spec;
  spec.argv = {"bin/prog"};
  spec.cwd = "/tmp";
  auto p = launcher.Launch(spec);
  std::filesystem::current_path(before);
  ASSERT_TRUE(p.ok()) << p.status();
  std::vector<std::string> lines;
  EXPECT_TRUE(Wait(**p, &lines).ok());
  EXPECT_THAT(lines, ElementsAre("ran in /tmp"));
}

TEST(ForkExecLauncherTest, AWorkingDirectoryItCannotEnterIsALaunchErrorNotAnExit127) {
  ForkExecLauncher launcher;
  auto spec = Sh("echo never");
  spec.cwd = "/nonexistent/attempt";
  auto p = launcher.Launch(spec);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(p.status().message()),
              HasSubstr("cannot enter the working directory '/nonexistent/attempt'"));
}

TEST(ForkExecLauncherTest, AProgramExecveRefusesIsALaunchErrorNamingItAndWhy) {
  TempDir dir;
  const auto junk = dir.Write("wrpn-train", std::string("\x7f" "ELF garbage"), kExec);
  ForkExecLauncher launcher;
  ProcessSpec spec;
  spec.argv = {junk.string(), "train"};
  auto p = launcher.Launch(spec);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(p.status().message()),
              HasSubstr("cannot execute '" + junk.string() + "': Exec format error"));
}

TEST(ForkExecLauncherTest, CanExecuteWantsAnExecutableRegularFile) {
  TempDir dir;
  ForkExecLauncher launcher;
  EXPECT_TRUE(launcher.CanExecute("/bin/sh").ok());
  const auto plain = dir.Write("plain", "#!/bin/sh\n", kNoExec);
  const absl::Status not_exec = launcher.CanExecute(plain.string());
  EXPECT_EQ(not_exec.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(not_exec.message()), HasSubstr("is not executable"));
  EXPECT_THAT(std::string(launcher.CanExecute(dir.path().string()).message()),
              HasSubstr("is not a regular file"));
  EXPECT_THAT(std::string(launcher.CanExecute((dir.path() / "gone").string()).message()),
              HasSubstr("No such file or directory"));
}

}  // namespace
}  // namespace wrpn::agent
