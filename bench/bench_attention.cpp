// Paged causal GQA attention throughput: GFLOP/s of the avx512 and avx2 kernels and the portable
// one (the scalar tier) on a prefill chunk and a decode step, next to the f32 FMA peak measured in the same
// process on the same threads; `ratio <x>` (to that peak) ends each line.
//   bench_attention [--threads T] [--heads H] [--kv-heads KV] [--head-dim D] [--page P]
//                   [--prefill N (queries = context, default 512)] [--context C (decode, default 4096)]
// FLOPs counted: 2 * (dk + dv) per (query, head, visible key), the causal triangle only.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "cpu_kernels/attention.h"
#include "cpu_kernels/isa.h"
#include "cpu_kernels/probe.h"
#include "cpu_kernels/thread_pool.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace hexe::cpu;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Cache {
  std::vector<std::vector<float>> storage;
  std::vector<float*> pages;
  KvPageView view;
  Cache(std::mt19937& rng, int64_t tokens, int page, int kv_heads, int dim) {
    std::normal_distribution<float> d(0.f, 1.f);
    for (int64_t i = 0; i < (tokens + page - 1) / page; ++i) {
      storage.emplace_back(size_t(page) * kv_heads * dim);
      for (float& x : storage.back()) x = d(rng);
      pages.push_back(storage.back().data());
    }
    view = {pages.data(), page, kv_heads, dim};
  }
};

// Best seconds of `reps` runs (after one warm-up) of attention_at(tier).
double time_attention(const AttentionParams& p, Isa tier, ThreadPool& pool, int reps) {
  attention_at(p, tier, pool);
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    attention_at(p, tier, pool);
    best = std::min(best, seconds_since(t0));
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = int(std::max(1u, std::thread::hardware_concurrency()));
  int heads = 32, kv_heads = 4, dim = 128, page = 16;
  int64_t prefill = 512, context = 4096;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--heads")) heads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--kv-heads")) kv_heads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--head-dim")) dim = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--page")) page = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--prefill")) prefill = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--context")) context = std::atoll(argv[i + 1]);
  }
  ThreadPool pool(threads);

  // The f32 FMA peak on every thread at once.
  const int64_t iters = 20'000'000;
  std::atomic<double> flops{0};
  double peak_s = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = Clock::now();
    pool.run([&](int, int) {
      const double f = f32_fma_flops(iters);
      double cur = flops.load();
      while (!flops.compare_exchange_weak(cur, cur + f)) {}
    });
    peak_s = std::min(peak_s, seconds_since(t0));
  }
  const double peak = flops.load() / 3 / peak_s / 1e9;
  std::printf("cpu %s, threads %d, heads %d/%d, head_dim %d, page %d\n", cpu_features().brand.c_str(), threads,
              heads, kv_heads, dim, page);
  std::printf("f32 fma peak %.1f GFLOP/s (%s, all threads)\n", peak, f32_fma_name());

  std::mt19937 rng(1);
  struct Shape {
    const char* name;
    int64_t n_q, ctx;
  } shapes[] = {{"prefill", prefill, prefill}, {"decode", 1, context}};
  for (const Shape& s : shapes) {
    Cache k(rng, s.ctx, page, kv_heads, dim), v(rng, s.ctx, page, kv_heads, dim);
    std::vector<float> q(size_t(s.n_q * heads * dim)), out(q.size());
    std::normal_distribution<float> nd(0.f, 1.f);
    for (float& x : q) x = nd(rng);
    std::vector<int64_t> pos(size_t(s.n_q));
    double keys = 0;
    for (int64_t i = 0; i < s.n_q; ++i) keys += double(pos[size_t(i)] = s.ctx - s.n_q + i) + 1;
    AttentionParams p;
    p.q = q.data(); p.n_q = s.n_q; p.q_pos = pos.data(); p.n_heads = heads;
    p.k = k.view; p.v = v.view; p.scale = 1.f / std::sqrt(float(dim)); p.out = out.data();
    const double flop = keys * heads * 2.0 * (2 * dim);
    const int reps = s.n_q > 1 ? 3 : 20;
    for (Isa tier : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
      if (int(tier) > int(hardware_isa())) continue;
      const double sec = time_attention(p, tier, pool, reps);
      const double gf = flop / sec / 1e9;
      std::printf("%-8s n_q %-5lld ctx %-5lld %-9s %9.3f ms %7.1f GFLOP/s  ratio %.3f\n", s.name,
                  static_cast<long long>(s.n_q), static_cast<long long>(s.ctx),
                  tier == Isa::Scalar ? "portable" : isa_name(tier), sec * 1e3, gf, gf / peak);
    }
  }
  return 0;
}
