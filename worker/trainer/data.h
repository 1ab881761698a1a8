#pragma once
// Datasets for the trainer: readers (IDX, CIFAR-10 binary, image folders, packed files,
// synthetic), the augmentations, and a loader that builds batches ahead of the training step on
// worker threads (image decoding: image_codec.h; crops and resampling: crop_resize.h; packed
// files: packed_format.h, packed_dataset.h).
// No LibTorch here: batches are plain float buffers that the trainer wraps without copying.
// Datasets are immutable after opening and safe to read from several threads.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/trial_config.h"
#include "worker/trainer/crop_resize.h"
#include "worker/trainer/image_codec.h"

namespace wrpn::trainer {

// Images of one split held in memory as uint8, CHW per image.
struct InMemorySplit {
  int channels = 0, height = 0, width = 0;
  std::vector<uint8_t> pixels;
  std::vector<int64_t> labels;
  int64_t size() const { return static_cast<int64_t>(labels.size()); }
};

// Parses an IDX image file and label file (MNIST/Fashion-MNIST), already decompressed; `name`
// prefixes errors. Checks magic numbers, dimensions, truncation and matching counts.
absl::StatusOr<InMemorySplit> ParseIdx(const std::string& images, const std::string& labels,
                                       const std::string& images_name,
                                       const std::string& labels_name);
// Reads a file, gunzipping it when it is gzip (or when only `path`.gz exists). A stream that
// inflates past `max_bytes` is a data error (a gzip bomb must not exhaust memory).
inline constexpr size_t kMaxGunzipBytes = size_t{4} << 30;
absl::StatusOr<std::string> ReadMaybeGzip(const std::string& path,
                                          size_t max_bytes = kMaxGunzipBytes);
absl::StatusOr<InMemorySplit> ReadIdx(const std::string& images_path,
                                      const std::string& labels_path);
// CIFAR-10 binary batches: records of 1 label byte + 3072 pixel bytes.
absl::StatusOr<InMemorySplit> ParseCifar10(const std::string& bytes, const std::string& name);
absl::StatusOr<InMemorySplit> ReadCifar10(const std::vector<std::string>& files);

// ImageNet's per-channel mean and standard deviation (RGB, 0..1).
Normalization ImageNetNormalization();

// One ImageNet-style sample from encoded image bytes: with `train`, the random-resized crop and
// flip drawn from `seed`, else resize + center crop; decoded at the smallest JPEG DCT scale that
// still covers the crop at `size` pixels, resampled and normalised into `out` (3 x size x size).
// `width`/`height`: the size an index recorded (checked against the header), or 0.
[[nodiscard]] absl::Status LoadImageSample(std::string_view bytes, const std::string& name,
                                           int width, int height, int size, bool train,
                                           uint64_t seed, const Normalization& norm, float* out);

// The same sample from raw HWC RGB pixels (a packed file's raw records): no decode.
void LoadRawSample(const uint8_t* rgb, int width, int height, int size, bool train, uint64_t seed,
                   const Normalization& norm, float* out);

// Which resampler LoadImageSample uses, process-wide: the fast path (DCT-scaled decode, then
// the fixed-point CropResize) or the reference (full decode, then ReferenceCropResize), kept to
// measure and check the fast one against (bench/data_bench, the accuracy comparison in
// docs/benchmarks.md). The default comes from $WRPN_RESAMPLE ("reference"; else fast).
enum class ResamplePath { kFast, kReference };
void SetResamplePath(ResamplePath path);
ResamplePath GetResamplePath();

// A class-per-folder tree: root/train/<class>/*.{jpg,jpeg,png} and root/val (or validation).
struct ImageFolderTree {
  std::vector<std::string> classes;  // sorted folder names; label = position
  std::vector<std::pair<std::string, int64_t>> train, val;  // (path, label), sorted by path
};
absl::StatusOr<ImageFolderTree> ScanImageFolder(const std::string& root);

class BatchPool;

// One split of a dataset.
class Dataset {
 public:
  virtual ~Dataset() = default;
  // The batch buffers its BatchLoaders recycle, kept from epoch to epoch while the dataset lives.
  std::shared_ptr<BatchPool> batch_pool(size_t keep) const;
  virtual int64_t size() const = 0;
  virtual int classes() const = 0;
  virtual int channels() const = 0;
  virtual int height() const = 0;  // of the produced (cropped) samples
  virtual int width() const = 0;
  // Writes sample i, normalised, CHW, into `out` (channels*height*width floats). `augment`
  // applies the split's random augmentation, drawn from `seed` alone (so loading is
  // deterministic whatever the thread that does it).
  [[nodiscard]] virtual absl::Status Load(int64_t i, bool augment, uint64_t seed, float* out,
                                          int64_t* label) const = 0;

