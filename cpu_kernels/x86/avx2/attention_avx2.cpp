// AVX2 paged causal GQA attention (f32): the portable kernel's online softmax over blocks of
// keys, with 8-lane FMAs and exp, and the query heads that share a KV head in one task, so each
// K and V row loaded serves all of them. Tasks (query x KV head x a slice of its query heads) are
// taken from a shared counter, latest queries (the most keys) first; few queries over many keys
// (decode) cut the keys into chunks instead (attention_split_keys). On the Zen 3 VM (AVX2, no
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

// acc[0..dv) += sum over keys i < nb of w[i] * v[i][c0 .. c0 + dv): 32 columns at a time kept in
// registers across the block's keys (a running sum in memory would chain every key's FMA through
// a store and a load).
inline void accumulate_values(const float* w, const float* const* v, int c0, int nb, float* acc, int dv) {
  int d = 0;
  for (; d + 32 <= dv; d += 32) {
    __m256 a0 = _mm256_loadu_ps(acc + d), a1 = _mm256_loadu_ps(acc + d + 8);
    __m256 a2 = _mm256_loadu_ps(acc + d + 16), a3 = _mm256_loadu_ps(acc + d + 24);
    for (int i = 0; i < nb; ++i) {
      const __m256 wi = _mm256_broadcast_ss(w + i);
      const float* x = v[i] + c0 + d;
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
    for (int i = 0; i < nb; ++i) a = _mm256_fmadd_ps(_mm256_broadcast_ss(w + i), _mm256_loadu_ps(v[i] + c0 + d), a);
    _mm256_storeu_ps(acc + d, a);
  }
  for (; d < dv; ++d)
    for (int i = 0; i < nb; ++i) acc[d] += w[i] * v[i][c0 + d];
}

// One block of keys [t0, t0 + nb) (nb <= kKeys) for query qi and heads h0 .. h0 + hg of KV head
// kvh: per head g the running max m[g], the sum of exp(score - m) l[g] and the unnormalised value
// sum acc[g * dv ..] take the block in (first: the first block, nothing to rescale). s: hg x kKeys
// scores.
void attend_block(const AttentionParams& p, int64_t qi, int kvh, int h0, int hg, int64_t t0, int nb, bool first,
                  float* s, float* acc, float* m, float* l) {
  const int dk = p.k.head_dim, dv = p.v.head_dim;
  const float* q = p.q + (qi * p.n_heads + h0) * int64_t(dk);
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const float* krows[kKeys];
  for (int i = 0; i < nb; ++i) krows[i] = p.k.row(t0 + i) + int64_t(kvh) * dk;
  // Four keys at a time for every head: their K rows stay in L1 across the heads (each head's
  // pass over the whole block read the block's rows, 32 KB at dk 128, from L2 once per head).
  int i = 0;
  if (dk % 8 == 0)
    for (; i + 4 <= nb; i += 4)
      for (int g = 0; g < hg; ++g)
        _mm_storeu_ps(s + g * kKeys + i, _mm_mul_ps(dot4(q + int64_t(g) * dk, krows + i, dk), _mm_set1_ps(p.scale)));
  for (; i < nb; ++i)
    for (int g = 0; g < hg; ++g) s[g * kKeys + i] = dot(q + int64_t(g) * dk, krows[i], dk) * p.scale;
  for (int g = 0; g < hg; ++g) {
    float* sg = s + g * kKeys;
    float bmax = kNegInf;
    for (int j = 0; j < nb; ++j) bmax = std::max(bmax, sg[j]);
    const float m_new = first ? bmax : std::max(m[g], bmax);
    const float corr = first ? 0.f : std::exp(m[g] - m_new);
    float* ag = acc + size_t(g) * size_t(dv);
    if (first) std::fill_n(ag, dv, 0.f);
    else scale(corr, ag, dv);
    // Scores to weights, 8 at a time; the padding lanes past nb give exp(-inf) = 0.
    for (int j = nb; j < (nb + 7) / 8 * 8; ++j) sg[j] = kNegInf;
    __m256 sum = _mm256_setzero_ps();
    const __m256 mv = _mm256_set1_ps(m_new);
    for (int j = 0; j < nb; j += 8) {
      const __m256 w = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(sg + j), mv));
      _mm256_storeu_ps(sg + j, w);
      sum = _mm256_add_ps(sum, w);
    }
    l[g] = (first ? 0.f : l[g] * corr) + hsum_ps(sum);
    m[g] = m_new;
  }
  const float* vrows[kKeys];
  for (int j = 0; j < nb; ++j) vrows[j] = p.v.row(t0 + j) + int64_t(kvh) * dv;
  // 32 value columns at a time for every head: that slab of the block's V rows stays in L1.
  for (int c0 = 0; c0 < dv; c0 += 32) {
    const int w = std::min(32, dv - c0);
    for (int g = 0; g < hg; ++g) accumulate_values(s + g * kKeys, vrows, c0, nb, acc + size_t(g) * size_t(dv) + c0, w);
  }
}

