// ForkExecLauncher with /bin/sh children: output capture, exit status, signals, environment.
#include "worker/agent/process_launcher.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
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

}  // namespace
}  // namespace wrpn::agent
