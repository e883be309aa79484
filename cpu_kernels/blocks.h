// GGML block layouts (byte-exact) for the computable formats and the activation formats Q8_0/Q8_K.
#pragma once

#include <cstdint>

#include "cpu_kernels/format.h"

namespace hexe::cpu {

inline constexpr int kQK = 32;    // elements of a legacy block
inline constexpr int kQKK = 256;  // elements of a K-quant super-block
inline constexpr int kKScaleBytes = 12;

// w = d * (q - 8), q in [0, 15]; element j in low nibble of qs[j], j + 16 in the high nibble.
struct BlockQ4_0 { uint16_t d; uint8_t qs[kQK / 2]; };
// w = d * q + m
struct BlockQ4_1 { uint16_t d, m; uint8_t qs[kQK / 2]; };
// w = d * (q - 16), q = nibble | bit j of qh << 4
struct BlockQ5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[kQK / 2]; };
struct BlockQ5_1 { uint16_t d, m; uint8_t qh[4]; uint8_t qs[kQK / 2]; };
struct BlockQ8_0 { uint16_t d; int8_t qs[kQK]; };
// w = d * sc_j * q - dmin * m_j over 8 sub-blocks of 32; 6-bit sc/m packed in scales[12].
struct BlockQ4_K { uint16_t d, dmin; uint8_t scales[kKScaleBytes]; uint8_t qs[kQKK / 2]; };
struct BlockQ5_K { uint16_t d, dmin; uint8_t scales[kKScaleBytes]; uint8_t qh[kQKK / 8]; uint8_t qs[kQKK / 2]; };
// w = d * sc_j * (q - 32) over 16 sub-blocks of 16.
struct BlockQ6_K { uint8_t ql[kQKK / 2]; uint8_t qh[kQKK / 4]; int8_t scales[kQKK / 16]; uint16_t d; };
// Activation format of K-quant dot products: bsums[j] = sum of qs[16j .. 16j+16).
struct BlockQ8_K { float d; int8_t qs[kQKK]; int16_t bsums[kQKK / 16]; };

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
              sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ4_K) == 144 && sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210 &&
              sizeof(BlockQ8_K) == 292);

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K super-block.
inline void k4_scale_min(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = uint8_t((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = uint8_t((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

}  // namespace hexe::cpu
