// The packed dataset: file format round trip, atomic writes, errors naming file and record,
// `prepare` on a generated tree, and the "packed" dataset kind.
#include "worker/trainer/packed_format.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <cstring>

#include <zlib.h>

#include "worker/trainer/crop_resize.h"
#include "worker/trainer/data.h"
#include "worker/trainer/photo_generator.h"
#include "worker/trainer/prepare.h"

namespace wrpn::trainer {
namespace {

namespace fs = std::filesystem;

class PackedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("wrpn_packed_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  static std::string Slurp(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  static void Spit(const std::string& p, const std::string& bytes) {
    std::ofstream(p, std::ios::binary) << bytes;
  }
  PackedInput Record(int label, int w, int h, uint64_t seed) {
    Image img = GeneratePhoto(w, h, label, seed);
    PackedInput r;
    r.bytes = *EncodeJpeg(img, 85);
    r.label = label;
    r.width = w;
    r.height = h;
    return r;
  }
  // `file` with header byte `at` set to `v` and the header's CRC-32 redone.
  static std::string WithHeaderByte(std::string file, size_t at, char v) {
    file[at] = v;
    const uint32_t crc = static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(file.data()), 60));
    std::memcpy(file.data() + 60, &crc, 4);
    return file;
  }
  static PhotoTreeOptions SmallTree(int classes, int train, int val, int min_side, int max_side) {
    PhotoTreeOptions t;
    t.classes = classes;
    t.train_per_class = train;
    t.val_per_class = val;
    t.min_side = min_side;
    t.max_side = max_side;
    return t;
  }
  // 3 train records and 2 val records of 2 classes.
  std::vector<PackedInput> WriteSmall(const std::string& path) {
    std::vector<PackedInput> recs = {Record(0, 40, 30, 1), Record(1, 33, 50, 2), Record(1, 64, 64, 3),
                                     Record(0, 20, 20, 4), Record(1, 30, 40, 5)};
    auto w = PackedWriter::Create(path, {"cat", "dog"});
    EXPECT_TRUE(w.ok()) << w.status();
    for (size_t i = 0; i < recs.size(); ++i) {
      EXPECT_TRUE((*w)->Add(i < 3 ? PackedSplit::kTrain : PackedSplit::kVal, recs[i]).ok());
    }
    EXPECT_TRUE((*w)->Finish().ok());
    return recs;
  }
  fs::path dir_;
};

TEST_F(PackedTest, RoundTripsRecordsLabelsSizesAndClassNames) {
  const auto recs = WriteSmall(Path("a.wrpnpak"));
  auto f = PackedFile::Open(Path("a.wrpnpak"));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->size(PackedSplit::kTrain), 3);
  EXPECT_EQ((*f)->size(PackedSplit::kVal), 2);
  EXPECT_EQ((*f)->class_names(), (std::vector<std::string>{"cat", "dog"}));
  for (int i = 0; i < 5; ++i) {
    const PackedSplit s = i < 3 ? PackedSplit::kTrain : PackedSplit::kVal;
    auto r = (*f)->Read(s, i < 3 ? i : i - 3);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->bytes, recs[i].bytes);
    EXPECT_EQ(r->label, recs[i].label);
    EXPECT_EQ(r->width, recs[i].width);
    EXPECT_EQ(r->height, recs[i].height);
  }
  auto none = (*f)->Read(PackedSplit::kVal, 2);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("a.wrpnpak: val record 2: no such record"), std::string::npos);
  // No temporary file is left behind.
  for (const auto& e : fs::directory_iterator(dir_)) EXPECT_EQ(e.path().filename(), "a.wrpnpak");
}

