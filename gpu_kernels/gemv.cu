// Decode GEMV (m = 1..8 tokens), two kernels:
//  * Q4_0, Q8_0, Q4_K, Q5_K, Q6_K ("mmvq" style, gemv_q.cuh): every thread block quantises x into
//    shared memory in the CPU engine's activation format (Q8_0 / Q8_K, byte-identical to
//    cpu::quantize_row), then each warp owns 2 weight rows at a time and dots whole blocks with
//    dp4a on 16-byte (or aligned 4-byte) weight loads, exact integer sums per block as
//    cpu::vec_dot_ref, float scaling per block. No __syncthreads after the quantisation; the
//    grid is capped at what stays resident, blocks stride over the rows.
//  * the other types: each warp owns two weight rows, each lane dequantises whole chunks (32
//    elements of a quantised row) and dots them with every token's float activations, which the
//    block stages in shared memory one 32-chunk sweep at a time.
//  * F32/F16/BF16 with few rows (n < 16 x SMs) and k >= 256: one block per 1-2 rows, its threads
//    split k and reduce through shared memory, so small matrices (MoE routers) spread over all SMs.
// gemv_batched runs up to 32 GEMVs of one type and k in one launch (blockIdx.y = entry) with the
// kernel gemv() picks for each alone: routed experts, q/k/v projections, MLA's per-head products.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <type_traits>
#include <utility>

#include "gpu_kernels/blocks.cuh"
#include "gpu_kernels/check.h"
#include "gpu_kernels/gemv_q.cuh"
#include "gpu_kernels/matmul.h"
#include "gpu_kernels/norm.cuh"
#include "gpu_kernels/ops.h"

namespace hexe::gpu {
namespace {

constexpr int kWarps = 8;        // warps per thread block
constexpr int kRowsPerWarp = 2;  // rows a warp computes from the same staged activations
constexpr int kRowsPerBlock = kWarps * kRowsPerWarp;

// Activations are staged per segment (32 chunks = one warp-wide sweep) in shared memory, padded
// by 4 floats per 32 so that each lane's float4 reads of its own chunk hit distinct banks.
__device__ __forceinline__ int padded(int e) { return e + (e >> 5) * 4; }

// gemv_batched: entry blockIdx.y of the batch (passed by value: ~1.4 KB of kernel parameters).
struct QBatch {
  const uint8_t* w[kGemvBatchMax];
  const float* x[kGemvBatchMax];
  float* y[kGemvBatchMax];
  int64_t n[kGemvBatchMax];
  int64_t y_stride[kGemvBatchMax];
  int m[kGemvBatchMax];
};

// m_valid <= M: the tokens that exist (a batched entry may have fewer than the launch's M); the
// others are staged as zeros and not written. Each token's sums do not depend on M.
template <class T, int M>
__device__ __forceinline__ void gemv_body(const uint8_t* __restrict__ w, uint64_t row_bytes, int64_t n, int64_t k,
                                          const float* __restrict__ x, int64_t x_stride, float* __restrict__ y,
                                          int64_t y_stride, int accumulate, int m_valid) {
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
      if (e < len) xs[t * kSegPadded + padded(e)] = t < m_valid ? __ldg(x + t * x_stride + seg + e) : 0.f;
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
      if (lane == 0 && row0 + r < n && t < m_valid) {
        float* out = y + t * y_stride + row0 + r;
        *out = accumulate ? *out + s : s;
      }
    }
}

template <class T, int M>
__global__ void __launch_bounds__(kWarps * 32)
    gemv_kernel(const uint8_t* __restrict__ w, uint64_t row_bytes, int64_t n, int64_t k,
                const float* __restrict__ x, int64_t x_stride, float* __restrict__ y,
                int64_t y_stride, int accumulate) {
  gemv_body<T, M>(w, row_bytes, n, k, x, x_stride, y, y_stride, accumulate, M);
}

template <class T, int M>
__global__ void __launch_bounds__(kWarps * 32)
    gemv_batched_kernel(QBatch b, uint64_t row_bytes, int64_t k, int64_t x_stride) {
  const int i = blockIdx.y;
  if (int64_t(blockIdx.x) * kRowsPerBlock >= b.n[i]) return;  // a narrower entry's surplus blocks
  gemv_body<T, M>(b.w[i], row_bytes, b.n[i], k, b.x[i], x_stride, b.y[i], b.y_stride[i], 0, b.m[i]);
}

template <class T, int M>
void launch(const MatmulParams& p, cudaStream_t stream) {
  const auto blocks = unsigned((p.n + kRowsPerBlock - 1) / kRowsPerBlock);
  gemv_kernel<T, M><<<blocks, kWarps * 32, 0, stream>>>(
      static_cast<const uint8_t*>(p.w), row_bytes(p.w_type, p.k), p.n, p.k, p.x, p.x_stride, p.y,
      p.y_stride, p.accumulate ? 1 : 0);
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


// ---- Quantised-activation GEMV ------------------------------------------------------------

constexpr int kQWarps = 8;                  // warps per thread block
constexpr int kQThreads = kQWarps * 32;
constexpr int kQRows = 2;                   // weight rows per warp (share each activation load)
constexpr int kQMaxSmem = 112 * 1024;       // activation bytes per block: >= 2 blocks per SM

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

// The block quantises the M rows of x into shared memory (one lane per 16 elements; a half-warp
// per Q8_K super-block, a lane pair per Q8_0 block). The trip count is block-uniform, so every
// lane of a warp takes part in the shuffles.
template <q::Act A, int M>
__device__ __forceinline__ void quantize_x(const float* __restrict__ x, int64_t x_stride, int k, bool vec,
                                           uint8_t* smem, const q::ActLayout& lay, int m_valid) {
  const int lane = threadIdx.x & 31;
  const int per_tok = k / 16, tasks = M * per_tok;
  for (int base = 0; base < tasks; base += kQThreads) {
    const int i = base + int(threadIdx.x);
    const bool valid = i < tasks;  // uniform per half-warp (tasks is a multiple of 16)
    const int t = valid ? i / per_tok : 0, j = valid ? i % per_tok : 0;
    float v[16];
    const float* src = x + t * x_stride + 16 * j;
    const bool real = valid && t < m_valid;  // tokens past m_valid (batched entries) read as zeros
    if (real && vec) {
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const float4 f = __ldg(reinterpret_cast<const float4*>(src) + c);
        v[4 * c] = f.x; v[4 * c + 1] = f.y; v[4 * c + 2] = f.z; v[4 * c + 3] = f.w;
      }
    } else {
#pragma unroll
      for (int e = 0; e < 16; ++e) v[e] = real ? __ldg(src + e) : 0.f;
    }
    uint8_t* tok = smem + t * lay.token_bytes;
    uint32_t qv[4];
    if constexpr (A == q::Act::Q8_K) {
      float amax, vmax;
      q::q8k_lane_absmax(v, &amax, &vmax);
      float g = amax;
#pragma unroll
      for (int off = 8; off > 0; off >>= 1) g = fmaxf(g, __shfl_xor_sync(0xffffffffu, g, off));
      // The signed max is the first lane's (lanes hold consecutive elements) reaching |max|.
      const unsigned cand = (__ballot_sync(0xffffffffu, amax == g) >> (lane & 16)) & 0xFFFFu;
      const float gmax = __shfl_sync(0xffffffffu, vmax, (__ffs(int(cand)) - 1) + (lane & 16));
      int bsum = 0;
      float d = 0.f;
      if (g == 0.f) {
        qv[0] = qv[1] = qv[2] = qv[3] = 0u;
      } else {
        q::q8k_lane_quantize(v, gmax, qv, &bsum);
        d = q::q8k_scale(gmax);
      }
      if (valid) {
        q::store_q8k_lane(tok, lay, j, qv, bsum);
        if ((j & 15) == 0) q::store_q8k_scale(tok, lay, j >> 4, d);
      }
    } else {
      float amax = q::q80_lane_absmax(v);
      amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 1));
      int sum;
      float d16;
      q::q80_lane_quantize(v, amax, qv, &sum, &d16);
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      if (valid) {
        q::store_q80_lane(tok, lay, j, qv);
        if ((j & 1) == 0) q::store_q80_meta(tok, lay, j >> 1, d16, sum);
      }
    }
  }
}

