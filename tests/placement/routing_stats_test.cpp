// Routing statistics: counting, ranking, hit rates, the file format, and their use by the
// experts-cpu+hot and cache strategies.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <list>
#include <numeric>
#include <random>

#include "memory/error.h"
#include "placement/hardware_profile.h"
#include "placement/model_shapes.h"
#include "placement/routing_stats.h"
#include "placement/strategies.h"
#include "scratch_path.h"

namespace hexe::place {
namespace {

TEST(RoutingStats, RanksAndHitRates) {
  RoutingStats s("toy", 4, 1);
  s.add(0, 2, 50);
  s.add(0, 0, 30);
  s.add(0, 1, 20);
  EXPECT_EQ(s.hottest(0), (std::vector<int>{2, 0, 1, 3}));
  // Shares shrink toward uniform by the weight sampling noise has in the counts' spread: counts
  // 30/20/50/0 of 100 (mean 25) vary by 433.3 where uniform routing would give 25 x 3/4.
  const double prior = 18.75 / ((25.0 + 25 + 625 + 625) / 3);
  auto shrunk = [&](double raw) { return (1 - prior) * raw + prior / 4; };
  EXPECT_NEAR(s.top_mass(0, 1), shrunk(0.5), 1e-12);
  EXPECT_NEAR(s.top_mass(0, 2), shrunk(0.5) + shrunk(0.3), 1e-12);
  EXPECT_NEAR(s.top_mass(0, 4), 1.0, 1e-12);
  EXPECT_DOUBLE_EQ(s.top_mass(7, 1), 0.25);  // no data: uniform
  EXPECT_NEAR(s.share(0, 3), prior / 4, 1e-12);
}

// A short sample of uniform routing looks skewed by chance; its shares stay near uniform, so a
// hot set or cache sized from it is not promised the sample's noise.
TEST(RoutingStats, ShortUniformSamplesShrinkToUniform) {
  const int E = 128, k = 8;
  std::mt19937 rng(3);
  RoutingStats s("m", E, k);
  for (int t = 0; t < 64; ++t) {  // 512 picks: 4 per expert on average
    std::vector<int> ids(static_cast<size_t>(E));
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), rng);
    for (int j = 0; j < k; ++j) s.add(0, ids[size_t(j)], 1);
  }
  // Raw, the top half of the experts would hold far more than half of the sample's picks.
  std::vector<uint64_t> c = s.counts(0);
  std::sort(c.rbegin(), c.rend());
  const double raw = double(std::accumulate(c.begin(), c.begin() + E / 2, uint64_t(0))) / 512.0;
  EXPECT_GT(raw, 0.6);
  EXPECT_NEAR(s.top_mass(0, E / 2), 0.5, 0.03);
}

TEST(RoutingStatsJson, FileRoundTripAndValidation) {
  RoutingStats s("toy", 3, 2);
  s.add(1, 0, 5);
  s.add(1, 2, 7);
  s.set_tokens(6);
  const std::string path = hexe::testing::scratch_path("routing_stats_test.json");
  s.save(path);
  RoutingStats t = RoutingStats::load(path);
  std::filesystem::remove(path);
  EXPECT_EQ(t.model(), "toy");
  EXPECT_EQ(t.tokens(), 6u);
  EXPECT_EQ(t.counts(1), (std::vector<uint64_t>{5, 0, 7}));
  EXPECT_THROW(t.counts(0), Error);
  EXPECT_THROW(RoutingStats::from_json_string(R"({"format": "other", "version": 1, "n_expert": 2, "layers": []})", "x"), Error);
  EXPECT_THROW(RoutingStats::from_json_string(
                   R"({"format": "hexe-routing-stats", "version": 1, "n_expert": 2, "layers": [{"layer": 0, "counts": [1]}]})", "x"),
               Error);
}

