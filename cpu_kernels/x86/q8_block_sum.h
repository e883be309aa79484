// What the tiles with Q8_0 activations need of them: each block's sum (for the tiles that meet a
// weight format's level offset or min through it: the Rows16 nibble tiles of AVX-512 and AVX2, the
// AMX nibble tiles), the per-block facts the Rows16 tiles take (ActQ8), and their walk over 16-row
// groups (q8_0_rows16_walk). Needs AVX2; included by x86 tile files only, with internal linkage
// (as qgemm256.h) so files compiled with different ISA flags do not share one definition.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <vector>

#include "cpu_kernels/blocks.h"
#include "cpu_kernels/x86/rows16_walk.h"

namespace hexe::cpu {
namespace {  // NOLINT: deliberate, see the file comment

// One psadbw of a + 128 against zero, less 32 x 128.
inline int32_t q8_0_block_sum(const int8_t* qs) {
  const __m256i v = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs)), _mm256_set1_epi8(char(0x80)));
  const __m256i s = _mm256_sad_epu8(v, _mm256_setzero_si256());  // 4 sums of (a + 128)
  const __m128i t = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  return int32_t(_mm_cvtsi128_si64(t) + _mm_extract_epi64(t, 1)) - 32 * 128;
}

// Per activation row and block, what the Rows16 tiles of Q8_0 and the nibble formats take: corr
// = -offset * sum(a) (Q8_0: 128, the correction that turns the u8 products (q + 128) . a into
// q . a; the nibble formats: their levels' offset), the block's scale and sum(a) as floats.
struct ActQ8 {
  int32_t corr;
  float d;
  float sum;
};

inline void act_info(const BlockQ8_0* a, int64_t nb, int offset, ActQ8* out) {
  for (int64_t b = 0; b < nb; ++b) {
    const int32_t sum = q8_0_block_sum(a[b].qs);
    out[b] = {-offset * sum, _cvtsh_ss(a[b].d), float(sum)};
  }
}

// The walk of the Rows16 tiles with Q8_0 activations: every activation row's ActQ8 made once per
// call (offset: the weight levels'), then kernel(R, a, ai, g, yo, n) per 16-row group and run of
// R activation rows (rows16_walk), with a[r] the Q8_0 row and ai[r] its ActQ8 per block.
template <class Kernel>
inline void q8_0_rows16_walk(int64_t k, const void* w, size_t gstride, int64_t nr, const void* act, size_t arb,
                             int64_t mr, float* y, int64_t ys, int offset, Kernel&& kernel) {
  const int64_t nb = k / kQK;
  thread_local std::vector<ActQ8> info_buf;
  std::vector<ActQ8>& info = info_buf;
  if (info.size() < size_t(mr * nb)) info.resize(size_t(mr * nb));
  const auto row = [&](int64_t i) {
    return reinterpret_cast<const BlockQ8_0*>(static_cast<const uint8_t*>(act) + size_t(i) * arb);
  };
  for (int64_t i = 0; i < mr; ++i) act_info(row(i), nb, offset, info.data() + i * nb);
  rows16_walk(mr, nr, static_cast<const uint8_t*>(w), gstride, y, ys,
              [&](auto rows, int64_t i0, const uint8_t* g, float* yo, int n) {
                constexpr int R = decltype(rows)::value;
                const BlockQ8_0* a[R];
                const ActQ8* ai[R];
                for (int r = 0; r < R; ++r) a[r] = row(i0 + r), ai[r] = info.data() + (i0 + r) * nb;
                kernel(rows, a, ai, g, yo, n);
              });
}

}  // namespace
}  // namespace hexe::cpu
