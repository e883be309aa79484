// MoE routing: per token, the top-k experts by logit and their weights (softmax then top-k, or
// top-k then softmax). One warp per token; the token's logits are staged in shared memory.
#include <cfloat>

#include "gpu_kernels/ops.h"

namespace hexe::gpu {
namespace {

// a beats b: larger value, ties to the lower index. NaN never wins.
__device__ __forceinline__ bool better(float va, int ia, float vb, int ib) {
  return va > vb || (va == vb && ia < ib);
}

// Selection runs on logits: softmax is monotonic, so this is also the top-k of the
// probabilities, without rounding in exp creating ties that the logits do not have.
__global__ void route_kernel(const float* __restrict__ logits, int n_experts, int k, bool softmax_first,
                             bool renormalize, float scale, int32_t* __restrict__ ids,
                             float* __restrict__ weights) {
  extern __shared__ float v[];  // n_experts logits; NaN once taken (NaN never wins)
  const int lane = threadIdx.x;
  const float* l = logits + int64_t(blockIdx.x) * n_experts;
  float mx = -FLT_MAX;
  for (int e = lane; e < n_experts; e += 32) {
    v[e] = l[e];
    mx = fmaxf(mx, v[e]);
  }
  for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
  float denom = 0.f;  // softmax over every expert (SoftmaxTopK only)
  if (softmax_first) {
    for (int e = lane; e < n_experts; e += 32) denom += expf(v[e] - mx);
    for (int off = 16; off > 0; off >>= 1) denom += __shfl_xor_sync(0xffffffffu, denom, off);
  }
  __syncwarp();
  int32_t* out_ids = ids + int64_t(blockIdx.x) * k;
  float* out_w = weights + int64_t(blockIdx.x) * k;
  float top = 0.f, sum = 0.f;  // the best logit; the sum of the k unnormalised weights
  for (int j = 0; j < k; ++j) {
    float bv = -INFINITY;
    int bi = INT32_MAX;
    for (int e = lane; e < n_experts; e += 32)
      if (better(v[e], e, bv, bi)) bv = v[e], bi = e;
    for (int off = 16; off > 0; off >>= 1) {
      const float ov = __shfl_xor_sync(0xffffffffu, bv, off);
      const int oi = __shfl_xor_sync(0xffffffffu, bi, off);
      if (better(ov, oi, bv, bi)) bv = ov, bi = oi;
    }
    if (bi == INT32_MAX) bi = j;  // only NaN logits left: the output is meaningless but in range
    if (j == 0) top = bv;
    const float w = softmax_first ? expf(bv - mx) / denom : expf(bv - top);
    sum += w;
    if (lane == 0) {
      out_ids[j] = bi;
      out_w[j] = w;
      v[bi] = __int_as_float(0x7fc00000);
    }
    __syncwarp();
  }
  if (lane == 0) {
    const float norm = softmax_first ? (renormalize ? scale / sum : scale) : scale / sum;
    for (int j = 0; j < k; ++j) out_w[j] *= norm;
  }
}

}  // namespace

Status route_topk(const RoutingParams& p, cudaStream_t stream) {
  constexpr const char* kOp = "route_topk";
  if (p.n_experts < 1 || p.n_experts > kMaxRoutedExperts) return Status::invalid(kOp, "n_experts must be in 1..8192");
  if (p.k < 1 || p.k > p.n_experts) return Status::invalid(kOp, "k must be in 1..n_experts");
  if (p.n_tokens < 0 || p.n_tokens > 0x7fffffff) return Status::invalid(kOp, "n_tokens out of range");
  if (p.n_tokens == 0) return Status::success();
  if (!p.logits || !p.ids || !p.weights) return Status::invalid(kOp, "logits, ids or weights is null");
  route_kernel<<<unsigned(p.n_tokens), 32, size_t(p.n_experts) * sizeof(float), stream>>>(
      p.logits, p.n_experts, p.k, p.mode == RoutingMode::SoftmaxTopK, p.renormalize, p.scale, p.ids,
      p.weights);
  return last_launch_status(kOp);
}

}  // namespace hexe::gpu
