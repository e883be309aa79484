// The 6-bit scales and mins of one Q4_K Rows16 super-block (repack.h) unpacked to bytes with
// AVX-512BW: sc[j*16 + r] (sub-block j, row r) and mn[p*32 + r*2 + h] (sub-block 2p+h, row r),
// the orders the decode and AMX tiles read. About 20 instructions per 16 rows x 256 columns.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace hexe::cpu {
// Internal linkage (as q8_block_sum.h): the AVX-512 and AMX files include this, and with the
// emulated AVX-512 tier (emulated_avx512.h) the two are compiled for different ISAs.
namespace {  // NOLINT: deliberate

// 128 six-bit values: low nibbles at lo (64 bytes, values u and u+64 in byte u), top 2 bits at hi
// (32 bytes, values u, u+32, u+64, u+96 in byte u) -> out[0..128).
inline void unpack_six_bit_128(const uint8_t* lo, const uint8_t* hi, uint8_t* out) {
  const __m512i nib = _mm512_set1_epi8(0x0F), two = _mm512_set1_epi8(0x03);
  const __m512i l = _mm512_loadu_si512(lo);
  const __m512i h = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(hi)));
  // Word shifts: each byte's own 2-bit field lands in bits 0..1 (fields never cross a byte).
  constexpr long long k2 = 0x0002000200020002LL;  // a shift of 2 in each 16-bit lane
  const __m512i first = _mm512_set_epi64(k2, k2, k2, k2, 0, 0, 0, 0);  // values 0..31: bits 0-1; 32..63: 2-3
  const __m512i second = _mm512_add_epi16(first, _mm512_set1_epi16(4));  // 64..95: bits 4-5; 96..127: 6-7
  const __m512i a = _mm512_and_si512(l, nib), b = _mm512_and_si512(_mm512_srli_epi16(l, 4), nib);
  const __m512i ha = _mm512_and_si512(_mm512_srlv_epi16(h, first), two);
  const __m512i hb = _mm512_and_si512(_mm512_srlv_epi16(h, second), two);
  _mm512_storeu_si512(out, _mm512_or_si512(a, _mm512_slli_epi16(ha, 4)));
  _mm512_storeu_si512(out + 64, _mm512_or_si512(b, _mm512_slli_epi16(hb, 4)));
}

inline void unpack_q4k_rows16_scales(const uint8_t* sb, uint8_t* sc, uint8_t* mn) {
  unpack_six_bit_128(sb + 64, sb + 192, sc);
  unpack_six_bit_128(sb + 128, sb + 224, mn);
}

}  // namespace
}  // namespace hexe::cpu
