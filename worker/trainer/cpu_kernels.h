#pragma once
// Branch-free loops over float buffers for the CPU quantizers, SSE2 where the target has it
// (quantizer.cc splits the work over ATen's intra-op threads). Stateless; thread-safe.
#include <cstdint>

namespace wrpn::trainer::cpu {

// y = round(levels * clip(x, 0, 1)) / levels with round-half-to-even (as torch.round); NaN stays
// NaN. `levels` is at most 2^16 - 1.
void ActivationQuantize(const float* x, float* y, int64_t n, float levels);

// out = g where lo <= x <= hi, else 0 (the straight-through gradient of a clip).
void ClipMaskBackward(const float* x, const float* g, float* out, int64_t n, float lo, float hi);

}  // namespace wrpn::trainer::cpu
