// The Rows16 decode layout: repack_for_decode + the Rows16 tiles at every tier that has them,
// against the scalar tier on the ORIGINAL GGUF rows (so a wrong repack fails), ragged row counts
// (padding rows), k from one block to 4096, 1..8 and 33 activation rows, column slices (the MoE
// layer's down projection) and, for Q6_K, blocks of random bits (every level, scale sign and
// 2-bit pattern); and the MoE layer reading Rows16 experts against the same layer reading the
// GGUF experts.
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "cpu_kernels/blocks.h"
#include "cpu_kernels/dispatch.h"
#include "cpu_kernels/kernels.h"
#include "cpu_kernels/matmul.h"
#include "cpu_kernels/moe.h"
#include "cpu_kernels/quant_act.h"
#include "cpu_kernels/repack.h"
#include "cpu_kernels/thread_pool.h"
#include "tests/cpu_kernels/test_util.h"

namespace hexe::cpu {
namespace {

using Param = std::tuple<Isa, DType>;

std::string param_name(const ::testing::TestParamInfo<Param>& i) {
  return std::string(isa_name(std::get<0>(i.param))) + "_" + std::string(dtype_name(std::get<1>(i.param)));
}

const std::vector<Isa>& rows16_tiers() {
  static const std::vector<Isa> t = {Isa::Scalar, Isa::Avx2, Isa::Avx512};
  return t;
}

// The formats the AVX2 tier has Rows16 tiles for (the others keep their GGUF rows there).
bool avx2_rows16(DType t) { return t == DType::Q4_K || t == DType::Q8_0 || t == DType::Q4_0 || t == DType::Q4_1; }

#define HEXE_SKIP_IF_NO_ROWS16_TILE(tier, type)                                                      \
  do {                                                                                              \
    HEXE_SKIP_IF_TIER_ABSENT(tier);                                                                 \
    if ((tier) == Isa::Avx512 && !cpu_features().avx512_vnni)                                       \
      GTEST_SKIP() << "rows16 avx512 tiles need AVX512_VNNI";                                       \
    if ((tier) == Isa::Avx2 && !avx2_rows16(type)) GTEST_SKIP() << "no AVX2 rows16 tile for this format"; \
  } while (0)

TEST(Rows16Tiles, Avx2HasExactlyTheListedFormats) {
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q4_K, DType::Q5_K, DType::Q6_K})
    EXPECT_EQ(kGemmRows16Avx2[size_t(t)].fn != nullptr, avx2_rows16(t)) << dtype_name(t);
}

class Rows16Matmul : public ::testing::TestWithParam<Param> {};

