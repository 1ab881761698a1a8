#include "worker/trainer/trainer.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

namespace wrpn::trainer {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("wrpn_trainer_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static TrialConfig Small() {
    TrialConfig c;
    c.network = "lenet5";
    c.wbits = 2;
    c.abits = 4;
    c.dataset.kind = "synthetic";
    c.dataset.train_size = 256;
    c.dataset.test_size = 64;
    c.epochs = 3;
    c.batch_size = 32;
    c.lr = 0.05;
    c.num_workers = 2;
    return c;
  }

  int Run(const TrialConfig& c, std::vector<json>* events = nullptr,
          const std::atomic<bool>* stop = nullptr, std::function<void(const json&)> on = {}) {
    RunOptions o;
    o.stop = stop;
    return RunTrial(c, [&](const json& e) {
      if (events) events->push_back(e);
      if (on) on(e);
    }, o);
  }

  // The one event of resuming, after `change`, the checkpoint of a finished one-epoch Small() run
  // (a config failure).
  json ResumeRefusedAfter(const std::function<void(TrialConfig&)>& change) {
    TrialConfig c = Small();
    c.epochs = 1;
    c.checkpoint_dir = dir_.string();
    EXPECT_EQ(Run(c), kExitOk);
    change(c);
    c.resume = true;
    std::vector<json> ev;
    EXPECT_EQ(Run(c, &ev), kExitBadConfig);
    EXPECT_EQ(ev.size(), 1u);
    return ev.empty() ? json() : ev.back();
  }

  fs::path dir_;
};

void ExpectSameWeights(const std::string& a, const std::string& b) {
  const auto wa = ReadCheckpointWeights(a), wb = ReadCheckpointWeights(b);
  ASSERT_EQ(wa.size(), wb.size());
  ASSERT_GT(wa.size(), 10u);
  for (size_t i = 0; i < wa.size(); ++i) {
    EXPECT_EQ(wa[i].first, wb[i].first);
    EXPECT_EQ(wa[i].second, wb[i].second) << wa[i].first;
  }
}

TEST_F(TrainerTest, EmitsStartedEpochCheckpointFinished) {
  TrialConfig c = Small();
  c.checkpoint_dir = (dir_ / "ck").string();
  std::vector<json> ev;
  ASSERT_EQ(Run(c, &ev), kExitOk);
  ASSERT_EQ(ev.size(), 1u + 3 * 2 + 1);
  EXPECT_EQ(ev.front()["event"], "started");
  EXPECT_EQ(ev[1]["event"], "epoch");
  EXPECT_EQ(ev[2]["event"], "checkpoint");
  EXPECT_EQ(ev.back()["event"], "finished");
  const json& f = ev.back();
  EXPECT_GT(f["top1"].get<double>(), 50.0);  // synthetic classes are easy to separate
  EXPECT_GE(f["top5"].get<double>(), f["top1"].get<double>());
  EXPECT_GT(f["images_per_sec"].get<double>(), 0);
  EXPECT_NEAR(f["cost_uniform"].get<double>(), 6.0 / 64, 1e-12);
  EXPECT_TRUE(fs::exists(CheckpointPath(c.checkpoint_dir)));
  EXPECT_FALSE(fs::exists(CheckpointPath(c.checkpoint_dir) + ".tmp"));
}

// Stop after epoch 1, resume to epoch 3: the same final weights as 3 uninterrupted epochs.
TEST_F(TrainerTest, ResumeAfterAnEpochContinuesExactly) {
  TrialConfig straight = Small();
  straight.checkpoint_dir = (dir_ / "straight").string();
  ASSERT_EQ(Run(straight), kExitOk);

  TrialConfig split = Small();
  split.checkpoint_dir = (dir_ / "split").string();
  split.stop_after_epochs = 1;
  std::vector<json> ev;
  ASSERT_EQ(Run(split, &ev), kExitInterrupted);
  EXPECT_EQ(ev.back()["event"], "interrupted");
  EXPECT_EQ(ev.back()["epoch"], 1);
  split.stop_after_epochs = 0;
  split.resume = true;
  ev.clear();
  ASSERT_EQ(Run(split, &ev), kExitOk);
  EXPECT_EQ(ev.front()["start_epoch"], 1);
  ExpectSameWeights(CheckpointPath(straight.checkpoint_dir), CheckpointPath(split.checkpoint_dir));
}

std::vector<json> EpochEvents(const std::vector<json>& events) {
  std::vector<json> out;
  for (const json& e : events)
    if (e["event"] == "epoch") out.push_back(e);
  return out;
}

