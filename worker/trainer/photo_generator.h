#pragma once
// Seeded photograph-like RGB images for benchmarks and tests of the image pipeline: smooth
// lighting gradients, soft-edged blobs and multi-octave noise, so that JPEG sizes and decode
// costs resemble real photos (flat colour would compress 10x better and decode faster). Each
// class has its own palette and blob shape, so a small network can learn the classes.
// Pure functions.
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "worker/trainer/image_codec.h"

namespace wrpn::trainer {

Image GeneratePhoto(int width, int height, int label, uint64_t seed);

struct PhotoTreeOptions {
  int classes = 10;
  int train_per_class = 100, val_per_class = 20;
  int min_side = 300, max_side = 500;  // each side drawn uniformly in [min_side, max_side]
  int quality = 90;
  bool png = false;  // write PNGs instead of JPEGs
  uint64_t seed = 1;
};
// Writes root/{train,val}/c<k>/<i>.{jpg,png}; returns the bytes written.
absl::StatusOr<int64_t> WritePhotoTree(const std::string& root, const PhotoTreeOptions& options);

// Encodes RGB as PNG (for trees and tests of the PNG path).
absl::StatusOr<std::string> EncodePng(const Image& img);

}  // namespace wrpn::trainer
