// Device-side RMSNorm pieces shared by norm.cu and qkv_rope_store.cu, so both round identically.
#pragma once

#include <cstdint>

namespace hexe::gpu::detail {

// Butterfly sum over the warp; every lane ends with the same bits.
__device__ __forceinline__ float warp_sum_xor(float v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

// The sum over a block of kThreads threads of one float each, the same bits in every thread: a
// butterfly within each warp, then the warps' sums in warp order. rms_norm sums its squares this
// way, and the kernels that fuse a norm (host_flags.cu's add, gemv.cu's norm + router) call it
// with the same thread count to normalise to the same bits. `partial`: kThreads / 32 floats of
// shared memory, free again when the call returns (it synchronises the block twice).
template <int kThreads>
__device__ __forceinline__ float block_sum(float v, float* partial) {
  v = warp_sum_xor(v);
  if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = v;
  __syncthreads();
  float total = 0.f;
#pragma unroll
  for (int w = 0; w < kThreads / 32; ++w) total += partial[w];
  __syncthreads();
  return total;
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