// A Pareto rung (issue 21): stop_at_epoch counts from epoch 0, so every attempt stops at the
// same rung; the run to a rung is the first part of the full run (the schedule is the full
// run's), and resuming rung by rung to the end gives exactly the unstopped run.
TEST_F(TrainerTest, StopAtEpochStopsAtTheRungAndResumesExactly) {
  TrialConfig straight = Small();
  straight.checkpoint_dir = (dir_ / "straight").string();
  std::vector<json> straight_ev;
  ASSERT_EQ(Run(straight, &straight_ev), kExitOk);

  TrialConfig rung = Small();
  rung.checkpoint_dir = (dir_ / "rung").string();
  rung.stop_at_epoch = 1;
  std::vector<json> ev, epochs;
  ASSERT_EQ(Run(rung, &ev), kExitInterrupted);
  EXPECT_EQ(ev.back(), json({{"event", "interrupted"}, {"epoch", 1}, {"step", 0}, {"checkpointed", true}}));
  for (const json& e : EpochEvents(ev)) epochs.push_back(e);

  // An attempt that resumes at the rung (its report was lost, a retry) trains nothing.
  rung.resume = true;
  ev.clear();
  ASSERT_EQ(Run(rung, &ev), kExitInterrupted);
  EXPECT_EQ(ev.front()["start_epoch"], 1);
  EXPECT_TRUE(EpochEvents(ev).empty());
  EXPECT_EQ(ev[1]["event"], "checkpoint");
  EXPECT_EQ(ev.back()["epoch"], 1);

  // Promoted to the next rung (epoch 2: one more epoch), then to the end.
  rung.stop_at_epoch = 2;
  ev.clear();
  ASSERT_EQ(Run(rung, &ev), kExitInterrupted);
  EXPECT_EQ(ev.back()["epoch"], 2);
  for (const json& e : EpochEvents(ev)) epochs.push_back(e);
  rung.stop_at_epoch = 0;
  ev.clear();
  ASSERT_EQ(Run(rung, &ev), kExitOk);
  for (const json& e : EpochEvents(ev)) epochs.push_back(e);

  ExpectSameWeights(CheckpointPath(straight.checkpoint_dir), CheckpointPath(rung.checkpoint_dir));
  const std::vector<json> want = EpochEvents(straight_ev);
  ASSERT_EQ(epochs.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    for (const char* k : {"epoch", "lr", "train_loss", "top1", "test_loss"})
      EXPECT_EQ(epochs[i][k], want[i][k]) << "epoch event " << i << ": " << k;
  }
  for (const char* k : {"top1", "top5", "best_top1", "test_loss"})
    EXPECT_EQ(ev.back()[k], straight_ev.back()[k]) << k;

  // A stop epoch at or past the end is no stop.
  TrialConfig past = Small();
  past.epochs = 1;
  past.stop_at_epoch = 1;
  EXPECT_EQ(Run(past), kExitOk);
}

// A stop request in the middle of an epoch checkpoints that step; resuming is still exact.
TEST_F(TrainerTest, StopMidEpochCheckpointsAndResumesExactly) {
  TrialConfig straight = Small();
  straight.epochs = 2;
  straight.checkpoint_dir = (dir_ / "straight").string();
  ASSERT_EQ(Run(straight), kExitOk);

  TrialConfig split = straight;
  split.checkpoint_dir = (dir_ / "split").string();
  std::atomic<bool> stop{false};
  std::vector<json> ev;
  ASSERT_EQ(Run(split, &ev, &stop, [&](const json& e) {
              if (e["event"] == "started") stop = true;
            }),
            kExitInterrupted);
  EXPECT_EQ(ev.back()["event"], "interrupted");
  EXPECT_EQ(ev.back()["step"], 1);
  split.resume = true;
  ev.clear();
  ASSERT_EQ(Run(split, &ev), kExitOk);
  EXPECT_EQ(ev.front()["start_step"], 1);
  ExpectSameWeights(CheckpointPath(straight.checkpoint_dir), CheckpointPath(split.checkpoint_dir));
}

TEST_F(TrainerTest, ResumeFromAnotherNetworksCheckpointIsABadConfig) {
  const json ev = ResumeRefusedAfter([](TrialConfig& c) { c.network = "resnet20"; });
  EXPECT_EQ(ev.value("event", ""), "failed");
  EXPECT_EQ(ev.value("kind", ""), "config");
  EXPECT_NE(ev.value("reason", "").find("is for network = \"lenet5\""), std::string::npos) << ev;
}

