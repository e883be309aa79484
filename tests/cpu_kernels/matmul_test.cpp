// matmul at every compiled tier x format against (a) the scalar tier, which shares the integer
// arithmetic, and (b) matmul_ref on the activations the kernel actually sees (x after the round
// trip through the paired activation format). Tolerances scale with sum |w||x|.
#include <cfloat>
#include <sstream>

#include "cpu_kernels/dispatch.h"
#include "cpu_kernels/kernels.h"
#include "cpu_kernels/matmul.h"
#include "cpu_kernels/repack.h"
#include "cpu_kernels/thread_pool.h"
#include "tests/cpu_kernels/test_util.h"

namespace hexe::cpu {
namespace {

using Param = std::tuple<Isa, DType>;

std::string param_name(const ::testing::TestParamInfo<Param>& i) {
  return std::string(isa_name(std::get<0>(i.param))) + "_" + std::string(dtype_name(std::get<1>(i.param)));
}

struct Shape { int64_t m, n, k; };

std::vector<Shape> shapes_for(DType t) {
  const int64_t b = info(t).block_elems;
  // Float formats: k = 64 and 160 are whole 32-element steps of the AMX-BF16 tile (m = 33 runs it).
  std::vector<int64_t> ks = b == 1 ? std::vector<int64_t>{1, 7, 33, 64, 100, 160, 257} : std::vector<int64_t>{b, 3 * b, 17 * b};
  if (b == 256) ks = {256, 768, 1280};
  std::vector<Shape> s;
  for (int64_t m : {1, 2, 3, 7, 33})
    for (int64_t n : {1, 17, 35})
      for (int64_t k : ks) s.push_back({m, n, k});
  return s;
}

class Matmul : public ::testing::TestWithParam<Param> {};

TEST_P(Matmul, MatchesScalarTierAndReference) {
  const auto [tier, type] = GetParam();
  HEXE_SKIP_IF_TIER_ABSENT(tier);
  std::mt19937 rng(1234 + int(type));
  ThreadPool pool(2);
  const DType act = paired_activation(type);
  for (const Shape& s : shapes_for(type)) {
    // Misaligned, padded activations and outputs: x starts one float in, rows k+1 apart.
    const int64_t xs = s.k + 1, ys = s.n + 3;
    auto xbuf = test::random_floats(rng, size_t(s.m * xs + 1));
    const float* x = xbuf.data() + 1;
    const auto w = test::random_weights(rng, type, s.n, s.k);
    std::vector<float> y(size_t(s.m * ys), -7.f), y_scalar(y), y_ref(y);

    MatmulParams p;
    p.w = w.data(); p.w_type = type; p.n = s.n; p.k = s.k;
    p.x = x; p.m = s.m; p.x_stride = xs; p.y = y.data(); p.y_stride = ys;
    const bool threaded = (s.m + s.n) % 2 == 0;
    matmul_at(p, tier, threaded ? &pool : nullptr);
    MatmulParams ps = p;
    ps.y = y_scalar.data();
    matmul_at(ps, Isa::Scalar, nullptr);

    // The activations after the paired format's round trip, and sum |w||x'| per output.
    std::vector<float> xq(static_cast<size_t>(s.m * s.k)), wf(static_cast<size_t>(s.n * s.k));
    std::vector<uint8_t> tmp(row_bytes(act, uint64_t(s.k)));
    for (int64_t i = 0; i < s.m; ++i) {
      quantize_row(act, x + i * xs, tmp.data(), s.k);
      dequantize_row(act, tmp.data(), xq.data() + i * s.k, s.k);
    }
    const size_t wrb = row_bytes(type, uint64_t(s.k));
    for (int64_t j = 0; j < s.n; ++j) dequantize_row(type, w.data() + j * wrb, wf.data() + j * s.k, s.k);
    MatmulParams pr = p;
    pr.x = xq.data(); pr.x_stride = s.k; pr.y = y_ref.data();
    matmul_ref(pr);

    std::ostringstream name;
    name << "matmul/" << isa_name(tier) << "/" << dtype_name(type) << " m=" << s.m << " n=" << s.n
         << " k=" << s.k << (threaded ? " threads=2" : "") << " x misaligned by 1 float";
    for (int64_t i = 0; i < s.m; ++i)
      for (int64_t j = 0; j < s.n; ++j) {
        double mag = 0;
        for (int64_t t = 0; t < s.k; ++t) mag += std::fabs(double(xq[size_t(i * s.k + t)]) * wf[size_t(j * s.k + t)]);
        const double tol = 64.0 * FLT_EPSILON * mag + 1e-30;
        const float got = y[size_t(i * ys + j)];
        ASSERT_NEAR(got, y_scalar[size_t(i * ys + j)], tol) << name.str() << " at (" << i << "," << j << ") vs scalar tier";
        ASSERT_NEAR(got, y_ref[size_t(i * ys + j)], tol) << name.str() << " at (" << i << "," << j << ") vs matmul_ref";
      }
    for (int64_t i = 0; i < s.m; ++i)  // padding between rows untouched
      for (int64_t j = s.n; j < ys && i * ys + j < int64_t(y.size()); ++j)
        ASSERT_EQ(y[size_t(i * ys + j)], -7.f) << name.str() << " wrote past n";
  }
}

// End to end against float x (no round trip): the error of quantising the activation is bounded
// by half a step of each activation block: sum_i |w_i| * (amax_block(i) / 127) / 2.
TEST_P(Matmul, ActivationQuantisationErrorBounded) {
  const auto [tier, type] = GetParam();
  HEXE_SKIP_IF_TIER_ABSENT(tier);
  std::mt19937 rng(99 + int(type));
  const int64_t b = info(paired_activation(type)).block_elems;
  const int64_t m = 3, n = 9, k = info(type).block_elems == 1 ? 96 : 512;
  const auto x = test::random_floats(rng, size_t(m * k));
  const auto w = test::random_weights(rng, type, n, k);
  std::vector<float> y(static_cast<size_t>(m * n)), yr(y), wf(static_cast<size_t>(k));
  MatmulParams p;
  p.w = w.data(); p.w_type = type; p.n = n; p.k = k;
  p.x = x.data(); p.m = m; p.x_stride = k; p.y = y.data(); p.y_stride = n;
  matmul_at(p, tier, nullptr);
  p.y = yr.data();
  matmul_ref(p);
  const size_t wrb = row_bytes(type, uint64_t(k));
  for (int64_t j = 0; j < n; ++j) {
    dequantize_row(type, w.data() + j * wrb, wf.data(), k);
    for (int64_t i = 0; i < m; ++i) {
      double bound = 0, mag = 0;
      for (int64_t t0 = 0; t0 < k; t0 += b) {
        float amax = 0;
        for (int64_t t = t0; t < t0 + b; ++t) amax = std::max(amax, std::fabs(x[size_t(i * k + t)]));
        for (int64_t t = t0; t < t0 + b; ++t) {
          const double aw = std::fabs(double(wf[size_t(t)]));
          bound += b == 1 ? 0.0 : aw * (amax / 127.0) * 0.5 * 1.01 + aw * amax * 1e-3;  // + f16 scale rounding
          mag += aw * std::fabs(x[size_t(i * k + t)]);
        }
      }
      ASSERT_NEAR(y[size_t(i * n + j)], yr[size_t(i * n + j)], bound + 64 * FLT_EPSILON * mag)
          << "matmul/" << isa_name(tier) << "/" << dtype_name(type) << " m=" << m << " n=" << n << " k=" << k;
    }
  }
}

// Decode (m = 1) splits n into items sized by n and the thread count (up to 1024 rows, at least
// eight per thread): every row is computed once and lands in its place, whatever the split,
// with ragged n, in both layouts, against matmul_ref on the GGUF rows.
TEST(MatmulDecode, LargeRaggedNCoversEveryRowOnce) {
  std::mt19937 rng(77);
  const int64_t k = 256;
  for (DType type : {DType::Q8_0, DType::Q4_K, DType::Q6_K}) {
    const DType act = paired_activation(type);
    for (int64_t n : {int64_t(1000), int64_t(3001), int64_t(20011)}) {
      const auto w = test::random_weights(rng, type, n, k);
      const auto x = test::random_floats(rng, size_t(k));
      std::vector<float> xq(static_cast<size_t>(k)), wf(static_cast<size_t>(k)), y_ref(static_cast<size_t>(n));
      std::vector<uint8_t> tmp(row_bytes(act, uint64_t(k)));
      quantize_row(act, x.data(), tmp.data(), k);
      dequantize_row(act, tmp.data(), xq.data(), k);
      MatmulParams pr;
      pr.w = w.data(); pr.w_type = type; pr.n = n; pr.k = k;
      pr.x = xq.data(); pr.m = 1; pr.x_stride = k; pr.y = y_ref.data(); pr.y_stride = n;
      matmul_ref(pr);
      const size_t wrb = row_bytes(type, uint64_t(k));
      std::vector<double> mag(static_cast<size_t>(n));
      for (int64_t j = 0; j < n; ++j) {
        dequantize_row(type, w.data() + size_t(j) * wrb, wf.data(), k);
        for (int64_t t = 0; t < k; ++t) mag[size_t(j)] += std::fabs(double(xq[size_t(t)]) * wf[size_t(t)]);
      }
      const bool rows16 = rows16_pays(type, k, active_isa());  // a SIMD Rows16 tile here
      PackedWeights packed;
      if (rows16) packed = repack_for_decode(type, n, k, w.data(), wrb);
      for (const WeightLayout layout : {WeightLayout::Gguf, WeightLayout::Rows16}) {
        if (layout == WeightLayout::Rows16 && !rows16) continue;
        for (int threads : {1, 2, 3}) {
          ThreadPool pool(threads);
          std::vector<float> y(size_t(n + 5), -7.f);
          MatmulParams p = pr;
          p.w = layout == WeightLayout::Rows16 ? static_cast<const void*>(packed.data()) : w.data();
          p.w_layout = layout;
          p.x = x.data();
          p.y = y.data();
          matmul(p, pool);
          for (int64_t j = 0; j < n; ++j)
            ASSERT_NEAR(y[size_t(j)], y_ref[size_t(j)], 64.0 * FLT_EPSILON * mag[size_t(j)] + 1e-30)
                << dtype_name(type) << " " << layout_name(layout) << " n=" << n << " threads=" << threads << " row " << j;
          for (int64_t j = n; j < n + 5; ++j) ASSERT_EQ(y[size_t(j)], -7.f) << "wrote past n=" << n;
        }
      }
    }
  }
}

// matmul_many runs several matmuls' items in one dispatch: every y must be exactly matmul()'s
// (same kernels; decode items sized by all the jobs' bytes, not each job's, so their row ranges
// differ), whatever the mix of formats, layouts, shapes and inputs, and nothing written outside them.
TEST(MatmulMany, EachOutputEqualsItsOwnMatmul) {
  std::mt19937 rng(91);
  struct Spec {
    DType type;
    int64_t n, k, m;
    bool rows16;
  };
  // rows16: a Rows16 copy where this tier has a SIMD tile for it (rows16_pays).
  const std::vector<Spec> specs = {{DType::Q4_K, 1000, 512, 1, true}, {DType::Q6_K, 77, 256, 1, true},
                                   {DType::F32, 130, 96, 1, false},  {DType::Q8_0, 4096, 64, 1, false},
                                   {DType::Q4_K, 48, 256, 3, false}, {DType::Q8_0, 35, 128, 0, true}};
  std::vector<std::vector<uint8_t>> w;
  std::vector<PackedWeights> packed(specs.size());
  std::vector<std::vector<float>> x, y_one, y_many;
  std::vector<MatmulParams> ps;
  for (size_t i = 0; i < specs.size(); ++i) {
    const Spec& sp = specs[i];
    w.push_back(test::random_weights(rng, sp.type, sp.n, sp.k));
    x.push_back(test::random_floats(rng, size_t(std::max<int64_t>(1, sp.m) * sp.k)));
    y_one.emplace_back(size_t(std::max<int64_t>(1, sp.m) * sp.n + 3), -7.f);
    MatmulParams p;
    p.w = w.back().data();
    p.w_type = sp.type;
    if (sp.rows16 && rows16_pays(sp.type, sp.k, active_isa())) {
      packed[i] = repack_for_decode(sp.type, sp.n, sp.k, w.back().data(), row_bytes(sp.type, uint64_t(sp.k)));
      p.w = packed[i].data();
      p.w_layout = WeightLayout::Rows16;
    }
    p.n = sp.n; p.k = sp.k; p.x = x.back().data(); p.m = sp.m; p.x_stride = sp.k; p.y_stride = sp.n;
    ps.push_back(p);
  }
  y_many = y_one;
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (size_t i = 0; i < specs.size(); ++i) {
      std::fill(y_one[i].begin(), y_one[i].end(), -7.f);
      std::fill(y_many[i].begin(), y_many[i].end(), -7.f);
      MatmulParams p = ps[i];
      p.y = y_one[i].data();
      matmul(p, pool);
      ps[i].y = y_many[i].data();
    }
    matmul_many(ps, pool);
    for (size_t i = 0; i < specs.size(); ++i)
      for (size_t j = 0; j < y_one[i].size(); ++j)
        ASSERT_EQ(y_many[i][j], y_one[i][j]) << "matmul " << i << " (" << dtype_name(specs[i].type) << ") element " << j
                                             << " threads " << threads;
    // Nothing past each y, and the m = 0 entry untouched.
    for (size_t i = 0; i < specs.size(); ++i) ASSERT_EQ(y_many[i].back(), -7.f) << "matmul " << i;
    ASSERT_EQ(y_many.back()[0], -7.f);
  }
  ThreadPool pool(2);
  matmul_many({}, pool);  // nothing to do
}

INSTANTIATE_TEST_SUITE_P(TiersXFormats, Matmul,
                         ::testing::Combine(::testing::ValuesIn(test::all_tiers()),
                                            ::testing::ValuesIn(test::computable_types())),
                         param_name);

}  // namespace
}  // namespace hexe::cpu
