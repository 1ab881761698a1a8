#include "worker/trainer/data.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/ascii.h"
#include "common/status.h"
#include "worker/trainer/packed_dataset.h"

namespace wrpn::trainer {
namespace {

namespace fs = std::filesystem;

absl::Status DataError(const std::string& name, const std::string& what) {
  return absl::DataLossError(absl::StrCat(name, ": ", what));
}

uint32_t BigEndian32(const std::string& b, size_t off) {
  return (uint32_t{static_cast<uint8_t>(b[off])} << 24) |
         (uint32_t{static_cast<uint8_t>(b[off + 1])} << 16) |
         (uint32_t{static_cast<uint8_t>(b[off + 2])} << 8) |
         uint32_t{static_cast<uint8_t>(b[off + 3])};
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat(path, ": cannot open (", std::strerror(errno), ")"));
  struct stat st{};
  std::string data;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) data.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string err = std::strerror(errno);
      ::close(fd);
      return DataError(path, "read error (" + err + ")");
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return data;
}

absl::StatusOr<std::string> Gunzip(const std::string& in, const std::string& name,
                                   size_t max_bytes) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 32) != Z_OK) return DataError(name, "zlib init failed");
  std::string out;
  out.resize(std::min(std::max<size_t>(in.size() * 4, 1 << 16), std::max<size_t>(max_bytes, 1)));
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    if (zs.total_out == out.size()) {
      if (out.size() >= max_bytes) {
        inflateEnd(&zs);
        return DataError(name, absl::StrCat("inflates to more than ", max_bytes, " bytes"));
      }
      out.resize(std::min(out.size() * 2, max_bytes));
    }
    zs.next_out = reinterpret_cast<Bytef*>(&out[zs.total_out]);
    zs.avail_out = static_cast<uInt>(out.size() - zs.total_out);
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) {
      inflateEnd(&zs);
      return DataError(name, "truncated gzip stream");
    }
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
      std::string msg = zs.msg ? zs.msg : "corrupt gzip data";
      inflateEnd(&zs);
      return DataError(name, msg);
    }
  }
  out.resize(zs.total_out);
  inflateEnd(&zs);
  return out;
}

// splitmix64: a cheap, well-mixed seed combiner.
uint64_t SplitMix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

class InMemoryDataset final : public Dataset {
 public:
  InMemoryDataset(InMemorySplit split, int classes, Normalization norm, int crop_pad, bool flip)
      : s_(std::move(split)), classes_(classes), norm_(std::move(norm)), pad_(crop_pad),
        flip_(flip) {}
  int64_t size() const override { return s_.size(); }
  int classes() const override { return classes_; }
  int channels() const override { return s_.channels; }
  int height() const override { return s_.height; }
  int width() const override { return s_.width; }

  absl::Status Load(int64_t i, bool augment, uint64_t seed, float* out,
                    int64_t* label) const override {
    const int C = s_.channels, H = s_.height, W = s_.width;
    int dy = 0, dx = 0;
    bool flip = false;
    if (augment) {
      std::mt19937_64 rng(seed);
      if (pad_ > 0) {
        std::uniform_int_distribution<int> d(-pad_, pad_);
        dy = d(rng);
        dx = d(rng);
      }
      flip = flip_ && (rng() & 1);
    }
    const uint8_t* src = s_.pixels.data() + i * int64_t{C} * H * W;
    for (int c = 0; c < C; ++c) {
      const float scale = 1.0f / (255.0f * norm_.std[c]);
      const float shift = -norm_.mean[c] / norm_.std[c];
      for (int y = 0; y < H; ++y) {
        const int sy = y + dy;
        for (int x = 0; x < W; ++x) {
          const int sx = (flip ? W - 1 - x : x) + dx;
          const uint8_t v =
              (sy >= 0 && sy < H && sx >= 0 && sx < W) ? src[(int64_t{c} * H + sy) * W + sx] : 0;
          *out++ = v * scale + shift;
        }
      }
    }
    *label = s_.labels[i];
    return absl::OkStatus();
  }

 private:
  InMemorySplit s_;
  int classes_;
  Normalization norm_;
  int pad_;
  bool flip_;
};