TEST_F(TrainerTest, MissingDatasetIsADataError) {
  TrialConfig c = Small();
  c.dataset.kind = "mnist";
  c.dataset.path = (dir_ / "nowhere").string();
  std::vector<json> ev;
  EXPECT_EQ(Run(c, &ev), kExitDataError);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]["kind"], "data");
  EXPECT_NE(ev[0]["reason"].get<std::string>().find("nowhere: no such folder"), std::string::npos);
}

TEST_F(TrainerTest, CudaWithoutCudaIsABadConfig) {
  TrialConfig c = Small();
  c.device = "cuda:0";
  std::vector<json> ev;
  const int rc = Run(c, &ev);
  if (rc == kExitOk) GTEST_SKIP() << "CUDA is available here";
  EXPECT_EQ(rc, kExitBadConfig);
  EXPECT_NE(ev[0]["reason"].get<std::string>().find("device"), std::string::npos);
}

struct Proc {
  int rc;
  std::string out;
};

Proc RunBinary(const std::string& args) {
  const std::string cmd = std::string(WRPN_TRAIN_BINARY) + " " + args + " 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST_F(TrainerTest, BinaryRejectsBadConfigsBeforeTrainingNamingTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {"--network vgg", "network: unknown network 'vgg'"},
      {"--wbits 0", "wbits: must be 1..16 or 32, got 0"},
      {"--abits 33", "abits: must be 1..16 or 32, got 33"},
      {"--width 0", "width: must be > 0"},
      {"--width -2", "width: must be > 0"},
      {"--batch-size 0", "batch_size: must be >= 1, got 0"},
      {"--dataset cifar10", "dataset.path: required"},
      {"--wbits two", "expected an integer"},
  };
  for (const auto& [args, want] : cases) {
    const Proc p = RunBinary(std::string("train ") + args);
    EXPECT_EQ(p.rc, kExitBadConfig) << args;
    EXPECT_NE(p.out.find(want), std::string::npos) << args << " -> " << p.out;
    EXPECT_EQ(p.out.find("\"started\""), std::string::npos) << args;
  }
  std::ofstream(dir_ / "bad.json") << "{\"network\": \"lenet5\", \"widht\": 2}";
  const Proc p = RunBinary("train --config " + (dir_ / "bad.json").string());
  EXPECT_EQ(p.rc, kExitBadConfig);
  EXPECT_NE(p.out.find("widht: unknown field"), std::string::npos) << p.out;
}

TEST_F(TrainerTest, BinarySigtermCheckpointsAndExitsInterrupted) {
  const std::string ck = (dir_ / "ck").string();
  const std::string cmd = std::string(WRPN_TRAIN_BINARY) +
                          " train --network lenet5 --dataset synthetic --epochs 50 --batch-size 8 "
                          "--checkpoint-dir " + ck + " > " + (dir_ / "out.jsonl").string() +
                          " 2>/dev/null";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), nullptr);
    ::_exit(127);
  }
  // Wait until training has started (bounded), then ask it to stop.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(dir_ / "out.jsonl");
    std::string all((std::istreambuf_iterator<char>(in)), {});
    if (all.find("\"started\"") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), kExitInterrupted);
  EXPECT_TRUE(fs::exists(CheckpointPath(ck)));
  std::ifstream in(dir_ / "out.jsonl");
  std::string line, last;
  while (std::getline(in, line)) last = line;
  EXPECT_EQ(json::parse(last)["event"], "interrupted");
}

TEST_F(TrainerTest, DescribePrintsTableAndJson) {
  Proc p = RunBinary("describe --network resnet34 --width 2 --wbits 2 --abits 4 --batch 128");
  EXPECT_EQ(p.rc, 0);
  EXPECT_NE(p.out.find("layer4.2.conv2"), std::string::npos);
  EXPECT_NE(p.out.find("uniform 0.36"), std::string::npos) << p.out;
  p = RunBinary("describe --network alexnet --width 2 --json");
  ASSERT_EQ(p.rc, 0);
  const json j = json::parse(p.out);
  EXPECT_NEAR(j["fma_ratio"].get<double>(), 3.8, 0.05);
  EXPECT_EQ(j["layers"].size(), 8u);
  p = RunBinary("describe --network resnet34 --wbits 0");
  EXPECT_EQ(p.rc, kExitBadConfig);
}

