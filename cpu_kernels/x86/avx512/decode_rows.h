// The shape shared by the AVX-512 decode tiles that read GGUF blocks one weight row at a time
// (q8_0, q6k, q4k_decode_avx512.cpp): below 4 activation rows, weight rows outer, so the weights
// are one stream and each row is read once; from 4 rows the shared 256-bit tile, which unpacks
// each weight block once for 4 activation rows. (Four rows read side by side are four interleaved
// streams, which the Zen 4 VM's prefetchers follow at a third to a half of the speed of one.)
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "cpu_kernels/x86/qgemm256.h"

namespace hexe::cpu {

// The VNNI policy of qgemm256.h: vpdpbusd sums 4 u8 x s8 products into each i32 lane without
// intermediate saturation; scales multiply those sums as i32.
struct DotVnni256 {
  using Scale = __m256i;
  // None, as before the AVX2 tiles took one: the AVX-512 tier decodes mostly through the Rows16 and
  // row_dot tiles, which choose their own (none on AMD, where the Zen 4 VM streamed slower with it).
  static constexpr int kDecodePrefetchBytes = 0;
  static __m256i dot(__m256i u, __m256i s) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s); }
  static void scales8(const uint8_t* sc, Scale* out) {
    for (int j = 0; j < 8; ++j) out[j] = _mm256_set1_epi32(sc[j]);
  }
  static void scale_pairs16(const int8_t* sc, Scale* out) {
    for (int j = 0; j < 8; ++j) out[j] = _mm256_set_m128i(_mm_set1_epi32(sc[2 * j + 1]), _mm_set1_epi32(sc[2 * j]));
  }
  static __m256i dot_scaled(__m256i u, __m256i s, Scale sc) { return _mm256_mullo_epi32(dot(u, s), sc); }
};

// y[i * ys + j] = row_dot(weight row j, activation row i) for mr < 4; the 256-bit tile otherwise.
template <template <class, class, int> class Rows, class Fmt, int64_t kBlock, class RowDot>
void decode_rows(int64_t k, const void* w, size_t wrb, int64_t nr, const void* act, size_t arb, int64_t mr, float* y,
                 int64_t ys, RowDot row_dot) {
  if (mr >= 4) {
    tile_loop<Rows, Fmt, DotVnni256, kBlock>(k, w, wrb, nr, act, arb, mr, y, ys);
    return;
  }
  const auto* w8 = static_cast<const uint8_t*>(w);
  const auto* a8 = static_cast<const uint8_t*>(act);
  for (int64_t j = 0; j < nr; ++j)
    for (int64_t i = 0; i < mr; ++i) y[i * ys + j] = row_dot(w8 + size_t(j) * wrb, a8 + size_t(i) * arb, i);
}

}  // namespace hexe::cpu
