// Matmul throughput measurements used by `hexe profile detect`.
#include "placement/peak_bench.h"

#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstring>
#include <numeric>
#include <random>

#include "cpu_kernels/attention.h"
#include "cpu_kernels/matmul.h"
#include "cpu_kernels/moe.h"
#include "cpu_kernels/probe.h"
#include "cpu_kernels/quant.h"
#include "cpu_kernels/thread_pool.h"

namespace hexe::place {

namespace {

using clock_type = std::chrono::steady_clock;

// Runs `fn` until `min_seconds` have passed (at least 5 times after one warm-up) and returns the
// fastest run: compute rates, which a shared machine only ever slows down. (Streaming rates pair
// each run with a read instead: paired_stream_rate.)
template <class F>
double time_per_run(F&& fn, double min_seconds) {
  fn();
  std::vector<double> runs;
  double total = 0;
  do {
    auto t0 = clock_type::now();
    fn();
    const double s = std::chrono::duration<double>(clock_type::now() - t0).count();
    runs.push_back(s);
    total += s;
  } while (total < min_seconds || runs.size() < 5);
  return *std::min_element(runs.begin(), runs.end());
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// `fn` reads `bytes_per_run` of weights; each timed run follows a read of `probe` (64-byte
// aligned, `probe_bytes`, far above the LLC) on the same pool. At least 5 runs and min_seconds.
template <class F>
StreamRate paired_stream_rate(F&& fn, double bytes_per_run, const uint8_t* probe, size_t probe_bytes,
                              cpu::ThreadPool& pool, double min_seconds) {
  fn();
  std::vector<double> rates, ratios;
  double total = 0;
  do {
    const double read = cpu::read_bandwidth_gbs(probe, probe_bytes, pool, 1);
    auto t0 = clock_type::now();
    fn();
    const double s = std::chrono::duration<double>(clock_type::now() - t0).count();
    total += s;
    rates.push_back(bytes_per_run / s / 1e9);
    ratios.push_back(rates.back() / std::max(1e-9, read));
  } while (total < min_seconds || rates.size() < 5);
  return {median_of(rates), median_of(ratios)};
}

// The largest 64-byte aligned span of v.
std::pair<const uint8_t*, size_t> aligned_span(const std::vector<uint8_t>& v) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(v.data()), b = (a + 63) & ~uintptr_t(63);
  const size_t skip = size_t(b - a);
  return {v.data() + skip, v.size() > skip ? (v.size() - skip) & ~size_t(63) : 0};
}

}  // namespace

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

double measure_moe_prefill_gflops(DType w_type, const std::vector<int>& cpus, double min_seconds,
                                  cpu::WeightLayout layout, int64_t tokens_per_expert) {
  const int nth = int(std::max<size_t>(1, cpus.size()));
  const int64_t H = 2048, F = 768, E = 128, K = 8, T = std::max<int64_t>(1, tokens_per_expert) * E / K;
  // Speed does not depend on the values: one quantised random row, copied to every row.
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  auto matrix = [&](int64_t rows, int64_t k) {
    std::vector<float> row(static_cast<size_t>(k));
    for (auto& v : row) v = dist(rng) * 0.05f;
    const uint64_t rb = row_bytes(w_type, uint64_t(k));
    std::vector<uint8_t> m(size_t(rows) * rb);
    cpu::quantize_row(w_type, row.data(), m.data(), k);
    for (int64_t r = 1; r < rows; ++r) std::memcpy(m.data() + size_t(r) * rb, m.data(), rb);
    return m;
  };
  const std::vector<uint8_t> gate = matrix(E * F, H), up = matrix(E * F, H), down = matrix(E * H, F);
  const uint64_t gb = row_bytes(w_type, uint64_t(H)) * uint64_t(F), db = row_bytes(w_type, uint64_t(F)) * uint64_t(H);
  std::vector<cpu::ExpertWeights> experts(static_cast<size_t>(E)), packed;
  std::vector<cpu::PackedWeights> store;
  for (int64_t e = 0; e < E; ++e)
    experts[size_t(e)] = {gate.data() + e * gb, up.data() + e * gb, down.data() + e * db};
  if (layout == cpu::WeightLayout::Rows16) {
    for (int64_t e = 0; e < E; ++e) {
      const auto& x = experts[size_t(e)];
      store.push_back(cpu::repack_for_decode(w_type, F, H, x.gate, row_bytes(w_type, uint64_t(H))));
      store.push_back(cpu::repack_for_decode(w_type, F, H, x.up, row_bytes(w_type, uint64_t(H))));
      store.push_back(cpu::repack_for_decode(w_type, H, F, x.down, row_bytes(w_type, uint64_t(F))));
      packed.push_back({store[store.size() - 3].data(), store[store.size() - 2].data(), store.back().data()});
    }
  }
  std::vector<float> x(size_t(T * H)), y(size_t(T * H)), weights(size_t(T * K), 1.f / float(K));
  for (auto& v : x) v = dist(rng);
  std::vector<int32_t> ids(size_t(T * K));
  std::vector<int32_t> all(static_cast<size_t>(E));
  std::iota(all.begin(), all.end(), 0);
  std::mt19937 route_rng(5);
  for (int64_t t = 0; t < T; ++t)  // K distinct random experts per token (partial Fisher-Yates)
    for (int64_t k = 0; k < K; ++k) {
      std::swap(all[size_t(k)], all[size_t(k + int64_t(route_rng() % uint32_t(E - k)))]);
      ids[size_t(t * K + k)] = all[size_t(k)];
    }
  cpu::MoeParams p;
  p.experts = experts.data();
  p.packed = packed.empty() ? nullptr : packed.data();
  p.n_experts = int(E);
  p.gate_type = p.up_type = p.down_type = w_type;
  p.hidden = H;
  p.n_ff = F;
  p.x = x.data();
  p.n_tokens = T;
  p.top_k = int(K);
  p.ids = ids.data();
  p.weights = weights.data();
  p.y = y.data();
  cpu::ThreadPool pool(nth, cpus);
  const double s = time_per_run([&] { cpu::moe_experts(p, pool); }, min_seconds);
  return 2.0 * 3.0 * double(T * K) * double(H) * double(F) / s / 1e9;
}

StreamRate measure_moe_decode(DType w_type, const std::vector<int>& cpus, uint64_t bytes, cpu::WeightLayout layout) {
  const int nth = int(std::max<size_t>(1, cpus.size()));
  const int64_t H = 2048, F = 768, E = 128, K = 8;
  const uint64_t gb = row_bytes(w_type, uint64_t(H)) * uint64_t(F), db = row_bytes(w_type, uint64_t(F)) * uint64_t(H);
  const uint64_t per_expert = 2 * gb + db;
  const int64_t n_layers = std::max<int64_t>(2, int64_t(bytes / (per_expert * E)) + 1);
  // One quantised random expert copied everywhere: the speed does not depend on the values.
  std::mt19937 rng(17);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<uint8_t> one(per_expert);
  {
    std::vector<float> row(size_t(std::max(H, F)));
    for (auto& v : row) v = dist(rng) * 0.05f;
    for (int64_t r = 0; r < 2 * F; ++r) cpu::quantize_row(w_type, row.data(), one.data() + r * (gb / F), H);
    for (int64_t r = 0; r < H; ++r) cpu::quantize_row(w_type, row.data(), one.data() + 2 * gb + r * (db / H), F);
  }
  std::vector<uint8_t> store(size_t(per_expert * E * n_layers));
  for (int64_t i = 0; i < E * n_layers; ++i) std::memcpy(store.data() + i * per_expert, one.data(), per_expert);
  std::vector<std::vector<cpu::ExpertWeights>> experts(static_cast<size_t>(n_layers)),
      packed(static_cast<size_t>(n_layers));
  std::vector<cpu::PackedWeights> packs;
  for (int64_t l = 0; l < n_layers; ++l)
    for (int64_t e = 0; e < E; ++e) {
      const uint8_t* base = store.data() + (l * E + e) * per_expert;
      experts[size_t(l)].push_back({base, base + gb, base + 2 * gb});
      if (layout == cpu::WeightLayout::Rows16) {
        packs.push_back(cpu::repack_for_decode(w_type, F, H, base, row_bytes(w_type, uint64_t(H))));
        packs.push_back(cpu::repack_for_decode(w_type, F, H, base + gb, row_bytes(w_type, uint64_t(H))));
        packs.push_back(cpu::repack_for_decode(w_type, H, F, base + 2 * gb, row_bytes(w_type, uint64_t(F))));
        packed[size_t(l)].push_back({packs[packs.size() - 3].data(), packs[packs.size() - 2].data(), packs.back().data()});
      }
    }
  if (layout == cpu::WeightLayout::Rows16) std::vector<uint8_t>().swap(store);  // only the copies are read
  std::vector<float> x(static_cast<size_t>(H)), y(static_cast<size_t>(H)), weights(static_cast<size_t>(K), 1.f / K);
  for (auto& v : x) v = dist(rng);
  std::vector<int32_t> ids(static_cast<size_t>(K));
  cpu::ThreadPool pool(nth, cpus);
  cpu::MoeParams p;
  p.n_experts = int(E);
  p.gate_type = p.up_type = p.down_type = w_type;
  p.hidden = H;
  p.n_ff = F;
  p.x = x.data();
  p.n_tokens = 1;
  p.top_k = int(K);
  p.ids = ids.data();
  p.weights = weights.data();
  p.y = y.data();
  // One step = every layer once, each with 8 distinct experts drawn afresh.
  auto step = [&] {
    for (int64_t l = 0; l < n_layers; ++l) {
      std::vector<int32_t> all(static_cast<size_t>(E));
      for (int64_t e = 0; e < E; ++e) all[size_t(e)] = int32_t(e);
      std::shuffle(all.begin(), all.end(), rng);
      std::copy(all.begin(), all.begin() + K, ids.begin());
      p.experts = experts[size_t(l)].data();
      p.packed = packed[size_t(l)].empty() ? nullptr : packed[size_t(l)].data();
      cpu::moe_experts(p, pool);
    }
  };
  // The experts live in many buffers (one per repacked matrix): the paired read goes over a
  // separate buffer, at least what one step reads and far above the LLC (a step of 1 GiB of
  // experts reads 64 MiB, which this Zen 4 VM's 32 MiB L3 read a third faster than DRAM).
  std::vector<uint8_t> probe(
      size_t(std::max<uint64_t>(uint64_t(K * per_expert * n_layers), uint64_t(cpu::dram_span_bytes()))) + 64);
  pool.parallel_for(int64_t(probe.size()), 1 << 20, [&](int64_t s, int64_t e) {
    std::memset(probe.data() + s, 0x11, size_t(e - s));
  });
  const auto [pp, pn] = aligned_span(probe);
  return paired_stream_rate(step, double(K) * double(per_expert) * double(n_layers), pp, pn, pool, 0.3);
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
