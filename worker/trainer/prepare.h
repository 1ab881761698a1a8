#pragma once
// `wrpn-train prepare`: packs an image-folder tree (train and val) into one packed dataset file
// (packed_format.h): each image decoded, resized so its longer side is at most max_side (never
// enlarged), re-encoded as JPEG at `quality` or stored as raw RGB pixels (encoding "raw": ~10x
// the bytes, no decode when training). The file appears atomically, complete or not at all.
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"

namespace wrpn::trainer {

struct PrepareOptions {
  std::string imagefolder;  // root holding train/ and val/ (or validation/)
  std::string out;
  int max_side = 256;
  int quality = 90;
  std::string encoding = "jpeg";  // or "raw"
  int threads = 0;  // 0 = this machine's cores
  // Called on the calling thread after each image: (images done, total, bytes written so far).
  std::function<void(int64_t, int64_t, int64_t)> progress;
};

struct PrepareStats {
  int64_t train = 0, val = 0, bytes = 0;
  int classes = 0;
};

absl::StatusOr<PrepareStats> PreparePacked(const PrepareOptions& options);

}  // namespace wrpn::trainer
