// The oneDNN route of matmul (prefill-sized F32/F16/BF16): it is taken where onednn_wanted says,
// and its results match matmul_ref within the float tiles' tolerance, with ragged shapes and
// padded, misaligned strides.
#include <cfloat>
#include <sstream>

#include "cpu_kernels/dispatch.h"
#include "cpu_kernels/matmul.h"
#include "cpu_kernels/onednn_matmul.h"
#include "cpu_kernels/quant.h"
#include "cpu_kernels/thread_pool.h"
#include "tests/cpu_kernels/test_util.h"

namespace hexe::cpu {
namespace {

TEST(OneDnnMatmul, WantedOnlyForPrefillSizedFloatWeightsOnVectorTiers) {
  MatmulParams p;
  p.n = 64; p.k = 256;
  p.w_type = DType::F32; p.m = kOneDnnMinRowsF32;
  EXPECT_TRUE(onednn_wanted(p, Isa::Avx2));
  EXPECT_FALSE(onednn_wanted(p, Isa::Scalar)) << "the scalar reference tier must stay ours";
  p.m = kOneDnnMinRowsF32 - 1;
  EXPECT_FALSE(onednn_wanted(p, Isa::Avx512)) << "decode-sized calls stream on our tiles";
  p.w_type = DType::F16; p.m = kOneDnnMinRowsWidened;
  EXPECT_TRUE(onednn_wanted(p, Isa::Avx2));
  p.m = kOneDnnMinRowsWidened - 1;
  EXPECT_FALSE(onednn_wanted(p, Isa::Avx2));
  p.w_type = DType::Q8_0; p.m = 512;
  EXPECT_FALSE(onednn_wanted(p, Isa::Avx512)) << "quantised weights keep the int8 tiles";
  p.w_type = DType::F32; p.w_layout = WeightLayout::Rows16;
  EXPECT_FALSE(onednn_wanted(p, Isa::Avx512));
}

// threads: 2, and 6 (f32 weights of few columns are split by rows of x too: 3 x 2 blocks for
// n = 130, m = 100).
class OneDnnShapes : public ::testing::TestWithParam<int> {};

TEST_P(OneDnnShapes, MatchReferenceOnRaggedStridedShapes) {
  std::mt19937 rng(4321);
  ThreadPool pool(GetParam());
  struct Shape { DType t; int64_t m, n, k; };
  const Shape shapes[] = {{DType::F32, 16, 1, 1},    {DType::F32, 17, 35, 33},   {DType::F32, 40, 70, 257},
                          {DType::F32, 100, 130, 96}, {DType::F32, 33, 128, 64},
                          {DType::F16, 128, 17, 64}, {DType::F16, 131, 35, 100}, {DType::BF16, 130, 33, 160},
                          {DType::BF16, 129, 1, 7}};
  for (const Shape& s : shapes) {
    const int64_t xs = s.k + 3, ys = s.n + 5;  // padded rows; x starts one float in
    auto xbuf = test::random_floats(rng, size_t(s.m * xs + 1));
    const auto w = test::random_weights(rng, s.t, s.n, s.k);
    std::vector<float> y(size_t(s.m * ys), -7.f), y_ref(y);
    MatmulParams p;
    p.w = w.data(); p.w_type = s.t; p.n = s.n; p.k = s.k;
    p.x = xbuf.data() + 1; p.m = s.m; p.x_stride = xs; p.y = y.data(); p.y_stride = ys;
    std::ostringstream name;
    name << dtype_name(s.t) << " m=" << s.m << " n=" << s.n << " k=" << s.k;
    ASSERT_TRUE(onednn_matmul(p, pool)) << name.str() << ": oneDNN refused the shapes";
    MatmulParams pr = p;
    pr.y = y_ref.data();
    matmul_ref(pr);
    std::vector<float> wf(size_t(s.n * s.k));
    const size_t rb = row_bytes(s.t, uint64_t(s.k));
    for (int64_t j = 0; j < s.n; ++j) dequantize_row(s.t, w.data() + j * rb, wf.data() + j * s.k, s.k);
    for (int64_t i = 0; i < s.m; ++i) {
      for (int64_t j = 0; j < s.n; ++j) {
        double mag = 0;
        for (int64_t t = 0; t < s.k; ++t) mag += std::fabs(double(p.x[i * xs + t]) * wf[size_t(j * s.k + t)]);
        ASSERT_NEAR(y[size_t(i * ys + j)], y_ref[size_t(i * ys + j)], 64.0 * FLT_EPSILON * mag + 1e-30)
            << name.str() << " at (" << i << "," << j << ")";
      }
      for (int64_t j = s.n; j < ys && i * ys + j < int64_t(y.size()); ++j)
        ASSERT_EQ(y[size_t(i * ys + j)], -7.f) << name.str() << " wrote past n";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, OneDnnShapes, ::testing::Values(2, 6));

}  // namespace
}  // namespace hexe::cpu
