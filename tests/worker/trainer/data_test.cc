#include "worker/trainer/data.h"

#include <gtest/gtest.h>
#include <png.h>
#include <turbojpeg.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <set>

namespace wrpn::trainer {
namespace {

namespace fs = std::filesystem;

std::string Be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string IdxImages(uint32_t n, uint32_t h, uint32_t w) {
  std::string s = Be32(0x803) + Be32(n) + Be32(h) + Be32(w);
  for (uint32_t i = 0; i < n * h * w; ++i) s.push_back(static_cast<char>(i % 251));
  return s;
}
std::string IdxLabels(uint32_t n) {
  std::string s = Be32(0x801) + Be32(n);
  for (uint32_t i = 0; i < n; ++i) s.push_back(static_cast<char>(i % 10));
  return s;
}

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("wrpn_data_" + std::to_string(::getpid()) + "_" +
                                         std::to_string(counter_++));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string Write(const std::string& name, const std::string& bytes) const {
    const fs::path p = path_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << bytes;
    return p.string();
  }
  std::string WriteGz(const std::string& name, const std::string& bytes) const {
    const std::string p = (path_ / name).string();
    gzFile f = gzopen(p.c_str(), "wb");
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
    return p;
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
  static inline int counter_ = 0;
};

std::string ErrorOf(const absl::StatusOr<InMemorySplit>& s) {
  EXPECT_FALSE(s.ok());
  return s.ok() ? "" : std::string(s.status().message());
}

TEST(Idx, ReadsRawAndGzipFiles) {
  TempDir dir;
  const auto raw = ReadIdx(dir.Write("img", IdxImages(7, 4, 5)), dir.Write("lbl", IdxLabels(7)));
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_EQ(raw->size(), 7);
  EXPECT_EQ(raw->height, 4);
  EXPECT_EQ(raw->width, 5);
  EXPECT_EQ(raw->labels[3], 3);
  EXPECT_EQ(raw->pixels[21], 21);
  const auto gz = ReadIdx(dir.WriteGz("img.gz", IdxImages(7, 4, 5)), dir.WriteGz("lbl.gz", IdxLabels(7)));
  ASSERT_TRUE(gz.ok()) << gz.status();
  EXPECT_EQ(gz->pixels, raw->pixels);
  EXPECT_EQ(gz->labels, raw->labels);
  // A path without .gz finds the .gz file next to it.
  EXPECT_TRUE(ReadIdx((dir.path() / "img").string(), (dir.path() / "lbl").string()).ok());
}

TEST(Idx, CorruptFilesNameTheFileAndTheProblem) {
  TempDir dir;
  const std::string labels = dir.Write("lbl", IdxLabels(7));
  std::string img = IdxImages(7, 4, 5);
  std::string e = ErrorOf(ReadIdx(dir.Write("trunc", img.substr(0, img.size() - 3)), labels));
  EXPECT_NE(e.find("trunc: truncated"), std::string::npos) << e;
  std::string bad = img;
  bad[3] = 0x01;
  e = ErrorOf(ReadIdx(dir.Write("magic", bad), labels));
  EXPECT_NE(e.find("magic: wrong magic"), std::string::npos) << e;
  e = ErrorOf(ReadIdx(dir.Write("img", img), dir.Write("lbl6", IdxLabels(6))));
  EXPECT_NE(e.find("lbl6: label count 6 != image count 7"), std::string::npos) << e;
  e = ErrorOf(ReadIdx(dir.Write("short", "abc"), labels));
  EXPECT_NE(e.find("short: truncated IDX header"), std::string::npos) << e;
  e = ErrorOf(ReadIdx((dir.path() / "missing").string(), labels));
  EXPECT_NE(e.find("missing: cannot open"), std::string::npos) << e;
  std::string gz = dir.WriteGz("cut.gz", img);
  std::string bytes;
  {
    std::ifstream in(gz, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  e = ErrorOf(ReadIdx(dir.Write("cut2.gz", bytes.substr(0, bytes.size() / 2)), labels));
  EXPECT_NE(e.find("cut2.gz: truncated gzip stream"), std::string::npos) << e;
}

std::string CifarRecords(int n, int bad_label_at = -1) {
  std::string s;
  for (int i = 0; i < n; ++i) {
    s.push_back(static_cast<char>(i == bad_label_at ? 11 : i % 10));
    for (int p = 0; p < 3072; ++p) s.push_back(static_cast<char>((p + i) % 256));
  }
  return s;
}

TEST(Cifar10, ReadsBatchesAndRejectsBadOnes) {
  TempDir dir;
  const auto ok = ReadCifar10({dir.Write("a.bin", CifarRecords(3)), dir.Write("b.bin", CifarRecords(2))});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->size(), 5);
  EXPECT_EQ(ok->channels, 3);
  EXPECT_EQ(ok->labels[4], 1);
  std::string e = ErrorOf(ReadCifar10({dir.Write("c.bin", CifarRecords(2).substr(0, 5000))}));
  EXPECT_NE(e.find("c.bin: size 5000 is not a positive multiple"), std::string::npos) << e;
  e = ErrorOf(ReadCifar10({dir.Write("d.bin", CifarRecords(3, 1))}));
  EXPECT_NE(e.find("d.bin: record 1 has label 11"), std::string::npos) << e;
}

std::string EncodePng(int w, int h) {
  std::vector<uint8_t> rgb(w * h * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>(i * 7);
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  img.width = w;
  img.height = h;
  img.format = PNG_FORMAT_RGB;
  png_alloc_size_t size = 0;
  png_image_write_to_memory(&img, nullptr, &size, 0, rgb.data(), 0, nullptr);
  std::string out(size, '\0');
  EXPECT_TRUE(png_image_write_to_memory(&img, out.data(), &size, 0, rgb.data(), 0, nullptr));
  out.resize(size);
  return out;
}

std::string EncodeJpeg(int w, int h) {
  std::vector<uint8_t> rgb(w * h * 3, 128);
  tjhandle tj = tjInitCompress();
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  tjCompress2(tj, rgb.data(), w, 0, h, TJPF_RGB, &buf, &size, TJSAMP_444, 90, 0);
  std::string out(reinterpret_cast<char*>(buf), size);
  tjFree(buf);
  tjDestroy(tj);
  return out;
}

TEST(Images, DecodesPngAndJpegAndRejectsCorruptOnes) {
  auto png = DecodeImage(EncodePng(9, 5), "a.png");
  ASSERT_TRUE(png.ok()) << png.status();
  EXPECT_EQ(png->width, 9);
  EXPECT_EQ(png->height, 5);
  EXPECT_EQ(png->rgb[4], 28);
  auto jpg = DecodeImage(EncodeJpeg(16, 8), "a.jpg");
  ASSERT_TRUE(jpg.ok()) << jpg.status();
  EXPECT_EQ(jpg->width, 16);
  EXPECT_NEAR(jpg->rgb[10], 128, 2);
  const std::string j = EncodeJpeg(64, 64);
  auto cut = DecodeImage(j.substr(0, j.size() / 2), "cut.jpg");
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.status().message().find("cut.jpg"), std::string::npos) << cut.status();
  const std::string p = EncodePng(32, 32);
  auto pcut = DecodeImage(p.substr(0, p.size() - 20), "cut.png");
  ASSERT_FALSE(pcut.ok());
  EXPECT_NE(pcut.status().message().find("cut.png: corrupt PNG"), std::string::npos) << pcut.status();
  auto text = DecodeImage("hello", "x.jpg");
  ASSERT_FALSE(text.ok());
  EXPECT_NE(text.status().message().find("x.jpg: not a JPEG or PNG"), std::string::npos);
}

TEST(ImageFolder, OpensTrainAndValAndCropsToImageSize) {
  TempDir dir;
  for (const char* split : {"train", "val"}) {
    for (const char* cls : {"cat", "dog"}) {
      dir.Write(std::string(split) + "/" + cls + "/1.png", EncodePng(40, 30));
      dir.Write(std::string(split) + "/" + cls + "/2.jpg", EncodeJpeg(50, 60));
    }
  }
  DatasetConfig c;
  c.kind = "imagefolder";
  c.path = dir.path().string();
  c.image_size = 24;
  auto d = OpenDataset(c);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->train->size(), 4);
  EXPECT_EQ(d->test->size(), 4);
  EXPECT_EQ(d->train->classes(), 2);
  EXPECT_EQ(d->train->height(), 24);
  std::vector<float> out(3 * 24 * 24);
  int64_t label = -1;
  ASSERT_TRUE(d->train->Load(3, true, 42, out.data(), &label).ok());
  EXPECT_EQ(label, 1);  // sorted: dog/1.png, dog/2.jpg are 2 and 3
  // A corrupt image fails loading with its path.
  dir.Write("train/dog/2.jpg", "not an image");
  auto st = d->train->Load(3, true, 42, out.data(), &label);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("2.jpg: not a JPEG or PNG"), std::string::npos) << st;
  c.path = (dir.path() / "nowhere").string();
  auto missing = OpenDataset(c);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("train: missing folder"), std::string::npos);
}

