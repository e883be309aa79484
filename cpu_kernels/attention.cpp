// Causal GQA attention over paged K/V: the tier dispatch (x86/avx512/, x86/avx2/), and the
// portable kernel (scalar tier): one (query, head) pair per task, keys streamed a page at a time with an online softmax
// (running max and sum), so no score buffer grows with the context.
#include "cpu_kernels/attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

#include "cpu_kernels/env.h"
#include "cpu_kernels/ops.h"

namespace hexe::cpu {

namespace avx512 {
void attention(const AttentionParams& p, ThreadPool& pool);
void exp_f32(const float* x, float* y, int64_t n);
}  // namespace avx512
namespace avx2 {
void attention(const AttentionParams& p, ThreadPool& pool);
void exp_f32(const float* x, float* y, int64_t n);
}  // namespace avx2

namespace {

void attend_one(const AttentionParams& p, int64_t qi, int h, float* scores, float* acc) {
  const int group = p.n_heads / p.k.n_kv_heads;
  const int kvh = h / group;
  const int dk = p.k.head_dim, dv = p.v.head_dim;
  const float* q = p.q + (qi * p.n_heads + h) * int64_t(dk);
  float* out = p.out + (qi * p.n_heads + h) * int64_t(dv);
  const int64_t n_keys = p.q_pos[qi] + 1;
  float m = -std::numeric_limits<float>::infinity();
  float l = 0.f;
  std::fill_n(acc, dv, 0.f);
  const int page = p.k.page_tokens;
  for (int64_t t0 = 0; t0 < n_keys; t0 += page) {
    const int64_t t1 = std::min(n_keys, t0 + page);
    float bmax = -std::numeric_limits<float>::infinity();
    for (int64_t t = t0; t < t1; ++t) {
      const float s = dot_f32(q, p.k.row(t) + int64_t(kvh) * dk, dk) * p.scale;
      scores[t - t0] = s;
      bmax = std::max(bmax, s);
    }
    const float m_new = std::max(m, bmax);
    const float corr = std::exp(m - m_new);  // 0 on the first page (m = -inf)
    l *= corr;
    for (int d = 0; d < dv; ++d) acc[d] *= corr;
    for (int64_t t = t0; t < t1; ++t) {
      const float w = std::exp(scores[t - t0] - m_new);
      l += w;
      axpy(w, p.v.row(t) + int64_t(kvh) * dv, acc, dv);
    }
    m = m_new;
  }
  const float inv = 1.0f / l;
  for (int d = 0; d < dv; ++d) out[d] = acc[d] * inv;
}

void attention_portable(const AttentionParams& p, ThreadPool& pool) {
  const int64_t tasks = p.n_q * p.n_heads;
  pool.parallel_for(tasks, 1, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> scratch;
    scratch.resize(size_t(p.k.page_tokens + p.v.head_dim));
    for (int64_t t = begin; t < end; ++t)
      attend_one(p, t / p.n_heads, int(t % p.n_heads), scratch.data(), scratch.data() + p.k.page_tokens);
  });
}

bool use_avx512(Isa max_tier) {
  return int(max_tier) >= int(Isa::Avx512) && int(hardware_isa()) >= int(Isa::Avx512);
}
bool use_avx2(Isa max_tier) { return int(max_tier) >= int(Isa::Avx2) && int(hardware_isa()) >= int(Isa::Avx2); }

}  // namespace

void attention_at(const AttentionParams& p, Isa max_tier, ThreadPool& pool) {
  const int kernel = use_avx512(max_tier) ? 2 : use_avx2(max_tier) ? 1 : 0;
  if (env::log_dispatch()) {
    static std::atomic<bool> logged[3] = {};  // once per kernel
    static const char* const names[3] = {
        "portable (avx2, avx512: capped by HEXE_CPU_ISA/caller or not supported by this CPU)",
        "avx2 (avx512: capped by HEXE_CPU_ISA/caller or not supported by this CPU)", "avx512/flash"};
    if (!logged[kernel].exchange(true)) std::fprintf(stderr, "hexe dispatch: attention -> %s\n", names[kernel]);
  }
  if (kernel == 2) return avx512::attention(p, pool);
  if (kernel == 1) return avx2::attention(p, pool);
  attention_portable(p, pool);
}

void attention(const AttentionParams& p, ThreadPool& pool) { attention_at(p, active_isa(), pool); }

void attention_exp(const float* x, float* y, int64_t n) {
  if (use_avx512(Isa::Avx512)) return avx512::exp_f32(x, y, n);
  if (use_avx2(Isa::Avx2)) return avx2::exp_f32(x, y, n);
  // As the vectorised exp: 0 where e^x is below the smallest normal float (std::exp gives a
  // denormal down to -103), so both tiers weigh far-below-max scores exactly 0.
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] < -87.33654f ? 0.f : std::exp(x[i]);
}

}  // namespace hexe::cpu
