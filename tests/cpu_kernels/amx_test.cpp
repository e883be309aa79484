// AMX-INT8 Q8_0 tiles (GGUF and Rows16 layouts) against the scalar reference (vec_dot_ref on the
// same quantised activations) on ragged shapes: m not a multiple of 16 (the overlapping last row
// tile), n not a multiple of 16 (padding columns masked), odd and even block counts, Rows16
// column slices (the MoE down projection), and m < 16 (the AVX-512 hand-over). Skips with a
// message where the CPU (or the kernel's permission) gives no AMX.
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <sstream>

#include "cpu_kernels/blocks.h"

#include "cpu_kernels/dispatch.h"
#include "cpu_kernels/kernels.h"
#include "cpu_kernels/matmul.h"
#include "cpu_kernels/quant.h"
#include "cpu_kernels/quant_act.h"
#include "cpu_kernels/repack.h"
#include "cpu_kernels/thread_pool.h"
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
void check(DType type, const std::string& name, const std::vector<uint8_t>& w, size_t wrb, int64_t c0, int64_t len,
           int64_t n, const std::vector<uint8_t>& xq, size_t arb, int64_t m, const std::vector<float>& y, int64_t ys) {
  for (int64_t j = 0; j < n; ++j) {
    const uint8_t* wrow = w.data() + size_t(j) * wrb + row_bytes(type, uint64_t(c0));
    for (int64_t i = 0; i < m; ++i) {
      const uint8_t* xrow = xq.data() + i * arb;
      ASSERT_NEAR(y[size_t(i * ys + j)], vec_dot_ref(type, len, wrow, xrow), test::ref_dot_tolerance(type, wrow, xrow, len))
          << name << " at (" << i << "," << j << ")";
    }
  }
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = n; j < ys; ++j) ASSERT_EQ(y[size_t(i * ys + j)], -7.f) << name << " wrote past n at row " << i;
}

std::vector<uint8_t> quantized_acts(std::mt19937& rng, int64_t m, int64_t k, size_t arb, DType act = DType::Q8_0) {
  const auto x = test::random_floats(rng, size_t(m * k));
  std::vector<uint8_t> xq(arb * size_t(m));
  for (int64_t i = 0; i < m; ++i) quantize_activation_row(act, x.data() + i * k, xq.data() + i * arb, k);
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
    check(DType::Q8_0, name.str(), w, wrb, 0, k, n, xq, arb, m, y, ys);
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
    check(DType::Q8_0, name.str(), w, wrb, c0, len, n, xq, arb, m, y, ys);
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
      check(DType::Q8_0, "amx/q8_0/rows16 odd k=" + std::to_string(k) + " m=" + std::to_string(m), w, wrb, 0, k, n, xq, arb, m,
            y, ys);
    }
  }
}

using RowsTileFn = void (*)(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);

// Q4_0, Q4_1, Q5_0, Q5_1 (Rows16 only): their groups widened to Q8_0 levels, then the Q8_0 tiles
// (the mins of Q4_1/Q5_1 in the epilogue). Column
// slices, odd block counts (the last pair half padding), ragged m and n; the AMX tier picks them
// for Rows16 and keeps the AVX-512 GGUF tiles.
class AmxNibble : public ::testing::TestWithParam<DType> {};

RowsTileFn nibble_tile(DType t) {
  switch (t) {
    case DType::Q4_0: return gemm_tile_q4_0_rows16_amx;
    case DType::Q4_1: return gemm_tile_q4_1_rows16_amx;
    case DType::Q5_0: return gemm_tile_q5_0_rows16_amx;
    default: return gemm_tile_q5_1_rows16_amx;
  }
}

TEST_P(AmxNibble, DispatchPicksAmxForRows16Only) {
  HEXE_SKIP_WITHOUT_AMX();
  const DType t = GetParam();
  const GemmKernel* r = select_gemm(t, 2048, Isa::Amx, WeightLayout::Rows16);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->tier, Isa::Amx) << r->name;
  const GemmKernel* g = select_gemm(t, 2048, Isa::Amx, WeightLayout::Gguf);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->tier, Isa::Avx512) << g->name;
}