// kPipe: each warp loads the next (row group, step)'s weights before computing the current one
// (two fragments in registers, loads always in flight); else load, then compute.
// m_valid <= M: the tokens that exist (a batched entry may have fewer than the launch's M); the
// others are quantised as zeros and not written.
template <class T, int M, bool kPipe>
__device__ __forceinline__ void gemvq_body(const uint8_t* __restrict__ w, uint64_t row_bytes, int64_t n, int k,
                                           const float* __restrict__ x, int64_t x_stride, int x_vec,
                                           float* __restrict__ y, int64_t y_stride, int m_valid,
                                           bool accumulate, uint8_t* smem) {
  constexpr int R = kQRows, kUnitsPerStep = 32 / T::kLanes;
  const q::ActLayout lay = q::act_layout<T::kAct>(k);
  const int lane = threadIdx.x & 31;
  const int nunits = k / T::kUnitElems, steps = (nunits + kUnitsPerStep - 1) / kUnitsPerStep;
  const int part = lane % T::kLanes, uoff = lane / T::kLanes;
  const int64_t groups = (n + R - 1) / R, gstride = int64_t(gridDim.x) * kQWarps;
  int64_t g = int64_t(blockIdx.x) * kQWarps + (threadIdx.x >> 5);

  typename T::Frag f[R], fn[R];
  auto load = [&](typename T::Frag* dst, int64_t grp, int s) {
    const int u = s * kUnitsPerStep + uoff;
    if (u < nunits) {
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const int64_t row = grp * R + r < n ? grp * R + r : n - 1;
        T::load(w + uint64_t(row) * row_bytes, u, part, dst[r]);
      }
    }
  };
  // The first step's weights are in flight while the block quantises x.
  if (g < groups) load(f, g, 0);
  quantize_x<T::kAct, M>(x, x_stride, k, x_vec != 0, smem, lay, m_valid);
  __syncthreads();

  bool loaded = true;
  for (; g < groups; g += gstride) {
    float acc[R][M];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int t = 0; t < M; ++t) acc[r][t] = 0.f;
    for (int s = 0; s < steps; ++s) {
      if constexpr (kPipe) {
        const bool last = s + 1 == steps;
        const int64_t gn = last ? g + gstride : g;
        if (gn < groups) load(fn, gn, last ? 0 : s + 1);
      } else {
        if (!loaded) load(f, g, s);
        loaded = false;
      }
      const int u = s * kUnitsPerStep + uoff;
      if (u < nunits) {
        typename T::Unpacked up[R];
#pragma unroll
        for (int r = 0; r < R; ++r) T::prep(f[r], part, up[r]);
#pragma unroll
        for (int t = 0; t < M; ++t) {
          typename T::ActFrag a;
          T::load_act(smem + t * lay.token_bytes, lay, u, part, a);
#pragma unroll
          for (int r = 0; r < R; ++r) acc[r][t] += T::dot(up[r], a);
        }
      }
      if constexpr (kPipe) {
#pragma unroll
        for (int r = 0; r < R; ++r) f[r] = fn[r];
      }
    }
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int t = 0; t < M; ++t) {
        const float v = warp_sum(acc[r][t]);
        if (lane == r * M + t && g * R + r < n && t < m_valid) {
          float* out = y + t * y_stride + g * R + r;
          *out = accumulate ? *out + v : v;
        }
      }
  }
}