 private:
  mutable std::mutex pool_mu_;
  mutable std::shared_ptr<BatchPool> pool_;
};

struct DataSplits {
  std::unique_ptr<Dataset> train;
  std::unique_ptr<Dataset> test;
};

// Opens the dataset a trial config names (subsets applied). Errors name the file and problem.
absl::StatusOr<DataSplits> OpenDataset(const DatasetConfig& config);

// The fixed-seed subset of n of [0, size) (sorted) that every trial of a sweep sees; all of
// them when n <= 0 or n >= size.
std::vector<int64_t> SubsetIndices(int64_t size, int64_t n);

// In-memory split with pad-and-crop plus optional horizontal flip augmentation.
std::unique_ptr<Dataset> MakeInMemoryDataset(InMemorySplit split, int classes, Normalization norm,
                                             int crop_pad, bool flip);

// Deterministic order of an epoch: a permutation of [0, n) drawn from (seed, epoch).
std::vector<int64_t> EpochOrder(int64_t n, uint64_t seed, int64_t epoch);
uint64_t MixSeed(uint64_t a, uint64_t b);

// Loader threads when the config leaves num_workers at -1: all the cores a rank was given, less
// one for the thread that drives a GPU (on CPU the loader's threads sleep once `prefetch`
// batches are ready, so they share the cores with the compute threads).
int DefaultLoaderThreads(int rank_cores, bool cuda);

// Allocates on 64-byte boundaries (cache lines; the resampler's streaming stores need 32).
template <typename T>
struct CacheAlignedAllocator {
  using value_type = T;
  CacheAlignedAllocator() = default;
  template <typename U>
  CacheAlignedAllocator(const CacheAlignedAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{64})); }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t{64}); }
  bool operator==(const CacheAlignedAllocator&) const { return true; }
  bool operator!=(const CacheAlignedAllocator&) const { return false; }
};

struct Batch {
  int64_t size = 0;
  std::vector<float, CacheAlignedAllocator<float>> images;  // size x C x H x W
  std::vector<int64_t> labels;
};

// Builds the batches of `indices` (in order, `batch_size` each, the last one short unless
// drop_last) on `workers` threads, at most `prefetch` batches ahead of the consumer. With zero
// workers batches are built by Next() itself. Next() is for one consumer thread. A batch the
// consumer lets go of (its last shared_ptr) is recycled for a later one, also of a later loader
// of the same dataset (Dataset::batch_pool): a batch of 64 ImageNet crops is 38 MB, which malloc
// maps afresh each time (page faults and zeroing cost about as much as the resampling).
class BatchLoader {
 public:
  BatchLoader(const Dataset& dataset, std::vector<int64_t> indices, int64_t batch_size,
              bool drop_last, bool augment, uint64_t seed, int workers, int prefetch = 4,
              int64_t first_batch = 0);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  int64_t num_batches() const { return num_batches_; }
  // The next batch, or nullptr after the last one.
  absl::StatusOr<std::shared_ptr<Batch>> Next();
  // Seconds Next() has spent waiting for (or, with zero workers, building) batches.
  double wait_seconds() const { return wait_seconds_; }

 private:
  absl::StatusOr<std::shared_ptr<Batch>> Build(int64_t b) const;
  void WorkerLoop();

  const Dataset& dataset_;
  const std::vector<int64_t> indices_;
  const int64_t batch_size_;
  const int64_t num_batches_;
  const bool augment_;
  const uint64_t seed_;
  const int prefetch_;
  const std::shared_ptr<BatchPool> pool_;
  double wait_seconds_ = 0;  // the consumer thread's only

  std::mutex mu_;
  std::condition_variable cv_;
  int64_t next_to_build_;
  int64_t next_to_return_;
  bool stopping_ = false;
  std::map<int64_t, absl::StatusOr<std::shared_ptr<Batch>>> ready_;
  std::vector<std::thread> threads_;
};

}  // namespace wrpn::trainer