TEST_P(AmxNibble, Rows16TileMatchesScalarReference) {
  HEXE_SKIP_WITHOUT_AMX();
  const DType t = GetParam();
  std::mt19937 rng(8 + int(t));
  for (int rep = 0; rep < 40; ++rep) {
    const int64_t m = rep < 8 ? std::vector<int64_t>{16, 17, 31, 32, 33, 47, 64, 15}[size_t(rep)]
                              : std::uniform_int_distribution<int64_t>(1, 64)(rng);
    const int64_t n = std::uniform_int_distribution<int64_t>(1, 70)(rng);
    // Whole pairs with column slices (odd reps), or any block count (even reps: odd k / 32 too).
    const bool slice = rep % 2 == 1;
    const int64_t k = slice ? 64 * std::uniform_int_distribution<int64_t>(1, rep % 5 == 0 ? 40 : 8)(rng)
                            : 32 * std::uniform_int_distribution<int64_t>(1, rep % 5 == 0 ? 63 : 9)(rng);
    const int64_t nblk = k / 64;
    const int64_t b0 = slice ? std::uniform_int_distribution<int64_t>(0, nblk - 1)(rng) : 0;
    const int64_t b1 = slice ? std::uniform_int_distribution<int64_t>(b0 + 1, nblk)(rng) : 0;
    const int64_t c0 = slice ? 64 * b0 : 0, len = slice ? 64 * (b1 - b0) : k;
    const size_t wrb = row_bytes(t, uint64_t(k)), arb = row_bytes(DType::Q8_0, uint64_t(len));
    const auto w = test::random_weights(rng, t, n, k);
    const PackedWeights packed = repack_for_decode(t, n, k, w.data(), wrb);
    const auto xq = quantized_acts(rng, m, len, arb);
    const int64_t ys = n + 2;
    std::vector<float> y(size_t(m * ys), -7.f);
    nibble_tile(t)(len, packed.data() + rows16_col_offset(t, c0), rows16_group_bytes(t, k), n, xq.data(), arb, m,
                   y.data(), ys);
    std::ostringstream name;
    name << "amx/" << dtype_name(t) << "/rows16 m=" << m << " n=" << n << " k=" << k << " cols=[" << c0 << ","
         << c0 + len << ")";
    check(t, name.str(), w, wrb, c0, len, n, xq, arb, m, y, ys);
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, AmxNibble, ::testing::Values(DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1),
                         [](const auto& i) { return std::string(dtype_name(i.param)); });

// The K-quant AMX tiles (Q4_K, Q5_K, Q6_K; kquant_amx.h): Rows16 only.
class AmxKQuant : public ::testing::TestWithParam<DType> {};

RowsTileFn kquant_tile(DType t) {
  return t == DType::Q4_K ? gemm_tile_q4_K_rows16_amx : t == DType::Q5_K ? gemm_tile_q5_K_rows16_amx : gemm_tile_q6_K_rows16_amx;
}

TEST_P(AmxKQuant, DispatchPicksAmxForRows16Only) {
  HEXE_SKIP_WITHOUT_AMX();
  const DType t = GetParam();
  const GemmKernel* g = select_gemm(t, 2048, Isa::Amx, WeightLayout::Rows16);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->tier, Isa::Amx);
  EXPECT_EQ(std::string(g->name), "amx_int8/" + std::string(dtype_name(t)) + "/rows16");
  EXPECT_EQ(g->rows_per_call, 256);  // the weight preparation is shared by all rows of a call
  const GemmKernel* v = select_gemm(t, 2048, Isa::Avx512, WeightLayout::Rows16);
  ASSERT_TRUE(v);
  EXPECT_EQ(std::string(v->name).find("amx"), std::string::npos) << v->name;
  // The GGUF layout keeps its AVX-512 tile at the AMX tier (the runtime repacks these to Rows16).
  const KernelChoice c = matmul_choice(t, 2048, Isa::Amx, WeightLayout::Gguf);
  EXPECT_EQ(c.tier, Isa::Avx512) << c.name;
}