template <class T, int M, bool kPipe>
__global__ void __launch_bounds__(kQThreads)
    gemvq_kernel(const uint8_t* __restrict__ w, uint64_t row_bytes, int64_t n, int k,
                 const float* __restrict__ x, int64_t x_stride, int x_vec, float* __restrict__ y,
                 int64_t y_stride, int accumulate) {
  extern __shared__ __align__(16) uint8_t smem[];
  gemvq_body<T, M, kPipe>(w, row_bytes, n, k, x, x_stride, x_vec, y, y_stride, M, accumulate != 0, smem);
}

template <class T, int M, bool kPipe>
__global__ void __launch_bounds__(kQThreads)
    gemvq_batched_kernel(QBatch b, uint64_t row_bytes, int k, int64_t x_stride, int x_vec) {
  extern __shared__ __align__(16) uint8_t smem[];
  const int i = blockIdx.y;
  gemvq_body<T, M, kPipe>(b.w[i], row_bytes, b.n[i], k, b.x[i], x_stride, x_vec, b.y[i], b.y_stride[i], b.m[i],
                          false, smem);
}

// Per-device properties the launch needs, read once per device.
struct QDevice {
  int dev = 0, sms = 0, smem_optin = 0, smem_per_sm = 0, smem_reserved = 0;
};
Status q_device(QDevice* d) {
  constexpr int kMaxDevices = 64;
  struct Cached {
    std::atomic<bool> ready{false};
    QDevice d;
  };
  static Cached cache[kMaxDevices];
  if (auto e = cudaGetDevice(&d->dev); e != cudaSuccess) return Status::cuda("gemv", e);
  Cached* c = d->dev >= 0 && d->dev < kMaxDevices ? &cache[d->dev] : nullptr;
  if (c && c->ready.load(std::memory_order_acquire)) {
    *d = c->d;
    return Status::success();
  }
  for (auto [attr, out] : {std::pair{cudaDevAttrMultiProcessorCount, &d->sms},
                           std::pair{cudaDevAttrMaxSharedMemoryPerBlockOptin, &d->smem_optin},
                           std::pair{cudaDevAttrMaxSharedMemoryPerMultiprocessor, &d->smem_per_sm},
                           std::pair{cudaDevAttrReservedSharedMemoryPerBlock, &d->smem_reserved}})
    if (auto e = cudaDeviceGetAttribute(out, attr, d->dev); e != cudaSuccess) return Status::cuda("gemv", e);
  if (c) {
    c->d = *d;  // benign race: every writer stores the same values
    c->ready.store(true, std::memory_order_release);
  }
  return Status::success();
}

// Blocks of gemvq_kernel<T, M, P> (or its batched form) that stay resident per SM with `smem`
// dynamic bytes; allows the instance more than 48 KiB first when it needs it (once per device
// and size).
template <class T, int M, bool P, bool kBatched = false>
int resident_blocks(const QDevice& d, size_t smem) {
  constexpr int kMaxDevices = 64;
  static std::atomic<int> by_regs[kMaxDevices];   // blocks/SM at 0 dynamic bytes
  static std::atomic<int> smem_set[kMaxDevices];  // dynamic bytes already allowed
  const void* kernel = kBatched ? reinterpret_cast<const void*>(gemvq_batched_kernel<T, M, P>)
                                : reinterpret_cast<const void*>(gemvq_kernel<T, M, P>);
  if (d.dev < 0 || d.dev >= kMaxDevices) return 1;
  if (smem > 48 * 1024 && int(smem) > smem_set[d.dev].load(std::memory_order_relaxed)) {
    if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)) != cudaSuccess) return 1;
    smem_set[d.dev].store(int(smem), std::memory_order_relaxed);
  }
  int nb = by_regs[d.dev].load(std::memory_order_relaxed);
  if (nb == 0) {
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&nb, kernel, kQThreads, 0) != cudaSuccess || nb <= 0) return 1;
    by_regs[d.dev].store(nb, std::memory_order_relaxed);
  }
  if (smem > 0) nb = std::min<int>(nb, int(size_t(d.smem_per_sm) / (smem + size_t(d.smem_reserved))));
  return std::max(nb, 1);
}

