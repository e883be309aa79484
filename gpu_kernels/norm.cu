// RMSNorm: one thread block per row, float sum of squares reduced through shared memory.
#include "gpu_kernels/norm.cuh"
#include "gpu_kernels/ops.h"

namespace hexe::gpu {
namespace {

constexpr int kThreads = 256;

__global__ void __launch_bounds__(kThreads)
    rms_norm_kernel(const float* src, const float* __restrict__ weight, float* dst, float* copy, int64_t n,
                    float eps) {
  const float* s = src + int64_t(blockIdx.x) * n;
  float* d = dst + int64_t(blockIdx.x) * n;
  float* c = copy ? copy + int64_t(blockIdx.x) * n : nullptr;
  float sum = 0.f;
  for (int64_t i = threadIdx.x; i < n; i += kThreads) sum += s[i] * s[i];
  __shared__ float partial[kThreads / 32];
  const float scale = detail::rms_inv(detail::block_sum<kThreads>(sum, partial), n, eps);
  for (int64_t i = threadIdx.x; i < n; i += kThreads) {
    const float v = detail::rms_apply(s[i], scale, weight, i);
    d[i] = v;
    if (c) c[i] = v;
  }
}

}  // namespace

Status rms_norm(const RmsNormParams& p, cudaStream_t stream) {
  constexpr const char* kOp = "rms_norm";
  if (p.rows < 0 || p.n <= 0) return Status::invalid(kOp, "rows must be >= 0 and n > 0");
  if (p.rows > 0x7fffffff) return Status::invalid(kOp, "rows exceeds one grid");
  if (p.rows == 0) return Status::success();
  if (p.src == nullptr || p.dst == nullptr) return Status::invalid(kOp, "src or dst is null");
  rms_norm_kernel<<<unsigned(p.rows), kThreads, 0, stream>>>(p.src, p.weight, p.dst, p.copy, p.n, p.eps);
  return last_launch_status(kOp);
}

}  // namespace hexe::gpu
