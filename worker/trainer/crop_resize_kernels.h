#pragma once
// Internal to crop_resize.cc and crop_resize_avx2.cc: the two passes of the separable bilinear
// resampler, as a portable kernel and an AVX2 one (runtime dispatch in crop_resize.cc).
//
// Horizontal pass, once per source row the box reads: for output column x,
//   h[c][x] = src[3 * i[x] + c] * (256 - w[x]) + src[3 * i[x] + 3 + c] * w[x]   (exact, <= 65280)
// stored as float, one plane per channel. The taps keep i[x] <= width - 2 (a tap on the last
// column is moved to the one before it with the weight 256), so both source pixels exist.
// Vertical pass, once per output row, fused with the normalisation:
//   out[c][x] = ha[c][x] * a[c] + (hb[c][x] * b[c] + shift[c]).
#include <cstdint>

namespace wrpn::trainer::resample {

void HorizontalScalar(const uint8_t* src, const int32_t* idx, const int32_t* w, int out_w, float* h);
void VerticalScalar(const float* ha, const float* hb, const float* a, const float* b,
                    const float* shift, int out_w, int64_t plane, float* out);

bool Avx2Available();  // the CPU has AVX2 and FMA
void HorizontalAvx2(const uint8_t* src, const int32_t* idx, const int32_t* w, int out_w, float* h);
void VerticalAvx2(const float* ha, const float* hb, const float* a, const float* b,
                  const float* shift, int out_w, int64_t plane, float* out);
void StoreFenceAvx2();  // after the last VerticalAvx2 of an output (its stores may stream)

}  // namespace wrpn::trainer::resample
