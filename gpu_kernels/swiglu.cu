// SwiGLU activation: dst = silu(gate) * up, element-wise.
#include <algorithm>

#include "gpu_kernels/ops.h"

namespace hexe::gpu {
namespace {

__global__ void swiglu_kernel(const float* gate, const float* up, float* dst, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float g = gate[i];
    dst[i] = g / (1.f + expf(-g)) * up[i];
  }
}

}  // namespace

Status swiglu(const float* gate, const float* up, float* dst, int64_t n, cudaStream_t stream) {
  constexpr const char* kOp = "swiglu";
  if (n < 0) return Status::invalid(kOp, "n < 0");
  if (n == 0) return Status::success();
  if (!gate || !up || !dst) return Status::invalid(kOp, "gate, up or dst is null");
  constexpr int kThreads = 256;
  const int64_t blocks = std::min<int64_t>((n + kThreads - 1) / kThreads, 65535);
  swiglu_kernel<<<unsigned(blocks), kThreads, 0, stream>>>(gate, up, dst, n);
  return last_launch_status(kOp);
}

}  // namespace hexe::gpu
