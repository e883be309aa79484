// AVX-512 Q6_K x Q8_K tile for few activation rows (decode) on the GGUF blocks: one weight row at
// a time (one stream), 512-bit vectors over 64 weights, the 6-bit values assembled in place and
// scaled as int16 through vpdpwssd. With 4+ activation rows the 256-bit tile (which unpacks each
// weight block once for 4 activation rows) is used instead.
//
// Why: the 256-bit tile reads four weight rows side by side, four interleaved streams, which the
// Zen 4 VM's prefetchers follow at about half the speed of one (the Q4_K and Q8_0 tiles were
// changed the same way in session 26). Q6_K holds the expert downs of half the layers of a Q4_K_M
// file and its output head; the mapped blocks are what the CPU reads where the AVX-512 copy does
// not fit or `--repack off` is asked for.
//
// Block (GGML): per half n of 128 weights, ql[64n .. 64n+64) holds the low 4 bits (bytes 0-31:
// weights 0-31 low nibble and 64-95 high nibble; bytes 32-63: weights 32-63 and 96-127), qh[32n ..
// 32n+32) the high 2 bits (bits 0-1: weight l, 2-3: l+32, 4-5: l+64, 6-7: l+96), one int8 scale per
// 16 weights; value = d x scale x (q - 32). The -32 meets the activation's 16-sums (bsums).
#include <immintrin.h>

#include <cstdint>

#include "cpu_kernels/kernels.h"
#include "cpu_kernels/x86/avx512/decode_rows.h"

namespace hexe::cpu {
namespace {

// int16 lanes 8i..8i+7 select scale a + i (i < 4): vpmaddubsw gives one lane per 2 weights.
inline __m512i scale_index(int a) {
  return _mm512_add_epi16(_mm512_set_epi16(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 0,
                                           0, 0, 0, 0, 0, 0, 0),
                          _mm512_set1_epi16(short(a)));
}

// dot(weight row w, activation row a) over nb blocks.
float q6k_row(int64_t nb, const BlockQ6_K* w, const BlockQ8_K* a) {
  const __m512i idx[4] = {scale_index(0), scale_index(4), scale_index(8), scale_index(12)};
  const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
  // Per 64-bit lane: the high bits of weights 0-31 sit at bits 0-1 of each qh byte (shift 4 up to
  // bits 4-5), of 32-63 at bits 2-3 (shift 2); of 64-95 at bits 4-5 (as they are), of 96-127 at
  // 6-7 (shift 2 down). Bits shifted in from the neighbouring byte land outside 0x30.
  const __m512i up = _mm512_set_epi64(2, 2, 2, 2, 4, 4, 4, 4), down = _mm512_set_epi64(2, 2, 2, 2, 0, 0, 0, 0);
  __m512 acc = _mm512_setzero_ps();
  __m256 accm = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const BlockQ6_K& blk = w[b];
    const BlockQ8_K& ab = a[b];
    __m512i isum = _mm512_setzero_si512();
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.scales)));
    const __m512i sc = _mm512_castsi256_si512(sc16);
    for (int n = 0; n < 2; ++n) {
      const __m512i ql = _mm512_loadu_si512(blk.ql + 64 * n);
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.qh + 32 * n));
      const __m512i qh2 = _mm512_inserti64x4(_mm512_castsi256_si512(qh), qh, 1);
      const __m512i h_lo = _mm512_and_si512(_mm512_sllv_epi64(qh2, up), m30);
      const __m512i h_hi = _mm512_and_si512(_mm512_srlv_epi64(qh2, down), m30);
      // (ql & 0x0F) | h: ternary-logic 0xEA is A & B | C.
      const __m512i w_lo = _mm512_ternarylogic_epi32(ql, m4, h_lo, 0xEA);
      const __m512i w_hi = _mm512_ternarylogic_epi32(_mm512_srli_epi16(ql, 4), m4, h_hi, 0xEA);
      const __m512i p_lo = _mm512_maddubs_epi16(w_lo, _mm512_loadu_si512(ab.qs + 128 * n));
      const __m512i p_hi = _mm512_maddubs_epi16(w_hi, _mm512_loadu_si512(ab.qs + 128 * n + 64));
      isum = _mm512_dpwssd_epi32(isum, p_lo, _mm512_permutexvar_epi16(idx[2 * n], sc));
      isum = _mm512_dpwssd_epi32(isum, p_hi, _mm512_permutexvar_epi16(idx[2 * n + 1], sc));
    }
    const float dd = ab.d * f16(blk.d);
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(dd), acc);
    const __m256i ms = _mm256_madd_epi16(sc16, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ab.bsums)));
    accm = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ms), _mm256_set1_ps(32.f * dd), accm);
  }
  __m128 m = _mm_add_ps(_mm256_castps256_ps128(accm), _mm256_extractf128_ps(accm, 1));
  m = _mm_add_ps(m, _mm_movehl_ps(m, m));
  m = _mm_add_ss(m, _mm_movehdup_ps(m));
  return _mm512_reduce_add_ps(acc) - _mm_cvtss_f32(m);
}

}  // namespace

void gemm_tile_q6_K_avx512(int64_t k, const void* w, size_t wrb, int64_t nr, const void* act, size_t arb,
                           int64_t mr, float* y, int64_t ys) {
  const int64_t nb = k / kQKK;
  decode_rows<K6Rows, KQ6, kQKK>(k, w, wrb, nr, act, arb, mr, y, ys,
                                 [nb](const uint8_t* wr, const uint8_t* ar, int64_t) {
                                   return q6k_row(nb, reinterpret_cast<const BlockQ6_K*>(wr),
                                                  reinterpret_cast<const BlockQ8_K*>(ar));
                                 });
}

}  // namespace hexe::cpu
