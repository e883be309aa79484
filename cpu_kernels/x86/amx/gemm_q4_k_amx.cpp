// AMX-INT8 prefill tiles for Q4_K and Q5_K weights in the Rows16 layout x Q8_K activations (the
// driver: kquant_amx.h). Below 16 activation rows they hand over to the AVX-512 VNNI Rows16 tiles.
//
// Q4_K: w = d sc_j q - dmin m_j with q a nibble (0..15) and 6-bit sub-block scales and mins. The
// tile unit gets q * sc_j (0..945: a low byte, and a high byte 0..3); the mins term
// sum_j m_j (bsum_2j + bsum_2j+1) goes through vpdpwssd on int16 pairs in the epilogue (exact):
//   acc += d_a (d_w (C_lo + 256 C_hi) - dmin_w summ).
//
// Rows16 Q4_K (repack.h), per 16-row group and super-block: the 512 bytes of sub-block pair p are
// 8 lines c of 64 bytes, [c*64 + r*4 + i] = GGUF byte qs[32p + 4c + i] of row r, whose low nibble
// is column 64p + 4c + i (sub-block 2p) and high nibble column 64p + 32 + 4c + i (sub-block
// 2p+1). So chunk p's B tile rows 0-7 are the low-nibble products of lines 0-7, rows 8-15 the
// high-nibble products.
//
// Q5_K is Q4_K plus a 5th bit per weight (Rows16: a 64-bit byte mask per nibble line and
// sub-block, a line of them before each four nibble lines): q (0..31) * sc_j is 0..1953, a high
// byte of 0..7, the rest the same.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "cpu_kernels/blocks.h"
#include "cpu_kernels/kernels.h"
#include "cpu_kernels/repack.h"
#include "cpu_kernels/x86/amx/kquant_amx.h"
#include "cpu_kernels/x86/avx512/mask64_at.h"
#include "cpu_kernels/x86/avx512/rows16_q4k_scales.h"

namespace hexe::cpu {
namespace {

template <bool kFive>
struct K4 {
  static constexpr size_t kSbBytes = kFive ? kQ5KRows16Bytes : kQ4KRows16Bytes;
  static constexpr int kExtra = 4;  // per sub-block pair p: bsum pair sums as two int16 in an int32

  struct alignas(64) Meta {
    float d[16];          // d_w per weight row
    float dmin[16];       // dmin_w per weight row
    int16_t mins[4][32];  // per pair p: [r*2 + h] = min of sub-block 2p+h of row r
  };

  static void act_extra(const BlockQ8_K& a, int32_t* out) {
    for (int p = 0; p < 4; ++p) {
      const int16_t* bs = a.bsums + 4 * p;
      const int lo = bs[0] + bs[1], hi = bs[2] + bs[3];
      out[p] = int32_t(uint32_t(uint16_t(lo)) | uint32_t(uint16_t(hi)) << 16);
    }
  }

