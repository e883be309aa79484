// AVX2 tiles for Q4_0 and Q4_1 weights in the Rows16 layout (repack.h, Rows16Legacy), with Q8_0
// activations. A 32-byte half of a nibble line is 8 rows x 4 columns (low nibbles) and the same
// columns + 16 (high nibbles); one broadcast of 4 activation bytes meets 8 rows in one vpmaddubsw.
// A block's 8 products per row stay in 16 bits (8 x 2 x 15 x 128 = 30720 < 32768) until one
// vpmaddwd by 1 widens them; the level offset (Q4_0: 8) is met by the activation block's sum, the
// min (Q4_1) by a second FMA with it. The GGUF-layout tiles convert two f16 scales and run a
// horizontal chain per row and block: 6 GB/s a core from cache on the Zen 3 VM, a third of what the
// stream needs.
#include <immintrin.h>

#include <cstdint>

#include "cpu_kernels/blocks.h"
#include "cpu_kernels/kernels.h"
#include "cpu_kernels/repack.h"
#include "cpu_kernels/x86/avx2/rows16_avx2.h"
#include "cpu_kernels/x86/q8_block_sum.h"

namespace hexe::cpu {
namespace {

using rows16_avx2::bcast4;

// R activation rows against the 16-row group at g: y[r * ys + j] for j < n.
template <int R, DType W>
void group(int64_t nb, const uint8_t* g, const BlockQ8_0* const* a, const ActQ8* const* ai, float* y, int64_t ys,
           int n, int pf) {
  constexpr Rows16Legacy L = rows16_legacy(W);
  constexpr bool kMin = L.m != 0;
  const __m256i m_lo = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  __m256 acc[2][R];
  for (int h = 0; h < 2; ++h)
    for (int r = 0; r < R; ++r) acc[h][r] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* pair = g + size_t(b / 2) * L.pair_bytes;
    const int blk = int(b % 2);
    if (pf && blk == 0)
      for (size_t c = 0; c < L.pair_bytes; c += 64) _mm_prefetch(reinterpret_cast<const char*>(pair + c + pf), _MM_HINT_T0);
    // 16-bit sums per half (rows 0..7, 8..15) and activation row, two lanes a row.
    __m256i s16[2][R];
    for (int h = 0; h < 2; ++h)
      for (int r = 0; r < R; ++r) s16[h][r] = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      __m256i al[R], ah[R];
      for (int r = 0; r < R; ++r) al[r] = bcast4(a[r][b].qs + 4 * c), ah[r] = bcast4(a[r][b].qs + 16 + 4 * c);
      for (int h = 0; h < 2; ++h) {
        __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pair + L.line(blk, c) + h * 32));
        asm("" : "+x"(v));  // one load for the AND and the shift
        const __m256i lo = _mm256_and_si256(v, m_lo);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m_lo);
        for (int r = 0; r < R; ++r) {
          s16[h][r] = _mm256_add_epi16(s16[h][r], _mm256_add_epi16(_mm256_maddubs_epi16(lo, al[r]),
                                                                   _mm256_maddubs_epi16(hi, ah[r])));
          asm("" : "+x"(s16[h][r]));  // running sums (GCC would reassociate them and spill)
        }
      }
    }
    for (int h = 0; h < 2; ++h) {
      const __m256 dw =
          _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pair + L.d + blk * 32 + h * 16)));
      __m256 mw = _mm256_setzero_ps();
      if constexpr (kMin)
        mw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pair + L.m + blk * 32 + h * 16)));
      for (int r = 0; r < R; ++r) {
        const ActQ8& f = ai[r][b];
        const __m256i i32 = _mm256_add_epi32(_mm256_madd_epi16(s16[h][r], ones), _mm256_set1_epi32(f.corr));
        const __m256 da = _mm256_set1_ps(f.d);
        acc[h][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i32), _mm256_mul_ps(dw, da), acc[h][r]);
        if constexpr (kMin) acc[h][r] = _mm256_fmadd_ps(_mm256_set1_ps(f.sum * f.d), mw, acc[h][r]);
      }
    }
  }
  for (int r = 0; r < R; ++r) rows16_avx2::store_row(acc[0][r], acc[1][r], y + r * ys, n);
}

template <DType W>
void tile(int64_t k, const void* w, size_t gstride, int64_t nr, const void* act, size_t arb, int64_t mr, float* y,
          int64_t ys) {
  const int64_t nb = k / kQK;
  const int pf = decode_prefetch_bytes(kAvx2Rows16PrefetchBytes, PrefetchOnAmd::On);
  q8_0_rows16_walk(k, w, gstride, nr, act, arb, mr, y, ys, rows16_legacy(W).offset,
                   [&](auto rows, const auto& a, const auto& ai, const uint8_t* g, float* yo, int n) {
                     rows16_avx2::in_pairs<decltype(rows)::value>([&](auto rr, int r0) {
                       group<decltype(rr)::value, W>(nb, g, a + r0, ai + r0, yo + r0 * ys, ys, n, pf);
                     });
                   });
}

}  // namespace

void gemm_tile_q4_0_rows16_avx2(int64_t k, const void* w, size_t gstride, int64_t nr, const void* act, size_t arb,
                                int64_t mr, float* y, int64_t ys) {
  tile<DType::Q4_0>(k, w, gstride, nr, act, arb, mr, y, ys);
}

void gemm_tile_q4_1_rows16_avx2(int64_t k, const void* w, size_t gstride, int64_t nr, const void* act, size_t arb,
                                int64_t mr, float* y, int64_t ys) {
  tile<DType::Q4_1>(k, w, gstride, nr, act, arb, mr, y, ys);
}

}  // namespace hexe::cpu
