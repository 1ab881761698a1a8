#pragma once
// Branch-free loops over float buffers for the CPU quantizers, SSE2 where the target has it
// (quantizer.cc splits the work over ATen's intra-op threads). Stateless; thread-safe.
#include <cstdint>

namespace wrpn::trainer::cpu {

// y = round(levels * clip(x, 0, 1)) / levels with round-half-to-even (as torch.round); NaN stays
// NaN. `levels` is at most 2^16 - 1.
void ActivationQuantize(const float* x, float* y, int64_t n, float levels);

// y = step * clamp(round(clip(w, -s, s) * inv_step), -n, n) with round-half-to-even: ATen's
// fake_quantize_per_tensor_affine (zero point 0, range [-n, n]) of clamp(w, -s, s), step = s / n,
// inv_step = 1 / step as float. n is at most 2^15 - 1.
void WeightQuantize(const float* w, float* y, int64_t count, float s, float step, float inv_step,
                    float n);

// out = g where lo <= x <= hi, else 0 (the straight-through gradient of a clip).
void ClipMaskBackward(const float* x, const float* g, float* out, int64_t n, float lo, float hi);

}  // namespace wrpn::trainer::cpu