TEST_F(PackedTest, AnUnfinishedWriteLeavesTheOldFileAndNoTemporary) {
  Spit(Path("a.wrpnpak"), "old contents");
  {
    auto w = PackedWriter::Create(Path("a.wrpnpak"), {"x", "y"});
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Add(PackedSplit::kTrain, Record(0, 16, 16, 1)).ok());
    EXPECT_FALSE((*w)->Add(PackedSplit::kTrain, Record(5, 16, 16, 1)).ok()) << "label 5 of 2 classes";
  }  // destroyed without Finish, as when prepare fails half-way
  EXPECT_EQ(Slurp(Path("a.wrpnpak")), "old contents");
  int files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir_)) ++files;
  EXPECT_EQ(files, 1);
}

TEST_F(PackedTest, TruncatedAndCorruptFilesNameTheFileAndTheRecord) {
  WriteSmall(Path("a.wrpnpak"));
  const std::string good = Slurp(Path("a.wrpnpak"));
  auto expect_error = [&](const std::string& bytes, const std::string& want) {
    Spit(Path("b.wrpnpak"), bytes);
    auto f = PackedFile::Open(Path("b.wrpnpak"));
    ASSERT_FALSE(f.ok()) << "expected: " << want;
    EXPECT_NE(f.status().message().find(want), std::string::npos) << f.status();
  };
  const std::string name = Path("b.wrpnpak");
  expect_error(good.substr(0, good.size() - 7), name + ": truncated: header says");
  expect_error(good.substr(0, 30), name + ": truncated: 30 bytes");
  expect_error(good + "xx", name + ": trailing data");
  expect_error("not a packed file at all, but long enough to hold a whole header......", "no WRPNPAK1 magic");
  std::string header = good;
  header[13] ^= 0x40;  // class count
  expect_error(header, "header checksum mismatch");
  // The index: val record 1's label, then train record 2's offset.
  uint64_t index = 0;
  std::memcpy(&index, good.data() + 32, 8);
  std::string label = good;
  label[index + 4 * 24 + 12] = 9;
  expect_error(label, name + ": val record 1: label 9 is outside 0..1");
  std::string offset = good;
  offset[index + 2 * 24 + 7] = 0x7f;
  expect_error(offset, name + ": train record 2: bytes");
  // A flipped byte inside train record 1's JPEG: opening works, reading it does not.
  std::string body = good;
  uint64_t off1 = 0;
  std::memcpy(&off1, good.data() + index + 24, 8);
  body[off1 + 100] ^= 0x55;
  Spit(name, body);
  auto f = PackedFile::Open(name);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE((*f)->Read(PackedSplit::kTrain, 0).ok());
  auto r = (*f)->Read(PackedSplit::kTrain, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(name + ": train record 1: checksum mismatch"), std::string::npos)
      << r.status();
  auto missing = PackedFile::Open(Path("nope.wrpnpak"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("nope.wrpnpak: cannot open"), std::string::npos);
}

TEST_F(PackedTest, RawRecordsRoundTripAndBadSizesNameTheRecord) {
  std::vector<PackedInput> recs;
  for (int k = 0; k < 3; ++k) {
    const Image img = GeneratePhoto(20 + k, 10 + 3 * k, k % 2, 50 + k);
    recs.push_back(PackedInput{std::string(img.rgb.begin(), img.rgb.end()), k % 2, img.width, img.height});
  }
  {
    auto w = PackedWriter::Create(Path("r.wrpnpak"), {"a", "b"}, PackedEncoding::kRaw);
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_TRUE((*w)->Add(PackedSplit::kTrain, recs[0]).ok());
    ASSERT_TRUE((*w)->Add(PackedSplit::kTrain, recs[1]).ok());
    PackedInput wrong = recs[2];
    wrong.bytes.pop_back();
    const absl::Status st = (*w)->Add(PackedSplit::kVal, wrong);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.message().find("raw record has label 0, size 22x16"), std::string::npos) << st;
    ASSERT_TRUE((*w)->Add(PackedSplit::kVal, recs[2]).ok());
    ASSERT_TRUE((*w)->Finish().ok());
  }
  auto f = PackedFile::Open(Path("r.wrpnpak"));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->encoding(), PackedEncoding::kRaw);
  for (int i = 0; i < 3; ++i) {
    auto r = (*f)->Read(i < 2 ? PackedSplit::kTrain : PackedSplit::kVal, i < 2 ? i : 0);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->bytes, recs[i].bytes);
    EXPECT_EQ(r->width, recs[i].width);
    EXPECT_EQ(r->height, recs[i].height);
    EXPECT_EQ(r->label, recs[i].label);
  }
  // An index whose size does not match the record's bytes: opening names the record.
  const std::string good = Slurp(Path("r.wrpnpak"));
  uint64_t index = 0;
  std::memcpy(&index, good.data() + 32, 8);
  std::string bad = good;
  bad[index + 24 + 16] ^= 1;  // train record 1's width
  Spit(Path("bad.wrpnpak"), bad);
  auto b = PackedFile::Open(Path("bad.wrpnpak"));
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find(Path("bad.wrpnpak") + ": train record 1: raw record of 20x13 pixels has 819 bytes, not 780"),
            std::string::npos)
      << b.status();
  // An unknown encoding (header re-checksummed so that only the encoding is wrong).
  Spit(Path("enc.wrpnpak"), WithHeaderByte(good, 56, 7));
  auto e = PackedFile::Open(Path("enc.wrpnpak"));
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("unknown record encoding 7"), std::string::npos) << e.status();
}

