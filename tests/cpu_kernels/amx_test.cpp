// AMX-INT8 Q8_0 tiles (GGUF and Rows16 layouts) against the scalar reference (vec_dot_ref on the
// same quantised activations) on ragged shapes: m not a multiple of 16 (the overlapping last row
// tile), n not a multiple of 16 (padding columns masked), odd and even block counts, Rows16
// column slices (the MoE down projection), and m < 16 (the AVX-512 hand-over). Skips with a
// message where the CPU (or the kernel's permission) gives no AMX.
#include <cfloat>
#include <cmath>
#include <sstream>

#include "cpu_kernels/dispatch.h"
#include "cpu_kernels/kernels.h"
#include "cpu_kernels/quant_act.h"
#include "cpu_kernels/repack.h"
#include "tests/cpu_kernels/test_util.h"

namespace hexe::cpu {
namespace {

#define HEXE_SKIP_WITHOUT_AMX()                                                                       \
  do {                                                                                                \
    if (hardware_isa() != Isa::Amx)                                                                   \
      GTEST_SKIP() << "no AMX on this CPU (amx_tile " << cpu_features().amx_tile << ", amx_int8 "    \
                   << cpu_features().amx_int8 << ", permission/usable " << amx_usable() << ")";       \
  } while (0)

// Checks y (m x n, stride ys) against vec_dot_ref of the GGUF rows (columns [c0, c0+len)) and the
// activation rows, within the matmul tests' tolerance; and that nothing past n was written.
void check(const std::string& name, const std::vector<uint8_t>& w, size_t wrb, int64_t c0, int64_t len, int64_t n,
           const std::vector<uint8_t>& xq, size_t arb, int64_t m, const std::vector<float>& y, int64_t ys) {
  std::vector<float> wf(static_cast<size_t>(len)), xf(static_cast<size_t>(len));
  for (int64_t j = 0; j < n; ++j) {
    const uint8_t* wrow = w.data() + size_t(j) * wrb + row_bytes(DType::Q8_0, uint64_t(c0));
    dequantize_row(DType::Q8_0, wrow, wf.data(), len);
    for (int64_t i = 0; i < m; ++i) {
      const float want = vec_dot_ref(DType::Q8_0, len, wrow, xq.data() + i * arb);
      const float got = y[size_t(i * ys + j)];
      dequantize_row(DType::Q8_0, xq.data() + i * arb, xf.data(), len);
      double mag = 0;
      for (int64_t t = 0; t < len; ++t) mag += std::fabs(double(xf[size_t(t)]) * wf[size_t(t)]);
      ASSERT_NEAR(got, want, 64.0 * FLT_EPSILON * mag + 1e-30) << name << " at (" << i << "," << j << ")";
    }
  }
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = n; j < ys; ++j) ASSERT_EQ(y[size_t(i * ys + j)], -7.f) << name << " wrote past n at row " << i;
}

std::vector<uint8_t> quantized_acts(std::mt19937& rng, int64_t m, int64_t k, size_t arb) {
  const auto x = test::random_floats(rng, size_t(m * k));
  std::vector<uint8_t> xq(arb * size_t(m));
  for (int64_t i = 0; i < m; ++i) quantize_activation_row(DType::Q8_0, x.data() + i * k, xq.data() + i * arb, k);
  return xq;
}

TEST(AmxQ8_0, DispatchPicksAmxOnlyAtTheAmxTier) {
  HEXE_SKIP_WITHOUT_AMX();
  for (const WeightLayout l : {WeightLayout::Gguf, WeightLayout::Rows16}) {
    const GemmKernel* g = select_gemm(DType::Q8_0, 2048, Isa::Amx, l);
    ASSERT_TRUE(g);
    EXPECT_EQ(g->tier, Isa::Amx);
    EXPECT_NE(std::string(g->name).find("amx_int8/q8_0"), std::string::npos) << g->name;
    const GemmKernel* v = select_gemm(DType::Q8_0, 2048, Isa::Avx512, l);
    ASSERT_TRUE(v);
    EXPECT_EQ(std::string(v->name).find("amx"), std::string::npos) << v->name;
  }
  // Formats without an AMX tile keep their AVX-512 one at the AMX tier.
  const KernelChoice c = matmul_choice(DType::Q4_K, 2048, Isa::Amx);
  EXPECT_EQ(c.tier, Isa::Avx512) << c.name;
  EXPECT_NE(c.reasons.find("amx: no AMX kernel"), std::string::npos) << c.reasons;
}

TEST(AmxQ8_0, GgufTileMatchesScalarReference) {
  HEXE_SKIP_WITHOUT_AMX();
  std::mt19937 rng(5);
  for (int rep = 0; rep < 40; ++rep) {
    const int64_t m = rep < 8 ? std::vector<int64_t>{16, 17, 31, 32, 33, 47, 64, 15}[size_t(rep)]
                              : std::uniform_int_distribution<int64_t>(1, 64)(rng);
    const int64_t n = std::uniform_int_distribution<int64_t>(1, 70)(rng);
    const int64_t k = 32 * std::uniform_int_distribution<int64_t>(1, rep % 5 == 0 ? 80 : 9)(rng);
    const size_t wrb = row_bytes(DType::Q8_0, uint64_t(k)), arb = wrb;
    const auto w = test::random_weights(rng, DType::Q8_0, n, k);
    const auto xq = quantized_acts(rng, m, k, arb);
    const int64_t ys = n + 3;
    std::vector<float> y(size_t(m * ys), -7.f);
    gemm_tile_q8_0_amx(k, w.data(), wrb, n, xq.data(), arb, m, y.data(), ys);
    std::ostringstream name;
    name << "amx/q8_0/gguf m=" << m << " n=" << n << " k=" << k;
    check(name.str(), w, wrb, 0, k, n, xq, arb, m, y, ys);
  }
}

TEST(AmxQ8_0, Rows16TileMatchesScalarReferenceWithColumnSlices) {
  HEXE_SKIP_WITHOUT_AMX();
  std::mt19937 rng(6);
  for (int rep = 0; rep < 40; ++rep) {
    const int64_t m = rep < 8 ? std::vector<int64_t>{16, 17, 31, 32, 33, 47, 64, 15}[size_t(rep)]
                              : std::uniform_int_distribution<int64_t>(1, 64)(rng);
    const int64_t n = std::uniform_int_distribution<int64_t>(1, 70)(rng);
    const int64_t nblk = std::uniform_int_distribution<int64_t>(1, rep % 5 == 0 ? 40 : 8)(rng);  // of 64 columns
    const int64_t k = 64 * nblk;
    const bool slice = rep % 2 == 1;
    const int64_t b0 = slice ? std::uniform_int_distribution<int64_t>(0, nblk - 1)(rng) : 0;
    const int64_t b1 = slice ? std::uniform_int_distribution<int64_t>(b0 + 1, nblk)(rng) : nblk;
    const int64_t c0 = 64 * b0, len = 64 * (b1 - b0);
    const size_t wrb = row_bytes(DType::Q8_0, uint64_t(k)), arb = row_bytes(DType::Q8_0, uint64_t(len));
    const auto w = test::random_weights(rng, DType::Q8_0, n, k);
    const PackedWeights packed = repack_for_decode(DType::Q8_0, n, k, w.data(), wrb);
    const auto xq = quantized_acts(rng, m, len, arb);
    const int64_t ys = n + 2;
    std::vector<float> y(size_t(m * ys), -7.f);
    gemm_tile_q8_0_rows16_amx(len, packed.data() + rows16_col_offset(DType::Q8_0, c0),
                              rows16_group_bytes(DType::Q8_0, k), n, xq.data(), arb, m, y.data(), ys);
    std::ostringstream name;
    name << "amx/q8_0/rows16 m=" << m << " n=" << n << " k=" << k << " cols=[" << c0 << "," << c0 + len << ")";
    check(name.str(), w, wrb, c0, len, n, xq, arb, m, y, ys);
  }
}

// Odd block counts on Rows16 (k = 32 * odd: the last pair is half padding).
TEST(AmxQ8_0, Rows16OddBlockCounts) {
  HEXE_SKIP_WITHOUT_AMX();
  std::mt19937 rng(7);
  for (int64_t k : {32, 96, 160, 2016}) {
    for (int64_t m : {16, 29}) {
      const int64_t n = 21;
      const size_t wrb = row_bytes(DType::Q8_0, uint64_t(k)), arb = wrb;
      const auto w = test::random_weights(rng, DType::Q8_0, n, k);
      const PackedWeights packed = repack_for_decode(DType::Q8_0, n, k, w.data(), wrb);
      const auto xq = quantized_acts(rng, m, k, arb);
      const int64_t ys = n + 1;
      std::vector<float> y(size_t(m * ys), -7.f);
      gemm_tile_q8_0_rows16_amx(k, packed.data(), rows16_group_bytes(DType::Q8_0, k), n, xq.data(), arb, m,
                                y.data(), ys);
      check("amx/q8_0/rows16 odd k=" + std::to_string(k) + " m=" + std::to_string(m), w, wrb, 0, k, n, xq, arb, m,
            y, ys);
    }
  }
}

}  // namespace
}  // namespace hexe::cpu