template <class T, int M, bool P>
void launch_q(const MatmulParams& p, const QDevice& d, int64_t t0, cudaStream_t stream) {
  const auto lay = q::act_layout<T::kAct>(int(p.k));
  const size_t smem = size_t(M) * size_t(lay.token_bytes);
  const int nb = resident_blocks<T, M, P>(d, smem);  // an API error shows at the launch
  const int64_t groups = (p.n + kQRows - 1) / kQRows;
  const int64_t want = (groups + kQWarps - 1) / kQWarps;
  const auto blocks = unsigned(std::min<int64_t>(want, int64_t(d.sms) * nb));
  const float* x = p.x + t0 * p.x_stride;
  const bool vec = reinterpret_cast<uintptr_t>(p.x) % 16 == 0 && p.x_stride % 4 == 0;
  gemvq_kernel<T, M, P><<<blocks, kQThreads, smem, stream>>>(
      static_cast<const uint8_t*>(p.w), row_bytes(p.w_type, p.k), p.n, int(p.k), x, p.x_stride, vec ? 1 : 0,
      p.y + t0 * p.y_stride, p.y_stride, p.accumulate ? 1 : 0);
}

// Software pipelining (kPipe) for m <= T::kPipeMaxTokens; HEXE_GEMV_PIPE=0/1 overrides it (a
// diagnostic for measuring both).
template <class T>
bool use_pipe(int64_t m) {
  static const int env = [] {
    const char* e = std::getenv("HEXE_GEMV_PIPE");
    return e && (e[0] == '0' || e[0] == '1') ? e[0] - '0' : -1;
  }();
  return env >= 0 ? env == 1 : m <= T::kPipeMaxTokens;
}

template <class T, bool P>
void launch_q_m(const MatmulParams& p, const QDevice& d, int64_t t0, int64_t m, cudaStream_t stream) {
  switch (m) {
    case 1: return launch_q<T, 1, P>(p, d, t0, stream);
    case 2: return launch_q<T, 2, P>(p, d, t0, stream);
    case 3: return launch_q<T, 3, P>(p, d, t0, stream);
    case 4: return launch_q<T, 4, P>(p, d, t0, stream);
    case 5: return launch_q<T, 5, P>(p, d, t0, stream);
    case 6: return launch_q<T, 6, P>(p, d, t0, stream);
    case 7: return launch_q<T, 7, P>(p, d, t0, stream);
    default: return launch_q<T, 8, P>(p, d, t0, stream);
  }
}

// Calls f(Trait{}) for the types of the quantised-activation path; false for the others.
template <class F>
bool visit_q_type(DType t, F&& f) {
  switch (t) {
    case DType::Q4_0: f(q::Q40{}); return true;
    case DType::Q8_0: f(q::Q80{}); return true;
    case DType::Q4_K: f(q::Q4K{}); return true;
    case DType::Q5_K: f(q::Q5K{}); return true;
    case DType::Q6_K: f(q::Q6K{}); return true;
    default: return false;
  }
}

// The quantised-activation GEMV, tokens split over launches when their activations exceed the
// shared-memory budget. *handled = false (nothing launched) when one token alone does not fit.
Status gemv_q(const MatmulParams& p, cudaStream_t stream, bool* handled) {
  constexpr const char* kOp = "gemv";
  *handled = false;
  QDevice d;
  if (Status s = q_device(&d); !s.ok()) return s;
  if (p.k > (int64_t(1) << 20)) return Status::success();
  const int budget = std::min(d.smem_optin, kQMaxSmem);
  visit_q_type(p.w_type, [&](auto trait) {
    using T = decltype(trait);
    const int token_bytes = q::act_layout<T::kAct>(int(p.k)).token_bytes;
    const int64_t per_launch = std::min<int64_t>(p.m, budget / token_bytes);
    if (per_launch < 1) return;
    *handled = true;
    for (int64_t t0 = 0; t0 < p.m; t0 += per_launch) {
      const int64_t mc = std::min(per_launch, p.m - t0);
      if (use_pipe<T>(mc)) launch_q_m<T, true>(p, d, t0, mc, stream);
      else launch_q_m<T, false>(p, d, t0, mc, stream);
    }
  });
  return *handled ? last_launch_status(kOp) : Status::success();
}

int64_t entry_n(const GemvBatch& b, int i) { return b.e[i].n > 0 ? b.e[i].n : b.n; }
int64_t entry_y_stride(const GemvBatch& b, int i) { return b.e[i].y_stride > 0 ? b.e[i].y_stride : b.y_stride; }

// The kernels' form of a batch; *x_vec: every entry's x rows allow float4 loads.
QBatch pack(const GemvBatch& b, bool* x_vec, int64_t* n_max) {
  QBatch q{};
  *x_vec = b.x_stride % 4 == 0;
  *n_max = 0;
  for (int i = 0; i < b.count; ++i) {
    q.w[i] = static_cast<const uint8_t*>(b.e[i].w);
    q.x[i] = b.e[i].x;
    q.y[i] = b.e[i].y;
    q.n[i] = entry_n(b, i);
    q.y_stride[i] = entry_y_stride(b, i);
    q.m[i] = int(b.e[i].m);
    *x_vec = *x_vec && reinterpret_cast<uintptr_t>(b.e[i].x) % 16 == 0;
    *n_max = std::max(*n_max, q.n[i]);
  }
  return q;
}

