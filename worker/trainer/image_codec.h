#pragma once
// JPEG/PNG decoding and JPEG encoding for the image datasets. JPEGs can be decoded at a
// libjpeg-turbo DCT-domain scale (1/8 .. 8/8): the decoder skips the work for detail the output
// cannot show. Stateless functions, safe to call from several threads (each thread keeps its
// own TurboJPEG handle).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace wrpn::trainer {

// A decoded image, HWC, 3 channels (RGB).
struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

// Width and height from the image's header (JPEG or PNG, by signature).
struct ImageSize {
  int width = 0, height = 0;
  bool jpeg = false;
};
absl::StatusOr<ImageSize> ReadImageSize(std::string_view bytes, const std::string& name);

// Decodes JPEG or PNG bytes (by signature); `name` prefixes errors.
absl::StatusOr<Image> DecodeImage(std::string_view bytes, const std::string& name);

// Decodes at the smallest DCT scale m/8 whose scaled (min_w x min_h) still covers (need_w x
// need_h) pixels: a crop of min_w x min_h source pixels that is to become need_w x need_h output
// pixels. PNGs (and JPEGs no scale can shrink) decode at full size. The result's size tells the
// scale used: width = ceil(source width * m / 8).
absl::StatusOr<Image> DecodeImageCovering(std::string_view bytes, const std::string& name,
                                          double min_w, double min_h, int need_w, int need_h);

// Encodes RGB pixels as a baseline JPEG, 4:2:0, at `quality` (1..100).
absl::StatusOr<std::string> EncodeJpeg(const Image& img, int quality);

}  // namespace wrpn::trainer
