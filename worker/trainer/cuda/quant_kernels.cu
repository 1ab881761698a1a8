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

// Per-tensor max|w| (stats[0], as float bits: non-negative floats order like ints) and sum|w|
// (stats[1]); stats must start at zero.
__global__ void AbsStats(const float* __restrict__ w, int64_t n, float* __restrict__ stats) {
  float mx = 0.f, sum = 0.f;
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float a = fabsf(w[i]);
    mx = fmaxf(mx, a);
    sum += a;
  }
  for (int off = 16; off > 0; off >>= 1) {
    mx = fmaxf(mx, __shfl_down_sync(0xffffffffu, mx, off));
    sum += __shfl_down_sync(0xffffffffu, sum, off);
  }
  __shared__ float block_max[32];
  __shared__ float block_sum[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) {
    block_max[warp] = mx;
    block_sum[warp] = sum;
  }
  __syncthreads();
  if (warp == 0) {
    const int warps = blockDim.x >> 5;
    mx = lane < warps ? block_max[lane] : 0.f;
    sum = lane < warps ? block_sum[lane] : 0.f;
    for (int off = 16; off > 0; off >>= 1) {
      mx = fmaxf(mx, __shfl_down_sync(0xffffffffu, mx, off));
      sum += __shfl_down_sync(0xffffffffu, sum, off);
    }
    if (lane == 0) {
      atomicMax(reinterpret_cast<int*>(stats), __float_as_int(mx));
      atomicAdd(stats + 1, sum);
    }
  }
}

// s = max(min(max|w|, 1.4 n mean|w|), tiny); out = s * round(n * clip(w / s)) / n; mask = |w| <= s.
__global__ void WeightQuant(const float* __restrict__ w, float* __restrict__ out, bool* __restrict__ mask,
                            int64_t n, const float* __restrict__ stats, float levels, float inv_count) {
  const float mx = __int_as_float(*reinterpret_cast<const int*>(stats));
  const float s = fmaxf(fminf(mx, 1.4f * levels * stats[1] * inv_count), 1e-30f);
  const float step = s / levels, inv_step = levels / s;
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float v = w[i];
    mask[i] = fabsf(v) <= s;
    out[i] = rintf(fminf(fmaxf(v, -s), s) * inv_step) * step;
  }
}

int Blocks(int64_t n, int threads, int64_t cap) {
  const int64_t want = (n + threads - 1) / threads;
  return static_cast<int>(want < cap ? want : cap);
}

}  // namespace

namespace wrpn::trainer::cuda {

cudaError_t WeightQuantizeForward(const float* w, float* out, bool* mask, float* stats, int64_t n,
                                  int bits, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  const int threads = 256;
  AbsStats<<<Blocks(n, threads, 1024), threads, 0, stream>>>(w, n, stats);
  const float levels = static_cast<float>((int64_t{1} << (bits - 1)) - 1);
  WeightQuant<<<Blocks(n, threads, 65535 * 8), threads, 0, stream>>>(w, out, mask, n, stats, levels,
                                                                     1.f / static_cast<float>(n));
  return cudaGetLastError();
}


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
