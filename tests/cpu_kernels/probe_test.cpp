// The probe micro-kernels behind the benchmarks' limits: stream_read sees every byte (every
// pattern), and the
// peak-rate loops report operations in proportion to their iterations.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "cpu_kernels/isa.h"
#include "cpu_kernels/probe.h"

namespace hexe::cpu {
namespace {

// Every pattern, on sizes with and without a tail past the vector loops' 256-byte steps.
TEST(Probe, StreamReadSeesEveryByteInEveryPattern) {
  ASSERT_GE(stream_read_patterns(), 1);
  for (size_t bytes : {size_t(64 * 1000), size_t(256 * 40), size_t(64 * 3)}) {
    auto* buf = static_cast<uint8_t*>(std::aligned_alloc(64, bytes));
    std::memset(buf, 0, bytes);
    for (int pat = 0; pat < stream_read_patterns(); ++pat) {
      EXPECT_EQ(stream_read(buf, bytes, pat), 0u);
      for (size_t at : {size_t(0), size_t(63), bytes / 2 + 17, bytes - 1}) {
        buf[at] = 1;
        EXPECT_NE(stream_read(buf, bytes, pat), 0u) << "pattern " << pat << ", " << bytes << " bytes: byte " << at << " not read";
        buf[at] = 0;
      }
    }
    std::free(buf);
  }
}

// A pass is a positive rate over its bytes; the bandwidth figure is the best pass of every
// pattern (never below the rates a single pass gives it), and the fastest pattern is its argmax.
TEST(Probe, ReadPassesAndTheirBest) {
  const size_t bytes = size_t(1) << 20;
  auto* buf = static_cast<uint8_t*>(std::aligned_alloc(64, bytes));
  std::memset(buf, 1, bytes);
  ThreadPool pool(2);
  for (int pat = 0; pat < stream_read_patterns(); ++pat) EXPECT_GT(read_pass_gbs(buf, bytes, pool, pat), 0.0);
  std::vector<double> by;
  const double best = read_bandwidth_gbs(buf, bytes, pool, 2, &by);
  ASSERT_EQ(by.size(), size_t(stream_read_patterns()));
  EXPECT_DOUBLE_EQ(best, by[size_t(fastest_pattern(by))]);
  for (double v : by) EXPECT_LE(v, best);
  EXPECT_EQ(fastest_pattern({1.0, 3.0, 2.0}), 1);
  EXPECT_EQ(fastest_pattern({}), 0);
  std::free(buf);
}

TEST(Probe, PeakLoopsCountOperations) {
  if (!cpu_features().avx2) GTEST_SKIP() << "no AVX2: the probe loops report 0";
  EXPECT_GT(int8_dot_ops(10), 0.0);
  EXPECT_DOUBLE_EQ(int8_dot_ops(20), 2 * int8_dot_ops(10));
  EXPECT_DOUBLE_EQ(bf16_dot_flops(20), 2 * bf16_dot_flops(10));
  EXPECT_STRNE(int8_dot_name(), "none");
  if (cpu_features().fma) {
    EXPECT_GT(f32_fma_flops(10), 0.0);
    EXPECT_DOUBLE_EQ(f32_fma_flops(20), 2 * f32_fma_flops(10));
    EXPECT_STRNE(f32_fma_name(), "none");
  }
}

// 4 tdpbusd of 16x16 outputs x 64 products per round; 0 where AMX cannot run (no SIGILL).
TEST(Probe, AmxPeakLoopsCountOperationsOrReportAbsence) {
  if (!amx_usable()) {
    EXPECT_EQ(amx_int8_dot_ops(10), 0.0);
    GTEST_SKIP() << "no usable AMX-INT8: the AMX probe reports 0";
  }
  EXPECT_DOUBLE_EQ(amx_int8_dot_ops(10), 10.0 * 4 * 16 * 16 * 64 * 2);
  if (cpu_features().amx_bf16) EXPECT_DOUBLE_EQ(amx_bf16_dot_flops(10), 10.0 * 4 * 16 * 16 * 32 * 2);
  else EXPECT_EQ(amx_bf16_dot_flops(10), 0.0);
}

}  // namespace
}  // namespace hexe::cpu
