// AVX2 paged causal GQA attention (f32): the portable kernel's online softmax over blocks of
// keys, with 8-lane FMAs and exp, and the query heads that share a KV head in one task, so each
// K and V row loaded serves all of them. Tasks (query x KV head x a slice of its query heads) are
// taken from a shared counter, latest queries (the most keys) first. On the Zen 3 VM (AVX2, no
// AVX-512) the portable kernel took 37-50% of a 512-token prefill of the 12-layer Qwen3-30B-A3B-
// shaped file: its dot products and axpys build with the baseline SSE2 flags, exp is std::exp.
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "cpu_kernels/attention.h"
#include "cpu_kernels/x86/avx2/exp_avx2.h"
#include "cpu_kernels/x86/hsum_ps.h"

namespace hexe::cpu::avx2 {
namespace {

constexpr int kKeys = 64;  // keys per block (the score rows' length)

inline float dot(const float* a, const float* b, int n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  float s = hsum_ps(_mm256_add_ps(s0, s1));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// The dot products of q with four key rows (n a multiple of 8), q read once for all four.
inline __m128 dot4(const float* q, const float* const* k, int n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (int i = 0; i < n; i += 8) {
    const __m256 qv = _mm256_loadu_ps(q + i);
    a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[0] + i), a0);
    a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[1] + i), a1);
    a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[2] + i), a2);
    a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[3] + i), a3);
  }
  // Horizontal sums of the four, side by side: pairwise adds within 128-bit lanes, then the lanes.
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// y[0..n) *= c
inline void scale(float c, float* y, int n) {
  const __m256 vc = _mm256_set1_ps(c);
  int i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(vc, _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] *= c;
}

// acc[0..dv) += sum over keys i < nb of w[i] * v[i][0..dv): 32 columns at a time kept in
// registers across the block's keys (a running sum in memory would chain every key's FMA through
// a store and a load).
inline void accumulate_values(const float* w, const float* const* v, int nb, float* acc, int dv) {
  int d = 0;
  for (; d + 32 <= dv; d += 32) {
    __m256 a0 = _mm256_loadu_ps(acc + d), a1 = _mm256_loadu_ps(acc + d + 8);
    __m256 a2 = _mm256_loadu_ps(acc + d + 16), a3 = _mm256_loadu_ps(acc + d + 24);
    for (int i = 0; i < nb; ++i) {
      const __m256 wi = _mm256_broadcast_ss(w + i);
      const float* x = v[i] + d;
      a0 = _mm256_fmadd_ps(wi, _mm256_loadu_ps(x), a0);
      a1 = _mm256_fmadd_ps(wi, _mm256_loadu_ps(x + 8), a1);
      a2 = _mm256_fmadd_ps(wi, _mm256_loadu_ps(x + 16), a2);
      a3 = _mm256_fmadd_ps(wi, _mm256_loadu_ps(x + 24), a3);
    }
    _mm256_storeu_ps(acc + d, a0);
    _mm256_storeu_ps(acc + d + 8, a1);
    _mm256_storeu_ps(acc + d + 16, a2);
    _mm256_storeu_ps(acc + d + 24, a3);
  }
  for (; d + 8 <= dv; d += 8) {
    __m256 a = _mm256_loadu_ps(acc + d);
    for (int i = 0; i < nb; ++i) a = _mm256_fmadd_ps(_mm256_broadcast_ss(w + i), _mm256_loadu_ps(v[i] + d), a);
    _mm256_storeu_ps(acc + d, a);
  }
  for (; d < dv; ++d)
    for (int i = 0; i < nb; ++i) acc[d] += w[i] * v[i][d];
}

