// Horizontal sum of the 8 i32 lanes of a 256-bit vector. Needs AVX2; included by x86 tile and
// quantiser files only, with internal linkage (as qgemm256.h) so files compiled with different
// ISA flags do not share one definition.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace hexe::cpu {
namespace {  // NOLINT: deliberate, see the file comment

inline int32_t hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

}  // namespace
}  // namespace hexe::cpu
