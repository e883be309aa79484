// Row plumbing kernels (see rows.h): grid-stride loops over the elements of all rows.
#include <algorithm>

#include "gpu_kernels/rows.h"

namespace hexe::gpu {
namespace {

constexpr int kThreads = 256;

unsigned blocks_for(int64_t n) { return unsigned(std::min<int64_t>((n + kThreads - 1) / kThreads, 65535)); }

#define GRID_STRIDE(i, n) \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

__global__ void add_kernel(float* x, const float* y, int64_t n) {
  GRID_STRIDE(i, n) x[i] += y[i];
}

__global__ void add_bias_kernel(float* x, const float* bias, int64_t total, int64_t n) {
  GRID_STRIDE(i, total) x[i] += bias[i % n];
}

__global__ void gather_kernel(const float* src, int64_t src_stride, const int32_t* rows, int64_t width,
                              float* dst, int64_t dst_stride, int64_t total) {
  GRID_STRIDE(i, total) {
    const int64_t r = i / width, c = i % width;
    dst[r * dst_stride + c] = src[int64_t(rows[r]) * src_stride + c];
  }
}

__global__ void scatter_add_kernel(const float* src, int64_t src_stride, const int32_t* rows, const float* w,
                                   int64_t width, float* dst, int64_t dst_stride, int64_t total) {
  GRID_STRIDE(i, total) {
    const int64_t r = i / width, c = i % width;
    dst[int64_t(rows[r]) * dst_stride + c] += w[r] * src[r * src_stride + c];
  }
}

__global__ void combine_kernel(const float* src, int64_t src_stride, const int32_t* entries, const float* w,
                               int k, int64_t width, float* dst, int64_t dst_stride, int64_t total) {
  GRID_STRIDE(i, total) {
    const int64_t t = i / width, c = i % width;
    float acc = dst[t * dst_stride + c];
    for (int j = 0; j < k; ++j) {
      const int32_t e = entries[t * k + j];
      if (e >= 0) acc += w[e] * src[int64_t(e) * src_stride + c];
    }
    dst[t * dst_stride + c] = acc;
  }
}

__global__ void store_kv_kernel(const float* src, int64_t src_stride, int64_t width, __half* const* pages,
                                const int32_t* page_start, const int32_t* pos, int page_tokens, int64_t total) {
  GRID_STRIDE(i, total) {
    const int64_t t = i / width, c = i % width;
    const int32_t p = pos[t];
    __half* page = pages[(page_start ? page_start[t] : 0) + p / page_tokens];
    page[int64_t(p % page_tokens) * width + c] = __float2half_rn(src[t * src_stride + c]);
  }
}

}  // namespace

Status add(float* x, const float* y, int64_t n, cudaStream_t stream) {
  constexpr const char* kOp = "add";
  if (n < 0) return Status::invalid(kOp, "n < 0");
  if (n == 0) return Status::success();
  if (!x || !y) return Status::invalid(kOp, "x or y is null");
  add_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, y, n);
  return last_launch_status(kOp);
}

Status add_bias(float* x, const float* bias, int64_t rows, int64_t n, cudaStream_t stream) {
  constexpr const char* kOp = "add_bias";
  if (rows < 0 || n <= 0) return Status::invalid(kOp, "rows must be >= 0 and n > 0");
  if (rows == 0) return Status::success();
  if (!x || !bias) return Status::invalid(kOp, "x or bias is null");
  add_bias_kernel<<<blocks_for(rows * n), kThreads, 0, stream>>>(x, bias, rows * n, n);
  return last_launch_status(kOp);
}

Status gather_rows(const float* src, int64_t src_stride, const int32_t* rows, int64_t n_rows, int64_t width,
                   float* dst, int64_t dst_stride, cudaStream_t stream) {
  constexpr const char* kOp = "gather_rows";
  if (n_rows < 0 || width <= 0) return Status::invalid(kOp, "n_rows must be >= 0 and width > 0");
  if (n_rows == 0) return Status::success();
  if (!src || !rows || !dst) return Status::invalid(kOp, "src, rows or dst is null");
  if (src_stride < width || dst_stride < width) return Status::invalid(kOp, "a stride is below width");
  gather_kernel<<<blocks_for(n_rows * width), kThreads, 0, stream>>>(src, src_stride, rows, width, dst, dst_stride,
                                                                     n_rows * width);
  return last_launch_status(kOp);
}

Status scatter_add_weighted(const float* src, int64_t src_stride, const int32_t* rows, const float* weights,
                            int64_t n_rows, int64_t width, float* dst, int64_t dst_stride, cudaStream_t stream) {
  constexpr const char* kOp = "scatter_add_weighted";
  if (n_rows < 0 || width <= 0) return Status::invalid(kOp, "n_rows must be >= 0 and width > 0");
  if (n_rows == 0) return Status::success();
  if (!src || !rows || !weights || !dst) return Status::invalid(kOp, "src, rows, weights or dst is null");
  if (src_stride < width || dst_stride < width) return Status::invalid(kOp, "a stride is below width");
  scatter_add_kernel<<<blocks_for(n_rows * width), kThreads, 0, stream>>>(src, src_stride, rows, weights, width, dst,
                                                                          dst_stride, n_rows * width);
  return last_launch_status(kOp);
}

Status combine_rows_weighted(const float* src, int64_t src_stride, const int32_t* entries, const float* weights,
                             int64_t n_tokens, int k, int64_t width, float* dst, int64_t dst_stride,
                             cudaStream_t stream) {
  constexpr const char* kOp = "combine_rows_weighted";
  if (n_tokens < 0 || k < 0 || width <= 0) return Status::invalid(kOp, "n_tokens and k must be >= 0, width > 0");
  if (n_tokens == 0 || k == 0) return Status::success();
  if (!src || !entries || !weights || !dst) return Status::invalid(kOp, "src, entries, weights or dst is null");
  if (src_stride < width || dst_stride < width) return Status::invalid(kOp, "a stride is below width");
  combine_kernel<<<blocks_for(n_tokens * width), kThreads, 0, stream>>>(src, src_stride, entries, weights, k, width,
                                                                       dst, dst_stride, n_tokens * width);
  return last_launch_status(kOp);
}

Status store_kv_rows(const float* src, int64_t src_stride, int64_t n_tokens, int64_t width, __half* const* pages,
                     const int32_t* page_start, const int32_t* pos, int page_tokens, cudaStream_t stream) {
  constexpr const char* kOp = "store_kv_rows";
  if (n_tokens < 0 || width <= 0 || page_tokens <= 0)
    return Status::invalid(kOp, "n_tokens must be >= 0, width and page_tokens > 0");
  if (n_tokens == 0) return Status::success();
  if (!src || !pages || !pos) return Status::invalid(kOp, "src, pages or pos is null");
  if (src_stride < width) return Status::invalid(kOp, "src_stride is below width");
  store_kv_kernel<<<blocks_for(n_tokens * width), kThreads, 0, stream>>>(src, src_stride, width, pages, page_start,
                                                                         pos, page_tokens, n_tokens * width);
  return last_launch_status(kOp);
}

}  // namespace hexe::gpu
