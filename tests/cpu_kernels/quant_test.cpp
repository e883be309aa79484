// (De)quantisers against gguf-py's and GGML's outputs (fixtures from
// tools/reference/make_quant_vectors.py), bit-exact; half conversions; K-quant round-trip bounds.
#include <cstring>
#include <fstream>

#include "cpu_kernels/blocks.h"
#include "tests/cpu_kernels/test_util.h"

namespace hexe::cpu {
namespace {

struct Vectors {
  uint32_t n_deq = 0, n_q = 0, elems = 0, bytes = 0;
  std::vector<uint8_t> raw, qout;
  std::vector<float> deq, qin;
};

Vectors load(DType t) {
  const std::string path = std::string(HEXE_SOURCE_DIR) + "/tests/cpu_kernels/fixtures/quant_" +
                           test::lower(dtype_name(t)) + ".bin";
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << "missing fixture " << path
                        << " (regenerate: tools/reference/make_quant_vectors.py)";
  uint32_t h[7] = {};
  f.read(reinterpret_cast<char*>(h), sizeof h);
  EXPECT_EQ(h[0], 0x56515848u) << path;
  EXPECT_EQ(h[2], uint32_t(t)) << path;
  Vectors v{h[3], h[4], h[5], h[6], {}, {}, {}, {}};
  EXPECT_EQ(v.elems, info(t).block_elems);
  EXPECT_EQ(v.bytes, info(t).block_bytes);
  v.raw.resize(size_t(v.n_deq) * v.bytes);
  v.deq.resize(size_t(v.n_deq) * v.elems);
  v.qin.resize(size_t(v.n_q) * v.elems);
  v.qout.resize(size_t(v.n_q) * v.bytes);
  f.read(reinterpret_cast<char*>(v.raw.data()), std::streamsize(v.raw.size()));
  f.read(reinterpret_cast<char*>(v.deq.data()), std::streamsize(v.deq.size() * 4));
  f.read(reinterpret_cast<char*>(v.qin.data()), std::streamsize(v.qin.size() * 4));
  f.read(reinterpret_cast<char*>(v.qout.data()), std::streamsize(v.qout.size()));
  EXPECT_TRUE(f.good()) << path << " is truncated";
  return v;
}

class QuantVectors : public ::testing::TestWithParam<DType> {};

// Bitwise: GGML's and gguf-py's dequantisers use the same float operation order as ours.
TEST_P(QuantVectors, DequantizeMatchesGgufBitwise) {
  const DType t = GetParam();
  const Vectors v = load(t);
  ASSERT_GT(v.n_deq, 0u);
  std::vector<float> got(v.deq.size());
  dequantize_row(t, v.raw.data(), got.data(), int64_t(got.size()));
  for (size_t i = 0; i < got.size(); ++i) {
    uint32_t a, b;
    std::memcpy(&a, &got[i], 4);
    std::memcpy(&b, &v.deq[i], 4);
    ASSERT_EQ(a, b) << "dequantize/" << dtype_name(t) << " element " << i << " (block "
                    << i / v.elems << "): got " << got[i] << " want " << v.deq[i];
  }
}

// Byte-exact against gguf-py's quantisers (bit-exact with GGML's reference ones) and, for the
// K-quants, GGML's own quantize_chunk (via ggml-python when the fixtures were generated).
TEST_P(QuantVectors, QuantizeMatchesReferenceBytes) {
  const DType t = GetParam();
  const Vectors v = load(t);
  if (v.n_q == 0) GTEST_SKIP() << "fixture has no quantiser vectors for " << dtype_name(t)
                            << " (f32 has nothing to quantise; K-quants need ggml-python)";
  std::vector<uint8_t> got(v.qout.size());
  quantize_row(t, v.qin.data(), got.data(), int64_t(v.qin.size()));
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_EQ(int(got[i]), int(v.qout[i])) << "quantize/" << dtype_name(t) << " byte " << i
                                           << " (block " << i / v.bytes << ")";
}

INSTANTIATE_TEST_SUITE_P(AllTypes, QuantVectors, ::testing::ValuesIn(test::computable_types()),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

// K-quants (no gguf-py quantiser): the round trip stays within the format's resolution. For
// each sub-block the error is at most about one level step: |x - q(x)| <= c * max|x| / levels.
TEST(QuantRoundTrip, KQuantsWithinResolution) {
  std::mt19937 rng(7);
  for (DType t : {DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_K}) {
    const int levels = t == DType::Q4_K ? 15 : t == DType::Q5_K ? 31 : t == DType::Q6_K ? 63 : 254;
    for (int rep = 0; rep < 4; ++rep) {
      const int64_t k = 256 * (1 + rep);
      auto x = test::random_floats(rng, size_t(k), rep == 3 ? 1e-3f : 1.f);
      std::vector<uint8_t> q(row_bytes(t, uint64_t(k)));
      quantize_row(t, x.data(), q.data(), k);
      std::vector<float> y(static_cast<size_t>(k));
      dequantize_row(t, q.data(), y.data(), k);
      for (int64_t b = 0; b < k; b += 256) {
        float amax = 0, err = 0;
        for (int64_t i = b; i < b + 256; ++i) {
          amax = std::max(amax, std::fabs(x[size_t(i)]));
          err = std::max(err, std::fabs(x[size_t(i)] - y[size_t(i)]));
        }
        // range 2*amax over `levels` steps; scales are 6/8-bit themselves, so allow 2 steps.
        EXPECT_LE(err, 2.f * 2.f * amax / float(levels))
            << "roundtrip/" << dtype_name(t) << " k=" << k << " super-block " << b / 256;
      }
    }
  }
}

TEST(QuantRoundTrip, Q8KBlockSums) {
  std::mt19937 rng(3);
  auto x = test::random_floats(rng, 512);
  std::vector<BlockQ8_K> q(2);
  quantize_row(DType::Q8_K, x.data(), q.data(), 512);
  for (const auto& b : q)
    for (int j = 0; j < 16; ++j) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += b.qs[16 * j + l];
      EXPECT_EQ(s, b.bsums[j]);
    }
}

TEST(Half, F16RoundTripsEveryFiniteValue) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7C00) == 0x7C00 && (h & 0x03FF)) continue;  // NaN payloads
    ASSERT_EQ(f32_to_f16(f16_to_f32(uint16_t(h))), h) << std::hex << h;
  }
}

TEST(Half, F16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_f16(1.0f + 0x1.0p-11f), 0x3C00);              // tie -> even (down)
  EXPECT_EQ(f32_to_f16(1.0f + 3 * 0x1.0p-11f), 0x3C02);          // tie -> even (up)
  EXPECT_EQ(f32_to_f16(65520.f), 0x7C00);                        // rounds to +inf
  EXPECT_EQ(f32_to_f16(0x1.0p-25f), 0x0000);                     // tie below the min subnormal
  EXPECT_EQ(f32_to_f16(0x1.8p-25f), 0x0001);
  EXPECT_EQ(f16_to_f32(0x0001), 0x1.0p-24f);
}

TEST(Half, Bf16) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(f32_to_bf16(1.0f + 0x1.0p-8f), 0x3F80);  // tie -> even
  EXPECT_EQ(f32_to_bf16(1.0f + 0x1.8p-8f), 0x3F81);
  EXPECT_EQ(bf16_to_f32(0xC000), -2.0f);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

}  // namespace
}  // namespace hexe::cpu
