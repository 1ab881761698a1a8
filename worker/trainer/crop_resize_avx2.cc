// The AVX2 + FMA resampler kernels (crop_resize_kernels.h). Only these functions are compiled
// for AVX2 (target attributes, not a file-wide -mavx2: inline library code built for AVX2 could
// be picked by the linker for the whole program and crash a CPU without it); crop_resize.cc
// calls them only when Avx2Available().
#include <immintrin.h>

#include <cstdint>

#include "worker/trainer/crop_resize_kernels.h"

namespace wrpn::trainer::resample {

bool Avx2Available() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}

// 8 output columns at a time: two 32-bit gathers per column fetch the pixel and its right
// neighbour (bytes R1 G1 B1 . and . R2 G2 B2; both loads stay inside the row because
// i <= width - 2), byte shuffles pair each channel's two values as 16-bit lanes, and one
// multiply-add per channel applies the weights (256 - w, w).
__attribute__((target("avx2,fma"))) void HorizontalAvx2(const uint8_t* src, const int32_t* idx,
                                                        const int32_t* w, int out_w, float* h) {
  const int* base = reinterpret_cast<const int*>(src);
  const __m256i three = _mm256_set1_epi32(3), w256 = _mm256_set1_epi32(256);
  // Per 32-bit lane: channel c of the first gather to byte 0, of the second to byte 2.
  __m256i m1[3], m2[3];
  for (int c = 0; c < 3; ++c) {
    m1[c] = _mm256_setr_epi8(c, -128, -128, -128, 4 + c, -128, -128, -128, 8 + c, -128, -128, -128, 12 + c,
                             -128, -128, -128, c, -128, -128, -128, 4 + c, -128, -128, -128, 8 + c, -128,
                             -128, -128, 12 + c, -128, -128, -128);
    m2[c] = _mm256_setr_epi8(-128, -128, c + 1, -128, -128, -128, 5 + c, -128, -128, -128, 9 + c, -128,
                             -128, -128, 13 + c, -128, -128, -128, c + 1, -128, -128, -128, 5 + c, -128,
                             -128, -128, 9 + c, -128, -128, -128, 13 + c, -128);
  }
  int x = 0;
  for (; x + 8 <= out_w; x += 8) {
    const __m256i i3 = _mm256_mullo_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + x)), three);
    const __m256i g1 = _mm256_i32gather_epi32(base, i3, 1);
    const __m256i g2 = _mm256_i32gather_epi32(base, _mm256_add_epi32(i3, _mm256_set1_epi32(2)), 1);
    const __m256i wx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + x));
    const __m256i wpair = _mm256_or_si256(_mm256_sub_epi32(w256, wx), _mm256_slli_epi32(wx, 16));
    for (int c = 0; c < 3; ++c) {
      const __m256i pair = _mm256_or_si256(_mm256_shuffle_epi8(g1, m1[c]), _mm256_shuffle_epi8(g2, m2[c]));
      _mm256_storeu_ps(h + c * out_w + x, _mm256_cvtepi32_ps(_mm256_madd_epi16(pair, wpair)));
    }
  }
  for (; x < out_w; ++x) {
    const uint8_t* p = src + 3 * idx[x];
    const uint8_t* q = w[x] ? p + 3 : p;
    for (int c = 0; c < 3; ++c) h[c * out_w + x] = static_cast<float>(p[c] * (256 - w[x]) + q[c] * w[x]);
  }
}

__attribute__((target("avx2,fma"))) void VerticalAvx2(const float* ha, const float* hb, const float* a,
                                                      const float* b, const float* shift, int out_w,
                                                      int64_t plane, float* out) {
  for (int c = 0; c < 3; ++c) {
    const __m256 va = _mm256_set1_ps(a[c]), vb = _mm256_set1_ps(b[c]), vs = _mm256_set1_ps(shift[c]);
    const float* pa = ha + c * out_w;
    const float* pb = hb + c * out_w;
    float* o = out + c * plane;
    int x = 0;
    // Streaming stores for large outputs (224 px: 600 KB a sample, 38 MB a batch of 64, far
    // beyond the caches) where aligned: they skip reading each output line before writing it
    // (StoreFenceAvx2 orders them). Small outputs stay in the cache for the consumer.
    if (plane * 3 >= (1 << 16) && (reinterpret_cast<uintptr_t>(o) & 31) == 0) {
      for (; x + 8 <= out_w; x += 8) {
        const __m256 t = _mm256_fmadd_ps(_mm256_loadu_ps(pb + x), vb, vs);
        _mm256_stream_ps(o + x, _mm256_fmadd_ps(_mm256_loadu_ps(pa + x), va, t));
      }
    }
    for (; x + 8 <= out_w; x += 8) {
      const __m256 t = _mm256_fmadd_ps(_mm256_loadu_ps(pb + x), vb, vs);
      _mm256_storeu_ps(o + x, _mm256_fmadd_ps(_mm256_loadu_ps(pa + x), va, t));
    }
    for (; x < out_w; ++x) o[x] = pa[x] * a[c] + (pb[x] * b[c] + shift[c]);
  }
}

__attribute__((target("avx2,fma"))) void StoreFenceAvx2() { _mm_sfence(); }

}  // namespace wrpn::trainer::resample
