// Sampler: greedy, seeded reproducibility, the filters of the chain and the drawn distribution.
#include "runtime/engine/sampling.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

namespace hexe {
namespace {

std::vector<float> random_logits(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, 3.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(rng);
  return v;
}

// logits = log(p): softmax gives back p.
std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> v;
  for (double p : probs) v.push_back(float(std::log(p)));
  return v;
}

SamplingParams plain(float temp) {
  SamplingParams p;
  p.temperature = temp;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = 1234;
  return p;
}

std::vector<int> histogram(Sampler& s, const std::vector<float>& logits, int draws) {
  std::vector<int> h(logits.size(), 0);
  for (int i = 0; i < draws; ++i) ++h[size_t(s.sample(logits.data(), int(logits.size()), {}))];
  return h;
}

TEST(Sampling, DefaultsAreLlamaCpps) {
  const SamplingParams p;
  EXPECT_FLOAT_EQ(p.temperature, 0.8f);
  EXPECT_EQ(p.top_k, 40);
  EXPECT_FLOAT_EQ(p.top_p, 0.95f);
  EXPECT_FLOAT_EQ(p.min_p, 0.05f);
  EXPECT_FLOAT_EQ(p.repeat_penalty, 1.0f);
  EXPECT_EQ(p.repeat_last_n, 64);
  EXPECT_EQ(p.seed, -1);
}

TEST(Sampling, TemperatureZeroIsArgmax) {
  SamplingParams p = plain(0.0f);
  Sampler s(p);
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const auto logits = random_logits(1000 + int(seed) * 37, seed);
    const int32_t want = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    EXPECT_EQ(s.sample(logits.data(), int(logits.size()), {}), want) << "seed " << seed;
  }
  const std::vector<float> tie = {1.0f, 3.0f, 3.0f, 2.0f};
  EXPECT_EQ(s.sample(tie.data(), 4, {}), 1);  // ties: the lower id
}

TEST(Sampling, TopKOneIsGreedy) {
  SamplingParams p;
  p.top_k = 1;
  p.seed = 7;
  Sampler s(p);
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const auto logits = random_logits(512, seed + 100);
    const int32_t want = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    EXPECT_EQ(s.sample(logits.data(), 512, {}), want);
  }
}

TEST(Sampling, SameSeedSameSequence) {
  SamplingParams p;  // the default chain
  p.seed = 42;
  p.top_k = 0;
  p.min_p = 0.0f;
  Sampler a(p), b(p);
  p.seed = 43;
  Sampler c(p);
  auto logits = random_logits(200, 9);
  for (float& x : logits) x /= 4.0f;  // flat enough that many tokens stay in the top-p set
  std::vector<int32_t> sa, sb, sc;
  for (int i = 0; i < 200; ++i) {
    sa.push_back(a.sample(logits.data(), 200, sa));
    sb.push_back(b.sample(logits.data(), 200, sb));
    sc.push_back(c.sample(logits.data(), 200, sc));
  }
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, sc);
  EXPECT_EQ(a.seed(), 42u);
  EXPECT_GT(std::set<int32_t>(sa.begin(), sa.end()).size(), 5u);  // it does sample, not argmax
}

TEST(Sampling, DrawsFollowTheDistribution) {
  // 40000 draws: each frequency has sigma <= 0.0025; the bound 0.015 is 6 sigma. The seed is
  // fixed, so the outcome is deterministic.
  const std::vector<double> probs = {0.5, 0.3, 0.15, 0.05};
  Sampler s(plain(1.0f));
  const auto h = histogram(s, logits_of(probs), 40000);
  for (size_t i = 0; i < probs.size(); ++i)
    EXPECT_NEAR(h[i] / 40000.0, probs[i], 0.015) << "token " << i;
}

TEST(Sampling, TemperatureSharpens) {
  // T = 0.5 squares the probabilities: {0.5,0.3,0.2} -> {0.25,0.09,0.04}/0.38.
  const std::vector<double> probs = {0.5, 0.3, 0.2};
  Sampler s(plain(0.5f));
  const auto h = histogram(s, logits_of(probs), 40000);
  const double want[] = {0.25 / 0.38, 0.09 / 0.38, 0.04 / 0.38};
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(h[i] / 40000.0, want[i], 0.015) << "token " << i;
}

TEST(Sampling, TopKKeepsTheKLargest) {
  std::vector<TokenLogit> c = {{0, 1.0f}, {1, 5.0f}, {2, 3.0f}, {3, 4.0f}, {4, -2.0f}};
  Sampler::apply_top_k(c, 3);
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0].id, 1);
  EXPECT_EQ(c[1].id, 3);
  EXPECT_EQ(c[2].id, 2);
}

TEST(Sampling, TopPKeepsTheSmallestPrefixReachingP) {
  const auto logits = logits_of({0.05, 0.5, 0.15, 0.3});
  std::vector<TokenLogit> c;
  for (int i = 0; i < 4; ++i) c.push_back({i, logits[size_t(i)]});
  auto c75 = c;
  Sampler::apply_top_p(c75, 0.75f);  // 0.5 + 0.3 reaches 0.75
  ASSERT_EQ(c75.size(), 2u);
  EXPECT_EQ(c75[0].id, 1);
  EXPECT_EQ(c75[1].id, 3);
  auto c90 = c;
  Sampler::apply_top_p(c90, 0.9f);  // needs 0.15 too
  EXPECT_EQ(c90.size(), 3u);
  auto tiny = c;
  Sampler::apply_top_p(tiny, 0.01f);  // at least one survives
  ASSERT_EQ(tiny.size(), 1u);
  EXPECT_EQ(tiny[0].id, 1);
}

TEST(Sampling, MinPDropsTokensBelowAFractionOfTheBest) {
  const auto logits = logits_of({0.5, 0.3, 0.02, 0.18});
  std::vector<TokenLogit> c;
  for (int i = 0; i < 4; ++i) c.push_back({i, logits[size_t(i)]});
  Sampler::apply_min_p(c, 0.05f);  // threshold 0.025: drops 0.02
  ASSERT_EQ(c.size(), 3u);
  for (const TokenLogit& t : c) EXPECT_NE(t.id, 2);
  Sampler::apply_min_p(c, 0.5f);  // threshold 0.25: keeps 0.5 and 0.3
  EXPECT_EQ(c.size(), 2u);
}

TEST(Sampling, RepeatPenaltyLowersRecentTokens) {
  std::vector<TokenLogit> c = {{0, 2.0f}, {1, -1.0f}, {2, 1.5f}};
  const std::vector<int32_t> recent = {0, 1};
  Sampler::apply_repeat_penalty(c, recent, 2.0f);
  EXPECT_FLOAT_EQ(c[0].logit, 1.0f);   // positive: divided
  EXPECT_FLOAT_EQ(c[1].logit, -2.0f);  // negative: multiplied
  EXPECT_FLOAT_EQ(c[2].logit, 1.5f);   // not recent: unchanged

  // Greedy with the penalty moves off a token that was just produced, but only within the window.
  SamplingParams p = plain(0.0f);
  p.repeat_penalty = 2.0f;
  p.repeat_last_n = 2;
  Sampler s(p);
  const std::vector<float> logits = {2.0f, -1.0f, 1.5f};
  const std::vector<int32_t> hist_recent = {1, 0};
  EXPECT_EQ(s.sample(logits.data(), 3, hist_recent), 2);
  const std::vector<int32_t> hist_old = {0, 1, 1};  // 0 is outside the last 2
  EXPECT_EQ(s.sample(logits.data(), 3, hist_old), 0);
}

}  // namespace
}  // namespace hexe
