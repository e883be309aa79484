// AVX-512 VNNI decode tiles for Q8_0 and the 32-block nibble formats (Q4_0, Q4_1, Q5_0, Q5_1) in
// the Rows16 layout (repack.h); all take Q8_0 activations, one output lane per weight row.
// Q8_0: per 32-block and 16 rows, 8 vpdpbusd on whole zmm weight vectors with the activation's 4
// bytes broadcast from memory, one f16 -> f32 scale vector, one FMA.
// Nibble formats: four 64-byte loads of nibbles (16 rows x 4 bytes each), one AND per nibble half
// into vpdpbusd (Q4: the high half kept in place, i.e. times 16, and shifted back once per block,
// exact; Q5: shifted down, and each half's 5th bits added by one byte-masked add from the block's
// bit masks), the level offset (Q4_0: 8, Q5_0: 16) met by the activation block's sum, the min
// (Q4_1/Q5_1) by a second FMA with that sum. The GGUF-layout tiles read one row's blocks at a
// time and compute at 9 GB/s a core, under the stream.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "cpu_kernels/blocks.h"
#include "cpu_kernels/kernels.h"
#include "cpu_kernels/repack.h"
#include "cpu_kernels/x86/avx512/dpbusd_bcast.h"
#include "cpu_kernels/x86/avx512/mask64_at.h"
#include "cpu_kernels/x86/rows16_walk.h"
#include "cpu_kernels/x86/q8_block_sum.h"

namespace hexe::cpu {
namespace {

constexpr size_t kPairBytes = 1088;
// Software prefetch: each line into L1 (T0) this many bytes ahead, and into L2 (T2) twice as
// far. On the DRAM-bound decode benchmark (qwen3-30b-a3b, 2 threads) the L1 distance alone at
// 0 / 1 / 2 / 4 / 8 KiB gave ratios 0.76-0.80 / 0.88-0.90 / 0.90-0.92 / 0.80-0.82 / 0.84; the L2
// one on top streamed 2.5-4% faster (2 KiB + 4 KiB against 2 KiB alone, alternating 48 MB passes
// in one process: 20.9-21.7 against 20.0-21.1 GB/s; 3 KiB in L2 about the same).
constexpr int kPrefetchBytes = 2048;
constexpr int kNibPrefetchBytes = 1024;  // Q4_0 streams half the bytes per block: the same lead in blocks

// y[r * ys + lane] for R activation rows and the 16 rows of the group at g (lanes < valid).
// Inlined into the walk: out of line, its prologue runs once per group, and a down projection's
// group (k = 768) is only 13 KB (moe-layer qwen3-30b-a3b q8_0 decode at the low bandwidth level,
// by process: 0.892 out of line, 0.939 inlined, 0.927 for the loop as it was before).
template <int R>
[[gnu::always_inline]] inline void group_q8(int64_t nb, const uint8_t* g, const BlockQ8_0* const* a,
                                            const ActQ8* const* ai, float* y, int64_t ys, __mmask16 valid, int pf) {
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  // A pair of blocks per iteration: each load instruction then steps by the pair's 1088 bytes
  // every time. One block per iteration made its steps alternate 512 / 576 bytes, which Zen 4's
  // stride prefetcher does not follow: 20 GB/s a core from DRAM against 22.5-23 in pairs on the
  // Zen 4 VM (bench_tile --kib 131072; a plain read does 27).
  // Whole pairs in the loop and an odd last block after it: with the bound inside the loop
  // (h < 2 && b0 + h < nb) the same instructions streamed slower (moe-layer qwen3-30b-a3b q8_0
  // decode, alternating by process on the Zen 4 VM: 0.883 against 0.931 at the low bandwidth
  // level, 0.679 against 0.734 at the high one).
  // The integer dot products of block b, the h-th of its pair, as floats in s[r].
  const auto dots = [&](const uint8_t* pair, int64_t b, int h, __m512* s) {
    const uint8_t* q = pair + h * 512;
    __m512i wv[8];
    for (int c = 0; c < 8; ++c) wv[c] = _mm512_loadu_si512(q + c * 64);
    for (int r = 0; r < R; ++r) {
      const int8_t* aq = a[r][b].qs;
      __m512i s0 = _mm512_set1_epi32(ai[r][b].corr), s1 = _mm512_setzero_si512();
      // bcast4, not dpbusd_bcast (which the nibble formats use): folded, the broadcast streamed 7%
      // faster in one long matmul but slower in the MoE layer (moe-layer qwen3-30b-a3b q8_0 decode,
      // builds alternating on the Zen 4 VM: 0.890 against 0.931 at the low bandwidth level, 0.702
      // against 0.734 at the high one).
      for (int c = 0; c < 4; ++c) {  // two chains: half the dpbusd latency per block
        s0 = _mm512_dpbusd_epi32(s0, wv[c], bcast4(aq + 4 * c));
        s1 = _mm512_dpbusd_epi32(s1, wv[c + 4], bcast4(aq + 4 * c + 16));
      }
      s[r] = _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1));
    }
  };
  // acc += s x (the block's weight scales x its activation scale).
  const auto scale = [&](const uint8_t* pair, int64_t b, int h, const __m512* s) {
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(pair + 1024 + h * 32)));
    for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(s[r], _mm512_mul_ps(dw, _mm512_set1_ps(ai[r][b].d)), acc[r]);
  };
  int64_t b0 = 0;
  for (; b0 + 1 < nb; b0 += 2) {
    const uint8_t* pair = g + size_t(b0 >> 1) * kPairBytes;
    if (pf)
      for (int c = 0; c < int(kPairBytes); c += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(pair + pf + c), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(pair + 2 * pf + c), _MM_HINT_T2);
      }
    // Both blocks' weights before the pair's scale line (its last): the lines in address order.
    // Block 0's scales first made the stream jump to the pair's end and back (builds
    // alternating, moe-layer qwen3-30b-a3b q8_0 decode on the Zen 4 VM: 0.757 against 0.881 of
    // the read at the high bandwidth level, 0.960 against 0.974 at the low one).
    __m512 s0[R], s1[R];
    dots(pair, b0, 0, s0);
    dots(pair, b0 + 1, 1, s1);
    scale(pair, b0, 0, s0);
    scale(pair, b0 + 1, 1, s1);
  }
  if (b0 < nb) {
    const uint8_t* pair = g + size_t(b0 >> 1) * kPairBytes;
    __m512 s0[R];
    dots(pair, b0, 0, s0);
    scale(pair, b0, 0, s0);
  }
  for (int r = 0; r < R; ++r) _mm512_mask_storeu_ps(y + r * ys, valid, acc[r]);
}