// --measure runs one training step per batch and prints the models next to the measured peak of
// live tensor bytes; the autograd model is within 5% of it (docs/recipe.md, "Training memory").
TEST_F(TrainerTest, DescribeMeasurePrintsModelsAndMeasurement) {
  Proc p = RunBinary("describe --network lenet5 --measure --batch 8,64 --json");
  ASSERT_EQ(p.rc, 0) << p.out;
  const json j = json::parse(p.out);
  EXPECT_EQ(j["device"], "cpu");
  ASSERT_EQ(j["measured"].size(), 2u);
  for (const auto& r : j["measured"]) {
    const double measured = r["measured_tensor_peak_bytes"];
    EXPECT_GT(r["measured_before_step_bytes"].get<double>(), 0);
    EXPECT_GT(measured, r["measured_before_step_bytes"].get<double>());
    EXPECT_NEAR(r["autograd_training_bytes"].get<double>() / measured, 1.0, 0.05) << r.dump();
    EXPECT_GT(r["paper_training_bytes"].get<double>(), 0);
  }
  EXPECT_GT(j["measured"][1]["measured_tensor_peak_bytes"].get<double>(),
            j["measured"][0]["measured_tensor_peak_bytes"].get<double>());
  p = RunBinary("describe --network resnet20 --wbits 2 --abits 4 --measure --batch 4");
  ASSERT_EQ(p.rc, 0) << p.out;
  EXPECT_NE(p.out.find("paper model"), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("autograd model"), std::string::npos);
  EXPECT_NE(p.out.find("measured peak"), std::string::npos);
  EXPECT_EQ(RunBinary("describe --network lenet5 --measure --device tpu").rc, kExitBadConfig);
}

// A GPU out-of-memory is a `resources` failure; other LibTorch errors are not (issue #19). The
// memory cap is ignored on the CPU.
TEST(TrainerErrorsTest, OutOfMemoryIsRecognised) {
  const c10::SourceLocation here{__func__, __FILE__, static_cast<uint32_t>(__LINE__)};
  EXPECT_TRUE(IsOutOfMemory(c10::OutOfMemoryError(here, "CUDA out of memory. Tried to allocate 2 GiB")));
  EXPECT_TRUE(IsOutOfMemory(c10::Error(here, "CUDA out of memory. Tried to allocate 2 GiB")));
  EXPECT_FALSE(IsOutOfMemory(c10::Error(here, "shape mismatch")));
  EXPECT_FALSE(IsOutOfMemory(std::runtime_error("CUDA out of memory")));
}

// ---- Quantization schemes and the FP32 initialisation (issue 20) ----

bool HasKeyEnding(const std::vector<std::pair<std::string, std::vector<float>>>& w, const std::string& suffix) {
  for (const auto& [k, _] : w)
    if (k.size() > suffix.size() && k.compare(k.size() - suffix.size(), suffix.size(), suffix) == 0) return true;
  return false;
}

// Learned steps and alphas are checkpointed and a resumed trial is bit-identical to a straight
// one, for every scheme.
TEST_F(TrainerTest, EverySchemeResumesBitIdenticallyWithItsLearnedParameters) {
  for (const char* scheme : {"lsq", "pact", "dorefa"}) {
    SCOPED_TRACE(scheme);
    TrialConfig straight = Small();
    straight.scheme = scheme;
    straight.epochs = 2;
    straight.dataset.train_size = 128;  // three schemes x four epochs: keep each epoch short
    straight.dataset.test_size = 32;
    straight.checkpoint_dir = (dir_ / (std::string(scheme) + "-straight")).string();
    std::vector<json> ev;
    ASSERT_EQ(Run(straight, &ev), kExitOk) << ev.back();
    TrialConfig split = straight;
    split.checkpoint_dir = (dir_ / (std::string(scheme) + "-split")).string();
    split.stop_after_epochs = 1;
    ASSERT_EQ(Run(split), kExitInterrupted);
    split.stop_after_epochs = 0;
    split.resume = true;
    ASSERT_EQ(Run(split), kExitOk);
    const auto w = ReadCheckpointWeights(CheckpointPath(split.checkpoint_dir));
    if (std::string(scheme) == "lsq") {
      EXPECT_TRUE(HasKeyEnding(w, ".step"));
      EXPECT_TRUE(HasKeyEnding(w, ".step_ready"));
    }
    if (std::string(scheme) == "pact") EXPECT_TRUE(HasKeyEnding(w, ".alpha"));
    ExpectSameWeights(CheckpointPath(straight.checkpoint_dir), CheckpointPath(split.checkpoint_dir));
  }
}

