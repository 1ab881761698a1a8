#include "worker/trainer/packed_dataset.h"

#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "worker/trainer/packed_format.h"

namespace wrpn::trainer {
namespace {

class PackedDataset final : public Dataset {
 public:
  PackedDataset(std::shared_ptr<const PackedFile> file, PackedSplit split,
                std::vector<int64_t> records, int size)
      : file_(std::move(file)), split_(split), records_(std::move(records)), size_(size),
        norm_(ImageNetNormalization()) {}
  int64_t size() const override { return static_cast<int64_t>(records_.size()); }
  int classes() const override { return file_->classes(); }
  int channels() const override { return 3; }
  int height() const override { return size_; }
  int width() const override { return size_; }

  absl::Status Load(int64_t i, bool augment, uint64_t seed, float* out,
                    int64_t* label) const override {
    const int64_t r = records_[i];
    ASSIGN_OR_RETURN(PackedRecord rec, file_->Read(split_, r));
    const bool train = augment && split_ == PackedSplit::kTrain;
    if (file_->encoding() == PackedEncoding::kRaw) {  // sizes checked when the file was opened
      LoadRawSample(reinterpret_cast<const uint8_t*>(rec.bytes.data()), rec.width, rec.height, size_, train,
                    seed, norm_, out);
    } else {
      RETURN_IF_ERROR(LoadImageSample(rec.bytes, file_->Where(split_, r), rec.width, rec.height, size_, train,
                                      seed, norm_, out));
    }
    *label = rec.label;
    return absl::OkStatus();
  }

 private:
  std::shared_ptr<const PackedFile> file_;
  PackedSplit split_;
  std::vector<int64_t> records_;
  int size_;
  Normalization norm_;
};

}  // namespace

absl::StatusOr<DataSplits> OpenPackedDataset(const DatasetConfig& c) {
  ASSIGN_OR_RETURN(std::shared_ptr<const PackedFile> file, PackedFile::Open(c.path));
  if (file->classes() < 2) {
    return absl::DataLossError(absl::StrCat(c.path, ": needs at least 2 classes, has ", file->classes()));
  }
  for (PackedSplit s : {PackedSplit::kTrain, PackedSplit::kVal}) {
    if (file->size(s) == 0) {
      return absl::DataLossError(absl::StrCat(c.path, ": the ", PackedSplitName(s), " split is empty"));
    }
  }
  const int size = c.image_size > 0 ? c.image_size : 224;
  DataSplits d;
  d.train = std::make_unique<PackedDataset>(
      file, PackedSplit::kTrain, SubsetIndices(file->size(PackedSplit::kTrain), c.train_subset), size);
  d.test = std::make_unique<PackedDataset>(
      file, PackedSplit::kVal, SubsetIndices(file->size(PackedSplit::kVal), c.test_subset), size);
  return d;
}

}  // namespace wrpn::trainer