template <class T, int M, bool P>
void launch_q_batched(const GemvBatch& b, const QDevice& d, cudaStream_t stream) {
  const auto lay = q::act_layout<T::kAct>(int(b.k));
  const size_t smem = size_t(M) * size_t(lay.token_bytes);
  const int nb = resident_blocks<T, M, P, true>(d, smem);
  bool vec;
  int64_t n_max;
  const QBatch q = pack(b, &vec, &n_max);
  const int64_t groups = (n_max + kQRows - 1) / kQRows;
  const int64_t want = (groups + kQWarps - 1) / kQWarps;
  // The resident grid shared by the entries, at least one block each (an entry with fewer rows
  // than the widest leaves its surplus blocks without work).
  const auto blocks = unsigned(std::max<int64_t>(1, std::min<int64_t>(want, int64_t(d.sms) * nb / b.count)));
  gemvq_batched_kernel<T, M, P><<<dim3(blocks, unsigned(b.count)), kQThreads, smem, stream>>>(
      q, row_bytes(b.w_type, b.k), int(b.k), b.x_stride, vec ? 1 : 0);
}

template <class T, bool P>
void launch_q_batched_m(const GemvBatch& b, const QDevice& d, int64_t m, cudaStream_t stream) {
  switch (m) {
    // Rows past an entry's m are masked, so M rounds up to a power of two (fewer instances).
    case 1: return launch_q_batched<T, 1, P>(b, d, stream);
    case 2: return launch_q_batched<T, 2, P>(b, d, stream);
    case 3:
    case 4: return launch_q_batched<T, 4, P>(b, d, stream);
    default: return launch_q_batched<T, 8, P>(b, d, stream);
  }
}

// ---- Small-n float GEMV --------------------------------------------------------------------

// With fewer 16-row blocks than SMs (a 128 x 2048 F32 router: 8 blocks on 132 SMs) gemv_kernel
// leaves most SMs idle and each block walks k one dependent sweep at a time. Here a block owns R
// rows, its threads split k (each with U chunks per row in flight, x read straight from global:
// it is L1/L2-resident) and reduce through shared memory: ceil(n / R) blocks, one launch.
// M is 1, 2, 4 or 8; tokens past m_valid are neither read nor written. The first chunks' weights
// are in flight while the block normalises (below).
// With nm.on (rms_norm_gemv), x is the norm's input: every block first sums each token's
// squares in rms_norm_kernel's order (same thread count) and dots the normed values, which it
// computes as rms_norm does; the blocks also write the normed rows to nm.out (and nm.copy).
constexpr int kSmallThreads = kWarps * 32;
static_assert(kSmallThreads == 256, "the fused norm sums squares as rms_norm_kernel's 256 threads do");

struct SmallNorm {
  bool on = false;                // false: x is the GEMV's input as it is
  const float* weight = nullptr;  // the norm's weight, or null (no scale)
  float eps = 0.f;
  float* out = nullptr;
  float* copy = nullptr;
  int64_t out_stride = 0;
};