// Class-per-folder image tree, decoded on the fly. Training samples get an ImageNet-style
// random-resized crop and flip; evaluation a resize to size*256/224 and a center crop.
class ImageFolderDataset final : public Dataset {
 public:
  ImageFolderDataset(std::vector<std::pair<std::string, int64_t>> files, int classes, int size,
                     bool train)
      : files_(std::move(files)), classes_(classes), size_(size), train_(train),
        norm_(ImageNetNormalization()) {}
  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  int classes() const override { return classes_; }
  int channels() const override { return 3; }
  int height() const override { return size_; }
  int width() const override { return size_; }

  absl::Status Load(int64_t i, bool augment, uint64_t seed, float* out,
                    int64_t* label) const override {
    const auto& [path, cls] = files_[i];
    ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
    RETURN_IF_ERROR(LoadImageSample(bytes, path, 0, 0, size_, augment && train_, seed, norm_, out));
    *label = cls;
    return absl::OkStatus();
  }

 private:
  std::vector<std::pair<std::string, int64_t>> files_;
  int classes_;
  int size_;
  bool train_;
  Normalization norm_;
};

InMemorySplit TakeSubset(InMemorySplit s, int64_t n) {
  if (n <= 0 || n >= s.size()) return s;
  const std::vector<int64_t> order = SubsetIndices(s.size(), n);
  InMemorySplit out;
  out.channels = s.channels;
  out.height = s.height;
  out.width = s.width;
  const int64_t img = int64_t{s.channels} * s.height * s.width;
  out.pixels.resize(n * img);
  out.labels.resize(n);
  for (int64_t k = 0; k < n; ++k) {
    std::memcpy(out.pixels.data() + k * img, s.pixels.data() + order[k] * img, img);
    out.labels[k] = s.labels[order[k]];
  }
  return out;
}

absl::Status CheckLabels(const InMemorySplit& s, int classes, const std::string& name) {
  for (int64_t i = 0; i < s.size(); ++i) {
    if (s.labels[i] < 0 || s.labels[i] >= classes) {
      return DataError(name, absl::StrCat("label ", s.labels[i], " of item ", i,
                                          " is outside 0..", classes - 1));
    }
  }
  return absl::OkStatus();
}

std::string FindIdx(const std::string& dir, const std::string& stem) {
  for (const std::string& cand : {stem, stem + ".gz"}) {
    if (fs::exists(fs::path(dir) / cand)) return (fs::path(dir) / cand).string();
  }
  return (fs::path(dir) / stem).string();
}

InMemorySplit Synthetic(const DatasetConfig& c, int64_t n, uint64_t seed) {
  // Learnable: each class has a fixed random template; samples are template + noise.
  InMemorySplit s;
  s.channels = c.channels;
  s.height = c.height;
  s.width = c.width;
  const int64_t img = int64_t{c.channels} * c.height * c.width;
  std::mt19937_64 trng(0xC1A55);
  std::vector<uint8_t> templates(int64_t{c.classes} * img);
  for (auto& t : templates) t = static_cast<uint8_t>(trng() % 256);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0, 40);
  s.pixels.resize(n * img);
  s.labels.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t cls = static_cast<int64_t>(rng() % c.classes);
    s.labels[i] = cls;
    for (int64_t p = 0; p < img; ++p) {
      s.pixels[i * img + p] = static_cast<uint8_t>(
          std::clamp(templates[cls * img + p] + noise(rng), 0.0, 255.0));
    }
  }
  return s;
}

absl::StatusOr<DataSplits> OpenImageFolder(const DatasetConfig& c) {
  ASSIGN_OR_RETURN(ImageFolderTree tree, ScanImageFolder(c.path));
  auto subset = [](std::vector<std::pair<std::string, int64_t>> f, int64_t n) {
    std::vector<std::pair<std::string, int64_t>> out;
    for (int64_t i : SubsetIndices(static_cast<int64_t>(f.size()), n)) out.push_back(std::move(f[i]));
    return out;
  };
  const int size = c.image_size > 0 ? c.image_size : 224;
  const int k = static_cast<int>(tree.classes.size());
  DataSplits d;
  d.train = std::make_unique<ImageFolderDataset>(subset(std::move(tree.train), c.train_subset), k,
                                                 size, true);
  d.test = std::make_unique<ImageFolderDataset>(subset(std::move(tree.val), c.test_subset), k,
                                                size, false);
  return d;
}