TEST(Synthetic, ShapesSubsetsAndDeterminism) {
  DatasetConfig c;
  c.kind = "synthetic";
  c.channels = 3;
  c.height = 8;
  c.width = 6;
  c.classes = 4;
  c.train_size = 50;
  c.test_size = 20;
  c.train_subset = 30;
  auto d = OpenDataset(c);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->train->size(), 30);
  EXPECT_EQ(d->test->size(), 20);
  EXPECT_EQ(d->train->channels(), 3);
  EXPECT_EQ(d->train->classes(), 4);
}

TEST(Loader, SameBatchesWhateverTheNumberOfWorkers) {
  DatasetConfig c;
  c.kind = "synthetic";
  c.train_size = 103;
  auto d = OpenDataset(c);
  ASSERT_TRUE(d.ok());
  auto collect = [&](int workers, int64_t first) {
    BatchLoader loader(*d->train, EpochOrder(103, 7, 2), 10, true, true, 99, workers, 3, first);
    std::vector<float> all;
    std::vector<int64_t> labels;
    while (true) {
      auto b = loader.Next();
      EXPECT_TRUE(b.ok());
      if (!*b) break;
      EXPECT_EQ((*b)->size, 10);
      all.insert(all.end(), (*b)->images.begin(), (*b)->images.end());
      labels.insert(labels.end(), (*b)->labels.begin(), (*b)->labels.end());
    }
    return std::make_pair(all, labels);
  };
  const auto sync = collect(0, 0);
  EXPECT_EQ(sync.second.size(), 100u);  // drop_last
  EXPECT_EQ(collect(3, 0), sync);
  // Starting at batch 4 yields exactly the tail (what resume relies on).
  const auto tail = collect(2, 4);
  EXPECT_EQ(tail.second, std::vector<int64_t>(sync.second.begin() + 40, sync.second.end()));
}

