// AVX-512 paged causal GQA attention, flash-attention style in f32.
//
// A task is one KV head x a block of up to qb consecutive queries x hg of that KV head's query
// heads: its rows (query, head) share every K/V row loaded, so each is used rows times. Rows sit
// in vector lanes (row r = query qq * hg + head g, padded to 16 * RV lanes):
//   S[key][row] = K[key] . Q^T   (Q^T scaled and transposed once per task; K values broadcast)
// which makes the causal mask, the block max and the online softmax vertical (no horizontal
// reductions), then
//   O[row][:] = O[row][:] * corr[row] + sum_key P[key][row] * V[key][:]
// in 4-row x 64-column register tiles. Keys go in blocks of kKeys, crossing pages through a
// per-key row pointer. Tasks are taken from a shared counter, costliest (latest queries) first.
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "cpu_kernels/attention.h"
#include "cpu_kernels/x86/avx512/exp_avx512.h"

namespace hexe::cpu::avx512 {
namespace {

constexpr int kKeys = 32;      // keys per block
constexpr int kRowTarget = 32;  // rows per task aimed at (two vectors of lanes)

inline __mmask16 tail_mask(int n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1); }

// Per-thread buffers, 64-byte aligned.
struct Scratch {
  std::vector<float> buf;
  float *qt, *s, *o, *corr, *l;
  int32_t* pos;
  const float** kp;
  const float** vp;
  void size(int dk, int dvp, int rp) {
    const size_t qt_n = size_t(dk) * rp, s_n = size_t(kKeys) * rp, o_n = size_t(rp) * dvp;
    const size_t n = qt_n + s_n + o_n + 3 * size_t(rp) + 2 * kKeys * (sizeof(void*) / sizeof(float)) + 16 * 6;
    if (buf.size() < n) buf.resize(n);
    auto align = [](float* p) {
      return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t(63));
    };
    qt = align(buf.data());
    s = align(qt + qt_n);
    o = align(s + s_n);
    corr = align(o + o_n);
    l = align(corr + rp);
    pos = reinterpret_cast<int32_t*>(align(l + rp));
    kp = reinterpret_cast<const float**>(align(reinterpret_cast<float*>(pos + rp)));
    vp = kp + kKeys;
  }
};

struct Task {
  int kvh, h0, hg;  // KV head, first query head (absolute), heads in the task
  int64_t q0;
  int qn;           // queries q0 .. q0 + qn - 1
};

// S[j][0..16*RV) for keys j < jn (a multiple of KR): scores of the task's rows, -inf where
// the key is past a row's position.
template <int RV, int KR>
void scores(const float* qt, int dk, const float* const* kp, int jn, int64_t t0, const int32_t* pos,
            bool masked, float* s) {
  constexpr int RP = 16 * RV;
  __m512i posv[RV];
  for (int v = 0; v < RV; ++v) posv[v] = _mm512_loadu_si512(pos + 16 * v);
  for (int j0 = 0; j0 < jn; j0 += KR) {
    __m512 acc[KR][RV];
    for (int j = 0; j < KR; ++j)
      for (int v = 0; v < RV; ++v) acc[j][v] = _mm512_setzero_ps();
    const float* k[KR];
    for (int j = 0; j < KR; ++j) k[j] = kp[j0 + j];
    for (int d = 0; d < dk; ++d) {
      __m512 q[RV];
      for (int v = 0; v < RV; ++v) q[v] = _mm512_load_ps(qt + size_t(d) * RP + 16 * v);
      for (int j = 0; j < KR; ++j) {
        const __m512 kb = _mm512_set1_ps(k[j][d]);
        for (int v = 0; v < RV; ++v) acc[j][v] = _mm512_fmadd_ps(kb, q[v], acc[j][v]);
      }
    }
    for (int j = 0; j < KR; ++j)
      for (int v = 0; v < RV; ++v) {
        __m512 x = acc[j][v];
        if (masked) {
          const __mmask16 past = _mm512_cmplt_epi32_mask(posv[v], _mm512_set1_epi32(int32_t(t0 + j0 + j)));
          x = _mm512_mask_mov_ps(x, past, _mm512_set1_ps(-INFINITY));
        }
        _mm512_store_ps(s + size_t(j0 + j) * RP + 16 * v, x);
      }
  }
}

