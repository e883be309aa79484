// Row ops against double-precision or independently written float references.
#include <cfloat>
#include <cmath>

#include "cpu_kernels/ops.h"
#include "tests/cpu_kernels/test_util.h"

namespace hexe::cpu {
namespace {

TEST(Ops, RmsNormMatchesDouble) {
  std::mt19937 rng(1);
  for (int64_t n : {1, 7, 64, 1000, 4097}) {
    auto x = test::random_floats(rng, size_t(n), 3.f), w = test::random_floats(rng, size_t(n));
    std::vector<float> y(x.size()), y2(x.size());
    rms_norm(x.data(), w.data(), y.data(), n, 1e-6f);
    rms_norm(x.data(), nullptr, y2.data(), n, 1e-6f);
    double ss = 0;
    for (float v : x) ss += double(v) * v;
    const double scale = 1.0 / std::sqrt(ss / double(n) + 1e-6);
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_NEAR(y[size_t(i)], x[size_t(i)] * scale * w[size_t(i)], 1e-5 * std::fabs(x[size_t(i)] * scale * w[size_t(i)]) + 1e-7) << "n=" << n;
      ASSERT_NEAR(y2[size_t(i)], x[size_t(i)] * scale, 1e-5 * std::fabs(x[size_t(i)] * scale) + 1e-7) << "n=" << n;
    }
    rms_norm(x.data(), w.data(), x.data(), n, 1e-6f);  // in place
    EXPECT_EQ(x, y);
  }
}

// HF's formulation, written independently: emb = cat(freqs, freqs); x*cos + rotate_half(x)*sin.
std::vector<float> rope_hf(const std::vector<float>& x, int heads, int64_t pos, const RopeParams& p) {
  std::vector<float> out(x);
  const int d = p.rot_dim;
  std::vector<float> cosv(static_cast<size_t>(d)), sinv(static_cast<size_t>(d));
  for (int i = 0; i < d; ++i) {
    const int f = p.mode == RopeMode::Neox ? i % (d / 2) : i / 2;
    const float inv_freq = 1.0f / std::pow(p.theta, float(2 * f) / float(d));
    const float ang = float(pos) * inv_freq;
    cosv[size_t(i)] = float(std::cos(double(ang)));
    sinv[size_t(i)] = float(std::sin(double(ang)));
  }
  for (int h = 0; h < heads; ++h) {
    const float* v = x.data() + h * p.head_dim;
    float* o = out.data() + h * p.head_dim;
    for (int i = 0; i < d; ++i) {
      float rot;
      if (p.mode == RopeMode::Neox) rot = i < d / 2 ? -v[i + d / 2] : v[i - d / 2];
      else rot = i % 2 == 0 ? -v[i + 1] : v[i - 1];
      o[i] = v[i] * cosv[size_t(i)] + rot * sinv[size_t(i)];
    }
  }
  return out;
}

TEST(Ops, RopeMatchesHfFormulation) {
  std::mt19937 rng(2);
  for (RopeMode mode : {RopeMode::Neox, RopeMode::Interleaved})
    for (auto [hd, rd] : {std::pair{64, 64}, {128, 64}, {80, 32}})
      for (int64_t pos : {0, 1, 17, 4095, 131071, 131072}) {
        RopeParams p{mode, hd, rd, pos > 10000 ? 1e6f : 10000.f};
        const int heads = 3;
        auto x = test::random_floats(rng, size_t(heads * hd));
        const auto want = rope_hf(x, heads, pos, p);
        rope(x.data(), heads, pos, p);
        for (size_t i = 0; i < x.size(); ++i)
          ASSERT_NEAR(x[i], want[i], 4e-6f) << "rope mode=" << int(mode) << " head_dim=" << hd
                                            << " rot_dim=" << rd << " pos=" << pos << " i=" << i;
      }
}

TEST(Ops, RopeAtZeroIsIdentityAndKeepsPairNorms) {
  std::mt19937 rng(3);
  RopeParams p{RopeMode::Neox, 64, 64, 10000.f};
  auto x = test::random_floats(rng, 128);
  auto y = x;
  rope(y.data(), 2, 0, p);
  EXPECT_EQ(x, y);
  rope(y.data(), 2, 123456, p);
  for (int h = 0; h < 2; ++h)
    for (int i = 0; i < 32; ++i) {
      const float* a = x.data() + 64 * h;
      const float* b = y.data() + 64 * h;
      EXPECT_NEAR(a[i] * a[i] + a[i + 32] * a[i + 32], b[i] * b[i] + b[i + 32] * b[i + 32], 1e-4);
    }
}

// SwiGLU where e^-g leaves float range (the AVX-512 exp clamps): silu(g) -> g above, -> 0 below.
TEST(Ops, SwigluAtLargeMagnitudes) {
  std::vector<float> g, u;
  for (float v : {-200.f, -100.f, -88.f, -87.f, -30.f, 0.f, 30.f, 87.f, 88.f, 100.f, 200.f, -0.f, 1e-30f, -1e-30f,
                  3.4e38f, -3.4e38f, 15.f})
    g.push_back(v), u.push_back(0.5f);
  std::vector<float> y(g.size());
  swiglu(g.data(), u.data(), y.data(), int64_t(g.size()));
  for (size_t i = 0; i < g.size(); ++i) {
    const double gd = g[i], want = gd / (1 + std::exp(-gd)) * 0.5;
    ASSERT_NEAR(y[i], want, 1e-6 * std::fabs(want) + 1e-30) << "g = " << g[i];
  }
}

TEST(Ops, SwigluSoftmaxAxpyDot) {
  std::mt19937 rng(4);
  for (int64_t n : {1, 5, 33, 1000}) {
    auto g = test::random_floats(rng, size_t(n), 4.f), u = test::random_floats(rng, size_t(n));
    std::vector<float> y(static_cast<size_t>(n));
    swiglu(g.data(), u.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double gd = g[size_t(i)], want = gd / (1 + std::exp(-gd)) * u[size_t(i)];
      ASSERT_NEAR(y[size_t(i)], want, 1e-6 * std::fabs(want) + 1e-7);
    }
    auto s = g;
    softmax(s.data(), n);
    double mx = -1e30, sum = 0, total = 0;
    for (float v : g) mx = std::max(mx, double(v));
    for (float v : g) sum += std::exp(double(v) - mx);
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_NEAR(s[size_t(i)], std::exp(double(g[size_t(i)]) - mx) / sum, 1e-6);
      total += s[size_t(i)];
    }
    EXPECT_NEAR(total, 1.0, 1e-5);
    double dd = 0, mag = 0;
    for (int64_t i = 0; i < n; ++i) {
      dd += double(g[size_t(i)]) * u[size_t(i)];
      mag += std::fabs(double(g[size_t(i)]) * u[size_t(i)]);
    }
    EXPECT_NEAR(dot_f32(g.data(), u.data(), n), dd, 8 * FLT_EPSILON * mag);
    auto acc = u;
    axpy(0.5f, g.data(), acc.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(acc[size_t(i)], u[size_t(i)] + 0.5f * g[size_t(i)]);
  }
}

TEST(Ops, TopKDescendingTiesLowerIndexFirst) {
  const float x[] = {0.5f, 2.f, -1.f, 2.f, 0.5f, 3.f, 2.f};
  int idx[7];
  float val[7];
  top_k(x, 7, 4, idx, val);
  EXPECT_EQ(std::vector<int>(idx, idx + 4), (std::vector<int>{5, 1, 3, 6}));
  EXPECT_EQ(std::vector<float>(val, val + 4), (std::vector<float>{3.f, 2.f, 2.f, 2.f}));
  top_k(x, 7, 6, idx, val);
  EXPECT_EQ(idx[4], 0);
  EXPECT_EQ(idx[5], 4);
}

}  // namespace
}  // namespace hexe::cpu