absl::StatusOr<std::vector<std::pair<std::string, int64_t>>> ScanFolder(
    const fs::path& dir, const std::vector<std::string>& classes) {
  std::vector<std::pair<std::string, int64_t>> files;
  for (size_t k = 0; k < classes.size(); ++k) {
    const fs::path cdir = dir / classes[k];
    if (!fs::is_directory(cdir)) continue;
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(cdir)) {
      std::string ext = absl::AsciiStrToLower(e.path().extension().string());
      if (e.is_regular_file() && (ext == ".jpg" || ext == ".jpeg" || ext == ".png")) {
        names.push_back(e.path().string());
      }
    }
    std::sort(names.begin(), names.end());
    for (auto& n : names) files.emplace_back(std::move(n), static_cast<int64_t>(k));
  }
  if (files.empty()) return DataError(dir.string(), "no .jpg/.jpeg/.png images in class folders");
  return files;
}

}  // namespace

Normalization ImageNetNormalization() { return {{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}}; }

namespace {
std::atomic<ResamplePath>& ResamplePathFlag() {
  static std::atomic<ResamplePath> path{[] {
    const char* v = std::getenv("WRPN_RESAMPLE");
    return v && std::string(v) == "reference" ? ResamplePath::kReference : ResamplePath::kFast;
  }()};
  return path;
}
}  // namespace

void SetResamplePath(ResamplePath path) { ResamplePathFlag().store(path); }
ResamplePath GetResamplePath() { return ResamplePathFlag().load(); }

absl::Status LoadImageSample(std::string_view bytes, const std::string& name, int width, int height,
                             int size, bool train, uint64_t seed, const Normalization& norm,
                             float* out) {
  auto choose = [&](int w, int h, CropBox* box) {
    if ((width > 0 || height > 0) && (w != width || h != height)) {
      return DataError(name, absl::StrCat("image is ", w, "x", h, ", not the ", width, "x", height,
                                          " its index says"));
    }
    *box = train ? RandomResizedCropBox(w, h, seed) : CenterCropBox(w, h);
    return absl::OkStatus();
  };
  if (GetResamplePath() == ResamplePath::kReference) {
    ASSIGN_OR_RETURN(const ImageSize header, ReadImageSize(bytes, name));
    CropBox box;
    RETURN_IF_ERROR(choose(header.width, header.height, &box));
    ASSIGN_OR_RETURN(Image full, DecodeImage(bytes, name));
    ReferenceCropResize(full.rgb.data(), full.width, full.height, box, size, norm, out);
    return absl::OkStatus();
  }
  thread_local ImageRegion r;  // its pixel buffer is reused from sample to sample
  CropBox box;
  RETURN_IF_ERROR(DecodeImageRegion(bytes, name, choose, size, size, &r, &box));
  CropBox b = ScaleBox(box, r.width, r.height, r.full_w, r.full_h);
  b.x0 -= r.x0;
  b.y0 -= r.y0;
  CropResize(r.img.rgb.data(), r.img.width, r.img.height, b, size, norm, out);
  return absl::OkStatus();
}

void LoadRawSample(const uint8_t* rgb, int width, int height, int size, bool train, uint64_t seed,
                   const Normalization& norm, float* out) {
  const CropBox box = train ? RandomResizedCropBox(width, height, seed) : CenterCropBox(width, height);
  if (GetResamplePath() == ResamplePath::kReference) {
    ReferenceCropResize(rgb, width, height, box, size, norm, out);
  } else {
    CropResize(rgb, width, height, box, size, norm, out);
  }
}

absl::StatusOr<ImageFolderTree> ScanImageFolder(const std::string& root_path) {
  const fs::path root(root_path);
  const fs::path train = root / "train";
  fs::path val = root / "val";
  if (!fs::is_directory(val)) val = root / "validation";
  if (!fs::is_directory(train)) return DataError(train.string(), "missing folder");
  if (!fs::is_directory(val)) return DataError(val.string(), "missing folder (val or validation)");
  ImageFolderTree tree;
  for (const auto& e : fs::directory_iterator(train))
    if (e.is_directory()) tree.classes.push_back(e.path().filename().string());
  std::sort(tree.classes.begin(), tree.classes.end());
  if (tree.classes.size() < 2) return DataError(train.string(), "needs at least 2 class folders");
  ASSIGN_OR_RETURN(tree.train, ScanFolder(train, tree.classes));
  ASSIGN_OR_RETURN(tree.val, ScanFolder(val, tree.classes));
  return tree;
}

