// The Q4_K/Q5_K Rows16 tiles' partner of the mins (AVX-512 and AVX2): per activation row, block
// and sub-block pair p, the sums of the activation's sub-blocks 2p and 2p+1 as two int16 in one
// int32, so one multiply-add of 16-bit pairs (vpdpwssd, vpmaddwd) meets each row's two mins.
#pragma once

#include <cstdint>

#include "cpu_kernels/blocks.h"

namespace hexe::cpu {

inline void q8k_sub_block_pairs(const BlockQ8_K* a, int64_t nb, int32_t* out) {
  for (int64_t b = 0; b < nb; ++b)
    for (int p = 0; p < 4; ++p) {
      const int16_t* bs = a[b].bsums + 4 * p;
      const int lo = bs[0] + bs[1], hi = bs[2] + bs[3];
      out[b * 4 + p] = int32_t(uint32_t(uint16_t(lo)) | uint32_t(uint16_t(hi)) << 16);
    }
}

}  // namespace hexe::cpu
