// GPU GEMV and GEMM against cpu::matmul_ref for every weight type, ragged n, padded strides and
// several m; tolerances from the data (sum |w x| over cpu::dequantize_row's weights).
#include <cmath>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include <cublas_v2.h>
#include <gtest/gtest.h>

#include "cpu_kernels/matmul.h"
#include "gpu_kernels/matmul.h"
#include "tests/gpu/gpu_test_util.h"
#include "tests/gpu/weights.h"

namespace hexe::gpu::test {
namespace {

enum class Path { kGemv, kGemm, kGemmTiled };
const char* path_name(Path p) { return p == Path::kGemv ? "gemv" : p == Path::kGemm ? "gemm" : "gemmtiled"; }

struct Shape {
  int64_t m, n, k_blocks;  // k = k_blocks x block size (plain types: x 32, plus a ragged tail)
};

void PrintTo(const Shape& s, std::ostream* os) { *os << "m=" << s.m << " n=" << s.n << " k_blocks=" << s.k_blocks; }
void PrintTo(Path p, std::ostream* os) { *os << path_name(p); }
using MatmulParam = std::tuple<DType, Path, Shape>;
class GpuMatmul : public ::testing::TestWithParam<MatmulParam> {};

struct CublasHandle {
  cublasHandle_t h = nullptr;
  CublasHandle() { cublasCreate(&h); }
  ~CublasHandle() { if (h) cublasDestroy(h); }
};

// Per-element error bound: u_in x sum|w x| for the rounding of the operands the path applies
// (none for GEMV; F16 or BF16 activations and F16 weight tiles for GEMM), plus k u32 sum|w x|
// for float accumulation in any order. sum|w x| is computed from the data.
double input_roundoff(DType t, Path p) {
  if (p == Path::kGemv || t == DType::F32) return 0;
  if (t == DType::BF16) return kUBf16 * 1.01;        // x rounded to BF16, w exact
  if (t == DType::F16) return kU16 * 1.01;           // x rounded to F16, w exact
  return 2 * kU16 * 1.01;                            // x and the dequantised w rounded to F16
}

void run_case(DType type, Path path, Shape s, Source src) {
  const int64_t block = is_quantized(type) ? info(type).block_elems : 32;
  const int64_t k = s.k_blocks * block + (is_quantized(type) ? 0 : (s.n % 3 == 0 ? 5 : 0));
  const int64_t x_stride = k + (s.m % 2 ? 4 : 0), y_stride = s.n + (s.m % 3 ? 3 : 0);
  const auto w = make_weights(type, s.n, k, src, uint64_t(s.n * 1000 + k + s.m));
  const auto wf = dequantize_ref(type, w, s.n, k);
  const auto x = random_floats(size_t(s.m * x_stride), uint64_t(s.m * 17 + k), -2.f, 2.f);

  DeviceBuffer dw(w.size()), dx(x.size() * 4), dy(size_t(s.m * y_stride) * 4);
  ASSERT_TRUE(dw.ok() && dx.ok() && dy.ok());
  HEXE_CUDA_OK(dw.upload(w.data(), w.size()));
  HEXE_CUDA_OK(dx.upload(x.data(), x.size() * 4));
  std::vector<float> y(size_t(s.m * y_stride), 12345.f);
  HEXE_CUDA_OK(dy.upload(y.data(), y.size() * 4));

  MatmulParams p;
  p.w = dw.get();
  p.w_type = type;
  p.n = s.n;
  p.k = k;
  p.x = dx.get<float>();
  p.m = s.m;
  p.x_stride = x_stride;
  p.y = dy.get<float>();
  p.y_stride = y_stride;

  if (path == Path::kGemv) {
    HEXE_GPU_OK(gemv(p, nullptr));
  } else {
    CublasHandle cublas;
    ASSERT_NE(cublas.h, nullptr);
    // Tiled: room for 16 weight rows, so n > 16 takes several dequantise + GEMM rounds.
    const size_t ws_bytes = gemm_workspace_bytes(p, path == Path::kGemmTiled ? 16 : p.n);
    DeviceBuffer ws(ws_bytes);
    ASSERT_TRUE(ws.ok());
    GemmContext ctx{cublas.h, ws.get(), ws_bytes};
    HEXE_GPU_OK(gemm(p, ctx, nullptr));
  }
  HEXE_CUDA_OK(dy.download(y.data(), y.size() * 4));

  // The CPU reference product (float accumulation in k order over dequantize_row's weights).
  std::vector<float> ref(static_cast<size_t>(s.m * s.n));
  cpu::MatmulParams rp;
  rp.w = w.data();
  rp.w_type = type;
  rp.n = s.n;
  rp.k = k;
  rp.x = x.data();
  rp.m = s.m;
  rp.x_stride = x_stride;
  rp.y = ref.data();
  rp.y_stride = s.n;
  cpu::matmul_ref(rp);

  // Both results are within (k + 2) u32 sum|w x| of the exact product (float accumulation in
  // any order), the GPU one also within u_in sum|w x| for the operand rounding of its path.
  const double u_in = input_roundoff(type, path);
  for (int64_t t = 0; t < s.m; ++t) {
    for (int64_t j = 0; j < s.n; ++j) {
      double mag = 0;
      for (int64_t e = 0; e < k; ++e)
        mag += std::fabs(double(wf[size_t(j * k + e)]) * double(x[size_t(t * x_stride + e)]));
      const double tol = (u_in + 2.0 * double(k + 2) * kU32) * mag + 1e-30;
      ASSERT_NEAR(y[size_t(t * y_stride + j)], ref[size_t(t * s.n + j)], tol) << "token " << t << " row " << j;
    }
    for (int64_t j = s.n; j < y_stride; ++j)
      ASSERT_EQ(y[size_t(t * y_stride + j)], 12345.f) << "padding written: token " << t << " col " << j;
  }
}

TEST_P(GpuMatmul, QuantizedWeightsMatchReference) {
  HEXE_REQUIRE_GPU();
  const auto [type, path, shape] = GetParam();
  run_case(type, path, shape, Source::kQuantized);
}

// Random block bytes (every quant and packed-scale bit pattern) for the quantised types.
class GpuMatmulBits : public ::testing::TestWithParam<MatmulParam> {};
TEST_P(GpuMatmulBits, RandomBlocksMatchReference) {
  HEXE_REQUIRE_GPU();
  const auto [type, path, shape] = GetParam();
  run_case(type, path, shape, Source::kRandomBits);
}

std::string matmul_name(const ::testing::TestParamInfo<MatmulParam>& info) {
  const auto& [t, p, s] = info.param;
  return std::string(dtype_name(t)) + "_" + path_name(p) + "_m" + std::to_string(s.m) + "_n" +
         std::to_string(s.n) + "_kb" + std::to_string(s.k_blocks);
}

INSTANTIATE_TEST_SUITE_P(Gemv, GpuMatmul,
                         ::testing::Combine(::testing::ValuesIn(gpu_weight_types()), ::testing::Values(Path::kGemv),
                                            ::testing::Values(Shape{1, 1, 1}, Shape{1, 37, 3}, Shape{2, 33, 9},
                                                              Shape{3, 129, 2}, Shape{5, 7, 11},
                                                              Shape{8, 65, 4})),
                         matmul_name);

INSTANTIATE_TEST_SUITE_P(Gemm, GpuMatmul,
                         ::testing::Combine(::testing::ValuesIn(gpu_weight_types()),
                                            ::testing::Values(Path::kGemm, Path::kGemmTiled),
                                            ::testing::Values(Shape{9, 33, 3}, Shape{17, 70, 2},
                                                              Shape{64, 129, 5})),
                         matmul_name);

std::vector<DType> quantized_types() {
  std::vector<DType> v;
  for (DType t : gpu_weight_types())
    if (is_quantized(t)) v.push_back(t);
  return v;
}

INSTANTIATE_TEST_SUITE_P(Gemv, GpuMatmulBits,
                         ::testing::Combine(::testing::ValuesIn(quantized_types()), ::testing::Values(Path::kGemv),
                                            ::testing::Values(Shape{1, 37, 3}, Shape{3, 129, 2}, Shape{8, 65, 4})),
                         matmul_name);
INSTANTIATE_TEST_SUITE_P(Gemm, GpuMatmulBits,
                         ::testing::Combine(::testing::ValuesIn(quantized_types()),
                                            ::testing::Values(Path::kGemm, Path::kGemmTiled),
                                            ::testing::Values(Shape{17, 70, 2})),
                         matmul_name);

// Large decode-shaped GEMV: many chunks per lane, rows beyond one grid row of blocks.
TEST(GpuMatmulLarge, Q4KDecodeShape) {
  HEXE_REQUIRE_GPU();
  run_case(DType::Q4_K, Path::kGemv, Shape{1, 2048 + 3, 8}, Source::kQuantized);
  run_case(DType::Q6_K, Path::kGemv, Shape{4, 1000, 12}, Source::kRandomBits);
}

// Argument checks come back as statuses naming the constraint, before any launch (no GPU needed).
TEST(GpuMatmulArgs, RejectsBadShapesWithAReason) {
  MatmulParams p;
  p.w = reinterpret_cast<const void*>(uintptr_t(256));
  p.w_type = DType::Q4_K;
  p.n = 4;
  p.k = 100;
  p.x = reinterpret_cast<const float*>(uintptr_t(256));
  p.m = 1;
  p.x_stride = 256;
  p.y = reinterpret_cast<float*>(uintptr_t(256));
  p.y_stride = 4;
  Status s = gemv(p, nullptr);
  EXPECT_EQ(s.code, StatusCode::kInvalidArgument);
  EXPECT_NE(to_string(s).find("multiple of the weight type's block size"), std::string::npos) << to_string(s);
  p.k = 256;
  p.m = 9;
  s = gemv(p, nullptr);
  EXPECT_NE(to_string(s).find("m must be in 1..8"), std::string::npos) << to_string(s);
  p.w_type = DType::IQ2_XXS;
  p.m = 1;
  s = gemv(p, nullptr);
  EXPECT_NE(to_string(s).find("no GPU kernel"), std::string::npos) << to_string(s);
  p.w_type = DType::Q8_0;
  p.w = reinterpret_cast<const void*>(uintptr_t(258));
  s = gemv(p, nullptr);
  EXPECT_NE(to_string(s).find("aligned"), std::string::npos) << to_string(s);
  p.w = reinterpret_cast<const void*>(uintptr_t(256));
  p.m = 16;
  s = gemm(p, GemmContext{}, nullptr);
  EXPECT_NE(to_string(s).find("cublas is null"), std::string::npos) << to_string(s);
  EXPECT_FALSE(supports_weight_type(DType::Q2_K));
  EXPECT_TRUE(supports_weight_type(DType::Q5_K));
}

}  // namespace
}  // namespace hexe::gpu::test