TEST_F(PackedTest, VersionOneFilesStillRead) {
  const auto recs = WriteSmall(Path("a.wrpnpak"));
  const std::string v2 = Slurp(Path("a.wrpnpak"));
  Spit(Path("v1.wrpnpak"), WithHeaderByte(v2, 8, 1));  // version 1: JPEG records, byte 56 zero
  auto f = PackedFile::Open(Path("v1.wrpnpak"));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->encoding(), PackedEncoding::kJpeg);
  auto r = (*f)->Read(PackedSplit::kTrain, 2);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->bytes, recs[2].bytes);
  Spit(Path("v3.wrpnpak"), WithHeaderByte(v2, 8, 3));
  auto g = PackedFile::Open(Path("v3.wrpnpak"));
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("format version 3 (this build reads 1 and 2)"), std::string::npos) << g.status();
}

TEST_F(PackedTest, PrepareRawStoresTheResizedPixelsAndTrainsFromThemWithoutDecoding) {
  ASSERT_TRUE(WritePhotoTree(Path("tree"), SmallTree(2, 3, 2, 60, 100)).ok());
  PrepareOptions o;
  o.imagefolder = Path("tree");
  o.out = Path("raw.wrpnpak");
  o.max_side = 48;
  o.encoding = "raw";
  o.threads = 2;
  auto st = PreparePacked(o);
  ASSERT_TRUE(st.ok()) << st.status();
  auto tree = ScanImageFolder(Path("tree"));
  ASSERT_TRUE(tree.ok());
  auto f = PackedFile::Open(o.out);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->encoding(), PackedEncoding::kRaw);
  for (int64_t i = 0; i < 6; ++i) {
    auto r = (*f)->Read(PackedSplit::kTrain, i);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(std::max(r->width, r->height), 48);
    // The same pixels as the JPEG path's resize, before its re-encoding.
    const std::string src = Slurp(tree->train[i].first);
    auto img = DecodeImageCovering(src, "src", r->width, r->height);
    ASSERT_TRUE(img.ok());
    const CropBox all{0, 0, static_cast<double>(img->width), static_cast<double>(img->height), false};
    const std::vector<uint8_t> want = CropResizeRgb(img->rgb.data(), img->width, img->height, all, r->width, r->height);
    EXPECT_EQ(r->bytes, std::string(want.begin(), want.end())) << "record " << i;
  }
  DatasetConfig c;
  c.kind = "packed";
  c.path = o.out;
  c.image_size = 32;
  auto d = OpenDataset(c);
  ASSERT_TRUE(d.ok()) << d.status();
  std::vector<float> a(3 * 32 * 32), b(a.size());
  int64_t label = -1;
  ASSERT_TRUE(d->train->Load(1, true, 42, a.data(), &label).ok());
  auto r = (*f)->Read(PackedSplit::kTrain, 1);
  ASSERT_TRUE(r.ok());
  LoadRawSample(reinterpret_cast<const uint8_t*>(r->bytes.data()), r->width, r->height, 32, true, 42,
                ImageNetNormalization(), b.data());
  EXPECT_EQ(a, b);
  EXPECT_EQ(label, r->label);
  o.encoding = "png";
  auto bad = PreparePacked(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--encoding: must be jpeg or raw"), std::string::npos) << bad.status();
}

