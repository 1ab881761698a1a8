#pragma once
// JPEG/PNG decoding and JPEG encoding for the image datasets. JPEGs can be decoded at a
// libjpeg-turbo DCT-domain scale (m/8): the decoder skips the work for detail the output
// cannot show. Stateless functions, safe to call from several threads (each thread keeps its
// own libjpeg decompressor and TurboJPEG compressor, reused from image to image).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "worker/trainer/crop_resize.h"

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

// Decodes the whole image at the smallest DCT scale (DctScaleFor) at which it still covers
// need_w x need_h pixels. PNGs (and JPEGs no scale can shrink) decode at full size. The
// result's size tells the scale used: width = ceil(source width * m / 8).
absl::StatusOr<Image> DecodeImageCovering(std::string_view bytes, const std::string& name, int need_w,
                                          int need_h);

// The DCT scale m (decoding at m/8) for resampling a box of bw x bh source pixels to need_w x
// need_h: the smallest m libjpeg-turbo decodes fast (see kDctScales in image_codec.cc) at which
// the scaled box still covers the output both ways; 8 (full size) when none does.
int DctScaleFor(double bw, double bh, int need_w, int need_h);

// The part of an image a crop needs, decoded: `img` holds the pixels of columns
// [x0, x0 + img.width) and rows [y0, y0 + img.height) of the image scaled to full_w x full_h;
// width x height is the source image's size.
struct ImageRegion {
  Image img;
  int x0 = 0, y0 = 0;
  int full_w = 0, full_h = 0;
  int width = 0, height = 0;
};
// Gets the image's width and height (from its header), sets the box to decode for, or refuses
// the image with an error.
using BoxChooser = absl::FunctionRef<absl::Status(int width, int height, CropBox* box)>;
// Reads the image's header, asks `choose` for the box, and decodes what resampling that box to
// need_w x need_h reads: JPEGs at DctScaleFor's scale, and only the iMCU columns and rows the
// box touches, stopping after its last row (libjpeg-turbo's jpeg_crop_scanline and
// jpeg_skip_scanlines). The entropy-coded data below the box is not read, so damage there goes
// unnoticed (the packed format's CRC-32 catches it). PNGs decode whole. `region`'s buffer is
// reused (pass the same one again to avoid allocating); this thread's JPEG decoder is reused.
[[nodiscard]] absl::Status DecodeImageRegion(std::string_view bytes, const std::string& name,
                                             const BoxChooser& choose, int need_w, int need_h,
                                             ImageRegion* region, CropBox* box);

// Encodes RGB pixels as a baseline JPEG, 4:2:0, at `quality` (1..100).
absl::StatusOr<std::string> EncodeJpeg(const Image& img, int quality);

}  // namespace wrpn::trainer
