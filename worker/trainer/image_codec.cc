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

constexpr int kMaxPixels = 1 << 28;
// The DCT scales m/8 DecodeImageRegion may pick, smallest first.
constexpr int kDctScales[] = {1, 2, 4, 8};

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

// The TurboJPEG compressor of this thread (EncodeJpeg), freed when the thread ends. A handle
// that saw an error is dropped: its state machine may be left mid-way, and the next call on it
// would fail ("Improper call to JPEG library in state ..."), poisoning every later image.
struct TjCompressor {
  tjhandle h = nullptr;
  ~TjCompressor() { Reset(); }
  void Reset() {
    if (h) tjDestroy(h);
    h = nullptr;
  }
  tjhandle Get() {
    if (!h) h = tjInitCompress();
    return h;
  }
};
TjCompressor& ThreadCompressor() {
  thread_local TjCompressor t;
  return t;
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

// This thread's libjpeg decompressor: created once, returned to its idle state
// (jpeg_abort_decompress) after every image, also after an error, so its memory pools, source
// manager and tables are reused and a warm thread allocates nothing per image.
struct JpegDecoder {
  jpeg_decompress_struct c;
  JpegError err;
  bool ready = false;
  ~JpegDecoder() {
    if (ready) jpeg_destroy_decompress(&c);
  }
};
bool InitDecoder(JpegDecoder* d) {
  d->c.err = jpeg_std_error(&d->err.mgr);
  d->err.mgr.error_exit = JpegFail;
  d->err.mgr.emit_message = JpegMessage;
  if (setjmp(d->err.jump)) return false;
  jpeg_create_decompress(&d->c);
  d->ready = true;
  return true;
}
JpegDecoder* ThreadDecoder() {
  thread_local JpegDecoder d;
  if (!d.ready && !InitDecoder(&d)) return nullptr;
  return &d;
}

// The resampler reads pixels floor(x - 0.5) .. ceil(x + w - 0.5) of a scaled box: [lo, hi).
void BoxRange(double start, double extent, int limit, int* lo, int* hi) {
  *lo = std::clamp(static_cast<int>(std::floor(start)) - 1, 0, limit - 1);
  *hi = std::clamp(static_cast<int>(std::ceil(start + extent)) + 1, *lo + 1, limit);
}

// The decode of DecodeImageRegion. No C++ object with a destructor may be alive in this frame
// when libjpeg longjmps out of a call, so everything lives in the caller's objects. Returns
// false when the JPEG is corrupt (message in d->err.message) or `choose` refused it (*chosen).
bool DecodeRegionJpeg(JpegDecoder* d, std::string_view bytes, const BoxChooser& choose, int need_w,
                      int need_h, ImageRegion* r, CropBox* box, absl::Status* chosen) {
  jpeg_decompress_struct& c = d->c;
  if (setjmp(d->err.jump)) {
    jpeg_abort_decompress(&c);
    return false;
  }
  jpeg_mem_src(&c, Bytes(bytes), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&c, TRUE);
  if (int64_t{c.image_width} * c.image_height > kMaxPixels) {
    std::snprintf(d->err.message, sizeof d->err.message, "%ux%u pixels is too large", c.image_width,
                  c.image_height);
    jpeg_abort_decompress(&c);
    return false;
  }
  r->width = static_cast<int>(c.image_width);
  r->height = static_cast<int>(c.image_height);
  if (!(*chosen = choose(r->width, r->height, box)).ok()) {
    jpeg_abort_decompress(&c);
    return false;
  }
  c.out_color_space = JCS_RGB;
  c.scale_num = static_cast<unsigned>(DctScaleFor(box->w, box->h, need_w, need_h));
  c.scale_denom = 8;
  jpeg_start_decompress(&c);
  r->full_w = static_cast<int>(c.output_width);
  r->full_h = static_cast<int>(c.output_height);
  const double sx = static_cast<double>(r->full_w) / c.image_width;
  const double sy = static_cast<double>(r->full_h) / c.image_height;
  int x_lo, x_hi, y_lo, y_hi;
  BoxRange(box->x0 * sx, box->w * sx, r->full_w, &x_lo, &x_hi);
  BoxRange(box->y0 * sy, box->h * sy, r->full_h, &y_lo, &y_hi);
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
  for (int y = 0; y < r->img.height;) {
    JSAMPROW rows[4];
    const int n = std::min(4, r->img.height - y);
    for (int k = 0; k < n; ++k) rows[k] = r->img.rgb.data() + static_cast<size_t>(y + k) * r->img.width * 3;
    const JDIMENSION got = jpeg_read_scanlines(&c, rows, static_cast<JDIMENSION>(n));
    if (got == 0) JpegFail(reinterpret_cast<j_common_ptr>(&c));
    y += static_cast<int>(got);
  }
  jpeg_abort_decompress(&c);  // the rows below the box are not needed
  return true;
}

absl::Status DecodeRegion(std::string_view bytes, const std::string& name, const BoxChooser& choose,
                          int need_w, int need_h, ImageRegion* r, CropBox* box) {
  if (!IsJpeg(bytes)) {
    ASSIGN_OR_RETURN(r->img, DecodeImage(bytes, name));
    r->width = r->full_w = r->img.width;
    r->height = r->full_h = r->img.height;
    r->x0 = r->y0 = 0;
    return choose(r->width, r->height, box);
  }
  JpegDecoder* d = ThreadDecoder();
  if (!d) return DataError(name, "cannot initialise the JPEG decoder");
  absl::Status chosen;
  if (!DecodeRegionJpeg(d, bytes, choose, need_w, need_h, r, box, &chosen)) {
    if (!chosen.ok()) return chosen;
    return DataError(name, std::string("corrupt JPEG: ") + d->err.message);
  }
  return absl::OkStatus();
}

// Whole-image decode at the DCT scale that covers need_w x need_h (no scale when they are
// larger than the image).
absl::StatusOr<Image> DecodeWholeJpeg(std::string_view bytes, const std::string& name, int need_w, int need_h) {
  ImageRegion r;
  CropBox box;
  RETURN_IF_ERROR(DecodeRegion(bytes, name,
                               [&](int w, int h, CropBox* b) {
                                 *b = CropBox{0, 0, static_cast<double>(w), static_cast<double>(h), false};
                                 return absl::OkStatus();
                               },
                               need_w, need_h, &r, &box));
  return std::move(r.img);
}

}  // namespace