template <class T, int M, int R>
__device__ __forceinline__ void gemv_small_n_body(const uint8_t* __restrict__ w, uint64_t row_bytes, int64_t n,
                                                  int64_t k, const float* __restrict__ x, int64_t x_stride,
                                                  int x_vec, int m_valid, float* __restrict__ y, int64_t y_stride,
                                                  int accumulate, const SmallNorm& nm) {
  constexpr int E = T::kElems, U = (E >= 8 ? 4 : 16) / R;  // chunks per row in flight: no spills
  __shared__ float part[kWarps][R * M];
  __shared__ float norm_part[kWarps], scale_s[M];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t row0 = int64_t(blockIdx.x) * R, n_chunks = k / E;
  const uint8_t* wr[R];
#pragma unroll
  for (int r = 0; r < R; ++r) wr[r] = w + uint64_t(row0 + r < n ? row0 + r : n - 1) * row_bytes;  // clamped, not written
  float acc[R][M];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int t = 0; t < M; ++t) acc[r][t] = 0.f;
  float v[U][R][E];
  auto load = [&](int64_t c0) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t c = c0 + int64_t(u) * kSmallThreads;
      if (c < n_chunks) {
#pragma unroll
        for (int r = 0; r < R; ++r) T::load(wr[r], c, v[u][r]);
      }
    }
  };
  load(threadIdx.x);

  if (nm.on) {
    for (int t = 0; t < m_valid; ++t) {
      const float* xt = x + t * x_stride;
      float sum = 0.f;
      for (int64_t i = threadIdx.x; i < k; i += kSmallThreads) sum += xt[i] * xt[i];
      const float scale = detail::rms_inv(detail::block_sum<kSmallThreads>(sum, norm_part), k, nm.eps);
      if (threadIdx.x == 0) scale_s[t] = scale;
    }
    __syncthreads();  // scale_s is read by every thread below
    // This block's share of the normed rows.
    for (int t = 0; t < m_valid; ++t)
      for (int64_t i = int64_t(blockIdx.x) * kSmallThreads + threadIdx.x; i < k; i += int64_t(gridDim.x) * kSmallThreads) {
        const float h = detail::rms_apply(x[t * x_stride + i], scale_s[t], nm.weight, i);
        nm.out[t * nm.out_stride + i] = h;
        if (nm.copy) nm.copy[t * nm.out_stride + i] = h;
      }
  }

  for (int64_t c0 = threadIdx.x; c0 < n_chunks; c0 += int64_t(U) * kSmallThreads) {
    if (c0 != threadIdx.x) load(c0);
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t c = c0 + int64_t(u) * kSmallThreads;
#pragma unroll
      for (int t = 0; t < M; ++t) {
        if (c >= n_chunks || t >= m_valid) continue;
        const float* xp = x + t * x_stride + c * E;
        float xv[E];
        if constexpr (E % 4 == 0) {
          if (x_vec) {
#pragma unroll
            for (int e = 0; e < E; e += 4) {
              const float4 f = __ldg(reinterpret_cast<const float4*>(xp + e));
              xv[e] = f.x; xv[e + 1] = f.y; xv[e + 2] = f.z; xv[e + 3] = f.w;
            }
          } else {
#pragma unroll
            for (int e = 0; e < E; ++e) xv[e] = __ldg(xp + e);
          }
        } else {
#pragma unroll
          for (int e = 0; e < E; ++e) xv[e] = __ldg(xp + e);
        }
        if (nm.on) {
#pragma unroll
          for (int e = 0; e < E; ++e) xv[e] = detail::rms_apply(xv[e], scale_s[t], nm.weight, c * E + e);
        }
#pragma unroll
        for (int r = 0; r < R; ++r)
#pragma unroll
          for (int e = 0; e < E; ++e) acc[r][t] += v[u][r][e] * xv[e];
      }
    }
  }
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int t = 0; t < M; ++t) {
      const float s = warp_sum(acc[r][t]);
      if (lane == 0) part[warp][r * M + t] = s;
    }
  __syncthreads();
  if (threadIdx.x < R * M) {
    const int r = int(threadIdx.x) / M, t = int(threadIdx.x) % M;
    float s = 0.f;
#pragma unroll
    for (int i = 0; i < kWarps; ++i) s += part[i][threadIdx.x];
    if (row0 + r < n && t < m_valid) {
      float* out = y + t * y_stride + row0 + r;
      *out = accumulate ? *out + s : s;
    }
  }
}

template <class T, int M, int R>
__global__ void __launch_bounds__(kSmallThreads)
    gemv_small_n_kernel(const uint8_t* __restrict__ w, uint64_t row_bytes, int64_t n, int64_t k,
                        const float* __restrict__ x, int64_t x_stride, int x_vec, int m_valid,
                        float* __restrict__ y, int64_t y_stride, int accumulate, const SmallNorm nm) {
  gemv_small_n_body<T, M, R>(w, row_bytes, n, k, x, x_stride, x_vec, m_valid, y, y_stride, accumulate, nm);
}

// Entry blockIdx.y of a gemv_batched call, without the norm.
template <class T, int M, int R>
__global__ void __launch_bounds__(kSmallThreads)
    gemv_small_n_batched_kernel(QBatch b, uint64_t row_bytes, int64_t k, int64_t x_stride, int x_vec) {
  const int i = blockIdx.y;
  if (int64_t(blockIdx.x) * R >= b.n[i]) return;  // a narrower entry's surplus blocks
  gemv_small_n_body<T, M, R>(b.w[i], row_bytes, b.n[i], k, b.x[i], x_stride, x_vec, b.m[i], b.y[i], b.y_stride[i], 0,
                             SmallNorm{});
}

template <class T, int M, int R>
void launch_small(const MatmulParams& p, const SmallNorm& nm, cudaStream_t stream) {
  const bool x_vec = reinterpret_cast<uintptr_t>(p.x) % 16 == 0 && p.x_stride % 4 == 0;
  gemv_small_n_kernel<T, M, R><<<unsigned((p.n + R - 1) / R), kSmallThreads, 0, stream>>>(
      static_cast<const uint8_t*>(p.w), row_bytes(p.w_type, p.k), p.n, p.k, p.x, p.x_stride, x_vec ? 1 : 0,
      int(p.m), p.y, p.y_stride, p.accumulate ? 1 : 0, nm);
}

template <class T, int R>
void launch_small_m(const MatmulParams& p, const SmallNorm& nm, cudaStream_t stream) {
  switch (p.m) {  // tokens past m are masked: M rounds up to a power of two (fewer instances)
    case 1: return launch_small<T, 1, R>(p, nm, stream);
    case 2: return launch_small<T, 2, R>(p, nm, stream);
    case 3:
    case 4: return launch_small<T, 4, R>(p, nm, stream);
    default: return launch_small<T, 8, R>(p, nm, stream);
  }
}

// Rows per block of the small-n kernel for an F32/F16/BF16 matrix, 0 for gemv_kernel: the small-n
// kernel when gemv_kernel's grid would not cover the SMs; 2 rows per block (half the x reads)
// once that still gives >= 2 blocks per SM. Not for k < 256: a block per row would leave at least
// 7 of its 8 warps without a chunk (an MLA layer's k_b, k = 128: 512 rows x 128 heads took
// 64K blocks a layer).
// HEXE_GEMV_SMALL_N=0 turns the small-n kernel off (a diagnostic for measuring both).
int small_n_rows(int64_t n, int64_t k, int sms) {
  static const bool off = [] {
    const char* e = std::getenv("HEXE_GEMV_SMALL_N");
    return e && e[0] == '0';
  }();
  if (off || k < 256 || (n + kRowsPerBlock - 1) / kRowsPerBlock >= sms) return 0;
  return n >= 4 * int64_t(sms) ? 2 : 1;
}