TEST_F(PackedTest, PrepareResizesReencodesAndOpensAsTheDatasetKind) {
  ASSERT_TRUE(WritePhotoTree(Path("tree"), SmallTree(3, 4, 2, 60, 120)).ok());
  // A PNG among the JPEGs, smaller than --max-side: kept at its size.
  Spit(Path("tree/train/c1/small.png"), *EncodePng(GeneratePhoto(40, 30, 1, 9)));
  PrepareOptions o;
  o.imagefolder = Path("tree");
  o.out = Path("tree.wrpnpak");
  o.max_side = 64;
  o.quality = 80;
  o.threads = 2;
  int64_t calls = 0, last_total = 0;
  o.progress = [&](int64_t done, int64_t total, int64_t) {
    EXPECT_EQ(done, ++calls);
    last_total = total;
  };
  auto st = PreparePacked(o);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->train, 13);
  EXPECT_EQ(st->val, 6);
  EXPECT_EQ(calls, 19);
  EXPECT_EQ(last_total, 19);
  auto f = PackedFile::Open(o.out);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->class_names(), (std::vector<std::string>{"c0", "c1", "c2"}));
  bool saw_small = false;
  for (int64_t i = 0; i < 13; ++i) {
    auto r = (*f)->Read(PackedSplit::kTrain, i);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(std::max(r->width, r->height), r->width == 40 && r->height == 30 ? 40 : 64);
    saw_small |= r->width == 40 && r->height == 30;
    auto size = ReadImageSize(r->bytes, "r");
    ASSERT_TRUE(size.ok());
    EXPECT_TRUE(size->jpeg) << "every record is re-encoded as JPEG";
    EXPECT_EQ(size->width, r->width);
  }
  EXPECT_TRUE(saw_small);

  DatasetConfig c;
  c.kind = "packed";
  c.path = o.out;
  c.image_size = 32;
  c.train_subset = 10;
  auto d = OpenDataset(c);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->train->size(), 10);
  EXPECT_EQ(d->test->size(), 6);
  EXPECT_EQ(d->train->classes(), 3);
  EXPECT_EQ(d->train->height(), 32);
  std::vector<float> a(3 * 32 * 32), b(a.size());
  int64_t label = -1;
  ASSERT_TRUE(d->train->Load(3, true, 42, a.data(), &label).ok());
  ASSERT_TRUE(d->train->Load(3, true, 42, b.data(), &label).ok());
  EXPECT_EQ(a, b) << "a sample is a function of its seed";
  EXPECT_GE(label, 0);
  ASSERT_TRUE(d->test->Load(5, false, 0, a.data(), &label).ok());
  EXPECT_EQ(label, 2);

  // A prepare that fails (an unreadable image) leaves no output file.
  Spit(Path("tree/val/c0/broken.jpg"), "\xff\xd8\xff garbage");
  o.out = Path("broken.wrpnpak");
  o.progress = nullptr;
  auto bad = PreparePacked(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("broken.jpg"), std::string::npos) << bad.status();
  EXPECT_FALSE(fs::exists(o.out));
}

}  // namespace
}  // namespace wrpn::trainer
