#include "worker/trainer/image_codec.h"

#include <png.h>
#include <turbojpeg.h>

#include <algorithm>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace wrpn::trainer {
namespace {

constexpr int64_t kMaxPixels = int64_t{1} << 28;

absl::Status DataError(const std::string& name, const std::string& what) {
  return absl::DataLossError(absl::StrCat(name, ": ", what));
}

bool IsJpeg(std::string_view b) {
  return b.size() >= 3 && static_cast<uint8_t>(b[0]) == 0xFF && static_cast<uint8_t>(b[1]) == 0xD8 &&
         static_cast<uint8_t>(b[2]) == 0xFF;
}
bool IsPng(std::string_view b) {
  return b.size() >= 8 && png_sig_cmp(reinterpret_cast<png_const_bytep>(b.data()), 0, 8) == 0;
}
const unsigned char* Bytes(std::string_view b) { return reinterpret_cast<const unsigned char*>(b.data()); }

// One TurboJPEG handle per thread and direction, freed when the thread ends.
struct TjHandle {
  tjhandle h = nullptr;
  ~TjHandle() {
    if (h) tjDestroy(h);
  }
};
tjhandle Decompressor() {
  thread_local TjHandle t;
  if (!t.h) t.h = tjInitDecompress();
  return t.h;
}
tjhandle Compressor() {
  thread_local TjHandle t;
  if (!t.h) t.h = tjInitCompress();
  return t.h;
}

absl::StatusOr<ImageSize> JpegSize(tjhandle tj, std::string_view bytes, const std::string& name) {
  int w = 0, h = 0, subsamp = 0, colorspace = 0;
  if (tjDecompressHeader3(tj, Bytes(bytes), bytes.size(), &w, &h, &subsamp, &colorspace) != 0 ||
      w <= 0 || h <= 0 || int64_t{w} * h > kMaxPixels) {
    return DataError(name, std::string("unreadable JPEG header: ") + tjGetErrorStr2(tj));
  }
  return ImageSize{w, h, true};
}

absl::StatusOr<Image> DecodeJpeg(std::string_view bytes, const std::string& name, int num, int denom) {
  tjhandle tj = Decompressor();
  if (!tj) return DataError(name, "cannot initialise the JPEG decoder");
  absl::StatusOr<ImageSize> size = JpegSize(tj, bytes, name);
  if (!size.ok()) return size.status();
  Image img;
  img.width = (size->width * num + denom - 1) / denom;
  img.height = (size->height * num + denom - 1) / denom;
  img.rgb.resize(int64_t{img.width} * img.height * 3);
  // Warnings (a truncated scan, for one) count as errors: a half-decoded image is no sample.
  if (tjDecompress2(tj, Bytes(bytes), bytes.size(), img.rgb.data(), img.width, 0, img.height,
                    TJPF_RGB, 0) != 0) {
    return DataError(name, std::string("corrupt JPEG: ") + tjGetErrorStr2(tj));
  }
  return img;
}

absl::StatusOr<Image> DecodePng(std::string_view bytes, const std::string& name) {
  png_image png{};
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&png, bytes.data(), bytes.size())) {
    return DataError(name, std::string("unreadable PNG: ") + png.message);
  }
  if (int64_t{png.width} * png.height > kMaxPixels) {
    png_image_free(&png);
    return DataError(name, "PNG too large");
  }
  png.format = PNG_FORMAT_RGB;
  Image img;
  img.width = static_cast<int>(png.width);
  img.height = static_cast<int>(png.height);
  img.rgb.resize(PNG_IMAGE_SIZE(png));
  if (!png_image_finish_read(&png, nullptr, img.rgb.data(), 0, nullptr)) {
    std::string msg = png.message;
    png_image_free(&png);
    return DataError(name, "corrupt PNG: " + msg);
  }
  return img;
}

}  // namespace

absl::StatusOr<ImageSize> ReadImageSize(std::string_view bytes, const std::string& name) {
  if (IsJpeg(bytes)) {
    tjhandle tj = Decompressor();
    if (!tj) return DataError(name, "cannot initialise the JPEG decoder");
    return JpegSize(tj, bytes, name);
  }
  if (IsPng(bytes)) {
    png_image png{};
    png.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&png, bytes.data(), bytes.size())) {
      return DataError(name, std::string("unreadable PNG: ") + png.message);
    }
    ImageSize s{static_cast<int>(png.width), static_cast<int>(png.height), false};
    png_image_free(&png);
    return s;
  }
  return DataError(name, "not a JPEG or PNG image");
}

absl::StatusOr<Image> DecodeImage(std::string_view bytes, const std::string& name) {
  if (IsJpeg(bytes)) return DecodeJpeg(bytes, name, 1, 1);
  if (IsPng(bytes)) return DecodePng(bytes, name);
  return DataError(name, "not a JPEG or PNG image");
}

absl::StatusOr<Image> DecodeImageCovering(std::string_view bytes, const std::string& name,
                                          double min_w, double min_h, int need_w, int need_h) {
  if (!IsJpeg(bytes)) return DecodeImage(bytes, name);
  // libjpeg-turbo scales by m/8; its IDCT has fast paths for 1/8, 1/4 and 1/2.
  int best = 8;
  for (int m = 7; m >= 1; --m) {
    if (min_w * m / 8 >= need_w && min_h * m / 8 >= need_h) best = m;
    else break;
  }
  return DecodeJpeg(bytes, name, best, 8);
}

absl::StatusOr<std::string> EncodeJpeg(const Image& img, int quality) {
  tjhandle tj = Compressor();
  if (!tj) return absl::InternalError("cannot initialise the JPEG encoder");
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  if (tjCompress2(tj, img.rgb.data(), img.width, 0, img.height, TJPF_RGB, &buf, &size, TJSAMP_420,
                  std::clamp(quality, 1, 100), 0) != 0) {
    std::string err = tjGetErrorStr2(tj);
    if (buf) tjFree(buf);
    return absl::InternalError("JPEG encoding failed: " + err);
  }
  std::string out(reinterpret_cast<char*>(buf), size);
  tjFree(buf);
  return out;
}

}  // namespace wrpn::trainer