// The Rows16 tile on ragged m (overlapping last row tile; odd row-tile counts, one tile left
// over after the pairs; m < 16: the AVX-512 hand-over), ragged n (masked padding rows), 1..12
// super-blocks, and column slices [c0, c0 + len) of a wider Rows16 copy (rows16_col_offset, the
// group stride of the whole k) as the MoE down projection reads it; quantised and random-bit
// weights (every scale, min and level value).
TEST_P(AmxKQuant, Rows16TileMatchesScalarReferenceWithColumnSlices) {
  HEXE_SKIP_WITHOUT_AMX();
  const DType t = GetParam();
  auto random_bits = [&](std::mt19937& rng, int64_t n, int64_t k) {  // finite f16 scale fields
    if (t == DType::Q4_K)
      return test::random_block_bits(rng, n, k, sizeof(BlockQ4_K), kQKK, {offsetof(BlockQ4_K, d), offsetof(BlockQ4_K, dmin)});
    if (t == DType::Q5_K)
      return test::random_block_bits(rng, n, k, sizeof(BlockQ5_K), kQKK, {offsetof(BlockQ5_K, d), offsetof(BlockQ5_K, dmin)});
    return test::random_block_bits(rng, n, k, sizeof(BlockQ6_K), kQKK, {offsetof(BlockQ6_K, d)});
  };
  std::mt19937 rng(8);
  for (int rep = 0; rep < 48; ++rep) {
    const int64_t m = rep == 47 ? 80 : test::ragged_m(rep, rng);
    const int64_t n = std::uniform_int_distribution<int64_t>(1, 70)(rng);
    const int64_t nblk = std::uniform_int_distribution<int64_t>(1, rep % 5 == 0 ? 12 : 4)(rng);  // of 256 columns
    const int64_t k = kQKK * nblk;
    const bool slice = rep % 2 == 1;
    const bool bits = rep % 3 == 2;
    const int64_t b0 = slice ? std::uniform_int_distribution<int64_t>(0, nblk - 1)(rng) : 0;
    const int64_t b1 = slice ? std::uniform_int_distribution<int64_t>(b0 + 1, nblk)(rng) : nblk;
    const int64_t c0 = kQKK * b0, len = kQKK * (b1 - b0);
    const size_t wrb = row_bytes(t, uint64_t(k)), arb = row_bytes(DType::Q8_K, uint64_t(len));
    const auto w = bits ? random_bits(rng, n, k) : test::random_weights(rng, t, n, k);
    const PackedWeights packed = repack_for_decode(t, n, k, w.data(), wrb);
    const auto xq = quantized_acts(rng, m, len, arb, DType::Q8_K);
    const int64_t ys = n + 2;
    std::vector<float> y(size_t(m * ys), -7.f);
    kquant_tile(t)(len, packed.data() + rows16_col_offset(t, c0), rows16_group_bytes(t, k), n, xq.data(), arb, m,
                   y.data(), ys);
    std::ostringstream name;
    name << "amx/" << dtype_name(t) << "/rows16 m=" << m << " n=" << n << " k=" << k << " cols=[" << c0 << ","
         << c0 + len << ")" << (bits ? " random bits" : "");
    check(t, name.str(), w, wrb, c0, len, n, xq, arb, m, y, ys);
    if (t == DType::Q6_K && m >= 16) {  // the exact integer sum and the reference's float steps
      for (int64_t j = 0; j < n; ++j)
        for (int64_t i = 0; i < m; ++i)
          ASSERT_EQ(y[size_t(i * ys + j)],
                    vec_dot_ref(t, len, w.data() + size_t(j) * wrb + row_bytes(t, uint64_t(c0)), xq.data() + i * arb))
              << name.str() << " not bit-exact at (" << i << "," << j << ")";
    }
  }
}

