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

// Row pass of source row `y` into three planes of out_w 16-bit values (8 fractional bits).
void RowPass(const uint8_t* rgb, int width, int y, const std::vector<Tap>& xt, uint16_t* planes) {
  const uint8_t* row = rgb + int64_t{y} * width * 3;
  const int n = static_cast<int>(xt.size());
  for (int x = 0; x < n; ++x) {
    const uint8_t* a = row + xt[x].i1 * 3;
    const uint8_t* b = row + xt[x].i2 * 3;
    const uint32_t w = xt[x].w, v = 256 - w;
    planes[x] = static_cast<uint16_t>(a[0] * v + b[0] * w);
    planes[n + x] = static_cast<uint16_t>(a[1] * v + b[1] * w);
    planes[2 * n + x] = static_cast<uint16_t>(a[2] * v + b[2] * w);
  }
}

// Streams the output rows: for each, `sink(y, upper, lower, weight of lower)` with the row
// passes of the two source rows it blends. Each source row is filtered at most once.
template <typename Sink>
void Resample(const uint8_t* rgb, int width, int height, const CropBox& box, int out_w, int out_h,
              Sink&& sink) {
  const std::vector<Tap> xt = Taps(box.x0, box.w, out_w, width, box.flip);
  const std::vector<Tap> yt = Taps(box.y0, box.h, out_h, height, false);
  std::vector<uint16_t> a(3 * size_t(out_w)), b(3 * size_t(out_w));
  int ia = -1, ib = -1;
  for (int y = 0; y < out_h; ++y) {
    const Tap& t = yt[y];
    if (t.i1 != ia) {
      if (t.i1 == ib) {
        std::swap(a, b);
        std::swap(ia, ib);
      } else {
        RowPass(rgb, width, t.i1, xt, a.data());
        ia = t.i1;
      }
    }
    if (t.i2 != ib) {
      if (t.i2 == ia) {
        b = a;
      } else {
        RowPass(rgb, width, t.i2, xt, b.data());
      }
      ib = t.i2;
    }
    sink(y, a.data(), b.data(), t.w);
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
           [&](int y, const uint16_t* a, const uint16_t* b, uint32_t w) {
             const uint32_t v = 256 - w;
             for (int c = 0; c < 3; ++c) {
               const uint16_t* pa = a + c * size;
               const uint16_t* pb = b + c * size;
               float* o = out + c * plane + int64_t{y} * size;
               const float k = scale[c], s = shift[c];
               for (int x = 0; x < size; ++x) {
                 o[x] = static_cast<float>(pa[x] * v + pb[x] * w) * k + s;
               }
             }
           });
}

std::vector<uint8_t> CropResizeRgb(const uint8_t* rgb, int width, int height, const CropBox& box,
                                   int out_w, int out_h) {
  std::vector<uint8_t> out(int64_t{out_w} * out_h * 3);
  Resample(rgb, width, height, box, out_w, out_h,
           [&](int y, const uint16_t* a, const uint16_t* b, uint32_t w) {
             const uint32_t v = 256 - w;
             uint8_t* o = out.data() + int64_t{y} * out_w * 3;
             for (int x = 0; x < out_w; ++x) {
               for (int c = 0; c < 3; ++c) {
                 o[x * 3 + c] = static_cast<uint8_t>(
                     (a[c * out_w + x] * v + b[c * out_w + x] * w + 32768) >> 16);
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
