// Dequantising GEMV for decode (m = 1..8 tokens): each warp owns two weight rows, each lane
// dequantises whole chunks (32 elements of a quantised row) and dots them with every token's
// activations, which the block stages in shared memory one 32-chunk sweep at a time.
#include "gpu_kernels/blocks.cuh"
#include "gpu_kernels/check.h"
#include "gpu_kernels/matmul.h"

namespace hexe::gpu {
namespace {

constexpr int kWarps = 8;        // warps per thread block
constexpr int kRowsPerWarp = 2;  // rows a warp computes from the same staged activations
constexpr int kRowsPerBlock = kWarps * kRowsPerWarp;

// Activations are staged per segment (32 chunks = one warp-wide sweep) in shared memory, padded
// by 4 floats per 32 so that each lane's float4 reads of its own chunk hit distinct banks.
__device__ __forceinline__ int padded(int e) { return e + (e >> 5) * 4; }

template <class T, int M>
__global__ void __launch_bounds__(kWarps * 32)
    gemv_kernel(const uint8_t* __restrict__ w, uint64_t row_bytes, int64_t n, int64_t k,
                const float* __restrict__ x, int64_t x_stride, float* __restrict__ y,
                int64_t y_stride) {
  constexpr int kSeg = 32 * T::kElems;    // elements per sweep
  constexpr int kSegPadded = kSeg + kSeg / 32 * 4;
  __shared__ __align__(16) float xs[M * kSegPadded];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t row0 = int64_t(blockIdx.x) * kRowsPerBlock + int64_t(warp) * kRowsPerWarp;
  const int64_t n_chunks = k / T::kElems;
  float acc[kRowsPerWarp][M];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r)
#pragma unroll
    for (int t = 0; t < M; ++t) acc[r][t] = 0.f;

  for (int64_t seg = 0; seg < k; seg += kSeg) {
    const int len = int(k - seg < kSeg ? k - seg : kSeg);
    __syncthreads();  // the previous sweep's reads are done
    for (int i = threadIdx.x; i < M * kSeg; i += kWarps * 32) {
      const int t = i / kSeg, e = i % kSeg;
      if (e < len) xs[t * kSegPadded + padded(e)] = __ldg(x + t * x_stride + seg + e);
    }
    __syncthreads();
    const int64_t c = seg / T::kElems + lane;
    if (c >= n_chunks || row0 >= n) continue;
    float v[kRowsPerWarp][T::kElems];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      if (row0 + r < n) {
        T::load(w + uint64_t(row0 + r) * row_bytes, c, v[r]);
      } else {
#pragma unroll
        for (int e = 0; e < T::kElems; ++e) v[r][e] = 0.f;
      }
    }
#pragma unroll
    for (int t = 0; t < M; ++t) {
      const float* xl = xs + t * kSegPadded + padded(lane * T::kElems);
      if constexpr (T::kElems % 4 == 0) {
#pragma unroll
        for (int e = 0; e < T::kElems; e += 4) {
          const float4 xv = *reinterpret_cast<const float4*>(xl + e);
#pragma unroll
          for (int r = 0; r < kRowsPerWarp; ++r)
            acc[r][t] += v[r][e] * xv.x + v[r][e + 1] * xv.y + v[r][e + 2] * xv.z + v[r][e + 3] * xv.w;
        }
      } else {
#pragma unroll
        for (int e = 0; e < T::kElems; ++e)
#pragma unroll
          for (int r = 0; r < kRowsPerWarp; ++r) acc[r][t] += v[r][e] * xl[e];
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r)
#pragma unroll
    for (int t = 0; t < M; ++t) {
      float s = acc[r][t];
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
      if (lane == 0 && row0 + r < n) y[t * y_stride + row0 + r] = s;
    }
}

template <class T, int M>
void launch(const MatmulParams& p, cudaStream_t stream) {
  const auto blocks = unsigned((p.n + kRowsPerBlock - 1) / kRowsPerBlock);
  gemv_kernel<T, M><<<blocks, kWarps * 32, 0, stream>>>(
      static_cast<const uint8_t*>(p.w), row_bytes(p.w_type, p.k), p.n, p.k, p.x, p.x_stride, p.y,
      p.y_stride);
}

template <class T>
void launch_m(const MatmulParams& p, cudaStream_t stream) {
  switch (p.m) {
    case 1: return launch<T, 1>(p, stream);
    case 2: return launch<T, 2>(p, stream);
    case 3: return launch<T, 3>(p, stream);
    case 4: return launch<T, 4>(p, stream);
    case 5: return launch<T, 5>(p, stream);
    case 6: return launch<T, 6>(p, stream);
    case 7: return launch<T, 7>(p, stream);
    default: return launch<T, 8>(p, stream);
  }
}

}  // namespace

bool supports_weight_type(DType t) {
  return detail::visit_weight_type(t, false, [](auto) {});
}

Status gemv(const MatmulParams& p, cudaStream_t stream) {
  constexpr const char* kOp = "gemv";
  if (const char* why = detail::check_weights(p.w_type, p.w, p.n, p.k)) return Status::invalid(kOp, why);
  if (p.m < 1 || p.m > kGemvMaxTokens) return Status::invalid(kOp, "m must be in 1..8");
  if (p.x == nullptr || p.y == nullptr) return Status::invalid(kOp, "x or y is null");
  if (p.x_stride < p.k || p.y_stride < p.n) return Status::invalid(kOp, "x_stride < k or y_stride < n");
  if (p.n == 0) return Status::success();
  if (p.n > int64_t(0x7fffffff) * kRowsPerBlock) return Status::invalid(kOp, "n too large for one grid");
  detail::visit_weight_type(p.w_type, detail::plain_vec(p.w_type, p.w, p.k),
                            [&](auto trait) { launch_m<decltype(trait)>(p, stream); });
  return last_launch_status(kOp);
}

}  // namespace hexe::gpu
