// What the AVX2 Rows16 tiles share: the 4-byte activation broadcast, the store of one activation
// row's 16 outputs (two 8-lane halves, the last group cut at n rows), and the split of a walk's
// 1..4 activation rows into passes of at most two (their sums, broadcasts and the line in flight
// fill AVX2's 16 registers).
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cpu_kernels/repack.h"

namespace hexe::cpu::rows16_avx2 {

inline __m256i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// y[0..n) = the group's rows 0..7 (lo) and 8..15 (hi); n < 16 where the group ends inside the
// padding rows.
inline void store_row(__m256 lo, __m256 hi, float* y, int n) {
  if (n == kRows16) {
    _mm256_storeu_ps(y, lo);
    _mm256_storeu_ps(y + 8, hi);
    return;
  }
  alignas(32) float t[16];
  _mm256_store_ps(t, lo);
  _mm256_store_ps(t + 8, hi);
  std::memcpy(y, t, sizeof(float) * size_t(n));
}

// pass(std::integral_constant<int, 1 or 2>, r0) for activation rows r0, r0 + 1 of R (1..4).
template <int R, class Pass>
inline void in_pairs(Pass&& pass) {
  if constexpr (R == 1) pass(std::integral_constant<int, 1>{}, 0);
  else pass(std::integral_constant<int, 2>{}, 0);
  if constexpr (R == 3) pass(std::integral_constant<int, 1>{}, 2);
  if constexpr (R == 4) pass(std::integral_constant<int, 2>{}, 2);
}

}  // namespace hexe::cpu::rows16_avx2
