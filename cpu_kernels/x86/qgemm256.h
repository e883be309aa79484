// 256-bit quantised tile kernels written once over a Dot policy. Included only by ISA files, which
// supply the policy: AVX2 (maddubs + madd) or AVX512-VNNI (vpdpbusd). A policy has
//   dot(u, s)            u8 x s8 -> 8 x i32, each lane the sum of 4 adjacent products;
//   Scale                sub-block scales as the policy multiplies them;
//   scales8(sc, out)     out[j]: sc[j] for a whole 32-byte vector (8 unsigned bytes: Q4_K, Q5_K);
//   scale_pairs16(sc, out) out[j]: sc[2j] for bytes 0..15 of a vector, sc[2j+1] for 16..31 (16
//                        signed bytes: Q6_K's sub-blocks of 16);
//   dot_scaled(u, s, sc) the same 8 lanes, each times its scale, in exact integers;
//   kDecodePrefetchBytes how far ahead of the weight stream decode prefetches (0: not).
// AVX2 folds the scale into the pair-summing madd (the scale as i16: one op where madd by 1 and a
// 32-bit multiply took three, the multiply 10 cycles); VNNI multiplies vpdpbusd's sums.
// Decode (few activation rows) prefetches the weight stream `pf` bytes ahead: on the Zen 3 VM (no
// AVX-512, two cores of about 10 GB/s each from DRAM) the hardware prefetchers alone left these
// tiles at 0.55-0.65 of the read; see decode_prefetch_bytes in dispatch.cpp.
// Everything here has internal linkage, so each ISA file gets its own copy compiled with its own
// flags (no ODR mixing of ISAs at link time).
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "cpu_kernels/blocks.h"
#include "cpu_kernels/kernels.h"
#include "cpu_kernels/x86/hsum_ps.h"

namespace hexe::cpu {
namespace {  // NOLINT: deliberate, see the file comment

inline float f16(uint16_t h) { return _cvtsh_ss(h); }

inline __m256i mask4() { return _mm256_set1_epi8(0x0F); }

// Prefetches the `bytes` (whole lines) at p + pf into L1.
template <size_t bytes>
inline void prefetch_ahead(const void* p, int pf) {
  for (size_t l = 0; l < bytes; l += 64) _mm_prefetch(static_cast<const char*>(p) + pf + l, _MM_HINT_T0);
}

// 16 bytes of packed nibbles -> 32 values: low nibbles first, then high nibbles (legacy order).
inline __m256i nibbles_16(const uint8_t* qs) {
  const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i v = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
  return _mm256_and_si256(v, mask4());
}

// 32 bits -> 32 bytes of 0x10 where the bit is set (the fifth bit of Q5_0/Q5_1).
inline __m256i bits_to_0x10(const uint8_t* qh4) {
  uint32_t bits;
  std::memcpy(&bits, qh4, 4);
  const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                         0x0101010101010101, 0x0000000000000000);
  __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32(int(bits)), shuf);
  const __m256i sel = _mm256_set1_epi64x(int64_t(0x8040201008040201ull));
  v = _mm256_cmpeq_epi8(_mm256_and_si256(v, sel), sel);
  return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

// Weight-level views of one 32-block: kSigned formats give int8 levels (offset removed) and only
// a scale; the others give unsigned levels plus a min (w = d*q + m).
struct LQ4_0 {
  using Block = BlockQ4_0;
  static constexpr bool kSigned = true;
  static __m256i levels(const Block& b) { return _mm256_sub_epi8(nibbles_16(b.qs), _mm256_set1_epi8(8)); }
};
struct LQ5_0 {
  using Block = BlockQ5_0;
  static constexpr bool kSigned = true;
  static __m256i levels(const Block& b) {
    return _mm256_sub_epi8(_mm256_or_si256(nibbles_16(b.qs), bits_to_0x10(b.qh)), _mm256_set1_epi8(16));
  }
};
struct LQ8_0 {
  using Block = BlockQ8_0;
  static constexpr bool kSigned = true;
  static __m256i levels(const Block& b) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs)); }
};
struct LQ4_1 {
  using Block = BlockQ4_1;
  static constexpr bool kSigned = false;
  static __m256i levels(const Block& b) { return nibbles_16(b.qs); }
};
struct LQ5_1 {
  using Block = BlockQ5_1;
  static constexpr bool kSigned = false;
  static __m256i levels(const Block& b) { return _mm256_or_si256(nibbles_16(b.qs), bits_to_0x10(b.qh)); }
};

