// Rotary position embedding, NEOX (halves) and interleaved (adjacent pairs) layouts, in place.
#include "gpu_kernels/ops.h"
#include "gpu_kernels/rope.cuh"

namespace hexe::gpu {
namespace {

// One block per token. The block first computes cos/sin of every pair's angle into shared memory
// (detail::rope_cos_sin, the CPU reference's order), then rotates every pair of every head. That
// keeps the result equal to cpu::rope up to the last-bit differences of pow.
__global__ void rope_kernel(float* x, const int32_t* __restrict__ positions, int64_t token_stride,
                            int n_heads, int head_dim, int rot_dim, float theta, bool neox) {
  extern __shared__ float cs[];  // [half] cos, then [half] sin
  const int half = rot_dim / 2;
  float* c = cs;
  float* s = cs + half;
  const float pos = float(positions[blockIdx.x]);
  for (int i = threadIdx.x; i < half; i += blockDim.x) detail::rope_cos_sin(pos, i, rot_dim, theta, &c[i], &s[i]);
  __syncthreads();
  float* xt = x + int64_t(blockIdx.x) * token_stride;
  for (int t = threadIdx.x; t < n_heads * half; t += blockDim.x) {
    const int h = t / half, i = t % half;
    float* xh = xt + int64_t(h) * head_dim;
    const int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
    const float x0 = xh[a], x1 = xh[b];
    xh[a] = detail::rope_first(x0, x1, c[i], s[i]);
    xh[b] = detail::rope_second(x0, x1, c[i], s[i]);
  }
}

// One block per token; thread t rotates pair t % n_pairs of head t / n_pairs.
__global__ void rope_table_kernel(float* x, const int32_t* __restrict__ positions, int64_t token_stride, int n_heads,
                                  int64_t head_stride, const float* __restrict__ inv_freq, int n_pairs,
                                  float attn_factor) {
  const float pos = float(positions[blockIdx.x]);
  float* xt = x + int64_t(blockIdx.x) * token_stride;
  for (int t = threadIdx.x; t < n_heads * n_pairs; t += blockDim.x) {
    const int h = t / n_pairs, i = t % n_pairs;
    const float angle = __fmul_rn(pos, inv_freq[i]);
    double sd, cd;
    sincos(double(angle), &sd, &cd);
    const float c = __fmul_rn(float(cd), attn_factor), s = __fmul_rn(float(sd), attn_factor);
    float* xh = xt + int64_t(h) * head_stride;
    const float x0 = xh[2 * i], x1 = xh[2 * i + 1];
    xh[2 * i] = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
    xh[2 * i + 1] = __fadd_rn(__fmul_rn(x1, c), __fmul_rn(x0, s));
  }
}

}  // namespace

Status rope_table(const RopeTableParams& p, cudaStream_t stream) {
  constexpr const char* kOp = "rope_table";
  if (p.n_tokens < 0 || p.n_heads <= 0 || p.n_pairs <= 0) return Status::invalid(kOp, "empty head shape");
  if (p.head_stride < 2 * int64_t(p.n_pairs) && p.n_heads > 1) return Status::invalid(kOp, "head_stride < 2 * n_pairs");
  if (p.n_tokens > 0x7fffffff) return Status::invalid(kOp, "n_tokens exceeds one grid");
  if (p.n_tokens == 0) return Status::success();
  if (!p.x || !p.positions || !p.inv_freq) return Status::invalid(kOp, "x, positions or inv_freq is null");
  const int work = p.n_heads * p.n_pairs;
  const int threads = work >= 256 ? 256 : (work + 31) / 32 * 32;
  rope_table_kernel<<<unsigned(p.n_tokens), threads, 0, stream>>>(p.x, p.positions, p.token_stride, p.n_heads,
                                                                  p.head_stride, p.inv_freq, p.n_pairs, p.attn_factor);
  return last_launch_status(kOp);
}

Status rope(const RopeParams& p, cudaStream_t stream) {
  constexpr const char* kOp = "rope";
  if (p.n_tokens < 0 || p.n_heads <= 0 || p.head_dim <= 0) return Status::invalid(kOp, "empty head shape");
  if (p.rot_dim <= 0 || p.rot_dim % 2 != 0 || p.rot_dim > p.head_dim)
    return Status::invalid(kOp, "rot_dim must be even and in 1..head_dim");
  if (p.token_stride < int64_t(p.n_heads) * p.head_dim) return Status::invalid(kOp, "token_stride < n_heads * head_dim");
  if (p.n_tokens > 0x7fffffff) return Status::invalid(kOp, "n_tokens exceeds one grid");
  if (p.n_tokens == 0) return Status::success();
  if (p.x == nullptr || p.positions == nullptr) return Status::invalid(kOp, "x or positions is null");
  const int work = p.n_heads * (p.rot_dim / 2);
  const int threads = work >= 256 ? 256 : (work + 31) / 32 * 32;
  rope_kernel<<<unsigned(p.n_tokens), threads, size_t(p.rot_dim) * sizeof(float), stream>>>(
      p.x, p.positions, p.token_stride, p.n_heads, p.head_dim, p.rot_dim, p.theta, p.mode == RopeMode::Neox);
  return last_launch_status(kOp);
}

}  // namespace hexe::gpu
