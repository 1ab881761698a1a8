#pragma once
// The "packed" dataset kind: a file written by `wrpn-train prepare` (packed_format.h), memory-
// mapped; both splits come from the one file. Samples get the image-folder transforms (JPEG
// records decoded as image-folder files are; raw records resampled straight from the map).
#include "absl/status/statusor.h"
#include "common/trial_config.h"
#include "worker/trainer/data.h"

namespace wrpn::trainer {

// Opens config.path (subsets applied, image_size as for imagefolder).
absl::StatusOr<DataSplits> OpenPackedDataset(const DatasetConfig& config);

}  // namespace wrpn::trainer