// All keys of query qi for heads h0 .. h0 + hg (of KV head kvh), into p.out.
void attend(const AttentionParams& p, int64_t qi, int kvh, int h0, int hg, float* s, float* acc) {
  const int dv = p.v.head_dim;
  float m[64], l[64];  // hg <= 64 (the caller's slices)
  const int64_t n_keys = p.q_pos[qi] + 1;
  for (int64_t t0 = 0; t0 < n_keys; t0 += kKeys)
    attend_block(p, qi, kvh, h0, hg, t0, int(std::min<int64_t>(kKeys, n_keys - t0)), t0 == 0, s, acc, m, l);
  for (int g = 0; g < hg; ++g) {
    float* out = p.out + (qi * p.n_heads + h0 + g) * int64_t(dv);
    const float inv = 1.0f / l[g];
    const float* ag = acc + size_t(g) * size_t(dv);
    for (int d = 0; d < dv; ++d) out[d] = ag[d] * inv;
  }
}

// Few queries over many keys (decode): each query's keys cut into chunks, a task each with every
// head, and the chunks' partial softmax sums merged after. A task walks its keys block by block,
// all KV heads of a block before the next, so it reads whole cache rows front to back and each
// row once. Tasks of one KV head instead, its query heads sliced to make tasks enough, read a
// quarter of every row (32/4 heads) once per slice: bench_attention decode at 4096 keys, 6 runs
// alternating on the Zen 3 VM, 2.4-3.2 ms (median 2.7) for those, 1.9-2.7 (2.06) for these chunks
// of 256 keys with the loops over heads inside the blocks (attend_block). The chunks' size and
// when to cut do not depend on the thread count, so neither do the results (the merge sums in its
// own order). false when there is nothing to cut (more queries than a decode batch, or few keys).
bool attention_split_keys(const AttentionParams& p, ThreadPool& pool) {
  // Chunks of 256 keys (16 at 4096 keys), longer past 32 of them: the partials (a chunk's m, l
  // and unnormalised values of every head) stay within 8 x 32 x heads x (dv + 2) floats.
  constexpr int64_t kMinChunk = 4 * kKeys, kMaxChunks = 32, kMaxQueries = 8;
  const int n_kv = p.k.n_kv_heads, group = p.n_heads / n_kv, dv = p.v.head_dim, nh = p.n_heads;
  int64_t max_keys = 0;
  for (int64_t i = 0; i < p.n_q; ++i) max_keys = std::max(max_keys, p.q_pos[i] + 1);
  if (p.n_q > kMaxQueries || max_keys <= kMinChunk) return false;
  const int64_t chunk = std::max(kMinChunk, (max_keys + kMaxChunks * kKeys - 1) / (kMaxChunks * kKeys) * kKeys);
  const int64_t chunks = (max_keys + chunk - 1) / chunk;
  // Per task: m of every head, l of every head, then the heads' acc rows.
  const size_t task_floats = size_t(nh) * (2 + size_t(dv));
  // The caller's buffer, reached through a reference: inside the workers' lambda the name of a
  // thread_local would be each worker's own (empty) instance.
  thread_local std::vector<float> partial_buf;
  std::vector<float>& partial = partial_buf;
  partial.resize(size_t(p.n_q * chunks) * task_floats);
  const int64_t tasks = p.n_q * chunks;
  std::atomic<int64_t> next{0};
  pool.run([&](int, int) {
    thread_local std::vector<float> scores;
    scores.resize(size_t(group) * kKeys);
    for (int64_t t; (t = next.fetch_add(1, std::memory_order_relaxed)) < tasks;) {
      const int64_t qi = t / chunks, begin = t % chunks * chunk, end = std::min(p.q_pos[qi] + 1, begin + chunk);
      float* part = partial.data() + size_t(t) * task_floats;
      for (int64_t t0 = begin; t0 < end; t0 += kKeys)
        for (int kvh = 0; kvh < n_kv; ++kvh) {
          const int h0 = kvh * group;
          attend_block(p, qi, kvh, h0, group, t0, int(std::min<int64_t>(kKeys, end - t0)), t0 == begin, scores.data(),
                       part + 2 * nh + size_t(h0) * size_t(dv), part + h0, part + nh + h0);
        }
    }
  });
  for (int64_t qi = 0; qi < p.n_q; ++qi) {
    const int64_t used = (p.q_pos[qi] + 1 + chunk - 1) / chunk;  // this query's chunks with keys
    const float* base = partial.data() + size_t(qi * chunks) * task_floats;
    for (int h = 0; h < nh; ++h) {
      float mx = -std::numeric_limits<float>::infinity();
      for (int64_t c = 0; c < used; ++c) mx = std::max(mx, base[size_t(c) * task_floats + size_t(h)]);
      float* out = p.out + (qi * nh + h) * int64_t(dv);
      std::fill_n(out, dv, 0.f);
      float lsum = 0.f;
      for (int64_t c = 0; c < used; ++c) {
        const float* part = base + size_t(c) * task_floats;
        const float w = std::exp(part[h] - mx);
        lsum += part[nh + h] * w;
        const float* acc = part + 2 * nh + size_t(h) * size_t(dv);
        for (int d = 0; d < dv; ++d) out[d] += acc[d] * w;
      }
      const float inv = 1.0f / lsum;
      for (int d = 0; d < dv; ++d) out[d] *= inv;
    }
  }
  return true;
}

}  // namespace

void attention(const AttentionParams& p, ThreadPool& pool) {
  if (attention_split_keys(p, pool)) return;
  const int n_kv = p.k.n_kv_heads, group = p.n_heads / n_kv;
  // Heads per task: the whole group (at most 8) while there are tasks enough for every thread
  // several times over, else fewer (few queries over few keys).
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
