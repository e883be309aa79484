// GEMM for prefill: activations rounded to 16 bits, weights dequantised to F16 tiles (or used in
// place when F16/BF16/F32), cuBLAS GemmEx with F32 accumulation; plus the matmul() dispatcher.
#include <algorithm>
#include <climits>

#include "gpu_kernels/check.h"
#include "gpu_kernels/dequantize.cuh"
#include "gpu_kernels/matmul.h"

namespace hexe::gpu {
namespace {

constexpr size_t kAlign = 256;
size_t align_up(size_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

// dst[t][0..k) = 16-bit rounding of x[t * x_stride + 0..k), rows contiguous.
template <class Out>
__global__ void round_activations(const float* __restrict__ x, int64_t m, int64_t k, int64_t x_stride,
                                  Out* __restrict__ dst) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= m * k) return;
  const int64_t t = i / k, e = i % k;
  dst[i] = detail::from_float<Out>(x[t * x_stride + e]);
}

template <class Out>
void launch_round(const MatmulParams& p, Out* dst, cudaStream_t stream) {
  constexpr int kThreads = 256;
  const int64_t total = p.m * p.k;
  round_activations<Out><<<unsigned((total + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
      p.x, p.m, p.k, p.x_stride, dst);
}

// y[:, n0..n0+rows) = x16 . w16[rows][k]^T. Column-major view: Y^T (rows x m, ld y_stride) =
// op_T(W: k x rows, ld k) . X^T (k x m, ld ldx).
// accumulate: Y += instead of Y = (beta 1).
cublasStatus_t gemm_ex(cublasHandle_t h, int rows, int m, int k, const void* w, cudaDataType_t wt,
                       const void* x, cudaDataType_t xt, int ldx, float* y, int ldy, bool accumulate) {
  const float one = 1.f, beta = accumulate ? 1.f : 0.f;
  return cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, rows, m, k, &one, w, wt, k, x, xt, ldx, &beta, y,
                      CUDA_R_32F, ldy, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}

bool fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

}  // namespace

size_t gemm_workspace_bytes(const MatmulParams& p, int64_t tile_rows) {
  if (p.w_type == DType::F32) return 0;
  const size_t x_bytes = align_up(size_t(p.m) * size_t(p.k) * 2);
  if (!is_quantized(p.w_type)) return x_bytes;
  const int64_t rows = tile_rows < p.n ? tile_rows : p.n;
  return x_bytes + size_t(rows) * size_t(p.k) * 2;
}

Status gemm(const MatmulParams& p, const GemmContext& ctx, cudaStream_t stream) {
  constexpr const char* kOp = "gemm";
  if (const char* why = detail::check_weights(p.w_type, p.w, p.n, p.k)) return Status::invalid(kOp, why);
  if (p.m < 1) return Status::invalid(kOp, "m must be >= 1");
  if (p.x == nullptr || p.y == nullptr) return Status::invalid(kOp, "x or y is null");
  if (p.x_stride < p.k || p.y_stride < p.n) return Status::invalid(kOp, "x_stride < k or y_stride < n");
  if (!fits_int(p.n) || !fits_int(p.m) || !fits_int(p.k) || !fits_int(p.x_stride) || !fits_int(p.y_stride))
    return Status::invalid(kOp, "a dimension or stride exceeds cuBLAS's int range");
  if (p.n == 0) return Status::success();
  if (ctx.cublas == nullptr) return Status::invalid(kOp, "GemmContext::cublas is null");
  if (auto e = cublasSetStream(ctx.cublas, stream); e != CUBLAS_STATUS_SUCCESS) return Status::cublas(kOp, e);
  const int n = int(p.n), m = int(p.m), k = int(p.k);

  if (p.w_type == DType::F32)
    return Status::cublas(kOp, gemm_ex(ctx.cublas, n, m, k, p.w, CUDA_R_32F, p.x, CUDA_R_32F,
                                       int(p.x_stride), p.y, int(p.y_stride), p.accumulate));

  const size_t x_bytes = gemm_workspace_bytes(p, 0);
  if (ctx.workspace == nullptr || ctx.workspace_bytes < gemm_workspace_bytes(p, 1))
    return Status::invalid(kOp, "workspace smaller than gemm_workspace_bytes(p, 1)");
  if (!detail::aligned(ctx.workspace, kAlign)) return Status::invalid(kOp, "workspace must be 256-byte aligned");
  auto* ws = static_cast<uint8_t*>(ctx.workspace);

  if (p.w_type == DType::BF16) {
    auto* x16 = reinterpret_cast<__nv_bfloat16*>(ws);
    launch_round(p, x16, stream);
    if (auto s = last_launch_status(kOp); !s.ok()) return s;
    return Status::cublas(kOp, gemm_ex(ctx.cublas, n, m, k, p.w, CUDA_R_16BF, x16, CUDA_R_16BF, k, p.y,
                                       int(p.y_stride), p.accumulate));
  }
  auto* x16 = reinterpret_cast<__half*>(ws);
  launch_round(p, x16, stream);
  if (auto s = last_launch_status(kOp); !s.ok()) return s;
  if (p.w_type == DType::F16)
    return Status::cublas(kOp, gemm_ex(ctx.cublas, n, m, k, p.w, CUDA_R_16F, x16, CUDA_R_16F, k, p.y,
                                       int(p.y_stride), p.accumulate));

  // Quantised: dequantise as many rows as the workspace holds, multiply, move on. The tile is
  // reused, which is safe because the stream orders the next dequantisation after this GEMM.
  auto* tile = reinterpret_cast<__half*>(ws + x_bytes);
  const int64_t tile_rows = std::min<int64_t>(p.n, int64_t((ctx.workspace_bytes - x_bytes) / (size_t(k) * 2)));
  const auto* w = static_cast<const uint8_t*>(p.w);
  const uint64_t rb = row_bytes(p.w_type, p.k);
  for (int64_t n0 = 0; n0 < p.n; n0 += tile_rows) {
    const int64_t rows = std::min(tile_rows, p.n - n0);
    detail::visit_weight_type(p.w_type, false, [&](auto trait) {
      detail::launch_dequantize<decltype(trait)>(w + uint64_t(n0) * rb, rb, rows, p.k, tile, p.k, stream);
    });
    if (auto s = last_launch_status(kOp); !s.ok()) return s;
    if (auto e = gemm_ex(ctx.cublas, int(rows), m, k, tile, CUDA_R_16F, x16, CUDA_R_16F, k, p.y + n0,
                         int(p.y_stride), p.accumulate);
        e != CUBLAS_STATUS_SUCCESS)
      return Status::cublas(kOp, e);
  }
  return Status::success();
}

Status matmul(const MatmulParams& p, const GemmContext& ctx, cudaStream_t stream) {
  return p.m <= kGemvMaxTokens ? gemv(p, stream) : gemm(p, ctx, stream);
}

}  // namespace hexe::gpu