// Calls f(Trait{}) for an F32/F16/BF16 matrix (8-element chunks where plain_vec allows them).
template <class F>
void visit_plain_type(const MatmulParams& p, F&& f) {
  const bool vec = detail::plain_vec(p.w_type, p.w, p.k);
  switch (p.w_type) {
    case DType::F32: vec ? f(detail::F32<8>{}) : f(detail::F32<1>{}); break;
    case DType::F16: vec ? f(detail::F16<8>{}) : f(detail::F16<1>{}); break;
    default: vec ? f(detail::BF16<8>{}) : f(detail::BF16<1>{}); break;  // BF16 (check_weights passed)
  }
}

// gemv's F32/F16/BF16 path.
Status gemv_plain(const MatmulParams& p, cudaStream_t stream) {
  QDevice d;
  if (Status s = q_device(&d); !s.ok()) return s;
  const int rows = small_n_rows(p.n, p.k, d.sms);
  visit_plain_type(p, [&](auto trait) {
    using T = decltype(trait);
    if (rows == 1) launch_small_m<T, 1>(p, SmallNorm{}, stream);
    else if (rows == 2) launch_small_m<T, 2>(p, SmallNorm{}, stream);
    else launch_m<T>(p, stream);
  });
  return last_launch_status("gemv");
}

// gemv_batched for the float-path types (F32/F16/BF16, Q4_1/Q5_0/Q5_1): one launch with the
// kernel and chunk width gemv() picks for each entry alone (so each result is its gemv's, bit for
// bit). False (nothing launched) when the entries would not all take the same one.
bool launch_float_batched(const GemvBatch& b, int64_t m_max, cudaStream_t stream) {
  QDevice d;
  if (!q_device(&d).ok() || b.count < 1) return false;
  const bool plain = !is_quantized(b.w_type);
  const bool wvec = detail::plain_vec(b.w_type, b.e[0].w, b.k);
  const int rows = plain ? small_n_rows(entry_n(b, 0), b.k, d.sms) : 0;
  for (int i = 1; i < b.count; ++i)
    if (detail::plain_vec(b.w_type, b.e[i].w, b.k) != wvec || (plain && small_n_rows(entry_n(b, i), b.k, d.sms) != rows))
      return false;
  bool xvec;
  int64_t n_max;
  const QBatch q = pack(b, &xvec, &n_max);
  const uint64_t rb = row_bytes(b.w_type, b.k);
  const unsigned count = unsigned(b.count);
  detail::visit_weight_type(b.w_type, wvec, [&](auto trait) {
    using T = decltype(trait);
    // Tokens past an entry's m are masked, so M rounds up to a power of two (fewer instances).
    auto with_m = [&](auto f) {
      if (m_max == 1) f(std::integral_constant<int, 1>{});
      else if (m_max == 2) f(std::integral_constant<int, 2>{});
      else if (m_max <= 4) f(std::integral_constant<int, 4>{});
      else f(std::integral_constant<int, 8>{});
    };
    with_m([&](auto mc) {
      constexpr int M = decltype(mc)::value;
      if (rows == 1) {
        gemv_small_n_batched_kernel<T, M, 1><<<dim3(unsigned(n_max), count), kSmallThreads, 0, stream>>>(
            q, rb, b.k, b.x_stride, xvec ? 1 : 0);
      } else if (rows == 2) {
        gemv_small_n_batched_kernel<T, M, 2><<<dim3(unsigned((n_max + 1) / 2), count), kSmallThreads, 0, stream>>>(
            q, rb, b.k, b.x_stride, xvec ? 1 : 0);
      } else {
        const auto blocks = unsigned((n_max + kRowsPerBlock - 1) / kRowsPerBlock);
        gemv_batched_kernel<T, M><<<dim3(blocks, count), kWarps * 32, 0, stream>>>(q, rb, b.k, b.x_stride);
      }
    });
  });
  return true;
}

}  // namespace

