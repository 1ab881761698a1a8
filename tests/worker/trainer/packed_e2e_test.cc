// End to end with the real wrpn-train: `prepare` packs a generated JPEG tree (progress bar,
// atomic output), `train` reads it as the "packed" kind and reports data_wait_ms_per_step, and a
// corrupt record fails the trial as a data error naming the file and the record.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include <nlohmann/json.hpp>

#include "worker/trainer/photo_generator.h"

namespace wrpn::trainer {
namespace {

namespace fs = std::filesystem;

struct Outcome {
  int code;
  std::string out, err;
};

Outcome RunTrain(const std::string& args, const fs::path& dir) {
  const std::string err = (dir / "stderr.txt").string();
  const std::string cmd = std::string(WRPN_TRAIN_BINARY) + " " + args + " 2>" + err;
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = ::pclose(p);
  std::ifstream in(err);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out,
          std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>())};
}

// A fresh folder `name` holding tree/: 2 classes of generated JPEGs.
fs::path TreeIn(const std::string& name, int train_per_class, int val_per_class, int min_side, int max_side) {
  const fs::path dir = fs::temp_directory_path() / (name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  PhotoTreeOptions t;
  t.classes = 2;
  t.train_per_class = train_per_class;
  t.val_per_class = val_per_class;
  t.min_side = min_side;
  t.max_side = max_side;
  EXPECT_TRUE(WritePhotoTree((dir / "tree").string(), t).ok());
  return dir;
}

TEST(PackedEndToEnd, PrepareThenTrainReportsDataWaitAndCorruptRecordsFailNamingThem) {
  const fs::path dir = TreeIn("wrpn_packed_e2e", 16, 4, 80, 120);
  const std::string pak = (dir / "tree.wrpnpak").string();

  Outcome prep = RunTrain("prepare --imagefolder " + (dir / "tree").string() + " --out " + pak +
                          " --max-side 64 --quality 85 --threads 2",
                      dir);
  ASSERT_EQ(prep.code, 0) << prep.err;
  EXPECT_NE(prep.err.find("prepare ["), std::string::npos) << "progress bar: " << prep.err;
  EXPECT_NE(prep.err.find("100.0% 40/40 images"), std::string::npos) << prep.err;
  EXPECT_NE(prep.err.find("32 train + 8 val images, 2 classes"), std::string::npos) << prep.err;
  ASSERT_TRUE(fs::exists(pak));
  Outcome missing = RunTrain("prepare --imagefolder " + (dir / "nowhere").string() + " --out " +
                             (dir / "x.wrpnpak").string(),
                         dir);
  EXPECT_EQ(missing.code, 3);
  EXPECT_NE(missing.err.find("nowhere/train: missing folder"), std::string::npos) << missing.err;
  EXPECT_FALSE(fs::exists(dir / "x.wrpnpak"));

  const std::string train = "train --network lenet5 --dataset packed --data-path " + pak +
                            " --image-size 32 --epochs 1 --batch-size 8 --threads 1";
  Outcome ok = RunTrain(train, dir);
  ASSERT_EQ(ok.code, 0) << ok.out << ok.err;
  bool saw_epoch = false;
  std::istringstream lines(ok.out);
  for (std::string line; std::getline(lines, line);) {
    auto e = nlohmann::json::parse(line, nullptr, false);
    if (e.is_discarded() || e.value("event", "") != "epoch") continue;
    saw_epoch = true;
    ASSERT_TRUE(e.contains("data_wait_ms_per_step")) << line;
    EXPECT_GE(e["data_wait_ms_per_step"].get<double>(), 0);
  }
  EXPECT_TRUE(saw_epoch) << ok.out;

  // Flip a byte of the first record's JPEG: the file opens, loading that record fails.
  std::fstream f(pak, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(64 + 200);
  char c = 0;
  f.get(c);
  f.seekp(64 + 200);
  f.put(static_cast<char>(c ^ 0x5a));
  f.close();
  Outcome bad = RunTrain(train, dir);
  EXPECT_EQ(bad.code, 3) << bad.out << bad.err;
  EXPECT_NE(bad.out.find("tree.wrpnpak: train record 0: checksum mismatch"), std::string::npos) << bad.out;
  fs::remove_all(dir);
}

TEST(PackedEndToEnd, RawEncodingPreparesAndTrains) {
  const fs::path dir = TreeIn("wrpn_packed_raw_e2e", 8, 2, 50, 70);
  const std::string pak = (dir / "raw.wrpnpak").string();
  const std::string prepare = "prepare --imagefolder " + (dir / "tree").string() + " --out " + pak +
                              " --max-side 40 --threads 1 --encoding ";
  Outcome wrong = RunTrain(prepare + "webp", dir);
  EXPECT_NE(wrong.code, 0);
  EXPECT_NE(wrong.err.find("--encoding"), std::string::npos) << wrong.err;
  Outcome prep = RunTrain(prepare + "raw", dir);
  ASSERT_EQ(prep.code, 0) << prep.err;
  EXPECT_NE(prep.err.find("16 train + 4 val images, 2 classes"), std::string::npos) << prep.err;
  Outcome ok = RunTrain("train --network lenet5 --dataset packed --data-path " + pak +
                            " --image-size 32 --epochs 1 --batch-size 8 --threads 1",
                        dir);
  EXPECT_EQ(ok.code, 0) << ok.out << ok.err;
  int epochs = 0;
  std::istringstream lines(ok.out);
  for (std::string line; std::getline(lines, line);) {
    auto e = nlohmann::json::parse(line, nullptr, false);
    epochs += !e.is_discarded() && e.value("event", "") == "epoch";
  }
  EXPECT_EQ(epochs, 1) << ok.out;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace wrpn::trainer