// Che's approximation against an LRU cache simulated on activations drawn top-k distinct per
// token (as a router picks them), for skewed and uniform routing; the statistics are the
// simulation's own counts, as `--routing-stats` would record them.
TEST(RoutingStats, LruHitRateFollowsASimulatedCache) {
  const int E = 64, k = 4, n_tokens = 40000;
  for (bool skewed : {true, false}) {
    std::vector<double> w(static_cast<size_t>(E));
    for (int e = 0; e < E; ++e) w[size_t(e)] = skewed ? 1.0 / (e + 1) : 1.0;
    std::mt19937 rng(7);
    std::vector<int> draws;
    for (int t = 0; t < n_tokens; ++t) {
      std::vector<double> ww = w;
      for (int j = 0; j < k; ++j) {
        std::discrete_distribution<int> pick(ww.begin(), ww.end());
        const int e = pick(rng);
        ww[size_t(e)] = 0;  // distinct experts per token
        draws.push_back(e);
      }
    }
    RoutingStats s("m", E, k);
    for (int e : draws) s.add(0, e, 1);
    for (int slots : {4, 8, 16, 32, 48}) {
      std::list<int> lru;
      int64_t hits = 0, refs = 0;
      // Per token as the engine's cache runs a decode pass: its hits first, then its misses.
      for (size_t t0 = 0; t0 < draws.size(); t0 += k) {
        std::vector<int> miss;
        for (size_t i = t0; i < t0 + k; ++i) {
          const auto it = std::find(lru.begin(), lru.end(), draws[i]);
          if (t0 >= 8000) ++refs, hits += it != lru.end();
          if (it == lru.end()) {
            miss.push_back(draws[i]);
            continue;
          }
          lru.erase(it);
          lru.push_front(draws[i]);
        }
        for (int e : miss) {
          if (int(lru.size()) == slots) lru.pop_back();
          lru.push_front(e);
        }
      }
      const double sim = double(hits) / double(refs), che = s.lru_hit_rate(0, slots);
      EXPECT_NEAR(che, sim, 0.03) << (skewed ? "skewed" : "uniform") << " slots " << slots;
      EXPECT_LE(che, s.top_mass(0, slots) + 1e-12);
    }
  }
}

TEST(RoutingStats, SkewedRoutingHelpsHotAndCache) {
  PlanModel m = load_model_shape("qwen3-235b-a22b", QuantRecipe::Q4_K_M);
  HardwareProfile hw = resolve_profile("epyc-9654-rtx4090");
  PlanInputs in;
  in.model = &m;
  in.hw = &hw;
  in.workload.context = 8192;
  Plan uniform = make_plan(in, Strategy::ExpertsCpuHot);
  Plan uc = make_plan(in, Strategy::Cache);
  // Zipf-like routing: expert e of every layer drawn in proportion to 1 / (e + 1).
  RoutingStats s(m.spec.name, m.spec.n_expert, m.spec.n_expert_used);
  for (const auto& l : uniform.layers)
    if (l.moe)
      for (int e = 0; e < m.spec.n_expert; ++e) s.add(l.layer, e, uint64_t(100000 / (e + 1)));
  in.stats = &s;
  Plan hot = make_plan(in, Strategy::ExpertsCpuHot);
  Plan cache = make_plan(in, Strategy::Cache);
  double hu = 0, hh = 0;
  for (size_t i = 0; i < hot.layers.size(); ++i) {
    hu += uniform.layers[i].gpu_hit;
    hh += hot.layers[i].gpu_hit;
    if (hot.layers[i].moe && !hot.layers[i].gpu_experts.empty()) {
      EXPECT_EQ(hot.layers[i].gpu_experts.front(), 0);  // the hottest expert is taken first
    }
  }
  EXPECT_GT(hh, 2 * hu);
  EXPECT_GT(hot.decode.tokens_per_s, uniform.decode.tokens_per_s);
  EXPECT_GE(cache.decode.tokens_per_s, uc.decode.tokens_per_s);
  EXPECT_EQ(hot.gpu.weights, uniform.gpu.weights);  // the same VRAM, better filled
}

}  // namespace
}  // namespace hexe::place