  [[gnu::noinline]] static void prepare(const uint8_t* o, uint8_t* prod, Meta& meta) {
    const __m512i m_nib = _mm512_set1_epi8(0x0F), bit5 = _mm512_set1_epi8(0x10);
    const __m512i idx_lo = _mm512_load_si512(amx::kInterleaveLo.data());
    const __m512i idx_hi = _mm512_add_epi8(idx_lo, _mm512_set1_epi8(1));
    alignas(64) uint8_t scales[128], mins_b[128];
    unpack_q4k_rows16_scales(o, scales, mins_b);
    for (int p = 0; p < 4; ++p) {
      // Per sub-block h of the pair: the row's scale in bytes 0 and 2 of its dword (se) or 1 and
      // 3 (so), so vpmaddubsw gives the products of the even / odd columns of each quad as int16.
      __m512i se[2], so[2];
      for (int h = 0; h < 2; ++h) {
        const __m512i s =
            _mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(scales + (2 * p + h) * 16)));
        se[h] = _mm512_or_si512(s, _mm512_slli_epi32(s, 16));
        so[h] = _mm512_slli_epi32(se[h], 8);
      }
      uint8_t* lo_tile = prod + p * amx::kKqChunkProducts;
      for (int c = 0; c < 8; ++c) {
        const __m512i v = _mm512_loadu_si512(o + k4_rows16_line(kFive, p, c));
        __m512i nib[2] = {_mm512_and_si512(v, m_nib), _mm512_and_si512(_mm512_srli_epi16(v, 4), m_nib)};
        if constexpr (kFive)  // sub-blocks 2p and 2p + 1: the pair's byte masks of line c
          for (int h = 0; h < 2; ++h)
            nib[h] = _mm512_mask_add_epi8(nib[h], mask64_at(o + q5k_rows16_mask(p, c, h)), nib[h], bit5);
        for (int h = 0; h < 2; ++h)
          amx::store_split(_mm512_maddubs_epi16(nib[h], se[h]), _mm512_maddubs_epi16(nib[h], so[h]), idx_lo, idx_hi,
                           lo_tile + (8 * h + c) * 64, lo_tile + 1024 + (8 * h + c) * 64);
      }
    }
    _mm512_store_ps(meta.d, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(o))));
    _mm512_store_ps(meta.dmin, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(o + 32))));
    for (int p = 0; p < 4; ++p)
      _mm512_store_si512(meta.mins[p],
                         _mm512_cvtepu8_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(mins_b + p * 32))));
  }

  // acc[r] += d_a[r] (d_w (C_lo + 256 C_hi) - dmin_w summ[r]); pairs of row r at pairs + r nb 4.
  static void epilogue(const int32_t* c, const Meta& mt, const float* da, const int32_t* pairs, int64_t nb,
                       float* acc) {
    const __m512 d = _mm512_load_ps(mt.d), dmin = _mm512_load_ps(mt.dmin);
    const __m512i m0 = _mm512_load_si512(mt.mins[0]), m1 = _mm512_load_si512(mt.mins[1]);
    const __m512i m2 = _mm512_load_si512(mt.mins[2]), m3 = _mm512_load_si512(mt.mins[3]);
#pragma GCC unroll 16
    for (int r = 0; r < 16; ++r) {
      const __m512i isum =
          _mm512_add_epi32(_mm512_load_si512(c + 16 * r), _mm512_slli_epi32(_mm512_load_si512(c + 256 + 16 * r), 8));
      const int32_t* pr = pairs + r * nb * kExtra;
      __m512i mn = _mm512_dpwssd_epi32(_mm512_setzero_si512(), m0, _mm512_set1_epi32(pr[0]));
      mn = _mm512_dpwssd_epi32(mn, m1, _mm512_set1_epi32(pr[1]));
      mn = _mm512_dpwssd_epi32(mn, m2, _mm512_set1_epi32(pr[2]));
      mn = _mm512_dpwssd_epi32(mn, m3, _mm512_set1_epi32(pr[3]));
      const __m512 t = _mm512_fnmadd_ps(dmin, _mm512_cvtepi32_ps(mn), _mm512_mul_ps(d, _mm512_cvtepi32_ps(isum)));
      _mm512_store_ps(acc + 16 * r, _mm512_fmadd_ps(_mm512_set1_ps(da[r * nb]), t, _mm512_load_ps(acc + 16 * r)));
    }
  }
};

}  // namespace

void gemm_tile_q4_K_rows16_amx(int64_t k, const void* w, size_t gstride, int64_t nr, const void* act, size_t arb,
                               int64_t mr, float* y, int64_t ys) {
  amx::kquant_tile<K4<false>, gemm_tile_q4_K_rows16_avx512>(k, w, gstride, nr, act, arb, mr, y, ys);
}

void gemm_tile_q5_K_rows16_amx(int64_t k, const void* w, size_t gstride, int64_t nr, const void* act, size_t arb,
                               int64_t mr, float* y, int64_t ys) {
  amx::kquant_tile<K4<true>, gemm_tile_q5_K_rows16_avx512>(k, w, gstride, nr, act, arb, mr, y, ys);
}

}  // namespace hexe::cpu
