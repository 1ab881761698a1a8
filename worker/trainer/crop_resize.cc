#include "worker/trainer/crop_resize.h"

#include "worker/trainer/crop_resize_kernels.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>

namespace wrpn::trainer {
namespace {

// The taps of one axis: for output o, source index i[o] and the 8-bit weight w[o] (0..256) of
// i[o] + 1. A tap on the last source pixel moves to the one before it with the weight 256 (the
// same value), so i[o] + 1 always exists (resample::Horizontal* rely on it) when limit >= 2.
struct Taps {
  std::vector<int32_t> i, w;
};
void MakeTaps(double start, double extent, int out, int limit, bool flip, Taps* t) {
  t->i.resize(out);
  t->w.resize(out);
  for (int o = 0; o < out; ++o) {
    const int oo = flip ? out - 1 - o : o;
    const double f = std::clamp(start + (oo + 0.5) * extent / out - 0.5, 0.0, limit - 1.0);
    int i = static_cast<int>(f);
    int w = static_cast<int>(std::lround((f - i) * 256));
    if (i == limit - 1 && limit >= 2) i = limit - 2, w = 256;
    t->i[o] = i;
    t->w[o] = w;
  }
}

// Per-thread scratch of the resampler, kept between samples (no allocation per sample once warm).
struct Scratch {
  Taps x, y;
  std::vector<float> rows[2];  // horizontally resampled source rows, planar [3][out_w]
  int row_of[2] = {-1, -1};
};
Scratch& ThreadScratch() {
  thread_local Scratch s;
  return s;
}

bool UseAvx2(ResampleKernel k, int width) {
  return k == ResampleKernel::kAvx2 && width >= 2 && resample::Avx2Available();
}

// Streams the output rows: the two source rows output row y blends are resampled along the row
// once each (kept while the next output rows still need them), then `sink(y, ha, hb, wy)` blends
// them (weights 256 - wy and wy) into the output.
template <typename Sink>
void Resample(ResampleKernel kernel, const uint8_t* rgb, int width, int height, const CropBox& box,
              int out_w, int out_h, Sink&& sink) {
  Scratch& s = ThreadScratch();
  MakeTaps(box.x0, box.w, out_w, width, box.flip, &s.x);
  MakeTaps(box.y0, box.h, out_h, height, false, &s.y);
  const bool avx2 = UseAvx2(kernel, width);
  for (auto& r : s.rows) r.resize(3 * static_cast<size_t>(out_w));
  s.row_of[0] = s.row_of[1] = -1;
  auto row = [&](int sy) -> const float* {
    const int slot = sy & 1;
    if (s.row_of[slot] != sy) {
      const uint8_t* src = rgb + int64_t{sy} * width * 3;
      (avx2 ? resample::HorizontalAvx2 : resample::HorizontalScalar)(src, s.x.i.data(), s.x.w.data(), out_w,
                                                                     s.rows[slot].data());
      s.row_of[slot] = sy;
    }
    return s.rows[slot].data();
  };
  for (int y = 0; y < out_h; ++y) {
    const int i = s.y.i[y];
    const float* ha = row(i);
    const float* hb = height >= 2 ? row(i + 1) : ha;
    sink(y, ha, hb, s.y.w[y], avx2);
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
  CropResizeWith(DefaultResampleKernel(), rgb, width, height, box, size, norm, out);
}

void CropResizeWith(ResampleKernel kernel, const uint8_t* rgb, int width, int height, const CropBox& box,
                    int size, const Normalization& norm, float* out) {
  float scale[3], shift[3];
  for (int c = 0; c < 3; ++c) {
    scale[c] = 1.0f / (255.0f * 65536.0f * norm.std[c]);
    shift[c] = -norm.mean[c] / norm.std[c];
  }
  const int64_t plane = int64_t{size} * size;
  Resample(kernel, rgb, width, height, box, size, size,
           [&](int y, const float* ha, const float* hb, int wy, bool avx2) {
             float a[3], b[3];
             for (int c = 0; c < 3; ++c) {
               a[c] = static_cast<float>(256 - wy) * scale[c];
               b[c] = static_cast<float>(wy) * scale[c];
             }
             (avx2 ? resample::VerticalAvx2 : resample::VerticalScalar)(ha, hb, a, b, shift, size, plane,
                                                                        out + int64_t{y} * size);
           });
  if (UseAvx2(kernel, width)) resample::StoreFenceAvx2();
}

ResampleKernel DefaultResampleKernel() {
  return resample::Avx2Available() ? ResampleKernel::kAvx2 : ResampleKernel::kScalar;
}

std::vector<uint8_t> CropResizeRgb(const uint8_t* rgb, int width, int height, const CropBox& box,
                                   int out_w, int out_h) {
  std::vector<uint8_t> out(int64_t{out_w} * out_h * 3);
  Resample(ResampleKernel::kScalar, rgb, width, height, box, out_w, out_h,
           [&](int y, const float* ha, const float* hb, int wy, bool) {
             uint8_t* o = out.data() + int64_t{y} * out_w * 3;
             for (int x = 0; x < out_w; ++x) {
               for (int c = 0; c < 3; ++c) {
                 // Exact: both terms are integers below 2^24.
                 const int v = static_cast<int>(ha[c * out_w + x] * (256 - wy) + hb[c * out_w + x] * wy);
                 o[x * 3 + c] = static_cast<uint8_t>((v + 32768) >> 16);
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

namespace wrpn::trainer::resample {

void HorizontalScalar(const uint8_t* src, const int32_t* idx, const int32_t* w, int out_w, float* h) {
  for (int x = 0; x < out_w; ++x) {
    const uint8_t* p = src + 3 * idx[x];
    const uint8_t* q = w[x] ? p + 3 : p;  // a one-pixel row has only weight-0 taps
    for (int c = 0; c < 3; ++c) h[c * out_w + x] = static_cast<float>(p[c] * (256 - w[x]) + q[c] * w[x]);
  }
}

void VerticalScalar(const float* ha, const float* hb, const float* a, const float* b, const float* shift,
                    int out_w, int64_t plane, float* out) {
  for (int c = 0; c < 3; ++c) {
    const float* pa = ha + c * out_w;
    const float* pb = hb + c * out_w;
    float* o = out + c * plane;
    for (int x = 0; x < out_w; ++x) o[x] = pa[x] * a[c] + (pb[x] * b[c] + shift[c]);
  }
}

}  // namespace wrpn::trainer::resample
