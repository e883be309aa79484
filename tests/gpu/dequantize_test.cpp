// GPU dequantisation against cpu::dequantize_row: bit-exact F32 output, correctly rounded F16/BF16.
#include <cstring>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "cpu_kernels/quant.h"
#include "gpu_kernels/matmul.h"
#include "tests/gpu/gpu_test_util.h"
#include "tests/gpu/weights.h"

namespace hexe::gpu::test {
namespace {

struct DequantCase {
  int64_t rows, k;
};

void PrintTo(const DequantCase& c, std::ostream* os) { *os << "rows=" << c.rows << " blocks=" << c.k; }
using DequantParam = std::tuple<DType, Source, DequantCase>;

class GpuDequantize : public ::testing::TestWithParam<DequantParam> {};

int64_t block_k(DType t, int64_t blocks, int64_t ragged) {
  // Plain types take any k: add a ragged tail so the scalar (non-vector) path runs too.
  return is_quantized(t) ? blocks * info(t).block_elems : blocks * 32 + ragged;
}

TEST_P(GpuDequantize, MatchesCpuReference) {
  HEXE_REQUIRE_GPU();
  const auto [type, src, c] = GetParam();
  const int64_t k = block_k(type, c.k, c.rows % 2 ? 3 : 0);
  const auto w = make_weights(type, c.rows, k, src, uint64_t(c.rows * 131 + k));
  const auto ref = dequantize_ref(type, w, c.rows, k);

  DeviceBuffer dw(w.size()), d32(ref.size() * 4), d16(ref.size() * 2);
  ASSERT_TRUE(dw.ok() && d32.ok() && d16.ok());
  HEXE_CUDA_OK(dw.upload(w.data(), w.size()));
  HEXE_GPU_OK(dequantize_rows(type, dw.get(), c.rows, k, DType::F32, d32.get(), k, nullptr));
  std::vector<float> got(ref.size());
  HEXE_CUDA_OK(d32.download(got.data(), got.size() * 4));
  for (size_t i = 0; i < ref.size(); ++i) {
    uint32_t a, b;
    std::memcpy(&a, &got[i], 4);
    std::memcpy(&b, &ref[i], 4);
    ASSERT_EQ(a, b) << "element " << i << " (row " << int64_t(i) / k << ", col " << int64_t(i) % k
                    << "): gpu " << got[i] << " cpu " << ref[i];
  }

  for (DType out : {DType::F16, DType::BF16}) {
    HEXE_GPU_OK(dequantize_rows(type, dw.get(), c.rows, k, out, d16.get(), k, nullptr));
    std::vector<uint16_t> got16(ref.size());
    HEXE_CUDA_OK(d16.download(got16.data(), got16.size() * 2));
    for (size_t i = 0; i < ref.size(); ++i) {
      const uint16_t want = out == DType::F16 ? cpu::f32_to_f16(ref[i]) : cpu::f32_to_bf16(ref[i]);
      ASSERT_EQ(got16[i], want) << dtype_name(out) << " element " << i << " cpu value " << ref[i];
    }
  }
}

std::string dequant_name(const ::testing::TestParamInfo<DequantParam>& info) {
  const auto& [t, s, c] = info.param;
  return std::string(dtype_name(t)) + "_" + source_name(s) + "_rows" + std::to_string(c.rows) + "_blocks" +
         std::to_string(c.k);
}

INSTANTIATE_TEST_SUITE_P(Types, GpuDequantize,
                         ::testing::Combine(::testing::ValuesIn(gpu_weight_types()),
                                            ::testing::Values(Source::kQuantized, Source::kRandomBits),
                                            ::testing::Values(DequantCase{1, 1}, DequantCase{3, 5},
                                                              DequantCase{17, 11})),
                         dequant_name);

// dst_stride > k: rows land at the stride and the padding is left alone.
TEST(GpuDequantizeStride, PaddedRowsKeepPadding) {
  HEXE_REQUIRE_GPU();
  const int64_t rows = 4, k = 256, stride = 300;
  const auto w = make_weights(DType::Q4_K, rows, k, Source::kRandomBits, 5);
  const auto ref = dequantize_ref(DType::Q4_K, w, rows, k);
  DeviceBuffer dw(w.size()), dd(size_t(rows * stride) * 4);
  HEXE_CUDA_OK(dw.upload(w.data(), w.size()));
  std::vector<float> got(size_t(rows * stride), -7.f);
  HEXE_CUDA_OK(dd.upload(got.data(), got.size() * 4));
  HEXE_GPU_OK(dequantize_rows(DType::Q4_K, dw.get(), rows, k, DType::F32, dd.get(), stride, nullptr));
  HEXE_CUDA_OK(dd.download(got.data(), got.size() * 4));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < stride; ++i)
      ASSERT_EQ(got[size_t(r * stride + i)], i < k ? ref[size_t(r * k + i)] : -7.f) << "row " << r << " col " << i;
}

}  // namespace
}  // namespace hexe::gpu::test
