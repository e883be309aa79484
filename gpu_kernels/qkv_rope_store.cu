// Fused q/k RMSNorm + RoPE + K/V cache store of a GQA layer (ops.h, qk_rope_store): one launch
// instead of rms_norm x2, rope x2 and store_kv_rows x2, with the same bits.
#include "gpu_kernels/norm.cuh"
#include "gpu_kernels/ops.h"
#include "gpu_kernels/rope.cuh"

namespace hexe::gpu {
namespace {

constexpr int kMaxDim = kMaxQkRopeHeadDim;

// Block sum of one square per thread, in rms_norm_kernel's order: with n <= 256 its thread i holds
// only element i's square, so these warps are its warps, and its extra warps would add exact zeros.
__device__ float block_sum_sq(float sq) {
  __shared__ float partial[kMaxDim / 32];
  sq = detail::warp_sum_xor(sq);
  if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = sq;
  __syncthreads();
  float total = 0.f;
  for (int w = 0; w < int(blockDim.x >> 5); ++w) total += partial[w];
  return total;
}

// Element e (< rot_dim) of a head after RoPE, from the head's unrotated elements xs.
__device__ float roped(const float* xs, const float* c, const float* s, int e, int half, bool neox) {
  const int i = neox ? e % half : e / 2;
  const int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
  return e == a ? detail::rope_first(xs[a], xs[b], c[i], s[i]) : detail::rope_second(xs[a], xs[b], c[i], s[i]);
}

// Token t's row in its cache page, as store_kv_kernel addresses it.
__device__ __half* cache_row(__half* const* pages, const int32_t* page_start, int64_t t, int32_t pos, int page_tokens,
                             int64_t width) {
  return pages[(page_start ? page_start[t] : 0) + pos / page_tokens] + int64_t(pos % page_tokens) * width;
}

// One block per (token, head slot): slots [0, n_heads) are q heads, then one per kv head, which
// also stores the K and V rows' slice of that head. Thread e owns element e of the head.
__global__ void __launch_bounds__(kMaxDim) qk_rope_store_kernel(QkRopeStoreParams p) {
  __shared__ float xs[kMaxDim], cs[kMaxDim / 2], sn[kMaxDim / 2];
  const unsigned slots = unsigned(p.n_heads + p.n_kv_heads);
  const int64_t t = blockIdx.x / slots;
  const int slot = int(blockIdx.x % slots);
  const bool is_q = slot < p.n_heads;
  const int h = is_q ? slot : slot - p.n_heads;
  float* x = (is_q ? p.q + t * p.q_stride : p.k + t * p.k_stride) + int64_t(h) * p.head_dim;
  const float* weight = is_q ? p.q_norm : p.k_norm;
  const int e = int(threadIdx.x), half = p.rot_dim / 2;
  const bool live = e < p.head_dim;
  const int32_t pos = p.positions[t];
  for (int i = e; i < half; i += blockDim.x) detail::rope_cos_sin(float(pos), i, p.rot_dim, p.theta, &cs[i], &sn[i]);

  float val = live ? x[e] : 0.f;
  if (weight) {  // the same for the whole block
    const float total = block_sum_sq(live ? val * val : 0.f);
    if (live) val = detail::rms_apply(val, detail::rms_inv(total, p.head_dim, p.eps), weight, e);
  }
  if (live) xs[e] = val;
  __syncthreads();
  if (!live) return;
  if (e < p.rot_dim) val = roped(xs, cs, sn, e, half, p.mode == RopeMode::Neox);
  x[e] = val;
  if (is_q) return;
  const int64_t width = int64_t(p.n_kv_heads) * p.head_dim, col = int64_t(h) * p.head_dim + e;
  cache_row(p.k_pages, p.page_start, t, pos, p.page_tokens, width)[col] = __float2half_rn(val);
  cache_row(p.v_pages, p.page_start, t, pos, p.page_tokens, width)[col] = __float2half_rn(p.v[t * p.v_stride + col]);
}

const char* check(const QkRopeStoreParams& p) {
  if (p.n_tokens < 0) return "n_tokens < 0";
  if (p.n_heads <= 0 || p.n_kv_heads <= 0) return "n_heads and n_kv_heads must be > 0";
  if (p.head_dim <= 0 || p.head_dim > kMaxDim) return "head_dim must be in 1..256";
  if (p.rot_dim <= 0 || p.rot_dim % 2 != 0 || p.rot_dim > p.head_dim) return "rot_dim must be even and in 1..head_dim";
  if (p.q_stride < int64_t(p.n_heads) * p.head_dim) return "q_stride < n_heads * head_dim";
  if (p.k_stride < int64_t(p.n_kv_heads) * p.head_dim) return "k_stride < n_kv_heads * head_dim";
  if (p.v_stride < int64_t(p.n_kv_heads) * p.head_dim) return "v_stride < n_kv_heads * head_dim";
  if (p.page_tokens <= 0) return "page_tokens must be > 0";
  if ((p.q_norm == nullptr) != (p.k_norm == nullptr)) return "q_norm and k_norm must be both set or both null";
  if (p.n_tokens * (int64_t(p.n_heads) + p.n_kv_heads) > 0x7fffffff)
    return "n_tokens * (n_heads + n_kv_heads) exceeds one grid";
  return nullptr;
}

}  // namespace

Status qk_rope_store(const QkRopeStoreParams& p, cudaStream_t stream) {
  constexpr const char* kOp = "qk_rope_store";
  if (const char* why = check(p)) return Status::invalid(kOp, why);
  if (p.n_tokens == 0) return Status::success();
  if (!p.q || !p.k || !p.v || !p.positions || !p.k_pages || !p.v_pages)
    return Status::invalid(kOp, "q, k, v, positions, k_pages or v_pages is null");
  const unsigned blocks = unsigned(p.n_tokens * (p.n_heads + p.n_kv_heads));
  const int threads = (p.head_dim + 31) / 32 * 32;
  qk_rope_store_kernel<<<blocks, threads, 0, stream>>>(p);
  return last_launch_status(kOp);
}

}  // namespace hexe::gpu