std::vector<int64_t> SubsetIndices(int64_t size, int64_t n) {
  std::vector<int64_t> order;
  if (n <= 0 || n >= size) {
    order.resize(size);
    std::iota(order.begin(), order.end(), 0);
    return order;
  }
  // A fixed-seed subset, the same for every trial, so cells of a sweep see the same data.
  order = EpochOrder(size, 0x5eed, 0);
  order.resize(n);
  std::sort(order.begin(), order.end());
  return order;
}

uint64_t MixSeed(uint64_t a, uint64_t b) { return SplitMix(SplitMix(a) ^ (b + 0x632BE59BD9B4E019ull)); }

std::vector<int64_t> EpochOrder(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(MixSeed(seed, static_cast<uint64_t>(epoch)));
  // Fisher-Yates with our own index draw: std::shuffle's use of the engine is unspecified, and
  // the order must be identical on every platform for resume and sharding.
  for (int64_t i = n - 1; i > 0; --i) {
    const int64_t j = static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1));
    std::swap(order[i], order[j]);
  }
  return order;
}

absl::StatusOr<std::string> ReadMaybeGzip(const std::string& path, size_t max_bytes) {
  std::string actual = path;
  if (!fs::exists(actual) && fs::exists(path + ".gz")) actual = path + ".gz";
  ASSIGN_OR_RETURN(std::string bytes, ReadFile(actual));
  if (bytes.size() >= 2 && static_cast<uint8_t>(bytes[0]) == 0x1f &&
      static_cast<uint8_t>(bytes[1]) == 0x8b) {
    return Gunzip(bytes, actual, max_bytes);
  }
  return bytes;
}

absl::StatusOr<InMemorySplit> ParseIdx(const std::string& images, const std::string& labels,
                                       const std::string& images_name,
                                       const std::string& labels_name) {
  if (images.size() < 16) return DataError(images_name, "truncated IDX header (need 16 bytes)");
  if (BigEndian32(images, 0) != 0x00000803) {
    return DataError(images_name, absl::StrCat("wrong magic 0x", absl::Hex(BigEndian32(images, 0)),
                                                " (IDX uint8 3-d images need 0x00000803)"));
  }
  if (labels.size() < 8) return DataError(labels_name, "truncated IDX header (need 8 bytes)");
  if (BigEndian32(labels, 0) != 0x00000801) {
    return DataError(labels_name, absl::StrCat("wrong magic 0x", absl::Hex(BigEndian32(labels, 0)),
                                               " (IDX uint8 1-d labels need 0x00000801)"));
  }
  const uint64_t n = BigEndian32(images, 4), h = BigEndian32(images, 8), w = BigEndian32(images, 12);
  const uint64_t nl = BigEndian32(labels, 4);
  if (h == 0 || w == 0 || h > 4096 || w > 4096) {
    return DataError(images_name, absl::StrCat("implausible image size ", h, "x", w));
  }
  if (n != nl) {
    return DataError(labels_name, absl::StrCat("label count ", nl, " != image count ", n, " in ",
                                               images_name));
  }
  if (images.size() != 16 + n * h * w) {
    return DataError(images_name, absl::StrCat(images.size() < 16 + n * h * w ? "truncated" : "trailing data",
                                               ": header says ", n, " images of ", h, "x", w, " (",
                                               16 + n * h * w, " bytes), file has ", images.size()));
  }
  if (labels.size() != 8 + n) {
    return DataError(labels_name, absl::StrCat(labels.size() < 8 + n ? "truncated" : "trailing data",
                                               ": header says ", n, " labels, file has ",
                                               labels.size() - 8));
  }
  InMemorySplit s;
  s.channels = 1;
  s.height = static_cast<int>(h);
  s.width = static_cast<int>(w);
  s.pixels.assign(images.begin() + 16, images.end());
  s.labels.resize(n);
  for (uint64_t i = 0; i < n; ++i) s.labels[i] = static_cast<uint8_t>(labels[8 + i]);
  return s;
}

absl::StatusOr<InMemorySplit> ReadIdx(const std::string& images_path,
                                      const std::string& labels_path) {
  ASSIGN_OR_RETURN(std::string images, ReadMaybeGzip(images_path));
  ASSIGN_OR_RETURN(std::string labels, ReadMaybeGzip(labels_path));
  return ParseIdx(images, labels, images_path, labels_path);
}