template <class Fmt, class D, int R>
void legacy_rows(int64_t nb, const typename Fmt::Block* w, const uint8_t* act, size_t arb,
                 float* y, int64_t ys, int pf) {
  // Two accumulator sets (even/odd blocks) so consecutive blocks' FMAs do not wait on each other.
  __m256 acc0[R], acc1[R];
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
  const __m256i ones = _mm256_set1_epi8(1);
  auto step = [&](int64_t b, __m256* acc) {
    if (pf) prefetch_ahead<1>(w + b, pf);  // a line per block: the 34 bytes of Q8_0, fewer for the others
    const __m256i q = Fmt::levels(w[b]);
    const float dw = f16(w[b].d);
    [[maybe_unused]] float mw = 0.f;
    [[maybe_unused]] __m256i qa;
    if constexpr (Fmt::kSigned) qa = _mm256_sign_epi8(q, q);  // |q| as u8
    else mw = f16(w[b].m);
    for (int r = 0; r < R; ++r) {
      const auto* a = reinterpret_cast<const BlockQ8_0*>(act + size_t(r) * arb) + b;
      const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a->qs));
      const float da = f16(a->d);
      if constexpr (Fmt::kSigned) {
        const __m256i p = D::dot(qa, _mm256_sign_epi8(av, q));
        acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * da), acc[r]);
      } else {
        const __m256i p = D::dot(q, av);
        const __m256i s = D::dot(ones, av);
        acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * da), acc[r]);
        acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(mw * da), acc[r]);
      }
    }
  };
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    step(b, acc0);
    step(b + 1, acc1);
  }
  if (b < nb) step(b, acc0);
  for (int r = 0; r < R; ++r) y[r * ys] = hsum_ps(_mm256_add_ps(acc0[r], acc1[r]));
}

// Walks weight rows; each unpacked weight block serves up to 4 activation rows. Decode (up to 4
// activation rows, each weight line read once) prefetches; prefill reads each row again per 4
// activation rows, from cache.
template <template <class, class, int> class Rows, class Fmt, class D, int64_t kBlock>
void tile_loop(int64_t k, const void* w, size_t wrb, int64_t nr, const void* act, size_t arb,
               int64_t mr, float* y, int64_t ys) {
  const int64_t nb = k / kBlock;
  const int pf = mr <= 4 && D::kDecodePrefetchBytes ? decode_prefetch_bytes(D::kDecodePrefetchBytes, PrefetchOnAmd::On) : 0;
  const auto* a8 = static_cast<const uint8_t*>(act);
  for (int64_t j = 0; j < nr; ++j) {
    const auto* wj = reinterpret_cast<const typename Fmt::Block*>(static_cast<const uint8_t*>(w) + j * wrb);
    int64_t i = 0;
    for (; i + 4 <= mr; i += 4) Rows<Fmt, D, 4>::run(nb, wj, a8 + i * arb, arb, y + i * ys + j, ys, pf);
    switch (mr - i) {
      case 3: Rows<Fmt, D, 3>::run(nb, wj, a8 + i * arb, arb, y + i * ys + j, ys, pf); break;
      case 2: Rows<Fmt, D, 2>::run(nb, wj, a8 + i * arb, arb, y + i * ys + j, ys, pf); break;
      case 1: Rows<Fmt, D, 1>::run(nb, wj, a8 + i * arb, arb, y + i * ys + j, ys, pf); break;
      default: break;
    }
  }
}

template <class Fmt, class D, int R>
struct LegacyRows {
  static void run(int64_t nb, const typename Fmt::Block* w, const uint8_t* act, size_t arb, float* y, int64_t ys,
                  int pf) {
    legacy_rows<Fmt, D, R>(nb, w, act, arb, y, ys, pf);
  }
};