TEST(Loader, EpochOrderIsAPermutationThatChangesPerEpoch) {
  const auto a = EpochOrder(1000, 1, 0), b = EpochOrder(1000, 1, 1);
  EXPECT_EQ(std::set<int64_t>(a.begin(), a.end()).size(), 1000u);
  EXPECT_NE(a, b);
  EXPECT_EQ(a, EpochOrder(1000, 1, 0));
}

TEST(Augment, PadCropAndFlipAreDeterministicPerSeed) {
  InMemorySplit s;
  s.channels = 1;
  s.height = s.width = 4;
  for (int i = 0; i < 16; ++i) s.pixels.push_back(static_cast<uint8_t>(i * 10));
  s.labels = {3};
  auto ds = MakeInMemoryDataset(s, 10, Normalization{{0.f}, {1.f / 255}}, 1, true);
  std::vector<float> a(16), b(16), plain(16);
  int64_t label;
  ASSERT_TRUE(ds->Load(0, false, 5, plain.data(), &label).ok());
  for (int i = 0; i < 16; ++i) EXPECT_FLOAT_EQ(plain[i], i * 10);  // scale 1/(255*std) = 1
  ASSERT_TRUE(ds->Load(0, true, 5, a.data(), &label).ok());
  ASSERT_TRUE(ds->Load(0, true, 5, b.data(), &label).ok());
  EXPECT_EQ(a, b);
  std::set<std::vector<float>> variants;
  for (uint64_t seed = 0; seed < 64; ++seed) {
    ASSERT_TRUE(ds->Load(0, true, seed, a.data(), &label).ok());
    variants.insert(a);
  }
  EXPECT_GT(variants.size(), 8u);  // 9 offsets x 2 flips
}

TEST(FashionMnist, LoadsTheDebianPackageWhenPresent) {
  if (!fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  }
  DatasetConfig c;
  auto d = OpenDataset(c);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->train->size(), 60000);
  EXPECT_EQ(d->test->size(), 10000);
  EXPECT_EQ(d->train->height(), 28);
  EXPECT_EQ(d->train->classes(), 10);
}

}  // namespace
}  // namespace wrpn::trainer