// Query qi, KV head kvh, query heads h0 .. h0 + hg of it. s: hg x kKeys scores, acc: hg x dv.
void attend(const AttentionParams& p, int64_t qi, int kvh, int h0, int hg, float* s, float* acc) {
  const int dk = p.k.head_dim, dv = p.v.head_dim;
  const int64_t n_keys = p.q_pos[qi] + 1;
  const float* q = p.q + (qi * p.n_heads + h0) * int64_t(dk);
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  float m[64], l[64];  // hg <= 64 (the caller's slices)
  std::fill_n(m, hg, kNegInf);
  std::fill_n(l, hg, 0.f);
  std::fill_n(acc, size_t(hg) * size_t(dv), 0.f);
  for (int64_t t0 = 0; t0 < n_keys; t0 += kKeys) {
    const int nb = int(std::min<int64_t>(kKeys, n_keys - t0));
    const float* krows[kKeys];
    for (int i = 0; i < nb; ++i) krows[i] = p.k.row(t0 + i) + int64_t(kvh) * dk;
    for (int g = 0; g < hg; ++g) {
      const float* qg = q + int64_t(g) * dk;
      float* sg = s + g * kKeys;
      int i = 0;
      if (dk % 8 == 0)
        for (; i + 4 <= nb; i += 4)
          _mm_storeu_ps(sg + i, _mm_mul_ps(dot4(qg, krows + i, dk), _mm_set1_ps(p.scale)));
      for (; i < nb; ++i) sg[i] = dot(qg, krows[i], dk) * p.scale;
    }
    for (int g = 0; g < hg; ++g) {
      float* sg = s + g * kKeys;
      float bmax = kNegInf;
      for (int i = 0; i < nb; ++i) bmax = std::max(bmax, sg[i]);
      const float m_new = std::max(m[g], bmax);
      const float corr = std::exp(m[g] - m_new);  // 0 on the first block (m = -inf)
      float* ag = acc + size_t(g) * size_t(dv);
      if (t0 > 0) scale(corr, ag, dv);
      // Scores to weights, 8 at a time; the padding lanes past nb give exp(-inf) = 0.
      for (int i = nb; i < (nb + 7) / 8 * 8; ++i) sg[i] = kNegInf;
      __m256 sum = _mm256_setzero_ps();
      const __m256 mv = _mm256_set1_ps(m_new);
      for (int i = 0; i < nb; i += 8) {
        const __m256 w = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(sg + i), mv));
        _mm256_storeu_ps(sg + i, w);
        sum = _mm256_add_ps(sum, w);
      }
      l[g] = l[g] * corr + hsum_ps(sum);
      m[g] = m_new;
    }
    const float* vrows[kKeys];
    for (int i = 0; i < nb; ++i) vrows[i] = p.v.row(t0 + i) + int64_t(kvh) * dv;
    for (int g = 0; g < hg; ++g) accumulate_values(s + g * kKeys, vrows, nb, acc + size_t(g) * size_t(dv), dv);
  }
  for (int g = 0; g < hg; ++g) {
    float* out = p.out + (qi * p.n_heads + h0 + g) * int64_t(dv);
    const float inv = 1.0f / l[g];
    const float* ag = acc + size_t(g) * size_t(dv);
    for (int d = 0; d < dv; ++d) out[d] = ag[d] * inv;
  }
}

}  // namespace

void attention(const AttentionParams& p, ThreadPool& pool) {
  const int n_kv = p.k.n_kv_heads, group = p.n_heads / n_kv;
  // Heads per task: the whole group (at most 8) while there are tasks enough for every thread
  // several times over (decode has one query), else fewer.
  int hg = std::min(group, 8);
  while (hg > 1 && p.n_q * n_kv * ((group + hg - 1) / hg) < 4 * int64_t(pool.size())) hg = (hg + 1) / 2;
  const int slices = (group + hg - 1) / hg;
  const int64_t per_q = int64_t(n_kv) * slices, tasks = p.n_q * per_q;
  std::atomic<int64_t> next{0};
  pool.run([&](int, int) {
    thread_local std::vector<float> scratch;
    scratch.resize(size_t(hg) * (kKeys + size_t(p.v.head_dim)));
    for (int64_t t; (t = next.fetch_add(1, std::memory_order_relaxed)) < tasks;) {
      const int64_t qi = p.n_q - 1 - t / per_q;  // latest queries first
      const int kvh = int(t % per_q / slices), slice = int(t % slices);
      const int h0 = kvh * group + slice * hg;
      attend(p, qi, kvh, h0, std::min(hg, group - slice * hg), scratch.data(), scratch.data() + size_t(hg) * kKeys);
    }
  });
}

void exp_f32(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp_ps(_mm256_loadu_ps(x + i)));
  for (; i < n; ++i) y[i] = x[i] < -87.33654f ? 0.f : std::exp(x[i]);
}

}  // namespace hexe::cpu::avx2
