// Horizontal sum of the 8 float lanes of a 256-bit vector (lanes 0+4, 1+5, 2+6, 3+7, then pairs:
// the order the tiles' results were measured and tested with). Internal linkage, as
// hsum_epi32.h: included by files compiled with different ISA flags.
#pragma once

#include <immintrin.h>

namespace hexe::cpu {
namespace {  // NOLINT: deliberate, see the file comment

inline float hsum_ps(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace
}  // namespace hexe::cpu
