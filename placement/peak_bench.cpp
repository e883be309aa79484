// Matmul throughput measurements used by `hexe profile detect`.
#include "placement/peak_bench.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "cpu_kernels/attention.h"
#include "cpu_kernels/matmul.h"
#include "cpu_kernels/probe.h"
#include "cpu_kernels/quant.h"
#include "cpu_kernels/thread_pool.h"
#include "placement/bench_timing.h"

namespace hexe::place {

using timing::aligned_span;
using timing::paired_stream_rate;
using timing::time_per_run;

const std::vector<DType>& measured_weight_types() {
  // Q5_0: what llama.cpp's Q4_K_M puts where rows are not whole 256-blocks (GLM-4.5-Air's expert
  // down projections).
  static const std::vector<DType> types = {DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_0, DType::Q4_0,
                                           DType::Q5_0, DType::BF16, DType::F16,  DType::F32};
  return types;
}

double measure_matmul_gflops(DType w_type, const std::vector<int>& cpus, double min_seconds, int64_t m,
                             cpu::WeightLayout layout) {
  const int nth = int(std::max<size_t>(1, cpus.size()));
  // m = 64: 64 weight rows per thread x 4096 (2 MiB of F32 per thread at most, resident in
  // L2/L3), the kernel's GEMM regime. Larger m (a prefill chunk through a dense matrix): 1024
  // rows per thread, so quantising the activations is amortised as over a real matrix.
  const int64_t k = 4096, n = (m > 64 ? 1024 : 64) * nth;
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

double measure_attention_gflops(const std::vector<int>& cpus, double min_seconds) {
  const int nth = int(std::max<size_t>(1, cpus.size()));
  const int T = 512, H = 32, KV = 4, D = 128, page = 256;
  std::mt19937 rng(13);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> kmem(size_t(T) * KV * D), vmem(size_t(T) * KV * D), q(size_t(T) * H * D), out(q.size());
  for (auto* v : {&kmem, &vmem, &q})
    for (auto& x : *v) x = dist(rng);
  std::vector<float*> kp, vp;
  for (int t = 0; t < T; t += page) {
    kp.push_back(kmem.data() + size_t(t) * KV * D);
    vp.push_back(vmem.data() + size_t(t) * KV * D);
  }
  std::vector<int64_t> pos(static_cast<size_t>(T));
  for (int t = 0; t < T; ++t) pos[size_t(t)] = t;
  cpu::AttentionParams p;
  p.q = q.data();
  p.n_q = T;
  p.q_pos = pos.data();
  p.n_heads = H;
  p.k = {kp.data(), page, KV, D};
  p.v = {vp.data(), page, KV, D};
  p.scale = 1.f / std::sqrt(float(D));
  p.out = out.data();
  cpu::ThreadPool pool(nth, cpus);
  const double s = time_per_run([&] { cpu::attention(p, pool); }, min_seconds);
  double keys = 0;
  for (int t = 0; t < T; ++t) keys += t + 1;
  return 2.0 * H * keys * (D + D) / s / 1e9;
}

StreamRate measure_gemv_stream(const std::vector<int>& cpus, uint64_t bytes, DType w_type,
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
  const auto [wp, wn] = aligned_span(w);  // the paired read goes over the weights themselves
  return paired_stream_rate([&] { cpu::matmul(p, pool); }, double(w.size()), wp, wn, pool, 0.5);
}

}  // namespace hexe::place