Status gemv_batched(const GemvBatch& b, cudaStream_t stream) {
  constexpr const char* kOp = "gemv_batched";
  if (b.count < 0 || b.count > kGemvBatchMax) return Status::invalid(kOp, "count must be in 0..32");
  if (b.x_stride < b.k) return Status::invalid(kOp, "x_stride < k");
  int64_t m_max = 0, n_max = 0;
  for (int i = 0; i < b.count; ++i) {
    const int64_t n = entry_n(b, i);
    if (b.e[i].n < 0 || b.e[i].y_stride < 0) return Status::invalid(kOp, "an entry's n or y_stride is negative");
    if (entry_y_stride(b, i) < n) return Status::invalid(kOp, "an entry's y_stride < its n");
    if (const char* why = detail::check_weights(b.w_type, b.e[i].w, n, b.k)) return Status::invalid(kOp, why);
    n_max = std::max(n_max, n);
    if (b.e[i].m < 1 || b.e[i].m > kGemvMaxTokens) return Status::invalid(kOp, "an entry's m is not in 1..8");
    if (!b.e[i].x || !b.e[i].y) return Status::invalid(kOp, "an entry's x or y is null");
    m_max = std::max(m_max, b.e[i].m);
  }
  if (b.count == 0 || n_max == 0) return Status::success();
  // One launch for the quantised-activation types when the widest entry's activations fit the
  // shared-memory budget; otherwise entry by entry.
  bool launched = false;
  if (gemv_quantizes_activation(b.w_type) && b.k <= (int64_t(1) << 20)) {
    QDevice d;
    if (Status s = q_device(&d); !s.ok()) return s;
    const int budget = std::min(d.smem_optin, kQMaxSmem);
    visit_q_type(b.w_type, [&](auto trait) {
      using T = decltype(trait);
      const int64_t m_launch = m_max <= 2 ? m_max : m_max <= 4 ? 4 : 8;
      if (m_launch * q::act_layout<T::kAct>(int(b.k)).token_bytes > budget) return;
      launched = true;
      if (use_pipe<T>(m_launch)) launch_q_batched_m<T, true>(b, d, m_max, stream);
      else launch_q_batched_m<T, false>(b, d, m_max, stream);
    });
  }
  // The float-path types in one launch too (an MLA layer's 128 per-head k_b/v_b products).
  if (!launched && !gemv_quantizes_activation(b.w_type) && n_max <= int64_t(0x7fffffff))
    launched = launch_float_batched(b, m_max, stream);
  if (launched) return last_launch_status(kOp);
  for (int i = 0; i < b.count; ++i) {
    MatmulParams p;
    p.w = b.e[i].w;
    p.w_type = b.w_type;
    p.n = entry_n(b, i);
    p.k = b.k;
    p.x = b.e[i].x;
    p.m = b.e[i].m;
    p.x_stride = b.x_stride;
    p.y = b.e[i].y;
    p.y_stride = entry_y_stride(b, i);
    if (p.n == 0) continue;
    if (Status s = gemv(p, stream); !s.ok()) return s;
  }
  return Status::success();
}

bool supports_weight_type(DType t) {
  return detail::visit_weight_type(t, false, [](auto) {});
}

bool gemv_quantizes_activation(DType t) {
  return visit_q_type(t, [](auto) {});
}

Status rms_norm_gemv(const RmsNormParams& norm, const MatmulParams& p_in, cudaStream_t stream) {
  constexpr const char* kOp = "rms_norm_gemv";
  if (p_in.m != norm.rows || p_in.k != norm.n) return Status::invalid(kOp, "the GEMV's m x k is not the norm's rows x n");
  MatmulParams p = p_in;
  p.x = norm.dst;
  p.x_stride = norm.n;
  QDevice d;
  if (Status s = q_device(&d); !s.ok()) return s;
  const int rows = is_quantized(p.w_type) ? 0 : small_n_rows(p.n, p.k, d.sms);
  const bool fused = rows > 0 && p.m >= 1 && p.m <= kGemvMaxTokens && norm.src && norm.dst && norm.src != norm.dst &&
                     p.y && p.y_stride >= p.n && !detail::check_weights(p.w_type, p.w, p.n, p.k);
  if (!fused) {
    if (Status s = rms_norm(norm, stream); !s.ok()) return s;
    return gemv(p, stream);
  }
  p.x = norm.src;  // every block normalises it again (it is L2-resident); block b writes a share of dst
  SmallNorm nm;
  nm.on = true;
  nm.weight = norm.weight;
  nm.eps = norm.eps;
  nm.out = norm.dst;
  nm.copy = norm.copy;
  nm.out_stride = norm.n;
  visit_plain_type(p, [&](auto trait) {
    using T = decltype(trait);
    if (rows == 1) launch_small_m<T, 1>(p, nm, stream);
    else launch_small_m<T, 2>(p, nm, stream);
  });
  return last_launch_status(kOp);
}

Status gemv(const MatmulParams& p, cudaStream_t stream) {
  constexpr const char* kOp = "gemv";
  if (const char* why = detail::check_weights(p.w_type, p.w, p.n, p.k)) return Status::invalid(kOp, why);
  if (p.m < 1 || p.m > kGemvMaxTokens) return Status::invalid(kOp, "m must be in 1..8");
  if (p.x == nullptr || p.y == nullptr) return Status::invalid(kOp, "x or y is null");
  if (p.x_stride < p.k || p.y_stride < p.n) return Status::invalid(kOp, "x_stride < k or y_stride < n");
  if (p.n == 0) return Status::success();
  if (p.n > int64_t(0x7fffffff) * kRowsPerBlock) return Status::invalid(kOp, "n too large for one grid");
  if (gemv_quantizes_activation(p.w_type)) {
    bool handled = false;
    if (Status s = gemv_q(p, stream, &handled); !s.ok() || handled) return s;
  }
  if (!is_quantized(p.w_type)) return gemv_plain(p, stream);
  detail::visit_weight_type(p.w_type, detail::plain_vec(p.w_type, p.w, p.k),
                            [&](auto trait) { launch_m<decltype(trait)>(p, stream); });
  return last_launch_status(kOp);
}

}  // namespace hexe::gpu
