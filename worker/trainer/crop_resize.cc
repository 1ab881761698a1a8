#include "worker/trainer/crop_resize.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>

namespace wrpn::trainer {
namespace {

// Source index pair and the 8-bit weight of the second, for one output coordinate.
struct Tap {
  int i1, i2;
  uint32_t w;  // 0..256
};

std::vector<Tap> Taps(double start, double extent, int out, int limit, bool flip) {
  std::vector<Tap> taps(out);
  for (int o = 0; o < out; ++o) {
    const int oo = flip ? out - 1 - o : o;
    const double f = std::clamp(start + (oo + 0.5) * extent / out - 0.5, 0.0, limit - 1.0);
    const int i1 = static_cast<int>(f);
    taps[o] = {i1, std::min(i1 + 1, limit - 1), static_cast<uint32_t>(std::lround((f - i1) * 256))};
  }
  return taps;
}

// Column pass: blends source rows `y1` and `y2` (weight `w` of the second) over the source
// columns [x_lo, x_hi), interleaved RGB, into 16-bit values with 8 fractional bits.
void BlendRows(const uint8_t* rgb, int width, int y1, int y2, uint32_t w, int x_lo, int x_hi,
               uint16_t* out) {
  const uint8_t* a = rgb + (int64_t{y1} * width + x_lo) * 3;
  const uint8_t* b = rgb + (int64_t{y2} * width + x_lo) * 3;
  const uint16_t wb = static_cast<uint16_t>(w), wa = static_cast<uint16_t>(256 - w);
  const int n = (x_hi - x_lo) * 3;
  for (int i = 0; i < n; ++i) out[i] = static_cast<uint16_t>(a[i] * wa + b[i] * wb);  // vectorised
}

// Streams the output rows: for each, blends the two source rows it needs (only the columns the
// box reads), then calls `sink(y, blended, taps)` to filter along the row. `taps[x].i1/i2`
// index the blended row's pixels (already offset by the first column read).
template <typename Sink>
void Resample(const uint8_t* rgb, int width, int height, const CropBox& box, int out_w, int out_h,
              Sink&& sink) {
  std::vector<Tap> xt = Taps(box.x0, box.w, out_w, width, box.flip);
  const std::vector<Tap> yt = Taps(box.y0, box.h, out_h, height, false);
  int x_lo = width, x_hi = 0;
  for (const Tap& t : xt) {
    x_lo = std::min(x_lo, t.i1);
    x_hi = std::max(x_hi, t.i2 + 1);
  }
  for (Tap& t : xt) {
    t.i1 -= x_lo;
    t.i2 -= x_lo;
  }
  std::vector<uint16_t> row(3 * size_t(x_hi - x_lo));
  for (int y = 0; y < out_h; ++y) {
    BlendRows(rgb, width, yt[y].i1, yt[y].i2, yt[y].w, x_lo, x_hi, row.data());
    sink(y, row.data(), xt);
  }
}

}  // namespace

CropBox RandomResizedCropBox(int width, int height, uint64_t seed) {
  const double W = width, H = height;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> area(0.08, 1.0), logr(std::log(3.0 / 4), std::log(4.0 / 3));
  CropBox b;
  b.w = b.h = std::min(W, H);
  b.x0 = (W - b.w) / 2;
  b.y0 = (H - b.h) / 2;
  for (int t = 0; t < 10; ++t) {
    const double a = area(rng) * W * H, r = std::exp(logr(rng));
    const double w = std::sqrt(a * r), h = std::sqrt(a / r);
    if (w <= W && h <= H) {
      b.w = w;
      b.h = h;
      b.x0 = std::uniform_real_distribution<double>(0, W - w)(rng);
      b.y0 = std::uniform_real_distribution<double>(0, H - h)(rng);
      break;
    }
  }
  b.flip = rng() & 1;
  return b;
}

CropBox CenterCropBox(int width, int height) {
  const double side = std::min(width, height) * 224.0 / 256.0;
  return CropBox{(width - side) / 2, (height - side) / 2, side, side, false};
}

CropBox ScaleBox(const CropBox& b, int width, int height, int scaled_w, int scaled_h) {
  const double sx = static_cast<double>(scaled_w) / width, sy = static_cast<double>(scaled_h) / height;
  return CropBox{b.x0 * sx, b.y0 * sy, b.w * sx, b.h * sy, b.flip};
}

void CropResize(const uint8_t* rgb, int width, int height, const CropBox& box, int size,
                const Normalization& norm, float* out) {
  float scale[3], shift[3];
  for (int c = 0; c < 3; ++c) {
    scale[c] = 1.0f / (255.0f * 65536.0f * norm.std[c]);
    shift[c] = -norm.mean[c] / norm.std[c];
  }
  const int64_t plane = int64_t{size} * size;
  Resample(rgb, width, height, box, size, size,
           [&](int y, const uint16_t* row, const std::vector<Tap>& xt) {
             float* o0 = out + int64_t{y} * size;
             float* o1 = o0 + plane;
             float* o2 = o1 + plane;
             for (int x = 0; x < size; ++x) {
               const uint16_t* a = row + xt[x].i1 * 3;
               const uint16_t* b = row + xt[x].i2 * 3;
               const uint32_t w = xt[x].w, v = 256 - w;
               o0[x] = static_cast<float>(a[0] * v + b[0] * w) * scale[0] + shift[0];
               o1[x] = static_cast<float>(a[1] * v + b[1] * w) * scale[1] + shift[1];
               o2[x] = static_cast<float>(a[2] * v + b[2] * w) * scale[2] + shift[2];
             }
           });
}

std::vector<uint8_t> CropResizeRgb(const uint8_t* rgb, int width, int height, const CropBox& box,
                                   int out_w, int out_h) {
  std::vector<uint8_t> out(int64_t{out_w} * out_h * 3);
  Resample(rgb, width, height, box, out_w, out_h,
           [&](int y, const uint16_t* row, const std::vector<Tap>& xt) {
             uint8_t* o = out.data() + int64_t{y} * out_w * 3;
             for (int x = 0; x < out_w; ++x) {
               const uint16_t* a = row + xt[x].i1 * 3;
               const uint16_t* b = row + xt[x].i2 * 3;
               const uint32_t w = xt[x].w, v = 256 - w;
               for (int c = 0; c < 3; ++c) {
                 o[x * 3 + c] = static_cast<uint8_t>((a[c] * v + b[c] * w + 32768) >> 16);
               }
             }
           });
  return out;
}

void ReferenceCropResize(const uint8_t* rgb, int width, int height, const CropBox& box, int size,
                         const Normalization& norm, float* out) {
  const int W = width, H = height;
  for (int c = 0; c < 3; ++c) {
    const float scale = 1.0f / (255.0f * norm.std[c]);
    const float shift = -norm.mean[c] / norm.std[c];
    for (int y = 0; y < size; ++y) {
      const double fy = std::clamp(box.y0 + (y + 0.5) * box.h / size - 0.5, 0.0, H - 1.0);
      const int y1 = static_cast<int>(fy), y2 = std::min(y1 + 1, H - 1);
      const double wy = fy - y1;
      for (int x = 0; x < size; ++x) {
        const int xo = box.flip ? size - 1 - x : x;
        const double fx = std::clamp(box.x0 + (xo + 0.5) * box.w / size - 0.5, 0.0, W - 1.0);
        const int x1 = static_cast<int>(fx), x2 = std::min(x1 + 1, W - 1);
        const double wx = fx - x1;
        auto px = [&](int yy, int xx) { return rgb[(int64_t{yy} * W + xx) * 3 + c]; };
        const double v = (1 - wy) * ((1 - wx) * px(y1, x1) + wx * px(y1, x2)) +
                         wy * ((1 - wx) * px(y2, x1) + wx * px(y2, x2));
        *out++ = static_cast<float>(v) * scale + shift;
      }
    }
  }
}

}  // namespace wrpn::trainer
