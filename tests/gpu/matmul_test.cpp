// GPU GEMV and GEMM against the CPU references for every weight type, ragged n, padded strides and
// several m; tolerances from the data. GEMM and the float GEMV against cpu::matmul_ref (sum |w x|
// over cpu::dequantize_row's weights); the integer GEMV (gemv_quantizes_activation types) against
// cpu::quantize_row'd activations and cpu::vec_dot_ref per row (sum |w xq| over the weights'
// scale and min terms and the dequantised activations).
#include <cmath>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include <cublas_v2.h>
#include <gtest/gtest.h>

#include "cpu_kernels/blocks.h"
#include "cpu_kernels/kernels.h"
#include "cpu_kernels/matmul.h"
#include "cpu_kernels/quant.h"
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

// |weight| split into the terms the integer dot scales separately: Q4_K/Q5_K's d*sc*q and
// dmin*m (each dequantised with the other F16 field zeroed), else |w|.
std::vector<double> weight_term_magnitudes(DType t, const std::vector<uint8_t>& w, int64_t n, int64_t k) {
  std::vector<double> out(size_t(n * k));
  const auto wf = dequantize_ref(t, w, n, k);
  if (t != DType::Q4_K && t != DType::Q5_K) {
    for (size_t i = 0; i < out.size(); ++i) out[i] = std::fabs(double(wf[i]));
    return out;
  }
  for (int zero_off : {0, 2}) {
    auto part = w;
    for (size_t off = 0; off < part.size(); off += info(t).block_bytes) part[off + size_t(zero_off)] = part[off + size_t(zero_off) + 1] = 0;
    const auto pf = dequantize_ref(t, part, n, k);
    for (size_t i = 0; i < out.size(); ++i) out[i] += std::fabs(double(pf[i]));
  }
  return out;
}

// The CPU engine's decode product: x quantised by cpu::quantize_row in the paired activation
// format, then vec_dot_ref per row. mag[t*n + j] = sum |w term| |dequantised activation|.
void quantized_activation_ref(DType type, const std::vector<uint8_t>& w, int64_t n, int64_t k, const float* x,
                              int64_t m, int64_t x_stride, std::vector<float>* ref, std::vector<double>* mag) {
  const DType at = cpu::paired_activation(type);
  const uint64_t rb = row_bytes(type, uint64_t(k));
  const auto terms = weight_term_magnitudes(type, w, n, k);
  std::vector<uint8_t> act(row_bytes(at, uint64_t(k)));
  std::vector<double> xq(static_cast<size_t>(k));
  ref->assign(size_t(m * n), 0.f);
  mag->assign(size_t(m * n), 0.0);
  for (int64_t t = 0; t < m; ++t) {
    cpu::quantize_row(at, x + t * x_stride, act.data(), k);
    for (int64_t e = 0; e < k; ++e) {
      if (at == DType::Q8_K) {
        const auto& b = reinterpret_cast<const cpu::BlockQ8_K*>(act.data())[e / 256];
        xq[size_t(e)] = std::fabs(double(b.d) * b.qs[e % 256]);
      } else {
        const auto& b = reinterpret_cast<const cpu::BlockQ8_0*>(act.data())[e / 32];
        xq[size_t(e)] = std::fabs(double(cpu::f16_to_f32(b.d)) * b.qs[e % 32]);
      }
    }
    for (int64_t j = 0; j < n; ++j) {
      (*ref)[size_t(t * n + j)] = cpu::vec_dot_ref(type, k, w.data() + rb * uint64_t(j), act.data());
      double s = 0;
      for (int64_t e = 0; e < k; ++e) s += terms[size_t(j * k + e)] * xq[size_t(e)];
      (*mag)[size_t(t * n + j)] = s;
    }
  }
}

