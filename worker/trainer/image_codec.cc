#include "worker/trainer/image_codec.h"

#include <png.h>
#include <turbojpeg.h>
// jpeglib.h needs FILE and size_t declared first.
#include <csetjmp>
#include <cstdio>
#include <jpeglib.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"

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

// One TurboJPEG handle per thread and direction, freed when the thread ends. A handle that saw
// an error is dropped: libjpeg's state machine may be left mid-decode, and the next call on it
// would fail ("Improper call to JPEG library in state ..."), poisoning every later image.
struct TjHandle {
  tjhandle h = nullptr;
  ~TjHandle() { Reset(); }
  void Reset() {
    if (h) tjDestroy(h);
    h = nullptr;
  }
};
TjHandle& DecompressorSlot() {
  thread_local TjHandle t;
  return t;
}
tjhandle Decompressor() {
  TjHandle& t = DecompressorSlot();
  if (!t.h) t.h = tjInitDecompress();
  return t.h;
}
TjHandle& CompressorSlot() {
  thread_local TjHandle t;
  return t;
}
tjhandle Compressor() {
  TjHandle& t = CompressorSlot();
  if (!t.h) t.h = tjInitCompress();
  return t.h;
}

absl::StatusOr<ImageSize> JpegSize(tjhandle tj, std::string_view bytes, const std::string& name) {
  int w = 0, h = 0, subsamp = 0, colorspace = 0;
  if (tjDecompressHeader3(tj, Bytes(bytes), bytes.size(), &w, &h, &subsamp, &colorspace) != 0 ||
      w <= 0 || h <= 0 || int64_t{w} * h > kMaxPixels) {
    absl::Status st = DataError(name, std::string("unreadable JPEG header: ") + tjGetErrorStr2(tj));
    DecompressorSlot().Reset();
    return st;
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
    absl::Status st = DataError(name, std::string("corrupt JPEG: ") + tjGetErrorStr2(tj));
    DecompressorSlot().Reset();
    return st;
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

// libjpeg error manager: errors and warnings (a truncated scan, for one) jump back to the caller
// with the message.
struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};
[[noreturn]] void JpegFail(j_common_ptr c) {
  auto* e = reinterpret_cast<JpegError*>(c->err);
  c->err->format_message(c, e->message);
  std::longjmp(e->jump, 1);
}
void JpegMessage(j_common_ptr c, int level) {
  if (level < 0) JpegFail(c);  // a warning: corrupt data
}

// The decode of DecodeImageRegion once the scale is known. No C++ objects with destructors may
// live in the frames longjmp leaves, so the buffers are the caller's.
bool DecodeRegionJpeg(std::string_view bytes, int m, double bx, double by, double bw, double bh,
                      ImageRegion* r, JpegError* err) {
  jpeg_decompress_struct c;
  c.err = jpeg_std_error(&err->mgr);
  err->mgr.error_exit = JpegFail;
  err->mgr.emit_message = JpegMessage;
  if (setjmp(err->jump)) {
    jpeg_destroy_decompress(&c);
    return false;
  }
  jpeg_create_decompress(&c);
  jpeg_mem_src(&c, Bytes(bytes), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&c, TRUE);
  c.out_color_space = JCS_RGB;
  c.scale_num = static_cast<unsigned>(m);
  c.scale_denom = 8;
  jpeg_start_decompress(&c);
  r->full_w = static_cast<int>(c.output_width);
  r->full_h = static_cast<int>(c.output_height);
  const double sx = static_cast<double>(r->full_w) / c.image_width;
  const double sy = static_cast<double>(r->full_h) / c.image_height;
  // The resampler reads pixels floor(x - 0.5) .. ceil(x + w - 0.5) of the scaled box.
  auto range = [](double start, double extent, int limit, int* lo, int* hi) {
    *lo = std::clamp(static_cast<int>(std::floor(start)) - 1, 0, limit - 1);
    *hi = std::clamp(static_cast<int>(std::ceil(start + extent)) + 1, *lo + 1, limit);
  };
  int x_lo, x_hi, y_lo, y_hi;
  range(bx * sx, bw * sx, r->full_w, &x_lo, &x_hi);
  range(by * sy, bh * sy, r->full_h, &y_lo, &y_hi);
  JDIMENSION xoff = static_cast<JDIMENSION>(x_lo), width = static_cast<JDIMENSION>(x_hi - x_lo);
  if (x_lo > 0 || x_hi < r->full_w) jpeg_crop_scanline(&c, &xoff, &width);  // widens to iMCU edges
  r->x0 = static_cast<int>(xoff);
  r->y0 = y_lo;
  r->img.width = static_cast<int>(c.output_width);
  r->img.height = y_hi - y_lo;
  r->img.rgb.resize(static_cast<size_t>(r->img.width) * r->img.height * 3);
  if (y_lo > 0 && jpeg_skip_scanlines(&c, static_cast<JDIMENSION>(y_lo)) != static_cast<JDIMENSION>(y_lo)) {
    JpegFail(reinterpret_cast<j_common_ptr>(&c));
  }
  for (int y = 0; y < r->img.height; ++y) {
    JSAMPROW out = r->img.rgb.data() + static_cast<size_t>(y) * r->img.width * 3;
    if (jpeg_read_scanlines(&c, &out, 1) != 1) JpegFail(reinterpret_cast<j_common_ptr>(&c));
  }
  jpeg_abort_decompress(&c);  // the rows below the box are not needed
  jpeg_destroy_decompress(&c);
  return true;
}

}  // namespace

absl::StatusOr<ImageRegion> DecodeImageRegion(std::string_view bytes, const std::string& name,
                                              double bx, double by, double bw, double bh,
                                              int need_w, int need_h) {
  if (!IsJpeg(bytes)) {
    ImageRegion r;
    ASSIGN_OR_RETURN(r.img, DecodeImage(bytes, name));
    r.full_w = r.img.width;
    r.full_h = r.img.height;
    return r;
  }
  int m = 8;
  while (m > 1 && bw * (m / 2) / 8 >= need_w && bh * (m / 2) / 8 >= need_h) m /= 2;
  ImageRegion r;
  JpegError err{};
  if (!DecodeRegionJpeg(bytes, m, bx, by, bw, bh, &r, &err)) {
    return DataError(name, std::string("corrupt JPEG: ") + err.message);
  }
  return r;
}

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
  // libjpeg-turbo scales by m/8, but only 1/8, 1/4, 1/2 and 1 have fast (SIMD) IDCTs: the
  // others (3/4, 7/8, ...) decode slower than the full size.
  int m = 8;
  while (m > 1 && min_w * (m / 2) / 8 >= need_w && min_h * (m / 2) / 8 >= need_h) m /= 2;
  return DecodeJpeg(bytes, name, m, 8);
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
    CompressorSlot().Reset();
    return absl::InternalError("JPEG encoding failed: " + err);
  }
  std::string out(reinterpret_cast<char*>(buf), size);
  tjFree(buf);
  return out;
}

}  // namespace wrpn::trainer
