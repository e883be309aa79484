// oneDNN for prefill-sized matmuls of float weights. Our float tiles are decode kernels (one
// weight row against a few activation rows); oneDNN's brgemm blocks registers and caches for
// large m. Measured on the 2-core AVX-512 VM (bench/bench_matmul --m 512 --k 2048, 2 threads):
// oneDNN f32 247-269 GFLOP/s against 60 for our AVX-512 F32 tile; F16 202 against 60.
// oneDNN 2.6's bf16 matmul needs bf16 activations (a precision loss our AMX-BF16 tile avoids by
// splitting activations), so BF16 and F16 weights are widened to f32 by each thread, a chunk of
// its rows at a time, and every format keeps f32 numerics (oneDNN 2.6's f16 reorder is a slow
// reference loop: 25 ns an element).
#include "cpu_kernels/onednn_matmul.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "cpu_kernels/dispatch.h"
#include "cpu_kernels/env.h"
#include "cpu_kernels/kernels.h"
#include "cpu_kernels/quant.h"

extern "C" void omp_set_num_threads(int);  // libgomp, oneDNN's threading runtime on Debian

namespace hexe::cpu {
namespace {

// Widened rows per chunk and thread: 2 MiB of f32, so the chunk is still in L2 when the matmul
// reads it.
constexpr int64_t kChunkBytes = int64_t(2) << 20;
// F32 weights with fewer than threads x kOneDnnMinColsF32 columns are also split by rows of x,
// in blocks of at least kOneDnnMinRowsPerPart rows.
constexpr int64_t kOneDnnMinColsF32 = 64, kOneDnnMinRowsPerPart = 16;

dnnl::engine& cpu_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

using dt = dnnl::memory::data_type;

// y[m][n] = x[m][k] . w[n][k]^T, rows of w `ws` floats apart.
void matmul_f32(dnnl::stream& s, const float* x, int64_t xs, const float* w, int64_t ws, int64_t m, int64_t n,
                int64_t k, float* y, int64_t ys) {
  const dnnl::memory::desc a({m, k}, dt::f32, {xs, 1});
  const dnnl::memory::desc b({k, n}, dt::f32, {1, ws});
  const dnnl::memory::desc c({m, n}, dt::f32, {ys, 1});
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), cpu_engine());
  dnnl::matmul(pd).execute(s, {{DNNL_ARG_SRC, dnnl::memory(a, cpu_engine(), const_cast<float*>(x))},
                               {DNNL_ARG_WEIGHTS, dnnl::memory(b, cpu_engine(), const_cast<float*>(w))},
                               {DNNL_ARG_DST, dnnl::memory(c, cpu_engine(), y)}});
}

// Output columns [n0, n1) of rows [m0, m1) on the calling thread: oneDNN with one OpenMP thread
// runs inline, so the work stays on our pinned workers and no OpenMP team spins beside them
// afterwards (with a 2-thread team, prefill of the small F16 test model ran 11% slower than
// without oneDNN).
bool matmul_rows(const MatmulParams& p, int64_t n0, int64_t n1, int64_t m0, int64_t m1) {
  thread_local const bool serial = (omp_set_num_threads(1), true);
  (void)serial;
  try {
    dnnl::stream s(cpu_engine());
    const float* x = p.x + m0 * p.x_stride;
    float* y = p.y + m0 * p.y_stride;
    const int64_t m = m1 - m0;
    if (p.w_type == DType::F32) {
      matmul_f32(s, x, p.x_stride, static_cast<const float*>(p.w) + n0 * p.k, p.k, m, n1 - n0, p.k, y + n0,
                 p.y_stride);
      s.wait();
      return true;
    }
    const int64_t chunk = std::min(std::max<int64_t>(kChunkBytes / (4 * p.k) / 16 * 16, 16), n1 - n0);
    thread_local std::vector<float> wide;
    wide.resize(size_t(chunk * p.k));
    const size_t rb = row_bytes(p.w_type, uint64_t(p.k));
    for (int64_t c0 = n0; c0 < n1; c0 += chunk) {
      const int64_t nr = std::min(chunk, n1 - c0);
      for (int64_t r = 0; r < nr; ++r)
        dequantize_row(p.w_type, static_cast<const uint8_t*>(p.w) + size_t(c0 + r) * rb, wide.data() + r * p.k, p.k);
      matmul_f32(s, x, p.x_stride, wide.data(), p.k, m, nr, p.k, y + c0, p.y_stride);
      s.wait();
    }
    return true;
  } catch (const dnnl::error&) {
    return false;
  }
}

}  // namespace

bool onednn_wanted(const MatmulParams& p, Isa tier) {
  if (env::onednn_off() || p.w_layout != WeightLayout::Gguf) return false;
  if (p.w_type == DType::F32) {
    if (p.m < kOneDnnMinRowsF32) return false;
  } else if (p.w_type == DType::F16 || p.w_type == DType::BF16) {
    if (p.m < kOneDnnMinRowsWidened) return false;
  } else {
    return false;
  }
  if (int(tier) < int(Isa::Avx2)) return false;
  const GemmKernel* g = select_gemm(p.w_type, p.k, tier, p.w_layout);
  return !(g && g->tier == Isa::Amx);
}

bool onednn_matmul(const MatmulParams& p, ThreadPool& pool) {
  if (env::log_dispatch()) {  // once per format and k, like the tiles' choices (dispatch.cpp)
    static std::mutex mu;
    static std::set<std::string> seen;
    const std::string key = std::string(dtype_name(p.w_type)) + "/" + std::to_string(p.k);
    std::lock_guard lk(mu);
    if (seen.insert(key).second)
      std::fprintf(stderr, "hexe dispatch: matmul %s/gguf k=%lld m>=%lld -> onednn f32 matmul (%s)\n",
                   std::string(dtype_name(p.w_type)).c_str(), static_cast<long long>(p.k),
                   static_cast<long long>(p.w_type == DType::F32 ? kOneDnnMinRowsF32 : kOneDnnMinRowsWidened),
                   p.w_type == DType::F32 ? "weights as they are" : "rows widened to f32");
  }
  // Each thread takes a block of output columns (multiples of 16) and, for f32 weights, of rows:
  // split by columns alone, a 128-expert router (n = 128) kept 8 of 16 threads busy. Widened
  // weights are split by columns only, so that no row is widened twice.
  const int64_t nth = pool.size(), wide_blocks = std::max<int64_t>(1, p.n / kOneDnnMinColsF32);
  int64_t m_parts = 1;
  if (p.w_type == DType::F32 && wide_blocks < nth)
    m_parts = std::clamp<int64_t>(p.m / kOneDnnMinRowsPerPart, 1, nth / wide_blocks);
  const int64_t n_parts = std::min((p.n + 15) / 16, nth / m_parts);
  const int64_t per_n = ((p.n + n_parts - 1) / n_parts + 15) / 16 * 16, per_m = (p.m + m_parts - 1) / m_parts;
  std::atomic<bool> ok{true};
  pool.run([&](int ith, int) {
    const int64_t mi = ith / n_parts, ni = ith % n_parts;
    const int64_t n0 = ni * per_n, n1 = std::min(p.n, n0 + per_n), m0 = mi * per_m, m1 = std::min(p.m, m0 + per_m);
    if (mi < m_parts && n0 < n1 && m0 < m1 && !matmul_rows(p, n0, n1, m0, m1)) ok.store(false);
  });
  return ok.load();
}

}  // namespace hexe::cpu