// The same for a nibble format W (Q4_0, Q4_1, Q5_0, Q5_1; fields at rows16_legacy(W)).
template <int R, DType W>
void group_nib(int64_t nb, const uint8_t* g, const BlockQ8_0* const* a, const ActQ8* const* ai, float* y,
               int64_t ys, __mmask16 valid, int pf) {
  constexpr Rows16Legacy L = rows16_legacy(W);
  constexpr bool kFive = L.five, kMin = L.m != 0;
  const __m512i m_lo = _mm512_set1_epi8(0x0F), m_hi = _mm512_set1_epi8(char(0xF0)), bit5 = _mm512_set1_epi8(0x10);
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  // Block h of the pair: its levels (Q5: the 5th bits added from the masks before its nibble lines).
  const auto levels = [&](const uint8_t* pair, int h, const __m512i* v, __m512i* lo, __m512i* hi) {
    for (int c = 0; c < 4; ++c) {
      lo[c] = _mm512_and_si512(v[c], m_lo);
      if constexpr (kFive) {
        hi[c] = _mm512_and_si512(_mm512_srli_epi16(v[c], 4), m_lo);
        lo[c] = _mm512_mask_add_epi8(lo[c], mask64_at(pair + L.mask(h, c, 0)), lo[c], bit5);
        hi[c] = _mm512_mask_add_epi8(hi[c], mask64_at(pair + L.mask(h, c, 1)), hi[c], bit5);
      } else {
        hi[c] = _mm512_and_si512(v[c], m_hi);
      }
    }
  };
  // Block b's integer dot products, as floats in s[r].
  const auto dots = [&](int64_t b, const __m512i* lo, const __m512i* hi, __m512* s) {
    for (int r = 0; r < R; ++r) {
      const int8_t* aq = a[r][b].qs;
      __m512i sl = _mm512_set1_epi32(ai[r][b].corr), sh = _mm512_setzero_si512();
      for (int c = 0; c < 4; ++c) {
        sl = dpbusd_bcast(sl, lo[c], aq + 4 * c);
        sh = dpbusd_bcast(sh, hi[c], aq + 16 + 4 * c);
      }
      if constexpr (!kFive) sh = _mm512_srai_epi32(sh, 4);
      s[r] = _mm512_cvtepi32_ps(_mm512_add_epi32(sl, sh));
    }
  };
  // acc += s x d_w x d_a (+ sum(a) x m_w x d_a).
  const auto scale = [&](const uint8_t* pair, int64_t b, int h, const __m512* s) {
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(pair + L.d + h * 32)));
    __m512 mw = _mm512_setzero_ps();
    if constexpr (kMin) mw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(pair + L.m + h * 32)));
    for (int r = 0; r < R; ++r) {
      const __m512 da = _mm512_set1_ps(ai[r][b].d);
      acc[r] = _mm512_fmadd_ps(s[r], _mm512_mul_ps(dw, da), acc[r]);
      if constexpr (kMin) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(ai[r][b].sum), _mm512_mul_ps(mw, da), acc[r]);
    }
  };
  const auto load4 = [](const uint8_t* q, __m512i* v) {
    for (int c = 0; c < 4; ++c) v[c] = _mm512_loadu_si512(q + c * 64);
  };
  int64_t b0 = 0;
  for (; b0 + 1 < nb; b0 += 2) {  // whole pairs, as group_q8
    const uint8_t* pair = g + size_t(b0 >> 1) * L.pair_bytes;
    if (pf)
      for (int c = 0; c < int(L.pair_bytes); c += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(pair + pf + c), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(pair + 2 * pf + c), _MM_HINT_T2);
      }
    // The pair's lines about in address order, as group_q8: each block's (Q5: mask line and)
    // nibble lines, then the scales (and mins). With Q5_0/Q5_1's masks after both blocks' nibble
    // lines the stream was slower (builds alternating, moe-layer qwen3-30b-a3b decode on the
    // Zen 4 VM: q5_0 0.753 -> 0.840 of the read at the high bandwidth level, 0.883 -> 0.938 at
    // the low one; q5_1 0.752 -> 0.843 high).
    __m512i v0[4], v1[4], lo[4], hi[4];
    __m512 s0[R], s1[R];
    load4(pair + L.line(0, 0), v0);
    load4(pair + L.line(1, 0), v1);
    levels(pair, 0, v0, lo, hi);
    dots(b0, lo, hi, s0);
    levels(pair, 1, v1, lo, hi);
    dots(b0 + 1, lo, hi, s1);
    scale(pair, b0, 0, s0);
    scale(pair, b0 + 1, 1, s1);
  }
  if (b0 < nb) {
    const uint8_t* pair = g + size_t(b0 >> 1) * L.pair_bytes;
    __m512i v0[4], lo[4], hi[4];
    __m512 s0[R];
    load4(pair + L.line(0, 0), v0);
    levels(pair, 0, v0, lo, hi);
    dots(b0, lo, hi, s0);
    scale(pair, b0, 0, s0);
  }
  for (int r = 0; r < R; ++r) _mm512_mask_storeu_ps(y + r * ys, valid, acc[r]);
}

