#include "worker/trainer/cpu_kernels.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace wrpn::trainer::cpu {
namespace {

// Adding and subtracting 1.5 * 2^23 rounds a float in [0, 2^22] to the nearest integer, ties to
// even, in the default rounding mode, with SSE2 arithmetic (no SSE4.1 round instruction needed).
// The build must not use -ffast-math (it would fold the pair away).
constexpr float kMagic = 12582912.0f;

inline float QuantizeOne(float v, float levels) {
  // Written so that NaN passes through, like clamp: each comparison is false for NaN.
  const float c = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
  const float r = (c * levels + kMagic) - kMagic;
  return r / levels;
}

}  // namespace

// Branch-free SSE2 (GCC does not vectorise the scalar form: the clip's branches mispredict on
// random data and made the loop ~25x slower than ReLU).
void ActivationQuantize(const float* x, float* y, int64_t n, float levels) {
  int64_t i = 0;
#if defined(__SSE2__)
  const __m128 zero = _mm_setzero_ps(), one = _mm_set1_ps(1.0f), m = _mm_set1_ps(levels),
               magic = _mm_set1_ps(kMagic);
  for (; i + 4 <= n; i += 4) {
    // maxps/minps return their second operand when either is NaN: NaN passes through.
    __m128 c = _mm_min_ps(one, _mm_max_ps(zero, _mm_loadu_ps(x + i)));
    __m128 r = _mm_sub_ps(_mm_add_ps(_mm_mul_ps(c, m), magic), magic);
    _mm_storeu_ps(y + i, _mm_div_ps(r, m));
  }
#endif
  for (; i < n; ++i) y[i] = QuantizeOne(x[i], levels);
}

void WeightQuantize(const float* w, float* y, int64_t count, float s, float step, float inv_step,
                    float n) {
  int64_t i = 0;
#if defined(__SSE2__)
  const __m128 hi = _mm_set1_ps(s), lo = _mm_set1_ps(-s), vn = _mm_set1_ps(n),
               vmn = _mm_set1_ps(-n), inv = _mm_set1_ps(inv_step), st = _mm_set1_ps(step),
               magic = _mm_set1_ps(kMagic), zero = _mm_setzero_ps();
  for (; i + 4 <= count; i += 4) {
    const __m128 c = _mm_min_ps(hi, _mm_max_ps(lo, _mm_loadu_ps(w + i)));
    const __m128 v = _mm_mul_ps(c, inv);
    // Round |v| with the magic constant and restore the sign: ties to even, like nearbyint.
    const __m128 sign = _mm_and_ps(v, _mm_set1_ps(-0.0f));
    const __m128 a = _mm_andnot_ps(_mm_set1_ps(-0.0f), v);
    __m128 r = _mm_or_ps(_mm_sub_ps(_mm_add_ps(a, magic), magic), sign);
    r = _mm_min_ps(vn, _mm_max_ps(vmn, r));
    // -0 * step would give -0; fake_quantize gives +0 (it rounds through an integer).
    _mm_storeu_ps(y + i, _mm_add_ps(_mm_mul_ps(r, st), zero));
  }
#endif
  for (; i < count; ++i) {
    const float v = w[i];
    const float c = v < -s ? -s : (v > s ? s : v);
    const float x = c * inv_step;
    const float a = x < 0.0f ? -x : x;
    float r = (a + kMagic) - kMagic;
    if (x < 0.0f) r = -r;
    r = r < -n ? -n : (r > n ? n : r);
    y[i] = r * step + 0.0f;
  }
}

void ClipMaskBackward(const float* x, const float* g, float* out, int64_t n, float lo, float hi) {
  int64_t i = 0;
#if defined(__SSE2__)
  const __m128 vlo = _mm_set1_ps(lo), vhi = _mm_set1_ps(hi);
  for (; i + 4 <= n; i += 4) {
    const __m128 v = _mm_loadu_ps(x + i);
    const __m128 inside = _mm_and_ps(_mm_cmpge_ps(v, vlo), _mm_cmple_ps(v, vhi));
    _mm_storeu_ps(out + i, _mm_and_ps(inside, _mm_loadu_ps(g + i)));
  }
#endif
  for (; i < n; ++i) out[i] = (x[i] >= lo && x[i] <= hi) ? g[i] : 0.0f;
}

}  // namespace wrpn::trainer::cpu
