// Tiled causal attention over paged F16 K/V with an online softmax, optionally split over the keys
// (flash-decoding) with a combine kernel; shared by GQA decode/prefill and MLA.
#include "gpu_kernels/attention_tile.h"

#include <algorithm>
#include <cmath>

#include "gpu_kernels/attention.h"

namespace hexe::gpu::detail {
namespace {

constexpr int kLanesPerRow = kTileThreads / kTileRows;  // 8: a row's threads are adjacent lanes
static_assert(kTileKeys == 2 * kLanesPerRow, "each lane scores two keys of a tile");

// Padded shared-memory strides (elements) so rows of Q and K/V tiles fall in different banks.
__host__ __device__ constexpr int q_stride(int dk) { return dk + 1; }
__host__ __device__ constexpr int kv_stride(int d) { return d + 2; }

// Shared memory of one block: Q rows and P (floats), 2 x kTileKeys row pointers, K (and V) tiles.
__host__ __device__ constexpr size_t float_part(int dk) {
  return (size_t(kTileRows) * q_stride(dk) + size_t(kTileRows) * kTileKeys + 1) / 2 * 2;  // even: pointers follow
}
size_t smem_bytes(int dk, int dv, bool v_in_k) {
  return float_part(dk) * 4 + 2 * kTileKeys * sizeof(void*) +
         size_t(kTileKeys) * (kv_stride(dk) + (v_in_k ? 0 : kv_stride(dv))) * 2;
}

// Keys of one split range (a multiple of the tile), as the tile and combine kernels both cut them.
__host__ __device__ constexpr int64_t split_keys(int64_t max_keys, int n_splits) {
  return ((max_keys + n_splits - 1) / n_splits + kTileKeys - 1) / kTileKeys * kTileKeys;
}

// The key count the ranges are cut from. A decode launch (up to kRangeQueries queries) reads its
// queries' positions and cuts the keys that exist, max over them of min(q_pos + 1, max_keys),
// into n_splits ranges: a CUDA graph captured with the whole cache as max_keys then still gives
// every range a few keys (one tile at a 600-token context instead of four tiles in a quarter of
// the ranges). Other launches cut max_keys. Tile and combine kernels compute it alike.
constexpr int64_t kRangeQueries = 16;
__device__ __forceinline__ int64_t range_keys(const int32_t* __restrict__ q_pos, int64_t n_q, int64_t max_keys) {
  if (n_q > kRangeQueries) return max_keys;
  int64_t keys = 1;
  for (int64_t i = 0; i < n_q; ++i) keys = max(keys, min(int64_t(q_pos[i]) + 1, max_keys));
  return keys;
}

// Stages a tile: the K rows rowp[0..16) (dk halves, k_s rows ks apart) and, unless V_IN_K, the
// V rows rowp[16..32) (dv halves, v_s rows vs apart); a null row stages zeros. With dk and dv
// multiples of 8, 16-byte pieces (per element where a row is not 16-byte aligned), each thread
// loading kStageBatch pieces before storing any: one memory latency per tile for dk = dv = 128
// (per-element copies serialise every load behind the previous shared-memory store).
constexpr int kStageBatch = 4;
template <bool V_IN_K>
__device__ __forceinline__ void stage_tile(const __half* const* rowp, int dk, int ks, __half* k_s, int dv, int vs,
                                           __half* v_s) {
  if (((dk | (V_IN_K ? 0 : dv)) & 7) != 0) {
    for (int i = threadIdx.x; i < kTileKeys * dk; i += kTileThreads) {
      const int j = i / dk, e = i - j * dk;
      k_s[j * ks + e] = rowp[j] ? rowp[j][e] : __float2half(0.f);
    }
    if (!V_IN_K) {
      for (int i = threadIdx.x; i < kTileKeys * dv; i += kTileThreads) {
        const int j = i / dv, e = i - j * dv;
        v_s[j * vs + e] = rowp[kTileKeys + j] ? rowp[kTileKeys + j][e] : __float2half(0.f);
      }
    }
    return;
  }
  const int ck = dk >> 3, cv = V_IN_K ? 0 : dv >> 3;  // pieces per row
  const int nk = kTileKeys * ck, total = nk + kTileKeys * cv;
  for (int base = threadIdx.x; base < total; base += kStageBatch * kTileThreads) {
    uint4 v[kStageBatch];
    int dst[kStageBatch];  // halves past k_s (v_s follows k_s), -1: none; even, so 4-byte aligned
#pragma unroll
    for (int b = 0; b < kStageBatch; ++b) {
      const int i = base + b * kTileThreads;
      v[b] = make_uint4(0u, 0u, 0u, 0u);
      dst[b] = -1;
      if (i < total) {
        const bool is_k = i < nk;
        const int ii = is_k ? i : i - nk, per = is_k ? ck : cv;
        const int j = ii / per, c = (ii - j * per) * 8;
        const __half* src = rowp[is_k ? j : kTileKeys + j];
        dst[b] = is_k ? j * ks + c : int(v_s - k_s) + j * vs + c;
        if (src && (reinterpret_cast<uintptr_t>(src + c) & 15) == 0) {
          v[b] = *reinterpret_cast<const uint4*>(src + c);
        } else if (src) {
          const unsigned short* h = reinterpret_cast<const unsigned short*>(src + c);
          v[b] = make_uint4(h[0] | uint32_t(h[1]) << 16, h[2] | uint32_t(h[3]) << 16, h[4] | uint32_t(h[5]) << 16,
                            h[6] | uint32_t(h[7]) << 16);
        }
      }
    }
#pragma unroll
    for (int b = 0; b < kStageBatch; ++b) {
      if (dst[b] >= 0) {
        uint32_t* o = reinterpret_cast<uint32_t*>(k_s + dst[b]);
        o[0] = v[b].x;
        o[1] = v[b].y;
        o[2] = v[b].z;
        o[3] = v[b].w;
      }
    }
  }
}

__device__ __forceinline__ float row_max(float x) {
  for (int o = kLanesPerRow / 2; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}
__device__ __forceinline__ float row_sum(float x) {
  for (int o = kLanesPerRow / 2; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

// Grid: x = row blocks, y = kv head, z = key range (split). Each thread owns one (query, head) row
// (tid / 8) and the value elements d = tid % 8 + 8c of it. Per tile of 16 keys: the block stages
// K (and V) rows in shared memory, each lane scores two keys against the row's Q (float dot, then
// * scale, like cpu::attention), the row's 8 lanes agree on the running max, rescale the running
// sum and output by exp(m_old - m_new) and add p x V. Masked keys (past q_pos, past the range) get
// p = 0 and are never read from a page. A range past every row's keys (z > 0) exits at once and
// writes nothing: combine_kernel reads only the ranges below its row's keys.
template <int DK_MAX, int DV_MAX, bool V_IN_K>
__global__ void __launch_bounds__(kTileThreads) tiled_attention_kernel(const TileArgs a) {
  extern __shared__ float smem[];
  const int dk = a.dk, dv = a.dv;
  const int qs = q_stride(dk), ks = kv_stride(dk), vs = V_IN_K ? ks : kv_stride(dv);
  float* q_s = smem;                     // [kTileRows][qs]
  float* p_s = q_s + kTileRows * qs;     // [kTileRows][kTileKeys]
  const __half** rowp = reinterpret_cast<const __half**>(smem + float_part(dk));  // K rows, V rows
  __half* k_s = reinterpret_cast<__half*>(rowp + 2 * kTileKeys);                  // [kTileKeys][ks]
  __half* v_s = V_IN_K ? k_s : k_s + kTileKeys * ks;                               // [kTileKeys][vs]
  __shared__ int warp_keys[kTileThreads / 32];

  const int tid = threadIdx.x, r = tid / kLanesPerRow, sub = tid % kLanesPerRow;
  const int group = a.n_heads / a.n_kv_heads, kvh = blockIdx.y;
  int64_t qi;
  int g;
  bool valid;
  int64_t page_base = 0;
  if (a.q_page_start) {  // one query per block: every row reads that query's page table
    const int gb = (group + kTileRows - 1) / kTileRows;
    qi = blockIdx.x / gb;
    g = int(blockIdx.x % gb) * kTileRows + r;
    valid = g < group;
    page_base = a.q_page_start[qi];
  } else {  // rows run over (query, head-in-group) pairs, queries sharing the one page table
    const int64_t f = int64_t(blockIdx.x) * kTileRows + r;
    qi = f / group;
    g = int(f % group);
    valid = f < a.n_q * group;
  }
  const int head = kvh * group + g;
  const int64_t pos = valid ? a.q_pos[qi] : -1;
  const int64_t orow = qi * a.n_heads + head;

  // Keys the block's rows need: max over rows of min(pos + 1, max_keys).
  int keys = valid ? int(min(pos + 1, a.max_keys)) : 0;
  for (int o = 16; o > 0; o >>= 1) keys = max(keys, __shfl_xor_sync(0xffffffffu, keys, o));
  if ((tid & 31) == 0) warp_keys[tid >> 5] = keys;
  __syncthreads();
  int block_keys = warp_keys[0];
#pragma unroll
  for (int i = 1; i < kTileThreads / 32; ++i) block_keys = max(block_keys, warp_keys[i]);

  const int64_t range = split_keys(range_keys(a.q_pos, a.n_q, a.max_keys), a.n_splits);
  const int64_t kbeg = int64_t(blockIdx.z) * range;
  if (blockIdx.z > 0 && kbeg >= block_keys) return;  // block-uniform; range 0 always writes
  const int64_t kend = min(kbeg + range, int64_t(block_keys));

  // q_s is read only after the tile loop's first __syncthreads (never when the range is empty).
  for (int e = sub; e < dk; e += kLanesPerRow) {
    float x = 0.f;
    if (valid)
      x = e < a.q_a_dim ? a.q_a[orow * a.q_a_dim + e] : a.q_b[orow * (dk - a.q_a_dim) + (e - a.q_a_dim)];
    q_s[r * qs + e] = x;
  }
  // Warps without a valid row (decode: 8 of a block's 16 rows for group 8) only help stage tiles.
  const bool warp_live = __any_sync(0xffffffffu, valid);
  const __half* const* kp = a.k_pages + page_base;
  const __half* const* vp = V_IN_K ? nullptr : a.v_pages + page_base;

  constexpr int kAcc = DV_MAX / kLanesPerRow;
  float acc[kAcc];
#pragma unroll
  for (int c = 0; c < kAcc; ++c) acc[c] = 0.f;
  float m = -INFINITY, l = 0.f;
  const float* qr = q_s + r * qs;
  float* pr = p_s + r * kTileKeys;

  for (int64_t t0 = kbeg; t0 < kend; t0 += kTileKeys) {
    __syncthreads();  // the previous tile's readers are done with rowp, k_s, v_s
    if (tid < 2 * kTileKeys) {
      const int j = tid % kTileKeys;
      const int64_t t = t0 + j;
      const __half* row = nullptr;
      if (t < kend) {
        const int64_t page = t / a.page_tokens, in_page = t % a.page_tokens;
        if (tid < kTileKeys) row = kp[page] + in_page * a.k_row + int64_t(kvh) * dk;
        else if (!V_IN_K) row = vp[page] + in_page * a.v_row + int64_t(kvh) * dv;
      }
      rowp[tid] = row;
    }
    __syncthreads();
    stage_tile<V_IN_K>(rowp, dk, ks, k_s, dv, vs, v_s);
    __syncthreads();
    if (!warp_live) continue;  // warp-uniform: the shuffles below see the whole warp

    const __half* k0 = k_s + sub * ks;
    const __half* k1 = k_s + (sub + kLanesPerRow) * ks;
    float s0 = 0.f, s1 = 0.f;
    for (int e = 0; e < dk; ++e) {
      const float qe = qr[e];
      s0 += qe * __half2float(k0[e]);
      s1 += qe * __half2float(k1[e]);
    }
    s0 *= a.scale;
    s1 *= a.scale;
    const int64_t t_0 = t0 + sub, t_1 = t0 + sub + kLanesPerRow;
    const bool ok0 = t_0 < kend && t_0 <= pos, ok1 = t_1 < kend && t_1 <= pos;
    const float m_new = fmaxf(m, row_max(fmaxf(ok0 ? s0 : -INFINITY, ok1 ? s1 : -INFINITY)));
    float p0 = 0.f, p1 = 0.f, corr = 1.f;
    if (m_new != -INFINITY) {  // else no key of this row so far: nothing to add or rescale
      corr = expf(m - m_new);  // 0 when m is still -inf
      p0 = ok0 ? expf(s0 - m_new) : 0.f;
      p1 = ok1 ? expf(s1 - m_new) : 0.f;
    }
    l = l * corr + row_sum(p0 + p1);
    m = m_new;
    pr[sub] = p0;
    pr[sub + kLanesPerRow] = p1;
    __syncwarp();
#pragma unroll
    for (int c = 0; c < kAcc; ++c) {
      const int d = sub + kLanesPerRow * c;
      if (d < dv) {
        float x = acc[c] * corr;
#pragma unroll
        for (int j = 0; j < kTileKeys; ++j) x += pr[j] * __half2float(v_s[j * vs + d]);
        acc[c] = x;
      }
    }
  }

  if (!valid) return;
  if (a.n_splits == 1) {
#pragma unroll
    for (int c = 0; c < kAcc; ++c) {
      const int d = sub + kLanesPerRow * c;
      if (d < dv) a.out[orow * dv + d] = l > 0.f ? acc[c] / l : 0.f;
    }
    return;
  }
  // Partial of range z: unnormalised output, max and sum (m = -inf, l = 0 for an empty range).
  const int64_t prow = orow * a.n_splits + blockIdx.z;
  const int64_t n_rows = a.n_q * a.n_heads * int64_t(a.n_splits);
  float* po = a.ws;
  float* pm = a.ws + n_rows * dv;
  float* pl = pm + n_rows;
#pragma unroll
  for (int c = 0; c < kAcc; ++c) {
    const int d = sub + kLanesPerRow * c;
    if (d < dv) po[prow * dv + d] = acc[c];
  }
  if (sub == 0) {
    pm[prow] = m;
    pl[prow] = l;
  }
}

// One block per (query, head) row, a thread per output element: weights w_s = exp(m_s - max m) of
// the ranges, then out = sum_s w_s o_s / sum_s w_s l_s, in a serial loop's order. Only the ranges
// below the row's keys are read: a CUDA graph sizes n_splits for the whole cache, and the ranges
// past the keys are empty (weight 0; the tile kernel skips them). Range 0 always holds key 0, so
// the sum is positive. Each thread computes the few weights itself (no shared memory, no
// barrier); kCombineBatch ranges at a time, all their loads in flight at once.
constexpr int kCombineMaxThreads = 512, kCombineBatch = 16;
__global__ void __launch_bounds__(kCombineMaxThreads)
    combine_kernel(const float* __restrict__ ws, int64_t n_rows, int n_splits, int dv, float* __restrict__ out,
                   const int32_t* __restrict__ q_pos, int n_heads, int64_t max_keys) {
  const int64_t orow = blockIdx.x;
  const int64_t range = split_keys(range_keys(q_pos, n_rows / n_heads, max_keys), n_splits);
  const int64_t keys = min(max(int64_t(q_pos[orow / n_heads]) + 1, int64_t(1)), max_keys);
  const int active = int(min((keys + range - 1) / range, int64_t(n_splits)));
  const float* po = ws + orow * n_splits * int64_t(dv);
  const float* pm = ws + n_rows * n_splits * int64_t(dv) + orow * n_splits;
  const float* pl = pm + n_rows * n_splits;
  for (int d = threadIdx.x; d < dv; d += blockDim.x) {
    float mx = -INFINITY, x = 0.f, sum = 0.f;
    // kCombineBatch ranges at a time, their loads all in flight; a later batch with a larger max
    // rescales what came before (with one batch: the serial order's weights exactly).
    for (int s0 = 0; s0 < active; s0 += kCombineBatch) {
      float m[kCombineBatch], l[kCombineBatch], o[kCombineBatch];
#pragma unroll
      for (int s = 0; s < kCombineBatch; ++s) {  // past `active`: weight 0, adds +0
        const bool in = s0 + s < active;
        m[s] = in ? pm[s0 + s] : -INFINITY;
        l[s] = in ? pl[s0 + s] : 0.f;
        o[s] = in ? po[int64_t(s0 + s) * dv + d] : 0.f;
      }
      float mb = mx;
#pragma unroll
      for (int s = 0; s < kCombineBatch; ++s) mb = fmaxf(mb, m[s]);
      if (s0 > 0 && mx != mb) {  // (mx is finite after the first batch: range 0 holds key 0)
        const float c = expf(mx - mb);
        sum *= c;
        x *= c;
      }
      mx = mb;
#pragma unroll
      for (int s = 0; s < kCombineBatch; ++s) {
        const float w = m[s] == -INFINITY ? 0.f : expf(m[s] - mx);
        sum += w * l[s];
        x += w * o[s];
      }
    }
    out[orow * dv + d] = sum > 0.f ? x / sum : 0.f;
  }
}

template <int DK_MAX, int DV_MAX, bool V_IN_K>
Status launch(const TileArgs& a, dim3 grid, cudaStream_t stream, const char* op) {
  if (a.dk > DK_MAX || a.dv > DV_MAX) return Status::invalid(op, "head width exceeds the kernel's maximum");
  const size_t smem = smem_bytes(a.dk, a.dv, V_IN_K);
  auto* kernel = &tiled_attention_kernel<DK_MAX, DV_MAX, V_IN_K>;
  if (smem > 48 * 1024) {  // above the default limit a kernel must opt in
    const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
    if (e != cudaSuccess) {
      cudaGetLastError();
      return Status::cuda(op, e);
    }
  }
  kernel<<<grid, kTileThreads, smem, stream>>>(a);
  return last_launch_status(op);
}

}  // namespace

int64_t tile_row_blocks(int64_t n_q, int group, bool per_query) {
  return per_query ? n_q * ((group + kTileRows - 1) / kTileRows) : (n_q * group + kTileRows - 1) / kTileRows;
}

Status launch_tiled_attention(TileKind kind, const TileArgs& a, cudaStream_t stream, const char* op) {
  if (a.n_splits < 1 || a.n_splits > kMaxSplits) return Status::invalid(op, "n_splits must be in 1..1024");
  if (a.n_kv_heads > 65535) return Status::invalid(op, "n_kv_heads exceeds one grid axis (65535)");
  const int64_t blocks = tile_row_blocks(a.n_q, a.n_heads / a.n_kv_heads, a.q_page_start != nullptr);
  if (blocks > 0x7fffffff) return Status::invalid(op, "n_q x n_heads exceeds one grid");
  const dim3 grid(unsigned(blocks), unsigned(a.n_kv_heads), unsigned(a.n_splits));
  Status s;
  switch (kind) {
    case TileKind::kHead64: s = launch<64, 64, false>(a, grid, stream, op); break;
    case TileKind::kHead128: s = launch<128, 128, false>(a, grid, stream, op); break;
    case TileKind::kHead256: s = launch<kMaxAttentionHeadDim, kMaxAttentionHeadDim, false>(a, grid, stream, op); break;
    case TileKind::kMla576: s = launch<kMaxMlaRowDim, kMaxMlaLoraRank, true>(a, grid, stream, op); break;
  }
  if (!s.ok() || a.n_splits == 1) return s;
  const int64_t n_rows = a.n_q * a.n_heads;
  const int threads = int(std::min<int64_t>(kCombineMaxThreads, (a.dv + 31) / 32 * 32));
  combine_kernel<<<unsigned(n_rows), unsigned(threads), 0, stream>>>(a.ws, n_rows, a.n_splits, a.dv, a.out, a.q_pos,
                                                                     a.n_heads, a.max_keys);
  return last_launch_status(op);
}

}  // namespace hexe::gpu::detail
