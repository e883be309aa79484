// The Q4_K/Q5_K Rows16 tiles' partner of the mins (AVX-512 and AVX2): per activation row, block
// and sub-block pair p, the sums of the activation's sub-blocks 2p and 2p+1 as two int16 in one
// int32, so one multiply-add of 16-bit pairs (vpdpwssd, vpmaddwd) meets each row's two mins.
#pragma once

#include <cstdint>
#include <vector>

#include "cpu_kernels/blocks.h"
#include "cpu_kernels/x86/rows16_walk.h"

namespace hexe::cpu {

inline void q8k_sub_block_pairs(const BlockQ8_K* a, int64_t nb, int32_t* out) {
  for (int64_t b = 0; b < nb; ++b)
    for (int p = 0; p < 4; ++p) {
      const int16_t* bs = a[b].bsums + 4 * p;
      const int lo = bs[0] + bs[1], hi = bs[2] + bs[3];
      out[b * 4 + p] = int32_t(uint32_t(uint16_t(lo)) | uint32_t(uint16_t(hi)) << 16);
    }
}

// The activation rows' pairs (q8k_sub_block_pairs of each of mr rows, arb bytes apart), made once
// per tile call into per-thread scratch: row i's at the result + i * nb * 4.
inline const int32_t* q8k_rows_pairs(const void* act, size_t arb, int64_t mr, int64_t nb) {
  thread_local std::vector<int32_t> pairs;
  if (pairs.size() < size_t(mr * nb * 4)) pairs.resize(size_t(mr * nb * 4));
  for (int64_t i = 0; i < mr; ++i)
    q8k_sub_block_pairs(reinterpret_cast<const BlockQ8_K*>(static_cast<const uint8_t*>(act) + size_t(i) * arb), nb,
                        pairs.data() + i * nb * 4);
  return pairs.data();
}

// R activation rows from i0 as the Q4_K/Q5_K Rows16 tiles take them: a[r] the Q8_K row, ap[r]
// its pairs.
template <int R>
struct Q8KRows {
  const BlockQ8_K* a[R];
  const int32_t* ap[R];
  Q8KRows(const void* act, size_t arb, const int32_t* pairs, int64_t nb, int64_t i0) {
    for (int r = 0; r < R; ++r) {
      a[r] = reinterpret_cast<const BlockQ8_K*>(static_cast<const uint8_t*>(act) + size_t(i0 + r) * arb);
      ap[r] = pairs + (i0 + r) * nb * 4;
    }
  }
};

// The Q4_K/Q5_K Rows16 tiles' walk: the activation rows' pairs made once per call, then
// kernel(R, a, ap, g, yo, n) per group and run of R activation rows (rows16_walk).
template <class Kernel>
inline void q8k_rows16_walk(int64_t k, const void* w, size_t gstride, int64_t nr, const void* act, size_t arb,
                            int64_t mr, float* y, int64_t ys, Kernel&& kernel) {
  const int64_t nb = k / kQKK;
  const int32_t* pairs = q8k_rows_pairs(act, arb, mr, nb);
  rows16_walk(mr, nr, static_cast<const uint8_t*>(w), gstride, y, ys,
              [&](auto rows, int64_t i0, const uint8_t* g, float* yo, int n) {
                const Q8KRows<decltype(rows)::value> q(act, arb, pairs, nb, i0);
                kernel(rows, q.a, q.ap, g, yo, n);
              });
}

}  // namespace hexe::cpu