void run_case(DType type, Path path, Shape s, Source src) {
  const int64_t block = is_quantized(type) ? info(type).block_elems : 32;
  const int64_t k = s.k_blocks * block + (is_quantized(type) ? 0 : (s.n % 3 == 0 ? 5 : 0));
  // GEMV: an odd x_stride for odd k_blocks (unaligned token rows: the scalar activation loads).
  const int64_t x_stride = k + (s.m % 2 ? 4 : 0) + (path == Path::kGemv && s.k_blocks % 2 ? 1 : 0);
  const int64_t y_stride = s.n + (s.m % 3 ? 3 : 0);
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

  if (path == Path::kGemv && gemv_quantizes_activation(type)) {
    // Same integers per block as vec_dot_ref; the float scaling and sums differ only in order:
    // both within (blocks + 16) u32 mag of the exact value of the reference's expression.
    std::vector<float> ref;
    std::vector<double> mag;
    quantized_activation_ref(type, w, s.n, k, x.data(), s.m, x_stride, &ref, &mag);
    for (int64_t t = 0; t < s.m; ++t) {
      for (int64_t j = 0; j < s.n; ++j) {
        const double tol = 2.0 * double(k / 32 + 16) * kU32 * mag[size_t(t * s.n + j)] + 1e-30;
        ASSERT_NEAR(y[size_t(t * y_stride + j)], ref[size_t(t * s.n + j)], tol) << "token " << t << " row " << j;
      }
      for (int64_t j = s.n; j < y_stride; ++j)
        ASSERT_EQ(y[size_t(t * y_stride + j)], 12345.f) << "padding written: token " << t << " col " << j;
    }
    return;
  }

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

// F32/F16/BF16 GEMV over both of its kernels (on a 132-SM GPU): a block per row (n < 528: the
// MoE routers, n x k = 128 x 2048 and DeepSeek's 256 x 7168, ragged n), a block per 2 rows
// (528 <= n < 2112) and 16-row blocks (n >= 2112); ragged k (n % 3 == 0: 8-element chunks off)
// and odd k_blocks (unaligned activation rows) included.
INSTANTIATE_TEST_SUITE_P(GemvPlain, GpuMatmul,
                         ::testing::Combine(::testing::Values(DType::F32, DType::F16, DType::BF16),
                                            ::testing::Values(Path::kGemv),
                                            ::testing::Values(Shape{1, 128, 64}, Shape{3, 128, 64}, Shape{8, 128, 64},
                                                              Shape{1, 256, 224}, Shape{3, 256, 224},
                                                              Shape{8, 256, 224}, Shape{1, 97, 64}, Shape{3, 97, 63},
                                                              Shape{8, 97, 64}, Shape{2, 99, 7}, Shape{3, 1001, 8},
                                                              Shape{8, 999, 5}, Shape{1, 4097, 2},
                                                              Shape{2, 4500, 4})),
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

// Integer GEMV: several k steps per warp with a ragged last one, more row groups than the
// capped grid has warps, and (Q8_0, k = 16384, m = 8) tokens split over two launches with over
// 48 KiB of shared memory each.
TEST(GpuMatmulLarge, IntegerGemvShapes) {
  HEXE_REQUIRE_GPU();
  run_case(DType::Q6_K, Path::kGemv, Shape{1, 513, 28}, Source::kQuantized);
  run_case(DType::Q5_K, Path::kGemv, Shape{2, 77, 9}, Source::kRandomBits);
  run_case(DType::Q4_K, Path::kGemv, Shape{7, 6000, 8}, Source::kRandomBits);
  run_case(DType::Q4_0, Path::kGemv, Shape{3, 300, 70}, Source::kQuantized);
  run_case(DType::Q8_0, Path::kGemv, Shape{8, 40, 512}, Source::kRandomBits);
}

// gemv_batched: entries of one shape, each with its own weights, tokens (m 1..8, mixed within a
// batch) and output rows, in one call; each entry's result equals gemv() on it alone, bit for bit
// (the same warp computes a row the same way), and rows past an entry's m stay untouched.
TEST(GpuGemvBatched, EachEntryEqualsItsOwnGemv) {
  HEXE_REQUIRE_GPU();
  for (DType type : {DType::Q4_K, DType::Q6_K, DType::Q8_0, DType::Q4_0, DType::Q5_K, DType::Q5_0, DType::F16}) {
    const int64_t n = 300, k = 512;
    for (std::vector<int64_t> ms : {std::vector<int64_t>{1, 1, 1, 1, 1, 1, 1, 1}, {3, 1, 2}, {5, 8, 1, 4}}) {
      const int count = int(ms.size());
      int64_t rows = 0;
      for (int64_t m : ms) rows += m;
      const uint64_t rb = row_bytes(type, uint64_t(k));
      std::vector<uint8_t> w;
      for (int i = 0; i < count; ++i) {
        const auto wi = make_weights(type, n, k, Source::kQuantized, uint64_t(100 * i + count));
        w.insert(w.end(), wi.begin(), wi.end());
      }
      const int64_t xs = k + 4, ys = n + 3;
      const auto x = random_floats(size_t(rows * xs), uint64_t(count), -2.f, 2.f);
      DeviceBuffer dw(w.size()), dx(x.size() * 4), dy(size_t(rows * ys) * 4), dref(size_t(rows * ys) * 4);
      HEXE_CUDA_OK(dw.upload(w.data(), w.size()));
      HEXE_CUDA_OK(dx.upload(x.data(), x.size() * 4));
      const std::vector<float> poison(size_t(rows * ys), 777.f);
      HEXE_CUDA_OK(dy.upload(poison.data(), poison.size() * 4));
      HEXE_CUDA_OK(dref.upload(poison.data(), poison.size() * 4));
      GemvBatch b;
      b.w_type = type;
      b.n = n;
      b.k = k;
      b.x_stride = xs;
      b.y_stride = ys;
      b.count = count;
      int64_t r0 = 0;
      for (int i = 0; i < count; ++i) {
        const auto* wi = static_cast<const uint8_t*>(dw.get()) + rb * uint64_t(n) * uint64_t(i);
        b.e[i] = {wi, dx.get<float>() + r0 * xs, dy.get<float>() + r0 * ys, ms[size_t(i)]};
        MatmulParams p;
        p.w = wi;
        p.w_type = type;
        p.n = n;
        p.k = k;
        p.x = dx.get<float>() + r0 * xs;
        p.m = ms[size_t(i)];
        p.x_stride = xs;
        p.y = dref.get<float>() + r0 * ys;
        p.y_stride = ys;
        HEXE_GPU_OK(gemv(p, nullptr));
        r0 += ms[size_t(i)];
      }
      HEXE_GPU_OK(gemv_batched(b, nullptr));
      std::vector<float> got(size_t(rows * ys)), want(got.size());
      HEXE_CUDA_OK(dy.download(got.data(), got.size() * 4));
      HEXE_CUDA_OK(dref.download(want.data(), want.size() * 4));
      for (size_t i = 0; i < got.size(); ++i)
        ASSERT_EQ(got[i], want[i]) << dtype_name(type) << " batch of " << count << ", element " << i;
    }
  }
}

// gemv_batched with entries of their own widths and output strides over one input (an attention
// layer's q, k and v projections in one launch): each entry equals gemv() on it alone, bit for
// bit, and nothing past an entry's n columns is written.
TEST(GpuGemvBatched, EntriesOfTheirOwnWidth) {
  HEXE_REQUIRE_GPU();
  for (DType type : {DType::Q4_K, DType::Q6_K, DType::Q8_0, DType::F16}) {
    const int64_t k = 768;
    const std::vector<int64_t> ns = {300, 37, 64};
    for (int64_t m : {1, 3, 8}) {
      const int count = int(ns.size());
      std::vector<uint8_t> w;
      std::vector<uint64_t> w_at;
      std::vector<int64_t> ys, y_at;
      int64_t y_total = 0;
      for (int i = 0; i < count; ++i) {
        w_at.push_back(w.size());
        const auto wi = make_weights(type, ns[size_t(i)], k, Source::kQuantized, uint64_t(31 * i + m));
        w.insert(w.end(), wi.begin(), wi.end());
        w.resize((w.size() + 255) / 256 * 256);  // each matrix 256-byte aligned, as GGUF and cudaMalloc give
        ys.push_back(ns[size_t(i)] + 2 * i);  // dense, then padded strides
        y_at.push_back(y_total);
        y_total += m * ys.back();
      }
      const auto x = random_floats(size_t(m * k), uint64_t(m), -2.f, 2.f);
      DeviceBuffer dw(w.size()), dx(x.size() * 4), dy(size_t(y_total) * 4), dref(size_t(y_total) * 4);
      HEXE_CUDA_OK(dw.upload(w.data(), w.size()));
      HEXE_CUDA_OK(dx.upload(x.data(), x.size() * 4));
      const std::vector<float> poison(size_t(y_total), 777.f);
      HEXE_CUDA_OK(dy.upload(poison.data(), poison.size() * 4));
      HEXE_CUDA_OK(dref.upload(poison.data(), poison.size() * 4));
      GemvBatch b;
      b.w_type = type;
      b.n = 1;  // every entry names its own
      b.k = k;
      b.x_stride = k;
      b.y_stride = 1;
      b.count = count;
      for (int i = 0; i < count; ++i) {
        const auto* wi = static_cast<const uint8_t*>(dw.get()) + w_at[size_t(i)];
        float* yi = dy.get<float>() + y_at[size_t(i)];
        b.e[i] = {wi, dx.get<float>(), yi, m, ns[size_t(i)], ys[size_t(i)]};
        MatmulParams p;
        p.w = wi;
        p.w_type = type;
        p.n = ns[size_t(i)];
        p.k = k;
        p.x = dx.get<float>();
        p.m = m;
        p.x_stride = k;
        p.y = dref.get<float>() + y_at[size_t(i)];
        p.y_stride = ys[size_t(i)];
        HEXE_GPU_OK(gemv(p, nullptr));
      }
      HEXE_GPU_OK(gemv_batched(b, nullptr));
      std::vector<float> got(static_cast<size_t>(y_total)), want(got.size());
      HEXE_CUDA_OK(dy.download(got.data(), got.size() * 4));
      HEXE_CUDA_OK(dref.download(want.data(), want.size() * 4));
      for (size_t i = 0; i < got.size(); ++i)
        ASSERT_EQ(got[i], want[i]) << dtype_name(type) << " m " << m << ", element " << i;
    }
  }
}

// gemv_batched as an MLA layer uses it: kGemvBatchMax per-head matrices, each head's input and
// output a slice of one row (x + h k, rows H k apart; y + h n, rows H n apart). Every weight
// type, including the float-path ones, which the batch now runs in one launch too; n and k pick
// each float kernel (small-n with 1 and 2 rows per block where k >= 256, and the warp-per-2-rows
// one, which k = 128 always takes). Each head equals gemv() on it alone, bit for bit.
TEST(GpuGemvBatched, PerHeadSlicesOfOneRow) {
  HEXE_REQUIRE_GPU();
  constexpr int H = kGemvBatchMax;
  for (DType type : {DType::F32, DType::F16, DType::BF16, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0,
                     DType::Q4_K}) {
    const bool kquant = info(type).block_elems == 256;
    for (int64_t k : {int64_t(128), int64_t(256)}) {  // 128: MLA k_b (nope)
      if (kquant && k == 128) continue;
      for (int64_t n : {int64_t(100), int64_t(1000), int64_t(3000)}) {
        for (int64_t m : {int64_t(1), int64_t(3), int64_t(8)}) {
          if ((n == 3000 || k == 256) && m == 3) continue;  // (time: every kernel and M class is covered without it)
          const uint64_t rb = row_bytes(type, uint64_t(k));
          const auto w = make_weights(type, n * H, k, Source::kQuantized, uint64_t(n + m));
          const auto x = random_floats(size_t(m * H * k), uint64_t(m), -2.f, 2.f);
          const size_t y_elems = size_t(m * H * n);
          DeviceBuffer dw(w.size()), dx(x.size() * 4), dy(y_elems * 4), dref(y_elems * 4);
          HEXE_CUDA_OK(dw.upload(w.data(), w.size()));
          HEXE_CUDA_OK(dx.upload(x.data(), x.size() * 4));
          const std::vector<float> poison(y_elems, 777.f);
          HEXE_CUDA_OK(dy.upload(poison.data(), poison.size() * 4));
          HEXE_CUDA_OK(dref.upload(poison.data(), poison.size() * 4));
          GemvBatch b;
          b.w_type = type;
          b.n = n;
          b.k = k;
          b.x_stride = H * k;
          b.y_stride = H * n;
          b.count = H;
          for (int h = 0; h < H; ++h) {
            const auto* wh = static_cast<const uint8_t*>(dw.get()) + rb * uint64_t(n) * uint64_t(h);
            b.e[h] = {wh, dx.get<float>() + h * k, dy.get<float>() + h * n, m};
            MatmulParams p;
            p.w = wh;
            p.w_type = type;
            p.n = n;
            p.k = k;
            p.x = dx.get<float>() + h * k;
            p.m = m;
            p.x_stride = H * k;
            p.y = dref.get<float>() + h * n;
            p.y_stride = H * n;
            HEXE_GPU_OK(gemv(p, nullptr));
          }
          HEXE_GPU_OK(gemv_batched(b, nullptr));
          std::vector<float> got(y_elems), want(y_elems);
          HEXE_CUDA_OK(dy.download(got.data(), got.size() * 4));
          HEXE_CUDA_OK(dref.download(want.data(), want.size() * 4));
          for (size_t i = 0; i < got.size(); ++i)
            ASSERT_EQ(got[i], want[i]) << dtype_name(type) << " n " << n << " k " << k << " m " << m << ", element " << i;
        }
      }
    }
  }
}

// accumulate: y += x . W^T. The GEMV kernels (integer, float, small-n float) give
// y0 + gemv(x) bit for bit; the GEMM (cuBLAS beta = 1) within a few roundings of it.
TEST(GpuMatmulAccumulate, AddsIntoTheOutput) {
  HEXE_REQUIRE_GPU();
  CublasHandle cublas;
  ASSERT_NE(cublas.h, nullptr);
  struct Case {
    DType type;
    int64_t m, n, k;
  };
  // Q4_K/Q6_K/Q8_0: the integer GEMV; Q5_0 and F16 with many rows: the float GEMV; F32 with few
  // rows: the small-n kernel; m > 8: the GEMM (F32, F16, dequantised Q4_K tiles).
  for (const Case c : {Case{DType::Q4_K, 1, 300, 512}, Case{DType::Q6_K, 5, 77, 256}, Case{DType::Q8_0, 8, 40, 1024},
                       Case{DType::Q5_0, 2, 3000, 96}, Case{DType::F16, 1, 4000, 64}, Case{DType::F32, 3, 9, 2048},
                       Case{DType::F32, 17, 70, 64}, Case{DType::F16, 12, 33, 128}, Case{DType::Q4_K, 20, 50, 512}}) {
    const auto w = make_weights(c.type, c.n, c.k, Source::kQuantized, uint64_t(c.n + c.k));
    const auto x = random_floats(size_t(c.m * c.k), uint64_t(c.m), -1.f, 1.f);
    const auto y0 = random_floats(size_t(c.m * c.n), uint64_t(c.n), -4.f, 4.f);
    DeviceBuffer dw(w.size()), dx(x.size() * 4), dacc(y0.size() * 4), dplain(y0.size() * 4);
    HEXE_CUDA_OK(dw.upload(w.data(), w.size()));
    HEXE_CUDA_OK(dx.upload(x.data(), x.size() * 4));
    HEXE_CUDA_OK(dacc.upload(y0.data(), y0.size() * 4));
    MatmulParams p;
    p.w = dw.get();
    p.w_type = c.type;
    p.n = c.n;
    p.k = c.k;
    p.x = dx.get<float>();
    p.m = c.m;
    p.x_stride = c.k;
    p.y_stride = c.n;
    GemmContext ctx;
    ctx.cublas = cublas.h;
    p.y = dplain.get<float>();
    ctx.workspace_bytes = gemm_workspace_bytes(p, c.n);
    DeviceBuffer ws(ctx.workspace_bytes + 256);
    ctx.workspace = ws.get();
    HEXE_GPU_OK(matmul(p, ctx, nullptr));
    p.y = dacc.get<float>();
    p.accumulate = true;
    HEXE_GPU_OK(matmul(p, ctx, nullptr));
    std::vector<float> acc(y0.size()), plain(y0.size());
    HEXE_CUDA_OK(dacc.download(acc.data(), acc.size() * 4));
    HEXE_CUDA_OK(dplain.download(plain.data(), plain.size() * 4));
    for (size_t i = 0; i < acc.size(); ++i) {
      const float want = y0[i] + plain[i];
      if (c.m <= kGemvMaxTokens) {
        ASSERT_EQ(acc[i], want) << dtype_name(c.type) << " m " << c.m << ", element " << i;
      } else {
        ASSERT_NEAR(acc[i], want, 4 * kU32 * (std::fabs(y0[i]) + std::fabs(plain[i])) + 1e-6)
            << dtype_name(c.type) << " m " << c.m << ", element " << i;
      }
    }
  }
}

// rms_norm_gemv: one launch for small float matrices (a router; 1 and 2 rows per block), the two
// calls otherwise (a Q4_K matrix, many rows, in place): the normed rows, their copy and the GEMV's
// output are rms_norm's and gemv's, bit for bit.
TEST(GpuRmsNormGemv, EqualsTheNormThenTheGemv) {
  HEXE_REQUIRE_GPU();
  struct Case {
    DType type;
    int64_t m, n, k;
    bool weight, in_place;
  };
  for (const Case c : {Case{DType::F32, 1, 128, 2048, true, false}, Case{DType::F32, 3, 64, 768, true, false},
                       Case{DType::F16, 8, 300, 512, false, false}, Case{DType::BF16, 2, 600, 256, true, false},
                       Case{DType::F32, 5, 70, 1000, true, false}, Case{DType::Q4_K, 1, 128, 2048, true, false},
                       Case{DType::F32, 1, 5000, 256, true, false}, Case{DType::F32, 2, 128, 512, true, true}}) {
    const auto w = make_weights(c.type, c.n, c.k, Source::kQuantized, uint64_t(c.n * 3 + c.k));
    const auto x = random_floats(size_t(c.m * c.k), uint64_t(c.k), -3.f, 3.f);
    const auto nw = random_floats(size_t(c.k), 7, 0.5f, 1.5f);
    DeviceBuffer dw(w.size()), dnw(nw.size() * 4), dx(x.size() * 4), dx2(x.size() * 4), dh(x.size() * 4),
        dcopy(x.size() * 4), dh2(x.size() * 4), dy(size_t(c.m * c.n) * 4), dy2(size_t(c.m * c.n) * 4);
    HEXE_CUDA_OK(dw.upload(w.data(), w.size()));
    HEXE_CUDA_OK(dnw.upload(nw.data(), nw.size() * 4));
    HEXE_CUDA_OK(dx.upload(x.data(), x.size() * 4));
    HEXE_CUDA_OK(dx2.upload(x.data(), x.size() * 4));
    RmsNormParams np{dx.get<float>(), c.weight ? dnw.get<float>() : nullptr, c.in_place ? dx.get<float>() : dh.get<float>(),
                     c.m, c.k, 1e-6f};
    np.copy = dcopy.get<float>();
    MatmulParams p;
    p.w = dw.get();
    p.w_type = c.type;
    p.n = c.n;
    p.k = c.k;
    p.m = c.m;
    p.x_stride = c.k;
    p.y = dy.get<float>();
    p.y_stride = c.n;
    HEXE_GPU_OK(rms_norm_gemv(np, p, nullptr));
    // The reference: the two calls on a second copy of x.
    RmsNormParams rp = np;
    rp.src = dx2.get<float>();
    rp.dst = c.in_place ? dx2.get<float>() : dh2.get<float>();
    rp.copy = nullptr;
    HEXE_GPU_OK(rms_norm(rp, nullptr));
    p.x = rp.dst;
    p.y = dy2.get<float>();
    HEXE_GPU_OK(gemv(p, nullptr));
    std::vector<float> h(x.size()), h2(x.size()), copy(x.size()), y(size_t(c.m * c.n)), y2(y.size());
    HEXE_CUDA_OK((c.in_place ? dx : dh).download(h.data(), h.size() * 4));
    HEXE_CUDA_OK((c.in_place ? dx2 : dh2).download(h2.data(), h2.size() * 4));
    HEXE_CUDA_OK(dcopy.download(copy.data(), copy.size() * 4));
    HEXE_CUDA_OK(dy.download(y.data(), y.size() * 4));
    HEXE_CUDA_OK(dy2.download(y2.data(), y2.size() * 4));
    EXPECT_EQ(h, h2) << dtype_name(c.type) << " n " << c.n << ": normed rows";
    EXPECT_EQ(copy, h2) << dtype_name(c.type) << " n " << c.n << ": their copy";
    EXPECT_EQ(y, y2) << dtype_name(c.type) << " n " << c.n << ": the GEMV";
  }
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