absl::StatusOr<InMemorySplit> ParseCifar10(const std::string& bytes, const std::string& name) {
  constexpr size_t kRecord = 1 + 3 * 32 * 32;
  if (bytes.empty() || bytes.size() % kRecord != 0) {
    return DataError(name, absl::StrCat("size ", bytes.size(),
                                        " is not a positive multiple of the 3073-byte record"));
  }
  InMemorySplit s;
  s.channels = 3;
  s.height = s.width = 32;
  const size_t n = bytes.size() / kRecord;
  s.pixels.resize(n * (kRecord - 1));
  s.labels.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t label = static_cast<uint8_t>(bytes[i * kRecord]);
    if (label > 9) {
      return DataError(name, absl::StrCat("record ", i, " has label ", int{label},
                                          " (CIFAR-10 labels are 0..9)"));
    }
    s.labels[i] = label;
    std::memcpy(s.pixels.data() + i * (kRecord - 1), bytes.data() + i * kRecord + 1, kRecord - 1);
  }
  return s;
}

absl::StatusOr<InMemorySplit> ReadCifar10(const std::vector<std::string>& files) {
  InMemorySplit all;
  for (const auto& f : files) {
    ASSIGN_OR_RETURN(std::string bytes, ReadFile(f));
    ASSIGN_OR_RETURN(InMemorySplit part, ParseCifar10(bytes, f));
    all.channels = part.channels;
    all.height = part.height;
    all.width = part.width;
    all.pixels.insert(all.pixels.end(), part.pixels.begin(), part.pixels.end());
    all.labels.insert(all.labels.end(), part.labels.begin(), part.labels.end());
  }
  return all;
}

std::unique_ptr<Dataset> MakeInMemoryDataset(InMemorySplit split, int classes, Normalization norm,
                                             int crop_pad, bool flip) {
  return std::make_unique<InMemoryDataset>(std::move(split), classes, std::move(norm), crop_pad,
                                           flip);
}

absl::StatusOr<DataSplits> OpenDataset(const DatasetConfig& c) {
  DataSplits d;
  InMemorySplit train, test;
  int classes = 10, pad = 0;
  bool flip = false;
  Normalization norm;
  if (c.kind == "fashion_mnist" || c.kind == "mnist") {
    const std::string dir = c.path.empty() ? "/usr/share/datasets/fashion-mnist" : c.path;
    if (!fs::is_directory(dir)) return absl::NotFoundError(absl::StrCat(dir, ": no such folder"));
    ASSIGN_OR_RETURN(train, ReadIdx(FindIdx(dir, "train-images-idx3-ubyte"),
                                    FindIdx(dir, "train-labels-idx1-ubyte")));
    ASSIGN_OR_RETURN(test, ReadIdx(FindIdx(dir, "t10k-images-idx3-ubyte"),
                                   FindIdx(dir, "t10k-labels-idx1-ubyte")));
    RETURN_IF_ERROR(CheckLabels(train, 10, FindIdx(dir, "train-labels-idx1-ubyte")));
    RETURN_IF_ERROR(CheckLabels(test, 10, FindIdx(dir, "t10k-labels-idx1-ubyte")));
    pad = 2;
    flip = c.kind == "fashion_mnist";  // digits must not be mirrored
    norm = c.kind == "mnist" ? Normalization{{0.1307f}, {0.3081f}}
                             : Normalization{{0.2860f}, {0.3530f}};
  } else if (c.kind == "cifar10") {
    fs::path dir(c.path);
    if (fs::is_directory(dir / "cifar-10-batches-bin")) dir /= "cifar-10-batches-bin";
    if (!fs::is_directory(dir)) return absl::NotFoundError(absl::StrCat(c.path, ": no such folder"));
    std::vector<std::string> files;
    for (int i = 1; i <= 5; ++i) files.push_back((dir / absl::StrCat("data_batch_", i, ".bin")).string());
    ASSIGN_OR_RETURN(train, ReadCifar10(files));
    ASSIGN_OR_RETURN(test, ReadCifar10({(dir / "test_batch.bin").string()}));
    pad = 4;
    flip = true;
    norm = {{0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}};
  } else if (c.kind == "imagefolder") {
    return OpenImageFolder(c);
  } else if (c.kind == "packed") {
    return OpenPackedDataset(c);
  } else if (c.kind == "synthetic") {
    train = Synthetic(c, c.train_size, 1);
    test = Synthetic(c, c.test_size, 2);
    classes = c.classes;
    norm = {std::vector<float>(c.channels, 0.5f), std::vector<float>(c.channels, 0.25f)};
  } else {
    return absl::InvalidArgumentError(absl::StrCat("dataset.kind: unknown '", c.kind, "'"));
  }
  if (!c.augment) pad = 0, flip = false;
  d.train = MakeInMemoryDataset(TakeSubset(std::move(train), c.train_subset), classes, norm, pad, flip);
  d.test = MakeInMemoryDataset(TakeSubset(std::move(test), c.test_subset), classes, norm, 0, false);
  return d;
}

