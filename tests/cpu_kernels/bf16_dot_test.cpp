// The AVX512_BF16 decode tile (x86/avx512/bf16_dot_avx512.cpp) checked directly wherever the CPU
// can run it: dispatch picks it on AMD only, so on other CPUs the Matmul tests never reach it.
#include <cfloat>
#include <cmath>
#include <random>
#include <vector>

#include "cpu_kernels/isa.h"
#include "cpu_kernels/kernels.h"
#include "cpu_kernels/quant.h"
#include "tests/cpu_kernels/test_util.h"

namespace hexe::cpu {
namespace {

// At 1-3 activation rows (and 5: handed to the widening tile) and ragged k, against the widening
// tile: the same f32 numerics up to summation order.
TEST(Bf16DotTile, MatchesTheWideningTile) {
  if (int(hardware_isa()) < int(Isa::Avx512) || !cpu_features().avx512_bf16)
    GTEST_SKIP() << "no AVX512_BF16 on this CPU";
  std::mt19937 rng(77);
  for (int64_t k : {1, 31, 32, 33, 95, 128, 200, 2048})
    for (int64_t m : {1, 2, 3, 5}) {
      const int64_t n = 19;
      const auto w = test::random_weights(rng, DType::BF16, n, k);
      const auto x = test::random_floats(rng, size_t(m * k));
      const size_t wrb = row_bytes(DType::BF16, uint64_t(k));
      std::vector<float> got(size_t(m * n)), want(got);
      gemm_tile_bf16_dp_avx512(k, w.data(), wrb, n, x.data(), size_t(k) * 4, m, got.data(), n);
      gemm_tile_bf16_avx512(k, w.data(), wrb, n, x.data(), size_t(k) * 4, m, want.data(), n);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          std::vector<float> wf(static_cast<size_t>(k));
          dequantize_row(DType::BF16, w.data() + size_t(j) * wrb, wf.data(), k);
          double mag = 0;
          for (int64_t t = 0; t < k; ++t) mag += std::fabs(double(wf[size_t(t)]) * x[size_t(i * k + t)]);
          ASSERT_NEAR(got[size_t(i * n + j)], want[size_t(i * n + j)], 16.0 * FLT_EPSILON * mag + 1e-30)
              << "k=" << k << " m=" << m << " at (" << i << "," << j << ")";
        }
    }
}

}  // namespace
}  // namespace hexe::cpu
