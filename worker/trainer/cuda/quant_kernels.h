#pragma once
// Host entry points of the CUDA quantizer kernels (compiled only where CMake finds nvcc and a
// CUDA LibTorch; WRPN_WITH_CUDA_KERNELS is then defined for quantizer.cc).
#include <cuda_runtime.h>

#include <cstdint>

namespace wrpn::trainer::cuda {

enum class ElementType { kFloat, kBFloat16, kHalf };

// y = round(m * clip(x, 0, 1)) / m with m = 2^bits - 1, mask = (0 <= x <= 1); contiguous
// buffers of n elements on `stream`.
cudaError_t ActivationQuantizeForward(ElementType type, const void* x, void* y, bool* mask,
                                      int64_t n, int bits, cudaStream_t stream);

// The recipe's weight quantizer in two kernels: stats (two floats, zeroed by the caller) receives
// max|w| and sum|w|; then out = s * round(n * clip(w / s, -1, 1)) / n with
// s = min(max|w|, 1.4 * n * mean|w|), n = 2^(bits-1) - 1, and mask = (|w| <= s).
cudaError_t WeightQuantizeForward(const float* w, float* out, bool* mask, float* stats, int64_t n,
                                  int bits, cudaStream_t stream);

}  // namespace wrpn::trainer::cuda
