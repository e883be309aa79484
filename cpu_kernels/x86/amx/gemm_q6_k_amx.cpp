// AMX-INT8 prefill tile for Q6_K weights in the Rows16 layout x Q8_K activations (the driver:
// kquant_amx.h). Below 16 activation rows it hands over to the AVX-512 VNNI Rows16 tile.
//
// Q6_K: w = d sc_j (q - 32) with q 6-bit (0..63) and int8 scales per 16-column sub-block. The
// tile unit gets sc_j (q - 32) (-4064..4096: a low byte and a signed high byte -16..16), so the
// -32 offset needs no term of its own and the super-block's integer sum is the reference's
// exactly; the float step after it is the reference's too (mul, mul, add; no FMA), so the tile
// reproduces dot_q6_k bit for bit, as the VNNI tile does.
//
// Rows16 Q6_K (repack.h): per (h, c) three 64-byte lines hold the levels of columns
// 128h + 32t + 4c + i, t 0..3 (rows16_q6k_avx512.cpp unpacks them the same way). Chunk u (columns
// 64u..64u+63) is h = u / 2, t = 2 (u % 2) + t' with B tile row 8 t' + c; the column is in
// sub-block 8h + 2t + c / 4.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "cpu_kernels/blocks.h"
#include "cpu_kernels/kernels.h"
#include "cpu_kernels/repack.h"
#include "cpu_kernels/x86/amx/kquant_amx.h"

namespace hexe::cpu {
namespace {

struct Q6K {
  static constexpr size_t kSbBytes = kQ6KRows16Bytes;
  static constexpr int kExtra = 0;
  static constexpr int kSelect = 0xE4;  // vpternlogd: first operand where the third is 1, else second

  struct alignas(64) Meta {
    float d[16];  // d_w per weight row
  };

  static void act_extra(const BlockQ8_K&, int32_t*) {}

  [[gnu::noinline]] static void prepare(const uint8_t* o, uint8_t* prod, Meta& meta) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), m02 = _mm512_set1_epi8(0x33), m13 = _mm512_set1_epi8(char(0xCC));
    const __m512i low16 = _mm512_set1_epi32(0xFFFF), low8 = _mm512_set1_epi32(0xFF);
    const __m512i idx_lo = _mm512_load_si512(amx::kInterleaveLo.data());
    const __m512i idx_hi = _mm512_add_epi8(idx_lo, _mm512_set1_epi8(1));
    for (int h = 0; h < 2; ++h)
      for (int s = 0; s < 2; ++s) {
        // Sub-block 8h + 2t + s of each set t: the row's scale in bytes 0 and 2 of its dword (se)
        // or 1 and 3 (so) for vpmaddubsw, and 32 x the scale in both int16 halves (s32).
        __m512i se[4], so[4], s32[4];
        for (int t = 0; t < 4; ++t) {
          const int j = 8 * h + 2 * t + s;
          const __m512i sc = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(o + q6k_rows16_scales(j))));
          const __m512i b = _mm512_and_si512(sc, low8);
          se[t] = _mm512_or_si512(b, _mm512_slli_epi32(b, 16));
          so[t] = _mm512_slli_epi32(se[t], 8);
          const __m512i x32 = _mm512_and_si512(_mm512_slli_epi32(sc, 5), low16);
          s32[t] = _mm512_or_si512(x32, _mm512_slli_epi32(x32, 16));
        }
        for (int cc = 0; cc < 4; ++cc) {
          const int c = 4 * s + cc;
          const uint8_t* v = o + q6k_rows16_triple(h, c);
          const __m512i l0 = _mm512_loadu_si512(v), l1 = _mm512_loadu_si512(v + 64);
          const __m512i qh = _mm512_loadu_si512(v + 128);
          const __m512i h02 = _mm512_and_si512(qh, m02), h13 = _mm512_and_si512(qh, m13);
          const __m512i q[4] = {
              _mm512_ternarylogic_epi32(l0, _mm512_slli_epi16(h02, 4), m4, kSelect),
              _mm512_ternarylogic_epi32(l1, _mm512_slli_epi16(h13, 2), m4, kSelect),
              _mm512_ternarylogic_epi32(_mm512_srli_epi16(l0, 4), h02, m4, kSelect),
              _mm512_ternarylogic_epi32(_mm512_srli_epi16(l1, 4), _mm512_srli_epi16(h13, 2), m4, kSelect)};
          for (int t = 0; t < 4; ++t) {
            uint8_t* lo_row = prod + (2 * h + t / 2) * amx::kKqChunkProducts + (8 * (t % 2) + c) * 64;
            const __m512i pe = _mm512_sub_epi16(_mm512_maddubs_epi16(q[t], se[t]), s32[t]);  // sc (q - 32)
            const __m512i po = _mm512_sub_epi16(_mm512_maddubs_epi16(q[t], so[t]), s32[t]);
            amx::store_split(pe, po, idx_lo, idx_hi, lo_row, lo_row + 1024);
          }
        }
      }
    _mm512_store_ps(meta.d, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(o + kQ6KRows16D))));
  }

  // acc[r] += (d_a[r] d_w) (C_lo + 256 C_hi), rounded step by step as the reference.
  static void epilogue(const int32_t* c, const Meta& mt, const float* da, const int32_t*, int64_t nb, float* acc) {
    const __m512 d = _mm512_load_ps(mt.d);
#pragma GCC unroll 16
    for (int r = 0; r < 16; ++r) {
      const __m512i isum =
          _mm512_add_epi32(_mm512_load_si512(c + 16 * r), _mm512_slli_epi32(_mm512_load_si512(c + 256 + 16 * r), 8));
      const __m512 dd = _mm512_mul_round_ps(_mm512_set1_ps(da[r * nb]), d, _MM_FROUND_CUR_DIRECTION);
      const __m512 t = _mm512_mul_round_ps(dd, _mm512_cvtepi32_ps(isum), _MM_FROUND_CUR_DIRECTION);
      _mm512_store_ps(acc + 16 * r, _mm512_add_round_ps(_mm512_load_ps(acc + 16 * r), t, _MM_FROUND_CUR_DIRECTION));
    }
  }
};

}  // namespace

void gemm_tile_q6_K_rows16_amx(int64_t k, const void* w, size_t gstride, int64_t nr, const void* act, size_t arb,
                               int64_t mr, float* y, int64_t ys) {
  amx::kquant_tile<Q6K, gemm_tile_q6_K_rows16_avx512>(k, w, gstride, nr, act, arb, mr, y, ys);
}

}  // namespace hexe::cpu
