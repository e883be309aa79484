// The loop the Rows16 tiles share (AVX-512 and AVX2; the AVX2 Q4_K tile walks the streams of
// rows16_streams.h instead): activation rows four at a time, weight rows one 16-row group at a
// time. `kernel(R, i0, g, yo, n)` gets R (1..4) as a std::integral_constant, so the format's
// kernel is instantiated per row count, and n (1..16), the group's rows to write (the last group
// may end inside the padding).
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "cpu_kernels/repack.h"

namespace hexe::cpu {

template <class Kernel>
inline void rows16_walk(int64_t mr, int64_t nr, const uint8_t* w8, size_t gstride, float* y, int64_t ys,
                        Kernel&& kernel) {
  for (int64_t i0 = 0; i0 < mr; i0 += 4) {
    const int R = int(std::min<int64_t>(4, mr - i0));
    for (int64_t j0 = 0; j0 < nr; j0 += kRows16) {
      const int n = int(std::min<int64_t>(kRows16, nr - j0));
      const uint8_t* g = w8 + size_t(j0 / kRows16) * gstride;
      float* yo = y + i0 * ys + j0;
      switch (R) {
        case 4: kernel(std::integral_constant<int, 4>{}, i0, g, yo, n); break;
        case 3: kernel(std::integral_constant<int, 3>{}, i0, g, yo, n); break;
        case 2: kernel(std::integral_constant<int, 2>{}, i0, g, yo, n); break;
        default: kernel(std::integral_constant<int, 1>{}, i0, g, yo, n); break;
      }
    }
  }
}

}  // namespace hexe::cpu
