// Device-side RMSNorm pieces shared by norm.cu and qkv_rope_store.cu, so both round identically.
#pragma once

#include <cstdint>

namespace hexe::gpu::detail {

// Butterfly sum over the warp; every lane ends with the same bits.
__device__ __forceinline__ float warp_sum_xor(float v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

// 1 / rms from the sum of n squares.
__device__ __forceinline__ float rms_inv(float sum_sq, int64_t n, float eps) {
  return 1.f / sqrtf(sum_sq / float(n) + eps);
}

// One normed element: x * scale, then times weight[i] where there is a weight.
__device__ __forceinline__ float rms_apply(float x, float scale, const float* __restrict__ weight, int64_t i) {
  const float v = x * scale;
  return weight ? v * weight[i] : v;
}

}  // namespace hexe::gpu::detail