TEST_P(Rows16Matmul, MatchesScalarGgufReference) {
  const auto [tier, type] = GetParam();
  HEXE_SKIP_IF_NO_ROWS16_TILE(tier, type);
  // The tier must really run its own rows16 kernel (no silent fallback to scalar).
  const KernelChoice kc = matmul_choice(type, 4096, tier, WeightLayout::Rows16);
  ASSERT_EQ(kc.tier, tier) << kc.name << " (" << kc.reasons << ")";
  ASSERT_NE(kc.name.find("rows16"), std::string::npos) << kc.name;

  std::mt19937 rng(4321 + int(type) + 7 * int(tier));
  const int64_t blk = info(type).block_elems;
  const DType act = paired_activation(type);
  ThreadPool pool(2);
  // Prefill sizes, one per n: the tiles' chunks of 4 activation rows with each remainder.
  const int64_t prefill_m[] = {33, 31, 18, 47, 9, 16};
  int ni = 0;
  for (int64_t n : {1, 15, 16, 17, 33, 100}) {
    const int64_t m_prefill = prefill_m[ni++];
    for (int rep = 0; rep < 3; ++rep) {
      const int64_t k = blk * std::uniform_int_distribution<int64_t>(1, 4096 / blk)(rng);
      // Decode sizes, and once a prefill size.
      const int64_t m = rep == 2 ? m_prefill : std::uniform_int_distribution<int64_t>(1, 8)(rng);
      const int64_t xs = k + 1, ys = n + 3;
      auto xbuf = test::random_floats(rng, size_t(m * xs + 1));
      const float* x = xbuf.data() + 1;
      const auto w = test::random_weights(rng, type, n, k);
      const size_t wrb = row_bytes(type, uint64_t(k));
      const PackedWeights packed = repack_for_decode(type, n, k, w.data(), wrb);
      ASSERT_EQ(packed.bytes(), rows16_group_bytes(type, k) * size_t((n + 15) / 16));
      ASSERT_EQ(reinterpret_cast<uintptr_t>(packed.data()) % 64, 0u);

      std::vector<float> y(size_t(m * ys), -7.f), y_ref(y);
      MatmulParams p;
      p.w = packed.data(); p.w_type = type; p.w_layout = WeightLayout::Rows16; p.n = n; p.k = k;
      p.x = x; p.m = m; p.x_stride = xs; p.y = y.data(); p.y_stride = ys;
      const bool threaded = rep % 2 == 1;
      matmul_at(p, tier, threaded ? &pool : nullptr);
      MatmulParams pr = p;  // the scalar tier on the GGUF rows
      pr.w = w.data(); pr.w_layout = WeightLayout::Gguf; pr.y = y_ref.data();
      matmul_at(pr, Isa::Scalar, nullptr);

      // Tolerance from the data: 64 eps * sum |w| |x'| (x' = x after the activation round trip).
      std::vector<float> xq(size_t(m * k)), wf(size_t(n * k));
      std::vector<uint8_t> tmp(row_bytes(act, uint64_t(k)));
      for (int64_t i = 0; i < m; ++i) {
        quantize_row(act, x + i * xs, tmp.data(), k);
        dequantize_row(act, tmp.data(), xq.data() + i * k, k);
      }
      for (int64_t j = 0; j < n; ++j) dequantize_row(type, w.data() + j * wrb, wf.data() + j * k, k);
      std::ostringstream name;
      name << "matmul/" << isa_name(tier) << "/" << dtype_name(type) << "/rows16 m=" << m << " n=" << n
           << " k=" << k << (threaded ? " threads=2" : "");
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          double mag = 0;
          for (int64_t t = 0; t < k; ++t) mag += std::fabs(double(xq[size_t(i * k + t)]) * wf[size_t(j * k + t)]);
          const float got = y[size_t(i * ys + j)], want = y_ref[size_t(i * ys + j)];
          // Same integer sums in the same float order: the scalar tier, and Q6_K's AVX-512 tile
          // (its float step is the reference's; the AVX-512 activation quantiser is byte-exact).
          if (tier == Isa::Scalar || type == DType::Q6_K)
            ASSERT_EQ(got, want) << name.str() << " at (" << i << "," << j << ")";
          else
            ASSERT_NEAR(got, want, 64.0 * FLT_EPSILON * mag + 1e-30) << name.str() << " at (" << i << "," << j << ")";
        }
        for (int64_t j = n; j < ys && i * ys + j < int64_t(y.size()); ++j)
          ASSERT_EQ(y[size_t(i * ys + j)], -7.f) << name.str() << " wrote past n (padding rows)";
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(TiersXFormats, Rows16Matmul,
                         ::testing::Combine(::testing::ValuesIn(rows16_tiers()),
                                            ::testing::Values(DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                                                              DType::Q4_K, DType::Q5_K, DType::Q6_K)),
                         param_name);

class Rows16Slice : public ::testing::TestWithParam<Param> {};

// The tile on columns [c0, c1) of a Rows16 copy (rows16_col_offset, the group stride of the whole
// k), as the MoE layer's down projection reads it, against vec_dot_ref on the same columns of the
// GGUF rows; ragged row counts and 1..8 activation rows.
TEST_P(Rows16Slice, ColumnSlicesMatchGgufReference) {
  const auto [tier, type] = GetParam();
  HEXE_SKIP_IF_NO_ROWS16_TILE(tier, type);
  std::mt19937 rng(99 + int(type) + 13 * int(tier));
  const int64_t align = rows16_col_align(type);
  const DType act = paired_activation(type);
  for (int rep = 0; rep < 12; ++rep) {
    const int64_t n = std::uniform_int_distribution<int64_t>(1, 40)(rng);
    const int64_t nblk = std::uniform_int_distribution<int64_t>(1, 12)(rng);
    const int64_t k = nblk * align;
    const int64_t b0 = std::uniform_int_distribution<int64_t>(0, nblk - 1)(rng);
    const int64_t b1 = std::uniform_int_distribution<int64_t>(b0 + 1, nblk)(rng);
    const int64_t c0 = b0 * align, len = (b1 - b0) * align;
    const int64_t m = std::uniform_int_distribution<int64_t>(1, 8)(rng);
    const bool bits = type == DType::Q6_K && rep % 2 == 1;
    // Random bits (Q6_K: levels 0 and 63, every 2-bit pattern, scales over -128..127) or quantised data.
    const auto w = bits ? test::random_block_bits(rng, n, k, sizeof(BlockQ6_K), kQKK, {offsetof(BlockQ6_K, d)})
                        : test::random_weights(rng, type, n, k);
    const size_t wrb = row_bytes(type, uint64_t(k)), arb = row_bytes(act, uint64_t(len));
    const PackedWeights packed = repack_for_decode(type, n, k, w.data(), wrb);
    const auto x = test::random_floats(rng, size_t(m * len));
    std::vector<uint8_t> xq(arb * size_t(m));
    for (int64_t i = 0; i < m; ++i) quantize_activation_row(act, x.data() + i * len, xq.data() + i * arb, len);
    const GemmKernel* g = select_gemm(type, len, tier, WeightLayout::Rows16);
    ASSERT_TRUE(g && g->tier == tier) << "no rows16 tile at " << isa_name(tier);
    const int64_t ys = n + 1;
    std::vector<float> y(size_t(m * ys), -7.f);
    g->fn(len, packed.data() + rows16_col_offset(type, c0), rows16_group_bytes(type, k), n, xq.data(), arb, m,
          y.data(), ys);
    std::ostringstream name;
    name << "tile/" << isa_name(tier) << "/" << dtype_name(type) << "/rows16 m=" << m << " n=" << n << " k=" << k
         << " cols=[" << c0 << "," << c0 + len << ")" << (bits ? " random bits" : "");
    for (int64_t j = 0; j < n; ++j) {
      const uint8_t* wrow = w.data() + size_t(j) * wrb + row_bytes(type, uint64_t(c0));
      for (int64_t i = 0; i < m; ++i) {
        const float want = vec_dot_ref(type, len, wrow, xq.data() + i * arb);
        const float got = y[size_t(i * ys + j)];
        if (tier == Isa::Scalar || type == DType::Q6_K) {
          ASSERT_EQ(got, want) << name.str() << " at (" << i << "," << j << ")";
          continue;
        }
        ASSERT_NEAR(got, want, test::ref_dot_tolerance(type, wrow, xq.data() + i * arb, len))
            << name.str() << " at (" << i << "," << j << ")";
      }
    }
    for (int64_t i = 0; i < m; ++i) ASSERT_EQ(y[size_t(i * ys + n)], -7.f) << name.str() << " wrote past n";
  }
}

INSTANTIATE_TEST_SUITE_P(TiersXFormats, Rows16Slice,
                         ::testing::Combine(::testing::ValuesIn(rows16_tiers()),
                                            ::testing::Values(DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                                                              DType::Q4_K, DType::Q5_K, DType::Q6_K)),
                         param_name);

TEST(Rows16Repack, RejectsFormatsWithoutTheLayoutAndBadK) {
  std::vector<uint8_t> src(4096);
  EXPECT_THROW(repack_for_decode(DType::IQ4_NL, 1, 32, src.data(), 18), std::invalid_argument);
  EXPECT_THROW(repack_for_decode(DType::Q5_K, 1, 384, src.data(), 176), std::invalid_argument);
  EXPECT_THROW(repack_for_decode(DType::Q4_0, 1, 48, src.data(), 18), std::invalid_argument);
  EXPECT_THROW(repack_for_decode(DType::Q8_0, 1, 48, src.data(), 34), std::invalid_argument);
  EXPECT_THROW(repack_for_decode(DType::Q4_K, 1, 0, src.data(), 144), std::invalid_argument);
  EXPECT_THROW(repack_for_decode(DType::Q6_K, 1, 384, src.data(), 210), std::invalid_argument);
  EXPECT_FALSE(rows16_supported(DType::F32));
  EXPECT_TRUE(rows16_supported(DType::Q8_0) && rows16_supported(DType::Q4_0) && rows16_supported(DType::Q4_1) &&
              rows16_supported(DType::Q5_0) && rows16_supported(DType::Q5_1) && rows16_supported(DType::Q4_K) &&
              rows16_supported(DType::Q5_K) && rows16_supported(DType::Q6_K));
  EXPECT_EQ(rows16_group_bytes(DType::Q5_K, 512), 2u * 16u * 176u);  // no byte beyond the GGUF rows
  EXPECT_EQ(rows16_group_bytes(DType::Q4_0, 64), 16u * 2u * 18u);  // no byte beyond the GGUF rows
  EXPECT_EQ(rows16_group_bytes(DType::Q4_1, 64), 16u * 2u * 20u);
  EXPECT_EQ(rows16_group_bytes(DType::Q5_0, 64), 16u * 2u * 22u);
  EXPECT_EQ(rows16_group_bytes(DType::Q5_1, 96), 2u * 16u * 2u * 24u);  // an odd last block: padded
  EXPECT_EQ(rows16_col_offset(DType::Q5_0, 128), 2u * 16u * 2u * 22u);
  // Whole 64-byte units, a little over the GGUF bytes (Q6_K: 3392 for 16 x 210).
  EXPECT_EQ(rows16_group_bytes(DType::Q6_K, 512), 2u * 3392u);
  EXPECT_EQ(rows16_group_bytes(DType::Q4_K, 512), 2u * 16u * 144u);  // no byte beyond the GGUF rows
  EXPECT_EQ(rows16_col_align(DType::Q6_K), 256);
  EXPECT_EQ(rows16_col_offset(DType::Q6_K, 512), 2u * 3392u);
}

// The Q4_K group keeps each row's 6-bit scales and mins in 6 bits (low nibbles and top-2-bit
// planes): every field reads back as the GGUF block's, ragged last group included.
TEST(Rows16Repack, Q4KScalesAndMinsReadBackAsTheGgufOnes) {
  std::mt19937 rng(5);
  const int64_t rows = 21, k = 512;
  const auto w = test::random_weights(rng, DType::Q4_K, rows, k);
  // Full 6-bit range in every field (random bytes give every bit pattern of the 12-byte scales).
  const PackedWeights packed = repack_for_decode(DType::Q4_K, rows, k, w.data(), row_bytes(DType::Q4_K, uint64_t(k)));
  const size_t gb = rows16_group_bytes(DType::Q4_K, k);
  int nonzero_top = 0;
  for (int64_t row = 0; row < rows; ++row)
    for (int64_t b = 0; b < k / 256; ++b) {
      const auto* blk = reinterpret_cast<const BlockQ4_K*>(w.data() + size_t(row) * row_bytes(DType::Q4_K, uint64_t(k))) + b;
      const uint8_t* sb = packed.data() + size_t(row / 16) * gb + size_t(b) * gb / size_t(k / 256);
      for (int j = 0; j < 8; ++j) {
        uint8_t sc, m;
        k4_scale_min(j, blk->scales, &sc, &m);
        ASSERT_EQ(rows16_q4k_scale(sb, j, int(row % 16)), sc) << "row " << row << " block " << b << " sub-block " << j;
        ASSERT_EQ(rows16_q4k_min(sb, j, int(row % 16)), m) << "row " << row << " block " << b << " sub-block " << j;
        nonzero_top += (sc >> 4) != 0;
      }
    }
  EXPECT_GT(nonzero_top, 0);  // the top-2-bit planes were exercised
}

double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

class Rows16Moe : public ::testing::TestWithParam<Param> {};

// Same tier, same activations: only the layout read differs, so the results agree to float
// summation order (and the rare requantisation of h that it flips).
TEST_P(Rows16Moe, EqualsGgufLayout) {
  const auto [tier, type] = GetParam();
  HEXE_SKIP_IF_TIER_ABSENT(tier);
  std::mt19937 rng(77 + int(type));
  const int n_experts = 6;
  const int64_t hidden = type == DType::Q8_0 ? 224 : 512;
  for (int64_t n_ff : {type == DType::Q8_0 ? int64_t(160) : int64_t(256), int64_t(512)}) {
    std::vector<std::vector<uint8_t>> raw;
    std::vector<PackedWeights> packs;
    std::vector<ExpertWeights> experts, packed, packed_no_down, packed_wrong;
    for (int e = 0; e < n_experts; ++e) {
      raw.push_back(test::random_weights(rng, type, n_ff, hidden));
      raw.push_back(test::random_weights(rng, type, n_ff, hidden));
      raw.push_back(test::random_weights(rng, type, hidden, n_ff));
    }
    const size_t rh = row_bytes(type, uint64_t(hidden)), rf = row_bytes(type, uint64_t(n_ff));
    for (int e = 0; e < n_experts; ++e) {
      const auto& g = raw[size_t(3 * e)];
      const auto& u = raw[size_t(3 * e + 1)];
      const auto& d = raw[size_t(3 * e + 2)];
      experts.push_back({g.data(), u.data(), d.data()});
      packs.push_back(repack_for_decode(type, n_ff, hidden, g.data(), rh));
      packs.push_back(repack_for_decode(type, n_ff, hidden, u.data(), rh));
      packs.push_back(repack_for_decode(type, hidden, n_ff, d.data(), rf));
    }
    for (int e = 0; e < n_experts; ++e) {
      packed.push_back({packs[size_t(3 * e)].data(), packs[size_t(3 * e + 1)].data(), packs[size_t(3 * e + 2)].data()});
      packed_no_down.push_back({packs[size_t(3 * e)].data(), packs[size_t(3 * e + 1)].data(), nullptr});
    }
    // Another expert's copies: proves decode really reads the Rows16 set.
    for (int e = 0; e < n_experts; ++e) packed_wrong.push_back(packed[size_t((e + 1) % n_experts)]);
    ThreadPool pool(2);
    for (auto [n_tokens, top_k] : {std::pair<int64_t, int>{1, 1}, {1, 2}, {3, 2}, {8, 3}, {17, 2}}) {
      const auto x = test::random_floats(rng, size_t(n_tokens * hidden), 0.1f);
      std::vector<int32_t> ids(size_t(n_tokens * top_k));
      std::vector<float> wts(ids.size());
      for (int64_t t = 0; t < n_tokens; ++t)
        for (int k = 0; k < top_k; ++k) {
          ids[size_t(t * top_k + k)] = int32_t((t * 5 + k * 2) % n_experts);
          wts[size_t(t * top_k + k)] = 0.2f + 0.3f * float(k);
        }
      std::vector<float> y(size_t(n_tokens * hidden), 1e9f), y_gguf(y), y_nd(y);
      MoeParams p;
      p.experts = experts.data(); p.n_experts = n_experts;
      p.gate_type = p.up_type = p.down_type = type;
      p.hidden = hidden; p.n_ff = n_ff; p.x = x.data(); p.n_tokens = n_tokens; p.top_k = top_k;
      p.ids = ids.data(); p.weights = wts.data();
      ThreadPool* tp = n_tokens % 2 ? &pool : nullptr;
      p.y = y_gguf.data();
      moe_experts_at(p, tier, tp);
      p.packed = packed.data();
      p.y = y.data();
      moe_experts_at(p, tier, tp);
      p.packed = packed_no_down.data();
      p.y = y_nd.data();
      moe_experts_at(p, tier, tp);
      const std::string name = "moe/" + std::string(isa_name(tier)) + "/" + std::string(dtype_name(type)) +
                               "/rows16 hidden=" + std::to_string(hidden) + " n_ff=" + std::to_string(n_ff) +
                               " tokens=" + std::to_string(n_tokens) + " top_k=" + std::to_string(top_k);
      EXPECT_LT(rel_err(y, y_gguf), 1e-4) << name;
      std::vector<float> y_wrong(y.size());
      p.packed = packed_wrong.data();
      p.y = y_wrong.data();
      moe_experts_at(p, tier, tp);
      if (tier == Isa::Avx2 && !avx2_rows16(type))  // the AVX2 GGUF tiles, never the scalar rows16 one
        EXPECT_LT(rel_err(y_wrong, y_gguf), 1e-4) << name << " read the rows16 set below its tier";
      else
        EXPECT_GT(rel_err(y_wrong, y_gguf), 1e-2) << name << " ignored the rows16 set";
      EXPECT_LT(rel_err(y_nd, y_gguf), 1e-4) << name << " (down not repacked)";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(TiersXFormats, Rows16Moe,
                         ::testing::Combine(::testing::ValuesIn(test::all_tiers()),
                                            ::testing::Values(DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                                                              DType::Q4_K, DType::Q5_K, DType::Q6_K)),
                         param_name);

}  // namespace
}  // namespace hexe::cpu
