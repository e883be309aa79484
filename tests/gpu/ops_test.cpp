// GPU RMSNorm, RoPE, SwiGLU and routing against the CPU reference (cpu_kernels/ops.h) on ragged shapes.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cpu_kernels/ops.h"
#include "gpu_kernels/ops.h"
#include "tests/gpu/gpu_test_util.h"

namespace hexe::gpu::test {
namespace {

std::vector<float> run_rms_norm(const std::vector<float>& src, const std::vector<float>* weight, int64_t rows,
                                int64_t n, float eps, bool in_place) {
  DeviceBuffer ds(src.size() * 4), dd(src.size() * 4), dw(size_t(n) * 4);
  EXPECT_EQ(ds.upload(src.data(), src.size() * 4), cudaSuccess);
  if (weight) {
    EXPECT_EQ(dw.upload(weight->data(), size_t(n) * 4), cudaSuccess);
  }
  RmsNormParams p{ds.get<float>(), weight ? dw.get<float>() : nullptr, in_place ? ds.get<float>() : dd.get<float>(),
                  rows, n, eps};
  DeviceBuffer dc(src.size() * 4);  // the second destination (a not-in-place norm writes both)
  if (!in_place) p.copy = dc.get<float>();
  const Status s = rms_norm(p, nullptr);
  EXPECT_TRUE(s.ok()) << to_string(s);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<float> out(src.size());
  EXPECT_EQ((in_place ? ds : dd).download(out.data(), out.size() * 4), cudaSuccess);
  if (!in_place) {
    std::vector<float> copy(src.size());
    EXPECT_EQ(dc.download(copy.data(), copy.size() * 4), cudaSuccess);
    EXPECT_EQ(copy, out) << "the copy differs from dst";
  }
  return out;
}

struct NormCase {
  int64_t rows, n;
  bool weight, in_place;
};
void PrintTo(const NormCase& c, std::ostream* os) {
  *os << "rows=" << c.rows << " n=" << c.n << " weight=" << c.weight << " in_place=" << c.in_place;
}
class GpuRmsNorm : public ::testing::TestWithParam<NormCase> {};

TEST_P(GpuRmsNorm, MatchesCpuReference) {
  HEXE_REQUIRE_GPU();
  const auto c = GetParam();
  const float eps = 1e-5f;
  const auto src = random_floats(size_t(c.rows * c.n), uint64_t(c.rows * 31 + c.n), -3.f, 3.f);
  const auto w = random_floats(size_t(c.n), 99, 0.5f, 1.5f);
  const auto got = run_rms_norm(src, c.weight ? &w : nullptr, c.rows, c.n, eps, c.in_place);
  std::vector<float> ref(src.size());
  for (int64_t r = 0; r < c.rows; ++r)
    cpu::rms_norm(src.data() + r * c.n, c.weight ? w.data() : nullptr, ref.data() + r * c.n, c.n, eps);
  for (int64_t i = 0; i < c.rows * c.n; ++i) {
    // Both sum n squares in float in different orders (n u32 each, relative), then the same
    // sqrt, divide and products (a few u32).
    const double tol = std::fabs(double(ref[size_t(i)])) * (2.0 * double(c.n) * kU32 + 8 * kU32) + 1e-30;
    ASSERT_NEAR(got[size_t(i)], ref[size_t(i)], tol) << "row " << i / c.n << " col " << i % c.n;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, GpuRmsNorm,
                         ::testing::Values(NormCase{1, 1, true, false}, NormCase{3, 7, false, false},
                                           NormCase{5, 129, true, true}, NormCase{2, 4096 + 3, true, false},
                                           NormCase{64, 128, false, true}),
                         [](const auto& i) {
                           return "rows" + std::to_string(i.param.rows) + "_n" + std::to_string(i.param.n) +
                                  (i.param.weight ? "_w" : "") + (i.param.in_place ? "_inplace" : "");
                         });

struct RopeCase {
  RopeMode mode;
  int n_tokens, n_heads, head_dim, rot_dim, pad;
  float theta;
};
void PrintTo(const RopeCase& c, std::ostream* os) {
  *os << (c.mode == RopeMode::Neox ? "neox" : "interleaved") << " tokens=" << c.n_tokens << " heads=" << c.n_heads
      << " head_dim=" << c.head_dim << " rot_dim=" << c.rot_dim << " pad=" << c.pad << " theta=" << c.theta;
}
class GpuRope : public ::testing::TestWithParam<RopeCase> {};

TEST_P(GpuRope, MatchesCpuReference) {
  HEXE_REQUIRE_GPU();
  const auto c = GetParam();
  const int64_t stride = int64_t(c.n_heads) * c.head_dim + c.pad;
  const auto x = random_floats(size_t(c.n_tokens * stride), uint64_t(c.n_tokens + c.head_dim), -2.f, 2.f);
  std::vector<int32_t> pos(static_cast<size_t>(c.n_tokens));
  for (int t = 0; t < c.n_tokens; ++t) pos[size_t(t)] = (t * 7919 + 3) % 40000;
  DeviceBuffer dx(x.size() * 4), dp(pos.size() * 4);
  HEXE_CUDA_OK(dx.upload(x.data(), x.size() * 4));
  HEXE_CUDA_OK(dp.upload(pos.data(), pos.size() * 4));
  RopeParams p;
  p.x = dx.get<float>();
  p.positions = dp.get<int32_t>();
  p.n_tokens = c.n_tokens;
  p.token_stride = stride;
  p.n_heads = c.n_heads;
  p.head_dim = c.head_dim;
  p.rot_dim = c.rot_dim;
  p.theta = c.theta;
  p.mode = c.mode;
  HEXE_GPU_OK(rope(p, nullptr));
  std::vector<float> got(x.size());
  HEXE_CUDA_OK(dx.download(got.data(), got.size() * 4));

  std::vector<float> ref = x;
  cpu::RopeParams rp;
  rp.mode = c.mode == RopeMode::Neox ? cpu::RopeMode::Neox : cpu::RopeMode::Interleaved;
  rp.head_dim = c.head_dim;
  rp.rot_dim = c.rot_dim;
  rp.theta = c.theta;
  for (int t = 0; t < c.n_tokens; ++t) cpu::rope(ref.data() + t * stride, c.n_heads, pos[size_t(t)], rp);
  for (int t = 0; t < c.n_tokens; ++t)
    for (int64_t e = 0; e < stride; ++e) {
      const size_t i = size_t(t * stride + e);
      // Same float formula and order as the CPU; only pow's last bit may differ between glibc
      // and CUDA, moving the angle by up to 2 ulps of pos * inv_freq (<= pos): |x| (pos + 2)
      // 2 u32 per term, with |x| <= 2 and two terms. Elements past rot_dim and the padding
      // between tokens are compared exactly.
      const bool rotated = e < int64_t(c.n_heads) * c.head_dim && e % c.head_dim < c.rot_dim;
      const double tol = rotated ? 8.0 * (double(pos[size_t(t)]) + 2) * kU32 : 0.0;
      ASSERT_NEAR(got[i], ref[i], tol) << "token " << t << " pos " << pos[size_t(t)] << " element " << e;
    }
}

INSTANTIATE_TEST_SUITE_P(Modes, GpuRope,
                         ::testing::Values(RopeCase{RopeMode::Neox, 1, 1, 2, 2, 0, 10000.f},
                                           RopeCase{RopeMode::Neox, 5, 4, 128, 128, 0, 1000000.f},
                                           RopeCase{RopeMode::Neox, 7, 3, 64, 32, 5, 10000.f},
                                           RopeCase{RopeMode::Interleaved, 5, 4, 64, 64, 0, 10000.f},
                                           RopeCase{RopeMode::Interleaved, 9, 16, 192, 64, 3, 10000.f}),
                         [](const auto& i) {
                           const auto& c = i.param;
                           return std::string(c.mode == RopeMode::Neox ? "neox" : "interleaved") + "_t" +
                                  std::to_string(c.n_tokens) + "_h" + std::to_string(c.n_heads) + "_d" +
                                  std::to_string(c.head_dim) + "_rot" + std::to_string(c.rot_dim) + "_pad" +
                                  std::to_string(c.pad);
                         });

TEST(GpuSwiglu, MatchesCpuReferenceInPlaceAndNot) {
  HEXE_REQUIRE_GPU();
  for (int64_t n : {1, 31, 1000, 70001}) {
    const auto g = random_floats(size_t(n), uint64_t(n), -12.f, 12.f);
    const auto u = random_floats(size_t(n), uint64_t(n) + 1, -3.f, 3.f);
    DeviceBuffer dg(size_t(n) * 4), du(size_t(n) * 4), dd(size_t(n) * 4);
    HEXE_CUDA_OK(dg.upload(g.data(), size_t(n) * 4));
    HEXE_CUDA_OK(du.upload(u.data(), size_t(n) * 4));
    for (bool in_place : {false, true}) {
      float* dst = in_place ? dg.get<float>() : dd.get<float>();
      HEXE_GPU_OK(swiglu(dg.get<float>(), du.get<float>(), dst, n, nullptr));
      std::vector<float> got(static_cast<size_t>(n));
      HEXE_CUDA_OK(cudaMemcpy(got.data(), dst, size_t(n) * 4, cudaMemcpyDeviceToHost));
      std::vector<float> ref(static_cast<size_t>(n));
      cpu::swiglu(g.data(), u.data(), ref.data(), n);
      for (int64_t i = 0; i < n; ++i)  // expf (CUDA: 2 ulp; glibc: < 1 ulp), then the same ops
        ASSERT_NEAR(got[size_t(i)], ref[size_t(i)], std::fabs(double(ref[size_t(i)])) * 16 * kU32 + 1e-30)
            << "n " << n << " i " << i;
    }
  }
}

// The CPU reference: cpu::softmax over the experts then cpu::top_k (ties to the lower id), or
// cpu::top_k over the logits then cpu::softmax over the k; renormalisation and scale on top.
void route_ref(const float* l, int n, int k, RoutingMode mode, bool renorm, float scale, int32_t* ids, double* w) {
  std::vector<float> v(l, l + n), val(static_cast<size_t>(k));
  std::vector<int> idx(static_cast<size_t>(k));
  if (mode == RoutingMode::SoftmaxTopK) cpu::softmax(v.data(), n);
  cpu::top_k(v.data(), n, k, idx.data(), val.data());
  if (mode == RoutingMode::TopKSoftmax) cpu::softmax(val.data(), k);
  double sum = 0;
  for (float x : val) sum += x;
  for (int j = 0; j < k; ++j) {
    ids[j] = idx[size_t(j)];
    w[j] = (mode == RoutingMode::SoftmaxTopK && renorm ? val[size_t(j)] / sum : val[size_t(j)]) * scale;
  }
}

struct RouteCase {
  RoutingMode mode;
  bool renorm;
  int n_tokens, n_experts, k;
  bool ties;
};
void PrintTo(const RouteCase& c, std::ostream* os) {
  *os << (c.mode == RoutingMode::SoftmaxTopK ? "softmax_topk" : "topk_softmax") << " renorm=" << c.renorm
      << " tokens=" << c.n_tokens << " experts=" << c.n_experts << " k=" << c.k << " ties=" << c.ties;
}
class GpuRouting : public ::testing::TestWithParam<RouteCase> {};

TEST_P(GpuRouting, MatchesHostReference) {
  HEXE_REQUIRE_GPU();
  const auto c = GetParam();
  std::vector<float> logits = random_floats(size_t(c.n_tokens * c.n_experts), uint64_t(c.n_experts * 3 + c.k), -4.f, 4.f);
  // Ties: values from a small set, so equal logits happen and the lower-id rule decides.
  if (c.ties)
    for (auto& v : logits) v = std::round(v);
  const float scale = c.renorm ? 1.0f : 2.5f;
  DeviceBuffer dl(logits.size() * 4), di(size_t(c.n_tokens * c.k) * 4), dw(size_t(c.n_tokens * c.k) * 4);
  HEXE_CUDA_OK(dl.upload(logits.data(), logits.size() * 4));
  RoutingParams p;
  p.logits = dl.get<float>();
  p.n_tokens = c.n_tokens;
  p.n_experts = c.n_experts;
  p.k = c.k;
  p.mode = c.mode;
  p.renormalize = c.renorm;
  p.scale = scale;
  p.ids = di.get<int32_t>();
  p.weights = dw.get<float>();
  HEXE_GPU_OK(route_topk(p, nullptr));
  std::vector<int32_t> ids(static_cast<size_t>(c.n_tokens * c.k));
  std::vector<float> w(ids.size());
  HEXE_CUDA_OK(di.download(ids.data(), ids.size() * 4));
  HEXE_CUDA_OK(dw.download(w.data(), w.size() * 4));
  std::vector<int32_t> rid(static_cast<size_t>(c.k));
  std::vector<double> rw(static_cast<size_t>(c.k));
  for (int t = 0; t < c.n_tokens; ++t) {
    route_ref(logits.data() + size_t(t) * size_t(c.n_experts), c.n_experts, c.k, c.mode, c.renorm, scale, rid.data(),
              rw.data());
    for (int j = 0; j < c.k; ++j) {
      ASSERT_EQ(ids[size_t(t * c.k + j)], rid[size_t(j)]) << "token " << t << " slot " << j;
      // Both: expf per term (<= 2 ulp), float sums of n_experts terms in different orders, one
      // divide, the renormalisation and the scale.
      const double tol = rw[size_t(j)] * (2.0 * double(c.n_experts) * kU32 + 16 * kU32) + 1e-30;
      ASSERT_NEAR(w[size_t(t * c.k + j)], rw[size_t(j)], tol) << "token " << t << " slot " << j;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, GpuRouting,
                         ::testing::Values(RouteCase{RoutingMode::SoftmaxTopK, false, 7, 128, 8, false},
                                           RouteCase{RoutingMode::SoftmaxTopK, true, 5, 60, 4, false},
                                           RouteCase{RoutingMode::SoftmaxTopK, true, 33, 256, 8, true},
                                           RouteCase{RoutingMode::TopKSoftmax, false, 9, 8, 2, false},
                                           RouteCase{RoutingMode::TopKSoftmax, false, 4, 8, 2, true},
                                           RouteCase{RoutingMode::SoftmaxTopK, false, 3, 1, 1, false},
                                           RouteCase{RoutingMode::TopKSoftmax, false, 2, 40, 40, false}),
                         [](const auto& i) {
                           const auto& c = i.param;
                           return std::string(c.mode == RoutingMode::SoftmaxTopK ? "softmax_topk" : "topk_softmax") +
                                  (c.renorm ? "_renorm" : "") + "_t" + std::to_string(c.n_tokens) + "_e" +
                                  std::to_string(c.n_experts) + "_k" + std::to_string(c.k) + (c.ties ? "_ties" : "");
                         });

}  // namespace
}  // namespace hexe::gpu::test