// One 4-row x CN-chunk register tile of accumulate(): rows r0 .. r0 + 3, columns 16 * c0 onwards.
// CN is a template argument so that the accumulators stay in registers (with a run-time chunk
// count GCC kept them on the stack, storing all 16 after every key: accumulate ran at a third of
// the scores' FMA rate).
template <int CN>
inline void accumulate_tile(const float* p, int rp, const float* const* vp, int jn, const float* corr, int r0,
                            int c0, const __mmask16* mk, float* o, int dvp) {
  __m512 acc[4][CN];
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    const __m512 cr = _mm512_set1_ps(corr[r0 + i]);
#pragma GCC unroll 4
    for (int c = 0; c < CN; ++c)
      acc[i][c] = _mm512_mul_ps(_mm512_load_ps(o + size_t(r0 + i) * dvp + 16 * (c0 + c)), cr);
  }
  for (int j = 0; j < jn; ++j) {
    const float* vr = vp[j] + 16 * c0;
    const float* pj = p + size_t(j) * rp + r0;
    __m512 vv[CN];
#pragma GCC unroll 4
    for (int c = 0; c < CN; ++c) vv[c] = _mm512_maskz_loadu_ps(mk[c], vr + 16 * c);
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      const __m512 pb = _mm512_set1_ps(pj[i]);
#pragma GCC unroll 4
      for (int c = 0; c < CN; ++c) acc[i][c] = _mm512_fmadd_ps(pb, vv[c], acc[i][c]);
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i)
#pragma GCC unroll 4
    for (int c = 0; c < CN; ++c) _mm512_store_ps(o + size_t(r0 + i) * dvp + 16 * (c0 + c), acc[i][c]);
}

// O[r][:] = O[r][:] * corr[r] + sum_{j < jn} P[j][r] V[j][:] for rows r < rows (a multiple of 4).
void accumulate(const float* p, int rp, const float* const* vp, int jn, const float* corr, int rows, int dv,
                float* o, int dvp) {
  const int chunks = dvp / 16;
  for (int c0 = 0; c0 < chunks; c0 += 4) {
    const int cn = std::min(4, chunks - c0);
    __mmask16 mk[4];
    for (int c = 0; c < 4; ++c) mk[c] = c < cn ? tail_mask(dv - 16 * (c0 + c)) : 0;
    for (int r0 = 0; r0 < rows; r0 += 4) {
      switch (cn) {
        case 4: accumulate_tile<4>(p, rp, vp, jn, corr, r0, c0, mk, o, dvp); break;
        case 3: accumulate_tile<3>(p, rp, vp, jn, corr, r0, c0, mk, o, dvp); break;
        case 2: accumulate_tile<2>(p, rp, vp, jn, corr, r0, c0, mk, o, dvp); break;
        default: accumulate_tile<1>(p, rp, vp, jn, corr, r0, c0, mk, o, dvp); break;
      }
    }
  }
}