// Through the front (activation quantisation, the dispatch at the AMX tier, the thread split,
// 256-row calls) on Rows16, against the scalar tier on the GGUF rows.
TEST_P(AmxKQuant, Rows16MatmulMatchesScalarTier) {
  HEXE_SKIP_WITHOUT_AMX();
  const DType t = GetParam();
  std::mt19937 rng(9);
  ThreadPool pool(2);
  for (const auto& [m, n, k] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {16, 16, 256}, {40, 33, 1024}, {77, 100, 2048}, {130, 17, 768}, {300, 40, 512}}) {
    const int64_t xs = k + 1, ys = n + 3;
    const auto x = test::random_floats(rng, size_t(m * xs));
    const auto w = test::random_weights(rng, t, n, k);
    const size_t wrb = row_bytes(t, uint64_t(k));
    const PackedWeights packed = repack_for_decode(t, n, k, w.data(), wrb);
    std::vector<float> y(size_t(m * ys), -7.f), y_ref(y);
    MatmulParams p;
    p.w = packed.data(); p.w_type = t; p.w_layout = WeightLayout::Rows16; p.n = n; p.k = k;
    p.x = x.data(); p.m = m; p.x_stride = xs; p.y = y.data(); p.y_stride = ys;
    matmul_at(p, Isa::Amx, &pool);
    MatmulParams pr = p;
    pr.w = w.data(); pr.w_layout = WeightLayout::Gguf; pr.y = y_ref.data();
    matmul_at(pr, Isa::Scalar, nullptr);
    std::vector<float> xf(static_cast<size_t>(k)), wf(static_cast<size_t>(k));
    std::vector<uint8_t> tmp(row_bytes(DType::Q8_K, uint64_t(k)));
    for (int64_t i = 0; i < m; ++i) {
      quantize_row(DType::Q8_K, x.data() + i * xs, tmp.data(), k);
      dequantize_row(DType::Q8_K, tmp.data(), xf.data(), k);
      for (int64_t j = 0; j < n; ++j) {
        dequantize_row(t, w.data() + j * wrb, wf.data(), k);
        double mag = 0;
        for (int64_t c = 0; c < k; ++c) mag += std::fabs(double(xf[size_t(c)]) * wf[size_t(c)]);
        ASSERT_NEAR(y[size_t(i * ys + j)], y_ref[size_t(i * ys + j)], 64.0 * FLT_EPSILON * mag + 1e-30)
            << "matmul/amx/" << dtype_name(t) << "/rows16 m=" << m << " n=" << n << " k=" << k << " at (" << i << ","
            << j << ")";
      }
      for (int64_t j = n; j < ys; ++j) ASSERT_EQ(y[size_t(i * ys + j)], -7.f) << "wrote past n";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, AmxKQuant, ::testing::Values(DType::Q4_K, DType::Q5_K, DType::Q6_K),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

#define HEXE_SKIP_WITHOUT_AMX_BF16()                                                                   \
  do {                                                                                                \
    HEXE_SKIP_WITHOUT_AMX();                                                                          \
    if (!cpu_features().amx_bf16 || !cpu_features().avx512_bf16)                                      \
      GTEST_SKIP() << "no AMX-BF16 on this CPU (amx_bf16 " << cpu_features().amx_bf16 << ")";        \
  } while (0)

TEST(AmxBf16, DispatchPicksAmxForGgufBf16) {
  HEXE_SKIP_WITHOUT_AMX_BF16();
  const GemmKernel* g = select_gemm(DType::BF16, 2048, Isa::Amx);
  ASSERT_TRUE(g);
  EXPECT_STREQ(g->name, "amx_bf16/bf16");
  // k not a multiple of the 32-element tile step: the AVX-512 tile.
  const KernelChoice c = matmul_choice(DType::BF16, 48, Isa::Amx);
  EXPECT_EQ(c.tier, Isa::Avx512) << c.name;
}

// The tile against a double-precision dot of the exact bf16 weights and the float activations
// (no rounding of x: the tile splits it into three bf16 parts) on ragged m (the overlapping last
// activation tile; m < 16: the AVX-512 hand-over), ragged n (zero-padded last weight group, odd
// group counts), odd and even k chunk counts; activations spanning 2^-20..2^20 in magnitude.
TEST(AmxBf16, TileMatchesDoubleReferenceOnFloatActivations) {
  HEXE_SKIP_WITHOUT_AMX_BF16();
  std::mt19937 rng(10);
  for (int rep = 0; rep < 40; ++rep) {
    const int64_t m = test::ragged_m(rep, rng);
    const int64_t n = std::uniform_int_distribution<int64_t>(1, 70)(rng);
    const int64_t k = 32 * std::uniform_int_distribution<int64_t>(1, rep % 5 == 0 ? 64 : 7)(rng);
    const int64_t xs = k + 3, ys = n + 2;  // padded rows
    std::vector<float> x(size_t(m * xs));
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    std::uniform_int_distribution<int> e(-20, 20);
    for (auto& v : x) v = std::ldexp(u(rng), e(rng));
    const auto w = test::random_weights(rng, DType::BF16, n, k);
    const size_t wrb = row_bytes(DType::BF16, uint64_t(k));
    std::vector<float> y(size_t(m * ys), -7.f), wf(static_cast<size_t>(k));
    gemm_tile_bf16_amx(k, w.data(), wrb, n, x.data(), xs * sizeof(float), m, y.data(), ys);
    for (int64_t j = 0; j < n; ++j) {
      dequantize_row(DType::BF16, w.data() + size_t(j) * wrb, wf.data(), k);
      for (int64_t i = 0; i < m; ++i) {
        double dot = 0, mag = 0;
        for (int64_t t = 0; t < k; ++t) {
          dot += double(wf[size_t(t)]) * x[size_t(i * xs + t)];
          mag += std::fabs(double(wf[size_t(t)]) * x[size_t(i * xs + t)]);
        }
        ASSERT_NEAR(y[size_t(i * ys + j)], dot, 64.0 * FLT_EPSILON * mag + 1e-30)
            << "amx/bf16 m=" << m << " n=" << n << " k=" << k << " at (" << i << "," << j << ")";
      }
    }
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = n; j < ys; ++j) ASSERT_EQ(y[size_t(i * ys + j)], -7.f) << "wrote past n at row " << i;
  }
}

}  // namespace
}  // namespace hexe::cpu