// ---- K-quants against Q8_K ----

struct KQ4 { using Block = BlockQ4_K; static constexpr bool kHigh = false; };
struct KQ5 { using Block = BlockQ5_K; static constexpr bool kHigh = true; };

// Q4_K/Q5_K: the 8 sub-blocks of 32 levels (0..15 / 0..31), sc and m of each.
template <class Fmt>
struct K4Unpacked {
  uint8_t sc[8], m[8];
  float d, dmin;
  explicit K4Unpacked(const typename Fmt::Block& b) {
    d = f16(b.d);
    dmin = f16(b.dmin);
    // k4_scale_min (blocks.h) for all 8 sub-blocks, four bytes at a time: sub-blocks 0..3 keep the
    // low 6 bits of bytes 0..3 (scales) and 4..7 (mins); 4..7 take the nibbles of bytes 8..11 and,
    // as bits 4..5, the top 2 bits of bytes 0..3 (scales) and 4..7 (mins).
    uint32_t w0, w1, w2;
    std::memcpy(&w0, b.scales, 4);
    std::memcpy(&w1, b.scales + 4, 4);
    std::memcpy(&w2, b.scales + 8, 4);
    const uint32_t s_lo = w0 & 0x3F3F3F3Fu, m_lo = w1 & 0x3F3F3F3Fu;
    const uint32_t s_hi = (w2 & 0x0F0F0F0Fu) | ((w0 >> 2) & 0x30303030u);
    const uint32_t m_hi = ((w2 >> 4) & 0x0F0F0F0Fu) | ((w1 >> 2) & 0x30303030u);
    std::memcpy(sc, &s_lo, 4);
    std::memcpy(sc + 4, &s_hi, 4);
    std::memcpy(m, &m_lo, 4);
    std::memcpy(m + 4, &m_hi, 4);
  }
  // The mins as i16 pairs (m0, m0, m1, m1, ...): madd against the activation's 16 bsums gives
  // m_j * (bsums[2j] + bsums[2j+1]) per i32 lane.
  __m256i mins_pairs() const {
    uint64_t m8;
    std::memcpy(&m8, m, 8);
    const __m128i v = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(int64_t(m8)));
    return _mm256_set_m128i(_mm_unpackhi_epi16(v, v), _mm_unpacklo_epi16(v, v));
  }
  // The levels of sub-blocks 2jj (lo) and 2jj + 1 (hi), made where they are used (K4Rows).
  static void levels(const typename Fmt::Block& b, int jj, __m256i& lo, __m256i& hi) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * jj));
    lo = _mm256_and_si256(v, mask4());
    hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), mask4());
    if constexpr (Fmt::kHigh) {
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh));
      const __m256i one = _mm256_set1_epi8(1);
      lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * jj), one), 4));
      hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * jj + 1), one), 4));
    }
  }
};

template <class Fmt, class D, int R>
struct K4Rows {
  static void run(int64_t nb, const typename Fmt::Block* w, const uint8_t* act, size_t arb, float* y, int64_t ys,
                  int pf) {
    __m256 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      if (pf) prefetch_ahead<sizeof(w[b])>(w + b, pf);
      const K4Unpacked<Fmt> u(w[b]);
      typename D::Scale scv[8];
      D::scales8(u.sc, scv);
      const BlockQ8_K* a[R];
      __m256i isum[R];
      for (int r = 0; r < R; ++r) {
        a[r] = reinterpret_cast<const BlockQ8_K*>(act + size_t(r) * arb) + b;
        isum[r] = _mm256_setzero_si256();
      }
      // Sub-block pair outer, activation rows inner: each pair's levels are made once, where they
      // serve the R rows. All eight made first, beside the eight scales and the accumulators,
      // outnumbered AVX2's 16 registers (bench_tile --m 32 q4_K: 26 -> 34 GMAC/s a core this way).
      for (int jj = 0; jj < 4; ++jj) {
        __m256i lo, hi;
        K4Unpacked<Fmt>::levels(w[b], jj, lo, hi);
        for (int r = 0; r < R; ++r) {
          const auto* qs = reinterpret_cast<const __m256i*>(a[r]->qs) + 2 * jj;
          isum[r] = _mm256_add_epi32(isum[r], D::dot_scaled(lo, _mm256_loadu_si256(qs), scv[2 * jj]));
          isum[r] = _mm256_add_epi32(isum[r], D::dot_scaled(hi, _mm256_loadu_si256(qs + 1), scv[2 * jj + 1]));
        }
      }
      const __m256i mins = u.mins_pairs();
      for (int r = 0; r < R; ++r) {
        // The mins term stays in the lanes (m_j x the pair's bsums, exact in i32) and leaves the
        // accumulator through one fnmadd: a horizontal sum a block cost more than the block's dot.
        const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[r]->bsums));
        acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r]), _mm256_set1_ps(a[r]->d * u.d), acc[r]);
        acc[r] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(bs, mins)), _mm256_set1_ps(a[r]->d * u.dmin),
                                  acc[r]);
      }
    }
    for (int r = 0; r < R; ++r) y[r * ys] = hsum_ps(acc[r]);
  }
};

