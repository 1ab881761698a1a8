// Fused WRPN activation quantizer for CUDA: one pass writes round(m * clip(x, 0, 1)) / m and the
// clip mask the backward pass needs. Plain CUDA (no LibTorch headers) so nvcc compiles it fast;
// quant_kernels.h declares the host entry point the trainer calls with its current stream.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "worker/trainer/cuda/quant_kernels.h"

namespace {

template <typename T>
__device__ __forceinline__ float ToFloat(T v) { return static_cast<float>(v); }
template <>
__device__ __forceinline__ float ToFloat(__nv_bfloat16 v) { return __bfloat162float(v); }
template <>
__device__ __forceinline__ float ToFloat(__half v) { return __half2float(v); }

template <typename T>
__device__ __forceinline__ T FromFloat(float v) { return static_cast<T>(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 FromFloat(float v) { return __float2bfloat16(v); }
template <>
__device__ __forceinline__ __half FromFloat(float v) { return __float2half(v); }

template <typename T>
__global__ void ActQuantForward(const T* __restrict__ x, T* __restrict__ y, bool* __restrict__ mask,
                                int64_t n, float levels, float inv_levels) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float v = ToFloat(x[i]);
    mask[i] = v >= 0.f && v <= 1.f;
    const float c = fminf(fmaxf(v, 0.f), 1.f);
    y[i] = FromFloat<T>(rintf(c * levels) * inv_levels);
  }
}

template <typename T>
cudaError_t Launch(const void* x, void* y, bool* mask, int64_t n, float levels, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  const int threads = 256;
  const int64_t want = (n + threads - 1) / threads;
  const int blocks = static_cast<int>(want < 65535 * 8 ? want : 65535 * 8);
  ActQuantForward<T><<<blocks, threads, 0, s>>>(static_cast<const T*>(x), static_cast<T*>(y), mask,
                                                n, levels, 1.f / levels);
  return cudaGetLastError();
}

}  // namespace

namespace wrpn::trainer::cuda {

cudaError_t ActivationQuantizeForward(ElementType type, const void* x, void* y, bool* mask,
                                      int64_t n, int bits, cudaStream_t stream) {
  const float levels = static_cast<float>((int64_t{1} << bits) - 1);
  switch (type) {
    case ElementType::kFloat: return Launch<float>(x, y, mask, n, levels, stream);
    case ElementType::kBFloat16: return Launch<__nv_bfloat16>(x, y, mask, n, levels, stream);
    case ElementType::kHalf: return Launch<__half>(x, y, mask, n, levels, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace wrpn::trainer::cuda
