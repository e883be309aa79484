// rows16_walk_streams: every (run of activation rows, 16-row group) pair reaches the kernel exactly
// once, with its own weights, outputs and row count, for every group count around the stream
// count (fewer groups than streams, a ragged last run, a ragged last group).
#include <gtest/gtest.h>

#include <map>
#include <tuple>
#include <vector>

#include "cpu_kernels/x86/rows16_streams.h"

namespace hexe::cpu {
namespace {

TEST(Rows16Streams, WalkVisitsEachGroupOnceWithItsOutputsAndRowCount) {
  const size_t gstride = 1000;  // any stride: the walk only offsets pointers
  for (int64_t mr : {1, 3, 4, 5, 9})
    for (int64_t nr = 1; nr <= 16 * 13 + 5; nr += 3) {
      const int64_t ys = nr + 7, groups = (nr + 15) / 16;
      const std::vector<uint8_t> wbuf(size_t(groups) * gstride);
      std::vector<float> ybuf(size_t(mr * ys));
      const uint8_t* w = wbuf.data();
      float* y = ybuf.data();
      std::map<std::pair<int64_t, int64_t>, int> seen;  // (i0, group) -> visits
      rows16_walk_streams(mr, nr, w, gstride, y, ys, [&](auto rows, int64_t i0, const Rows16Streams& st) {
        constexpr int R = decltype(rows)::value;
        ASSERT_EQ(R, std::min<int64_t>(4, mr - i0));
        ASSERT_GE(st.count, 1);
        ASSERT_LE(st.count, kRows16Streams);
        for (int s = 0; s < st.count; ++s) {
          const int64_t off = st.g[s] - w;
          ASSERT_EQ(off % int64_t(gstride), 0);
          const int64_t grp = off / int64_t(gstride);
          ASSERT_LT(grp, groups);
          EXPECT_EQ(st.y[s], y + i0 * ys + grp * 16) << "nr " << nr << " group " << grp;
          EXPECT_EQ(st.n[s], std::min<int64_t>(16, nr - grp * 16)) << "nr " << nr << " group " << grp;
          // The streams of one call are distinct runs, in order.
          if (s > 0) {
            EXPECT_GT(st.g[s], st.g[s - 1]);
          }
          ++seen[{i0, grp}];
        }
      });
      for (int64_t i0 = 0; i0 < mr; i0 += 4)
        for (int64_t grp = 0; grp < groups; ++grp)
          EXPECT_EQ((seen[{i0, grp}]), 1) << "mr " << mr << " nr " << nr << " i0 " << i0 << " group " << grp;
      EXPECT_EQ(seen.size(), size_t((mr + 3) / 4 * groups));
    }
}

}  // namespace
}  // namespace hexe::cpu