// Released batches of a dataset's loaders, kept for their next ones (at most `keep`); it lives as
// long as the dataset or any batch it handed out.
class BatchPool : public std::enable_shared_from_this<BatchPool> {
 public:
  void Keep(size_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    keep_ = std::max(keep_, n);
  }
  std::shared_ptr<Batch> Get() {
    std::unique_ptr<Batch> b;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!free_.empty()) {
        b = std::move(free_.back());
        free_.pop_back();
      }
    }
    if (!b) b = std::make_unique<Batch>();
    return std::shared_ptr<Batch>(b.release(), [pool = shared_from_this()](Batch* p) { pool->Put(p); });
  }

 private:
  void Put(Batch* p) {
    std::unique_ptr<Batch> b(p);
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.size() < keep_) free_.push_back(std::move(b));
  }
  std::mutex mu_;
  size_t keep_ = 0;
  std::vector<std::unique_ptr<Batch>> free_;
};

std::shared_ptr<BatchPool> Dataset::batch_pool(size_t keep) const {
  std::lock_guard<std::mutex> lock(pool_mu_);
  if (!pool_) pool_ = std::make_shared<BatchPool>();
  pool_->Keep(keep);
  return pool_;
}

int DefaultLoaderThreads(int rank_cores, bool cuda) {
  return std::clamp(cuda ? rank_cores - 1 : rank_cores, 1, 64);
}

BatchLoader::BatchLoader(const Dataset& dataset, std::vector<int64_t> indices, int64_t batch_size,
                         bool drop_last, bool augment, uint64_t seed, int workers, int prefetch,
                         int64_t first_batch)
    : dataset_(dataset),
      indices_(std::move(indices)),
      batch_size_(batch_size),
      num_batches_(drop_last ? static_cast<int64_t>(indices_.size()) / batch_size
                             : (static_cast<int64_t>(indices_.size()) + batch_size - 1) / batch_size),
      augment_(augment),
      seed_(seed),
      prefetch_(std::max(1, prefetch)),
      pool_(dataset.batch_pool(static_cast<size_t>(prefetch_ + workers + 2))),
      next_to_build_(first_batch),
      next_to_return_(first_batch) {
  for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { WorkerLoop(); });
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

absl::StatusOr<std::shared_ptr<Batch>> BatchLoader::Build(int64_t b) const {
  const int64_t begin = b * batch_size_;
  const int64_t end = std::min<int64_t>(begin + batch_size_, indices_.size());
  std::shared_ptr<Batch> batch = pool_->Get();
  batch->size = end - begin;
  const int64_t per = int64_t{dataset_.channels()} * dataset_.height() * dataset_.width();
  batch->images.resize(batch->size * per);
  batch->labels.resize(batch->size);
  for (int64_t k = 0; k < batch->size; ++k) {
    const int64_t idx = indices_[begin + k];
    RETURN_IF_ERROR(dataset_.Load(idx, augment_, MixSeed(seed_, static_cast<uint64_t>(idx)),
                                  batch->images.data() + k * per, &batch->labels[k]));
  }
  return batch;
}

void BatchLoader::WorkerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] {
      return stopping_ || (next_to_build_ < num_batches_ && next_to_build_ < next_to_return_ + prefetch_);
    });
    if (stopping_) return;
    const int64_t b = next_to_build_++;
    lock.unlock();
    auto result = Build(b);
    lock.lock();
    ready_.emplace(b, std::move(result));
    cv_.notify_all();
  }
}

absl::StatusOr<std::shared_ptr<Batch>> BatchLoader::Next() {
  if (next_to_return_ >= num_batches_) return std::shared_ptr<Batch>();
  const auto t0 = std::chrono::steady_clock::now();
  auto waited = [&] {
    wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  if (threads_.empty()) {
    auto b = Build(next_to_return_++);
    waited();
    return b;
  }
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return ready_.count(next_to_return_) > 0; });
  auto node = ready_.extract(next_to_return_);
  ++next_to_return_;
  cv_.notify_all();
  waited();
  return std::move(node.mapped());
}

}  // namespace wrpn::trainer
