// Internal: the dequantisation kernel shared by dequantize_rows() and the GEMM path.
#pragma once

#include <cstdint>
#include <type_traits>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "gpu_kernels/blocks.cuh"

namespace hexe::gpu::detail {

template <class Out>
__device__ __forceinline__ Out from_float(float v) {
  if constexpr (std::is_same_v<Out, float>) return v;
  else if constexpr (std::is_same_v<Out, __half>) return __float2half_rn(v);
  else return __float2bfloat16_rn(v);
}

// One thread per chunk: rows x (k / kElems) threads; row r of src is row_bytes apart, of dst
// dst_stride elements apart.
template <class T, class Out>
__global__ void dequantize_kernel(const uint8_t* __restrict__ src, uint64_t row_bytes, int64_t rows,
                                  int64_t chunks_per_row, Out* __restrict__ dst, int64_t dst_stride) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * chunks_per_row) return;
  const int64_t r = i / chunks_per_row, c = i % chunks_per_row;
  float v[T::kElems];
  T::load(src + uint64_t(r) * row_bytes, c, v);
  Out* d = dst + r * dst_stride + c * T::kElems;
#pragma unroll
  for (int e = 0; e < T::kElems; ++e) d[e] = from_float<Out>(v[e]);
}

template <class T, class Out>
void launch_dequantize(const uint8_t* src, uint64_t row_bytes, int64_t rows, int64_t k, Out* dst,
                       int64_t dst_stride, cudaStream_t stream) {
  constexpr int kThreads = 256;
  const int64_t chunks = k / T::kElems;
  const int64_t total = rows * chunks;
  if (total == 0) return;
  dequantize_kernel<T, Out><<<unsigned((total + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
      src, row_bytes, rows, chunks, dst, dst_stride);
}

}  // namespace hexe::gpu::detail