struct KQ6 { using Block = BlockQ6_K; };

template <class Fmt, class D, int R>
struct K6Rows {
  static void run(int64_t nb, const BlockQ6_K* w, const uint8_t* act, size_t arb, float* y, int64_t ys, int pf) {
    __m256 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
    const __m256i m30 = _mm256_set1_epi8(0x30);
    for (int64_t b = 0; b < nb; ++b) {
      if (pf) prefetch_ahead<sizeof(BlockQ6_K)>(w + b, pf);
      const BlockQ6_K& blk = w[b];
      const float d = f16(blk.d);
      typename D::Scale scv[8];
      D::scale_pairs16(blk.scales, scv);
      const BlockQ8_K* a[R];
      __m256i isum[R];
      for (int r = 0; r < R; ++r) {
        a[r] = reinterpret_cast<const BlockQ8_K*>(act + size_t(r) * arb) + b;
        isum[r] = _mm256_setzero_si256();
      }
      // Quarter outer (t of half h: elements 128h + 32t ..), activation rows inner, as in K4Rows:
      // each quarter's levels are made once, where they serve the R rows.
      for (int h = 0; h < 2; ++h) {
        const __m256i hh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.qh + 32 * h));
        for (int t = 0; t < 4; ++t) {
          const __m256i l = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.ql + 64 * h + 32 * (t & 1)));
          const __m256i lo = _mm256_and_si256(t < 2 ? l : _mm256_srli_epi16(l, 4), mask4());
          // The quarter's 2-bit parts (bits 2t..2t+1 of qh) moved straight to bits 4..5: one shift
          // (none for t = 2) and one mask, where shifting down, masking and shifting up took three.
          // The bits a 16-bit shift carries across bytes land outside the mask.
          const __m256i up = t == 0 ? _mm256_slli_epi16(hh, 4) : t == 1 ? _mm256_slli_epi16(hh, 2)
                           : t == 2 ? hh : _mm256_srli_epi16(hh, 2);
          const __m256i q = _mm256_or_si256(lo, _mm256_and_si256(up, m30));
          for (int r = 0; r < R; ++r) {
            const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[r]->qs + 128 * h + 32 * t));
            isum[r] = _mm256_add_epi32(isum[r], D::dot_scaled(q, av, scv[4 * h + t]));
          }
        }
      }
      const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.scales)));
      for (int r = 0; r < R; ++r) {
        // The -32 offset, 32 * sum_j sc_j * bsum_j, subtracted in the lanes (exact in i32) before
        // the one conversion: no horizontal sum a block.
        const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[r]->bsums));
        isum[r] = _mm256_sub_epi32(isum[r], _mm256_slli_epi32(_mm256_madd_epi16(bs, sc16), 5));
        acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r]), _mm256_set1_ps(a[r]->d * d), acc[r]);
      }
    }
    for (int r = 0; r < R; ++r) y[r * ys] = hsum_ps(acc[r]);
  }
};

}  // namespace
}  // namespace hexe::cpu