// W: Q8_0 or a nibble format.
template <DType W>
void tile(int64_t k, const void* w, size_t gstride, int64_t nr, const void* act, size_t arb, int64_t mr, float* y,
          int64_t ys) {
  constexpr bool kQ8 = W == DType::Q8_0;
  const int64_t nb = k / kQK;
  const int pf = decode_prefetch_bytes(kQ8 ? kPrefetchBytes : kNibPrefetchBytes);
  q8_0_rows16_walk(k, w, gstride, nr, act, arb, mr, y, ys, kQ8 ? 128 : rows16_legacy(W).offset,
                   [&](auto rows, const auto& a, const auto& ai, const uint8_t* g, float* yo, int n) {
                     const __mmask16 valid = __mmask16((1u << n) - 1);
                     constexpr int R = decltype(rows)::value;
                     if constexpr (kQ8) group_q8<R>(nb, g, a, ai, yo, ys, valid, pf);
                     else group_nib<R, W>(nb, g, a, ai, yo, ys, valid, pf);
                   });
}

}  // namespace

void gemm_tile_q8_0_rows16_avx512(int64_t k, const void* w, size_t gstride, int64_t nr, const void* act,
                                  size_t arb, int64_t mr, float* y, int64_t ys) {
  tile<DType::Q8_0>(k, w, gstride, nr, act, arb, mr, y, ys);
}

void gemm_tile_q4_0_rows16_avx512(int64_t k, const void* w, size_t gstride, int64_t nr, const void* act,
                                  size_t arb, int64_t mr, float* y, int64_t ys) {
  tile<DType::Q4_0>(k, w, gstride, nr, act, arb, mr, y, ys);
}

void gemm_tile_q4_1_rows16_avx512(int64_t k, const void* w, size_t gstride, int64_t nr, const void* act,
                                  size_t arb, int64_t mr, float* y, int64_t ys) {
  tile<DType::Q4_1>(k, w, gstride, nr, act, arb, mr, y, ys);
}

void gemm_tile_q5_0_rows16_avx512(int64_t k, const void* w, size_t gstride, int64_t nr, const void* act,
                                  size_t arb, int64_t mr, float* y, int64_t ys) {
  tile<DType::Q5_0>(k, w, gstride, nr, act, arb, mr, y, ys);
}

void gemm_tile_q5_1_rows16_avx512(int64_t k, const void* w, size_t gstride, int64_t nr, const void* act,
                                  size_t arb, int64_t mr, float* y, int64_t ys) {
  tile<DType::Q5_1>(k, w, gstride, nr, act, arb, mr, y, ys);
}

}  // namespace hexe::cpu