template <int RV>
void run_task(const AttentionParams& p, const Task& t, Scratch& sc) {
  constexpr int RP = 16 * RV;
  constexpr int KR = RV == 1 ? 8 : (RV == 2 ? 8 : 4);  // keys per register tile: KR * RV accumulators
  static_assert(kKeys % KR == 0);
  const int group = p.n_heads / p.k.n_kv_heads;
  const int dk = p.k.head_dim, dv = p.v.head_dim, dvp = (dv + 15) / 16 * 16;
  const int rows = t.qn * t.hg;
  sc.size(dk, dvp, RP);

  // Q^T, scaled; padded lanes are 0 with position -1 (every key masked).
  int64_t maxpos = 0, minpos = INT64_MAX;
  std::memset(sc.qt, 0, sizeof(float) * size_t(dk) * RP);
  for (int r = 0; r < RP; ++r) sc.pos[r] = -1;
  for (int qq = 0; qq < t.qn; ++qq) {
    const int64_t qpos = p.q_pos[t.q0 + qq];
    maxpos = std::max(maxpos, qpos);
    minpos = std::min(minpos, qpos);
    for (int g = 0; g < t.hg; ++g) {
      const int r = qq * t.hg + g;
      const float* q = p.q + ((t.q0 + qq) * p.n_heads + t.kvh * group + t.h0 + g) * int64_t(dk);
      for (int d = 0; d < dk; ++d) sc.qt[size_t(d) * RP + r] = q[d] * p.scale;
      sc.pos[r] = int32_t(qpos);
    }
  }
  std::memset(sc.o, 0, sizeof(float) * size_t(RP) * dvp);
  __m512 m[RV], l[RV];
  for (int v = 0; v < RV; ++v) m[v] = _mm512_set1_ps(-FLT_MAX), l[v] = _mm512_setzero_ps();

  const int64_t n_keys = maxpos + 1;
  const int64_t k_off = int64_t(t.kvh) * dk, v_off = int64_t(t.kvh) * dv;
  const int orows = (rows + 3) / 4 * 4;
  for (int64_t t0 = 0; t0 < n_keys; t0 += kKeys) {
    const int kn = int(std::min<int64_t>(kKeys, n_keys - t0));
    const int jn = (kn + KR - 1) / KR * KR;
    for (int j = 0; j < kn; ++j) {
      sc.kp[j] = p.k.row(t0 + j) + k_off;
      sc.vp[j] = p.v.row(t0 + j) + v_off;
    }
    for (int j = kn; j < jn; ++j) sc.kp[j] = sc.kp[kn - 1];  // computed, then masked
    const bool masked = t0 + jn - 1 > minpos || rows < RP;
    scores<RV, KR>(sc.qt, dk, sc.kp, jn, t0, sc.pos, masked, sc.s);

    // Online softmax, per lane: new max, correction of the old sums, probabilities in place.
    __m512 mn[RV];
    for (int v = 0; v < RV; ++v) {
      __m512 bm = _mm512_set1_ps(-INFINITY);
      for (int j = 0; j < kn; ++j) bm = _mm512_max_ps(bm, _mm512_load_ps(sc.s + size_t(j) * RP + 16 * v));
      mn[v] = _mm512_max_ps(m[v], bm);
      const __m512 corr = exp_ps(_mm512_sub_ps(m[v], mn[v]));
      _mm512_store_ps(sc.corr + 16 * v, corr);
      __m512 sum = _mm512_setzero_ps();
      for (int j = 0; j < kn; ++j) {
        float* sj = sc.s + size_t(j) * RP + 16 * v;
        const __m512 e = exp_ps(_mm512_sub_ps(_mm512_load_ps(sj), mn[v]));
        _mm512_store_ps(sj, e);
        sum = _mm512_add_ps(sum, e);
      }
      l[v] = _mm512_fmadd_ps(l[v], corr, sum);
      m[v] = mn[v];
    }
    accumulate(sc.s, RP, sc.vp, kn, sc.corr, orows, dv, sc.o, dvp);
  }

  for (int v = 0; v < RV; ++v) _mm512_store_ps(sc.l + 16 * v, l[v]);
  const __mmask16 last = tail_mask(dv - (dvp - 16));
  for (int qq = 0; qq < t.qn; ++qq)
    for (int g = 0; g < t.hg; ++g) {
      const int r = qq * t.hg + g;
      float* out = p.out + ((t.q0 + qq) * p.n_heads + t.kvh * group + t.h0 + g) * int64_t(dv);
      const __m512 inv = _mm512_set1_ps(1.f / sc.l[r]);
      const float* o = sc.o + size_t(r) * dvp;
      for (int c = 0; c < dvp; c += 16)
        _mm512_mask_storeu_ps(out + c, c + 16 == dvp ? last : __mmask16(0xFFFF),
                              _mm512_mul_ps(_mm512_load_ps(o + c), inv));
    }
}

}  // namespace

void exp_f32(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail_mask(int(std::min<int64_t>(16, n - i)));
    _mm512_mask_storeu_ps(y + i, k, exp_ps(_mm512_maskz_loadu_ps(k, x + i)));
  }
}

void attention(const AttentionParams& p, ThreadPool& pool) {
  if (p.n_q <= 0) return;
  const int group = p.n_heads / p.k.n_kv_heads;
  const int nth = pool.size();
  // Heads per task: the whole group (up to 64 rows' worth); queries per task fill ~32 rows.
  int hg = std::min(group, 64);
  int qb = int(std::max<int64_t>(1, std::min<int64_t>(p.n_q, std::max(1, kRowTarget / hg))));
  const int64_t q_blocks = (p.n_q + qb - 1) / qb;
  // Too few tasks for the threads (decode with few KV heads): split the heads further.
  const int64_t base = int64_t(p.k.n_kv_heads) * q_blocks;
  if (base < nth) {
    const int want = int((nth + base - 1) / base);
    hg = std::max(1, (group + want - 1) / want);
  }
  hg = std::max(1, std::min(hg, 64 / qb));
  const int h_splits = (group + hg - 1) / hg;

  // Latest query blocks first: they see the most keys, so the cheap tasks fill in at the end.
  std::vector<Task> tasks;
  tasks.reserve(size_t(q_blocks * p.k.n_kv_heads * h_splits));
  for (int64_t b = q_blocks - 1; b >= 0; --b)
    for (int kvh = 0; kvh < p.k.n_kv_heads; ++kvh)
      for (int s = 0; s < h_splits; ++s) {
        const int h0 = s * hg;
        tasks.push_back({kvh, h0, std::min(hg, group - h0), b * qb, int(std::min<int64_t>(qb, p.n_q - b * qb))});
      }
  std::atomic<size_t> next{0};
  pool.run([&](int, int) {
    thread_local Scratch sc;
    for (size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < tasks.size();) {
      const Task& t = tasks[i];
      const int rows = t.qn * t.hg;
      if (rows <= 16) run_task<1>(p, t, sc);
      else if (rows <= 32) run_task<2>(p, t, sc);
      else run_task<4>(p, t, sc);
    }
  });
}

}  // namespace hexe::cpu::avx512
