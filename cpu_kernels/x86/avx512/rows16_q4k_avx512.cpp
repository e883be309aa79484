// AVX-512 VNNI decode tiles for Q4_K and Q5_K weights in the Rows16 layout (repack.h). Per
// super-block and 16 rows: each 64-byte load holds two sub-blocks' nibbles (low: sub-block 2p,
// high: 2p+1) for 16 rows x 4 columns; one AND per nibble half feeds vpdpbusd (Q4_K: the high half
// kept in place, i.e. times 16, and scaled back once per super-block; Q5_K: each half joined by
// its 5th bit). The 6-bit scales, kept 6-bit in the layout (the GGUF's bytes per row) and unpacked
// to bytes per super-block (rows16_q4k_scales.h), scale 16-lane sums (one lane per row); the mins
// meet the activation's sub-block sums through vpdpwssd.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "cpu_kernels/blocks.h"
#include "cpu_kernels/kernels.h"
#include "cpu_kernels/repack.h"
#include "cpu_kernels/x86/avx512/dpbusd_bcast.h"
#include "cpu_kernels/x86/avx512/mask64_at.h"
#include "cpu_kernels/x86/avx512/rows16_q4k_scales.h"
#include "cpu_kernels/x86/q8k_pairs.h"

namespace hexe::cpu {
namespace {

// Software prefetch: each line into L1 (T0) this many bytes ahead, and into L2 (T2) twice as
// far. On the DRAM-bound decode benchmark (qwen3-30b-a3b, 2 threads) the L1 distance alone at
// 0 / 1 / 2 / 4 / 8 KiB gave ratios 0.81-0.84 / 0.90-0.91 / 0.86 / 0.78 / 0.75; the L2 one on top
// streamed 3-4% faster (1 KiB + 2 KiB against 1 KiB alone, alternating 48 MB passes in one
// process: 19.4-19.6 against 18.3-19.0 GB/s; 3 and 4 KiB in L2 gave 19.0-19.1).
constexpr int kPrefetchBytes = 1024;

inline __m512 scale_ps(const uint8_t* p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}

// kFive: Q5_K, whose 5th bits (byte masks, a line of them before each four nibble lines) join
// each nibble before vpdpbusd; the high nibble is then shifted down rather than kept in place
// (x 16 and the 5th bit would not fit a byte).
template <int R, bool kFive>
void group(int64_t nb, const uint8_t* g, const BlockQ8_K* const* a, const int32_t* const* ap, float* y,
           int64_t ys, __mmask16 valid, int pf) {
  const __m512i m_lo = _mm512_set1_epi8(0x0F), m_hi = _mm512_set1_epi8(char(0xF0)), bit5 = _mm512_set1_epi8(0x10);
  constexpr size_t kBytes = kFive ? kQ5KRows16Bytes : kQ4KRows16Bytes;
  constexpr size_t kPairBytes = (kBytes - kQ4KRows16Qs) / 4;
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* o = g + size_t(b) * kBytes;
    alignas(64) uint8_t scales[128], mins_b[128];
    unpack_q4k_rows16_scales(o, scales, mins_b);
    __m512 sb[R], sh[R];  // sum over sub-blocks of scale x dot: even sub-blocks, odd (x 16)
    __m512i mn[R];
    for (int r = 0; r < R; ++r) sb[r] = sh[r] = _mm512_setzero_ps(), mn[r] = _mm512_setzero_si512();
    for (int p = 0; p < 4; ++p) {
      if (pf)  // the pair's lines (Q5_K: with their mask lines)
        for (size_t c = 0; c < kPairBytes; c += 64) {
          const char* line = reinterpret_cast<const char*>(o + kQ4KRows16Qs + p * kPairBytes + c);
          _mm_prefetch(line + pf, _MM_HINT_T0);
          _mm_prefetch(line + 2 * pf, _MM_HINT_T2);
        }
      __m512i il[R], ih[R];
      for (int r = 0; r < R; ++r) il[r] = ih[r] = _mm512_setzero_si512();
      for (int c = 0; c < 8; ++c) {
        __m512i v = _mm512_loadu_si512(o + k4_rows16_line(kFive, p, c));
        // One load into a register: left alone, GCC folds the load into both ANDs and the line is
        // read twice, and the load ports are what limit this loop (the tile ran 15-20% faster with
        // one load on the Zen 4 VM, cache-resident weights, bench_tile).
#ifndef HEXE_AVX512_EMULATED  // emulated_avx512.h: no register to pin
        asm("" : "+v"(v));
#endif
        __m512i lo, hi;
        if constexpr (kFive) {  // each nibble plus 16 where its byte mask has the 5th bit
          lo = _mm512_and_si512(v, m_lo);
          lo = _mm512_mask_add_epi8(lo, mask64_at(o + q5k_rows16_mask(p, c, 0)), lo, bit5);
          hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m_lo);
          hi = _mm512_mask_add_epi8(hi, mask64_at(o + q5k_rows16_mask(p, c, 1)), hi, bit5);
        } else {
          lo = _mm512_and_si512(v, m_lo);
          hi = _mm512_and_si512(v, m_hi);
        }
        for (int r = 0; r < R; ++r) {
          const int8_t* aq = a[r][b].qs + 64 * p + 4 * c;
          il[r] = dpbusd_bcast(il[r], lo, aq);
          ih[r] = dpbusd_bcast(ih[r], hi, aq + 32);
        }
      }
      const __m512 sc_lo = scale_ps(scales + (2 * p) * 16), sc_hi = scale_ps(scales + (2 * p + 1) * 16);
      const __m512i mins = _mm512_cvtepu8_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(mins_b + p * 32)));
      for (int r = 0; r < R; ++r) {
        sb[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(il[r]), sc_lo, sb[r]);
        sh[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ih[r]), sc_hi, sh[r]);
        mn[r] = _mm512_dpwssd_epi32(mn[r], mins, _mm512_set1_epi32(ap[r][b * 4 + p]));
      }
    }
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(o)));
    const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(o + 32)));
    for (int r = 0; r < R; ++r) {
      const __m512 da = _mm512_set1_ps(a[r][b].d);
      const __m512 sum = kFive ? _mm512_add_ps(sb[r], sh[r]) : _mm512_fmadd_ps(sh[r], _mm512_set1_ps(1.f / 16), sb[r]);
      acc[r] = _mm512_fmadd_ps(sum, _mm512_mul_ps(d, da), acc[r]);
      acc[r] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(mn[r]), _mm512_mul_ps(dmin, da), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) _mm512_mask_storeu_ps(y + r * ys, valid, acc[r]);
}

}  // namespace

namespace {

template <bool kFive>
void tile(int64_t k, const void* w, size_t gstride, int64_t nr, const void* act, size_t arb, int64_t mr, float* y,
          int64_t ys) {
  const int64_t nb = k / kQKK;
  const int pf = decode_prefetch_bytes(kPrefetchBytes);
  q8k_rows16_walk(k, w, gstride, nr, act, arb, mr, y, ys, [&](auto rows, auto& a, auto& ap, const uint8_t* g, float* yo, int n) {
    group<decltype(rows)::value, kFive>(nb, g, a, ap, yo, ys, __mmask16((1u << n) - 1), pf);
  });
}

}  // namespace

void gemm_tile_q4_K_rows16_avx512(int64_t k, const void* w, size_t gstride, int64_t nr, const void* act,
                                  size_t arb, int64_t mr, float* y, int64_t ys) {
  tile<false>(k, w, gstride, nr, act, arb, mr, y, ys);
}

void gemm_tile_q5_K_rows16_avx512(int64_t k, const void* w, size_t gstride, int64_t nr, const void* act,
                                  size_t arb, int64_t mr, float* y, int64_t ys) {
  tile<true>(k, w, gstride, nr, act, arb, mr, y, ys);
}

}  // namespace hexe::cpu
