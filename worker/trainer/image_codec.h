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

// Decodes at the smallest DCT scale of 1/8, 1/4, 1/2 and 1 whose scaled (min_w x min_h) still
// covers (need_w x need_h) pixels: a crop of min_w x min_h source pixels that is to become need_w x need_h output
// pixels. PNGs (and JPEGs no scale can shrink) decode at full size. The result's size tells the
// scale used: width = ceil(source width * m / 8).
absl::StatusOr<Image> DecodeImageCovering(std::string_view bytes, const std::string& name,
                                          double min_w, double min_h, int need_w, int need_h);

// The part of an image a crop needs, decoded: `img` holds the pixels of columns
// [x0, x0 + img.width) and rows [y0, y0 + img.height) of the image scaled to full_w x full_h.
struct ImageRegion {
  Image img;
  int x0 = 0, y0 = 0;
  int full_w = 0, full_h = 0;
};
// Decodes what resampling the box (bx, by, bw, bh) of the source image to need_w x need_h
// reads: JPEGs at the smallest DCT scale of 1/8, 1/4, 1/2 and 1 (the scales libjpeg-turbo
// decodes with SIMD) at which the box still covers the output, and only the iMCU columns and
// rows the box touches, stopping after its last row (libjpeg-turbo's jpeg_crop_scanline and
// jpeg_skip_scanlines). The entropy-coded data below the box is not read, so damage there goes
// unnoticed (the packed format's CRC-32 catches it). PNGs decode whole.
absl::StatusOr<ImageRegion> DecodeImageRegion(std::string_view bytes, const std::string& name,
                                              double bx, double by, double bw, double bh,
                                              int need_w, int need_h);

// Encodes RGB pixels as a baseline JPEG, 4:2:0, at `quality` (1..100).
absl::StatusOr<std::string> EncodeJpeg(const Image& img, int quality);

}  // namespace wrpn::trainer