int DctScaleFor(double bw, double bh, int need_w, int need_h) {
  for (int m : kDctScales) {
    if (bw * m / 8 >= need_w && bh * m / 8 >= need_h) return m;
  }
  return 8;
}

absl::Status DecodeImageRegion(std::string_view bytes, const std::string& name, const BoxChooser& choose,
                               int need_w, int need_h, ImageRegion* region, CropBox* box) {
  return DecodeRegion(bytes, name, choose, need_w, need_h, region, box);
}

absl::StatusOr<ImageSize> ReadImageSize(std::string_view bytes, const std::string& name) {
  if (IsJpeg(bytes)) {
    // The region decode, stopped by its chooser once the header is read.
    ImageSize s{0, 0, true};
    ImageRegion r;
    CropBox box;
    const absl::Status st = DecodeRegion(bytes, name,
                                         [&](int w, int h, CropBox*) {
                                           s.width = w;
                                           s.height = h;
                                           return absl::CancelledError("header read");
                                         },
                                         1, 1, &r, &box);
    if (s.width > 0 && absl::IsCancelled(st)) return s;
    return st;
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
  if (IsJpeg(bytes)) return DecodeWholeJpeg(bytes, name, kMaxPixels, kMaxPixels);
  if (IsPng(bytes)) return DecodePng(bytes, name);
  return DataError(name, "not a JPEG or PNG image");
}

absl::StatusOr<Image> DecodeImageCovering(std::string_view bytes, const std::string& name, int need_w,
                                          int need_h) {
  if (!IsJpeg(bytes)) return DecodeImage(bytes, name);
  return DecodeWholeJpeg(bytes, name, need_w, need_h);
}

absl::StatusOr<std::string> EncodeJpeg(const Image& img, int quality) {
  tjhandle tj = ThreadCompressor().Get();
  if (!tj) return absl::InternalError("cannot initialise the JPEG encoder");
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  if (tjCompress2(tj, img.rgb.data(), img.width, 0, img.height, TJPF_RGB, &buf, &size, TJSAMP_420,
                  std::clamp(quality, 1, 100), 0) != 0) {
    std::string err = tjGetErrorStr2(tj);
    if (buf) tjFree(buf);
    ThreadCompressor().Reset();
    return absl::InternalError("JPEG encoding failed: " + err);
  }
  std::string out(reinterpret_cast<char*>(buf), size);
  tjFree(buf);
  return out;
}

}  // namespace wrpn::trainer
