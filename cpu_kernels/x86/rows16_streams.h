// The Rows16 walk that reads a matrix as several concurrent weight streams: the row groups are cut
// into kRows16Streams contiguous runs, and each call of the kernel gets the next group of every
// run, to be read interleaved (a few hundred bytes of one, then of the next). Why: one core of the
// Zen 3 VM streams a single run of weights from DRAM at about 12 GB/s with a tile's compute in
// between, and at 14-18 GB/s with four runs read in turns of 512 bytes (a plain read of one run:
// about 15): its hardware prefetchers run a fixed distance ahead of each stream, so more streams
// keep more lines in flight. Turns of a whole 2304-byte Q4_K super-block gained nothing there.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "cpu_kernels/repack.h"

namespace hexe::cpu {

inline constexpr int kRows16Streams = 4;

// The groups one kernel call reads: group s at g[s] (a 16-row group of the Rows16 layout), its
// outputs at y[s] (activation row i0's; the next row ys floats on), n[s] (1..16) rows to write.
struct Rows16Streams {
  const uint8_t* g[kRows16Streams];
  float* y[kRows16Streams];
  int n[kRows16Streams];
  int count;
};

// kernel(R, i0, streams) with R (1..4 activation rows from i0) as a std::integral_constant.
template <class Kernel>
inline void rows16_walk_streams(int64_t mr, int64_t nr, const uint8_t* w8, size_t gstride, float* y, int64_t ys,
                                Kernel&& kernel) {
  const int64_t groups = (nr + kRows16 - 1) / kRows16;
  const int64_t run = (groups + kRows16Streams - 1) / kRows16Streams;  // groups per stream
  for (int64_t i0 = 0; i0 < mr; i0 += 4) {
    const int R = int(std::min<int64_t>(4, mr - i0));
    for (int64_t i = 0; i < run; ++i) {
      Rows16Streams st;
      st.count = 0;
      for (int s = 0; s < kRows16Streams; ++s) {
        const int64_t grp = s * run + i;
        if (grp >= groups) break;
        st.g[st.count] = w8 + size_t(grp) * gstride;
        st.y[st.count] = y + i0 * ys + grp * kRows16;
        st.n[st.count] = int(std::min<int64_t>(kRows16, nr - grp * kRows16));
        ++st.count;
      }
      switch (R) {
        case 4: kernel(std::integral_constant<int, 4>{}, i0, st); break;
        case 3: kernel(std::integral_constant<int, 3>{}, i0, st); break;
        case 2: kernel(std::integral_constant<int, 2>{}, i0, st); break;
        default: kernel(std::integral_constant<int, 1>{}, i0, st); break;
      }
    }
  }
}

}  // namespace hexe::cpu