TEST_F(TrainerTest, ResumingAnotherSchemesCheckpointIsABadConfig) {
  const json ev = ResumeRefusedAfter([](TrialConfig& c) { c.scheme = "lsq"; });
  EXPECT_NE(ev.value("reason", "").find("is for scheme = \"wrpn\""), std::string::npos) << ev;
}

// init_from: fp32 starts the quantized trial from the FP32 checkpoint's weights (lr ~ 0, so the
// one step taken leaves them where they were); the LSQ steps start from those weights.
TEST_F(TrainerTest, InitFromFp32StartsFromTheFp32TrialsWeights) {
  TrialConfig fp32 = Small();
  fp32.wbits = fp32.abits = 32;
  fp32.epochs = 1;
  fp32.checkpoint_dir = (dir_ / "fp32").string();
  ASSERT_EQ(Run(fp32), kExitOk);
  const auto source = ReadCheckpointWeights(CheckpointPath(fp32.checkpoint_dir));

  auto one_step = [&](const std::string& name, bool init) {
    TrialConfig q = Small();
    q.scheme = "lsq";
    q.seed = 7;  // another seed: a fresh start would have other weights
    q.lr = 1e-12;
    q.checkpoint_dir = (dir_ / name).string();
    if (init) {
      q.init_from = "fp32";
      q.init_checkpoint = CheckpointPath(fp32.checkpoint_dir);
    }
    std::atomic<bool> stop{false};
    EXPECT_EQ(Run(q, nullptr, &stop, [&](const json& e) { if (e["event"] == "started") stop = true; }),
              kExitInterrupted);
    std::map<std::string, std::vector<float>> out;
    for (auto& [k, v] : ReadCheckpointWeights(CheckpointPath(q.checkpoint_dir))) out[k] = v;
    return out;
  };
  const auto inited = one_step("init", true);
  const auto fresh = one_step("fresh", false);
  for (const auto& [k, v] : source) {
    if (k.find("weight") == std::string::npos) continue;
    ASSERT_TRUE(inited.count(k)) << k;
    ASSERT_EQ(inited.at(k).size(), v.size());
    float max_diff = 0, fresh_diff = 0;
    for (size_t i = 0; i < v.size(); ++i) {
      max_diff = std::max(max_diff, std::abs(inited.at(k)[i] - v[i]));
      fresh_diff = std::max(fresh_diff, std::abs(fresh.at(k)[i] - v[i]));
    }
    EXPECT_LT(max_diff, 1e-6) << k;
    EXPECT_GT(fresh_diff, 1e-3) << k;
  }
  const auto& w = source;
  std::vector<float> conv2;
  for (const auto& [k, v] : w) if (k == "model.body.conv2.weight") conv2 = v;
  ASSERT_FALSE(conv2.empty());
  double mean_abs = 0;
  for (float x : conv2) mean_abs += std::abs(x);
  mean_abs /= conv2.size();
  EXPECT_NEAR(inited.at("model.body.conv2.step")[0], 2 * mean_abs / std::sqrt(1.0), 1e-4);  // 2 bits: Qp = 1
}

TEST_F(TrainerTest, InitFromFp32RefusesAMissingOrForeignCheckpointNamingTheField) {
  TrialConfig q = Small();
  q.init_from = "fp32";
  std::vector<json> ev;
  EXPECT_EQ(Run(q, &ev), kExitBadConfig);
  EXPECT_NE(ev.back()["reason"].get<std::string>().find("init_from: fp32 needs init_checkpoint"), std::string::npos)
      << ev.back();

  TrialConfig other = Small();  // a quantized trial's checkpoint is no FP32 initialisation
  other.epochs = 1;
  other.checkpoint_dir = (dir_ / "q").string();
  ASSERT_EQ(Run(other), kExitOk);
  q.init_checkpoint = CheckpointPath(other.checkpoint_dir);
  ev.clear();
  EXPECT_EQ(Run(q, &ev), kExitBadConfig);
  EXPECT_NE(ev.back()["reason"].get<std::string>().find("is for wbits = 2"), std::string::npos) << ev.back();
  q.init_checkpoint = (dir_ / "absent.pt").string();
  ev.clear();
  EXPECT_EQ(Run(q, &ev), kExitBadConfig);
  EXPECT_NE(ev.back()["reason"].get<std::string>().find("init_checkpoint: cannot read"), std::string::npos) << ev.back();
}

}  // namespace
}  // namespace wrpn::trainer
