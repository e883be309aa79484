// The SIMD activation quantisers against the reference: byte-identical Q8_0 and Q8_K rows on
// random rows of several lengths, rows with exact halves (both rounding rules), ties between +max
// and -max, zero blocks and tiny or large magnitudes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <tuple>
#include <vector>

#include "cpu_kernels/format.h"
#include "cpu_kernels/quant.h"
#include "cpu_kernels/quant_act.h"

namespace hexe::cpu {
namespace {

std::vector<uint8_t> quantized(Isa isa, DType t, const std::vector<float>& x) {
  std::vector<uint8_t> out(row_bytes(t, x.size()), 0xAB);
  if (isa == Isa::Scalar) quantize_row(t, x.data(), out.data(), int64_t(x.size()));
  else quantize_activation_row_at(isa, t, x.data(), out.data(), int64_t(x.size()));
  return out;
}

// Rows that exercise every branch: random normal/uniform, values landing exactly on .5 after
// scaling, first-on-ties +-max, an all-zero block, subnormal-ish and large magnitudes.
std::vector<std::vector<float>> hostile_rows(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::uniform_real_distribution<float> ud(-3.f, 3.f);
  std::vector<std::vector<float>> rows;
  std::vector<float> r(static_cast<size_t>(n));
  for (auto& v : r) v = nd(rng);
  rows.push_back(r);
  for (auto& v : r) v = ud(rng) * 1e4f;
  rows.push_back(r);
  for (auto& v : r) v = nd(rng) * 1e-30f;
  rows.push_back(r);
  // Halves: with max 127 the scale is 1, so k + 0.5 stays a half after scaling.
  for (int64_t i = 0; i < n; ++i) r[size_t(i)] = float(int(i % 200) - 100) + 0.5f;
  for (int64_t b = 0; b < n; b += 32) r[size_t(b)] = 127.f;
  rows.push_back(r);
  // Ties: -max before +max in some blocks, +max before -max in others; then a zero block.
  for (auto& v : r) v = ud(rng);
  for (int64_t b = 0; b < n; b += 32) {
    r[size_t(b + 3)] = (b / 32) % 2 ? -5.f : 5.f;
    r[size_t(b + 17)] = (b / 32) % 2 ? 5.f : -5.f;
  }
  for (int64_t i = 0; i < std::min<int64_t>(n, 256); ++i) r[size_t(i)] = 0.f;
  rows.push_back(r);
  return rows;
}

using Param = std::tuple<Isa, DType>;
class QuantAct : public ::testing::TestWithParam<Param> {};

TEST_P(QuantAct, SimdRowsEqualTheReferenceByteForByte) {
  const auto [isa, t] = GetParam();
  if (hardware_isa() < isa) GTEST_SKIP() << isa_name(isa) << " absent on this CPU";
  for (int64_t n : {256, 512, 2048, 7168}) {
    uint64_t seed = 1;
    for (const auto& row : hostile_rows(n, uint64_t(n))) {
      const auto want = quantized(Isa::Scalar, t, row), got = quantized(isa, t, row);
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < want.size(); ++i)
        ASSERT_EQ(got[i], want[i]) << isa_name(isa) << " " << dtype_name(t) << " n=" << n << " row " << seed
                                   << " byte " << i;
      ++seed;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Activations, QuantAct,
                         ::testing::Combine(::testing::Values(Isa::Avx2, Isa::Avx512),
                                            ::testing::Values(DType::Q8_0, DType::Q8_K)),
                         [](const ::testing::TestParamInfo<Param>& i) {
                           return std::string(isa_name(std::get<0>(i.param))) + "_" +
                                  std::string(dtype_name(std::get<1>(i.param)));
                         });

}  // namespace
}  // namespace hexe::cpu
