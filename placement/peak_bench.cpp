// Matmul throughput measurements used by `hexe profile detect`.
#include "placement/peak_bench.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>

#include "cpu_kernels/matmul.h"
#include "cpu_kernels/quant.h"
#include "cpu_kernels/thread_pool.h"

namespace hexe::place {

namespace {

using clock_type = std::chrono::steady_clock;

// Runs `fn` until `min_seconds` have passed (at least 5 times after one warm-up); the fastest
// run's seconds (a shared machine only ever slows a run down).
template <class F>
double time_per_run(F&& fn, double min_seconds) {
  fn();
  int runs = 0;
  double best = 1e30, total = 0;
  do {
    auto t0 = clock_type::now();
    fn();
    const double s = std::chrono::duration<double>(clock_type::now() - t0).count();
    best = std::min(best, s);
    total += s;
    ++runs;
  } while (total < min_seconds || runs < 5);
  return best;
}

}  // namespace

const std::vector<DType>& measured_weight_types() {
  static const std::vector<DType> types = {DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_0,
                                           DType::Q4_0, DType::BF16, DType::F16,  DType::F32};
  return types;
}

double measure_matmul_gflops(DType w_type, const std::vector<int>& cpus, double min_seconds, int64_t m,
                             cpu::WeightLayout layout) {
  const int nth = int(std::max<size_t>(1, cpus.size()));
  // 64 rows per thread x 4096: 2 MiB of F32 weights per thread at most, resident in L2/L3;
  // m activation rows (64: the kernel's GEMM regime; 32: what an expert sees in prefill).
  const int64_t k = 4096, n = 64 * nth;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> wf(static_cast<size_t>(k));
  std::vector<uint8_t> w(size_t(n) * row_bytes(w_type, uint64_t(k)));
  for (int64_t r = 0; r < n; ++r) {
    for (auto& v : wf) v = dist(rng);
    cpu::quantize_row(w_type, wf.data(), w.data() + size_t(r) * row_bytes(w_type, uint64_t(k)), k);
  }
  std::vector<float> x(size_t(m * k)), y(size_t(m * n));
  for (auto& v : x) v = dist(rng);
  cpu::ThreadPool pool(nth, cpus);
  cpu::MatmulParams p;
  p.w = w.data();
  p.w_type = w_type;
  cpu::PackedWeights packed;
  if (layout == cpu::WeightLayout::Rows16) {
    packed = cpu::repack_for_decode(w_type, n, k, w.data(), row_bytes(w_type, uint64_t(k)));
    p.w = packed.data();
    p.w_layout = layout;
  }
  p.n = n;
  p.k = k;
  p.x = x.data();
  p.m = m;
  p.x_stride = k;
  p.y = y.data();
  p.y_stride = n;
  const double s = time_per_run([&] { cpu::matmul(p, pool); }, min_seconds);
  return 2.0 * double(m) * double(n) * double(k) / s / 1e9;
}

double measure_gemv_stream_gbps(const std::vector<int>& cpus, uint64_t bytes, DType w_type,
                                cpu::WeightLayout layout) {
  const int nth = int(std::max<size_t>(1, cpus.size()));
  const int64_t k = 4096;
  const uint64_t rb = row_bytes(w_type, uint64_t(k));
  const int64_t n = int64_t(bytes / rb) / cpu::kRows16 * cpu::kRows16;
  // Timing does not depend on the values: a fixed byte pattern (finite fp16 scales) will do, in
  // either layout (Rows16 groups hold the same bytes per row, rearranged).
  const size_t total = layout == cpu::WeightLayout::Rows16
                           ? cpu::rows16_group_bytes(w_type, k) * size_t(n / cpu::kRows16)
                           : size_t(n) * rb;
  std::vector<uint8_t> w(total);
  cpu::ThreadPool pool(nth, cpus);
  pool.parallel_for(int64_t(w.size()), 1 << 20, [&](int64_t s, int64_t e) {
    std::memset(w.data() + s, 0x11, size_t(e - s));  // first touch by the readers' threads
  });
  std::vector<float> x(static_cast<size_t>(k), 0.5f), y(static_cast<size_t>(n));
  cpu::MatmulParams p;
  p.w = w.data();
  p.w_type = w_type;
  p.w_layout = layout;
  p.n = n;
  p.k = k;
  p.x = x.data();
  p.m = 1;
  p.x_stride = k;
  p.y = y.data();
  p.y_stride = n;
  const double s = time_per_run([&] { cpu::matmul(p, pool); }, 0.5);
  return double(w.size()) / s / 1e9;
}

}  // namespace hexe::place
