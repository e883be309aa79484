// Paged causal GQA attention against attention_ref: GQA ratios 1/4/8, 16- and 64-token pages,
// ragged context lengths and head sizes (64, 80, 128; dk != dv), prefill (many queries, starting
// mid-page or at scattered positions) and decode (one), long contexts, 1 and 2 threads, every
// tier this CPU runs; MLA's values read as the leading floats of wider rows; and the avx512
// and avx2 kernels' exp against std::exp.
#include <algorithm>
#include <cmath>
#include <memory>

#include "cpu_kernels/attention.h"
#include "cpu_kernels/thread_pool.h"
#include "tests/cpu_kernels/test_util.h"

namespace hexe::cpu {
namespace {

struct PagedCache {
  std::vector<std::vector<float>> storage;
  std::vector<float*> pages;
  KvPageView view;
  PagedCache(std::mt19937& rng, int64_t tokens, int page, int kv_heads, int dim) {
    const int64_t n_pages = (tokens + page - 1) / page;
    for (int64_t i = 0; i < n_pages; ++i) {  // separate allocations: pages are not contiguous
      storage.push_back(test::random_floats(rng, static_cast<size_t>(page * kv_heads * dim)));
      pages.push_back(storage.back().data());
    }
    view = {pages.data(), page, kv_heads, dim};
  }
};

TEST(Attention, MatchesReference) {
  std::mt19937 rng(5);
  ThreadPool pool2(2), pool1(1);
  for (int ratio : {1, 4, 8})
    for (auto [n_q, ctx] : {std::pair<int64_t, int64_t>{1, 1}, {1, 100}, {5, 37}, {16, 16}, {3, 200}})
      for (int dv : {64, 32}) {
        const int kv_heads = 2, n_heads = kv_heads * ratio, dk = 64, page = 16;
        PagedCache k(rng, ctx, page, kv_heads, dk), v(rng, ctx, page, kv_heads, dv);
        const auto q = test::random_floats(rng, static_cast<size_t>(n_q * n_heads * dk));
        std::vector<int64_t> pos(static_cast<size_t>(n_q));
        for (int64_t i = 0; i < n_q; ++i) pos[size_t(i)] = ctx - n_q + i;  // the last n_q positions
        std::vector<float> out(static_cast<size_t>(n_q * n_heads * dv)), ref(out);
        AttentionParams p;
        p.q = q.data(); p.n_q = n_q; p.q_pos = pos.data(); p.n_heads = n_heads;
        p.k = k.view; p.v = v.view; p.scale = 1.f / 8.f; p.out = out.data();
        attention(p, (n_q + ratio) % 2 ? pool2 : pool1);
        p.out = ref.data();
        attention_ref(p);
        for (size_t i = 0; i < out.size(); ++i)  // values ~N(0,1): outputs are convex mixes
          ASSERT_NEAR(out[i], ref[i], 2e-5f) << "attention gqa=" << ratio << " n_q=" << n_q
                                              << " ctx=" << ctx << " dv=" << dv << " i=" << i;
      }
}

// MLA's latent attention: one KV head whose values are the first dv floats of the key rows
// (KvPageView::row_floats), against the same attention with the values copied out to a packed
// cache of their own, at every tier; 16 and 40 query heads, prefill and decode.
TEST(Attention, ValuesAsLeadingFloatsOfWiderRows) {
  std::mt19937 rng(11);
  ThreadPool pool(2);
  const int dk = 72, dv = 64, page = 16;
  for (int n_heads : {16, 40})
    for (auto [n_q, ctx] : {std::pair<int64_t, int64_t>{1, 150}, {37, 90}}) {
      PagedCache k(rng, ctx, page, 1, dk);
      PagedCache v(rng, ctx, page, 1, dv);  // overwritten with the keys' leading floats
      for (int64_t t = 0; t < ctx; ++t) std::copy_n(k.view.row(t), dv, v.view.row(t));
      KvPageView lead = k.view;
      lead.head_dim = dv;
      lead.row_floats = dk;
      const auto q = test::random_floats(rng, static_cast<size_t>(n_q * n_heads * dk));
      std::vector<int64_t> pos(static_cast<size_t>(n_q));
      for (int64_t i = 0; i < n_q; ++i) pos[size_t(i)] = ctx - n_q + i;
      std::vector<float> ref(static_cast<size_t>(n_q * n_heads * dv));
      AttentionParams p;
      p.q = q.data(); p.n_q = n_q; p.q_pos = pos.data(); p.n_heads = n_heads;
      p.k = k.view; p.v = v.view; p.scale = 1.f / 8.f; p.out = ref.data();
      attention_ref(p);
      p.v = lead;
      for (Isa tier : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
        std::vector<float> out(ref.size());
        p.out = out.data();
        attention_at(p, tier, pool);
        for (size_t i = 0; i < out.size(); ++i)
          ASSERT_NEAR(out[i], ref[i], 2e-5f) << isa_name(tier) << " heads=" << n_heads << " n_q=" << n_q << " i=" << i;
      }
      std::vector<float> out(ref.size());
      p.out = out.data();
      attention_ref(p);
      for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], ref[i], 1e-6f) << "reference, i=" << i;
    }
}

TEST(Attention, SingleKeyReturnsItsValue) {
  std::mt19937 rng(6);
  PagedCache k(rng, 1, 16, 1, 8), v(rng, 1, 16, 1, 8);
  const auto q = test::random_floats(rng, 16);
  const int64_t pos = 0;
  std::vector<float> out(16);
  AttentionParams p;
  p.q = q.data(); p.n_q = 1; p.q_pos = &pos; p.n_heads = 2; p.k = k.view; p.v = v.view;
  p.out = out.data();
  ThreadPool pool(2);
  attention(p, pool);
  for (int h = 0; h < 2; ++h)
    for (int e = 0; e < 8; ++e) EXPECT_FLOAT_EQ(out[size_t(h * 8 + e)], v.view.row(0)[e]);
}

struct Case {
  int ratio, kv_heads, dk, dv, page;
  int64_t ctx;                 // keys in the cache
  std::vector<int64_t> pos;    // query positions (< ctx)
};

// attention_at(max_tier) against attention_ref on one case; returns the largest difference.
float max_diff(std::mt19937& rng, const Case& c, Isa tier, ThreadPool& pool) {
  const int n_heads = c.kv_heads * c.ratio;
  const int64_t n_q = int64_t(c.pos.size());
  PagedCache k(rng, c.ctx, c.page, c.kv_heads, c.dk), v(rng, c.ctx, c.page, c.kv_heads, c.dv);
  const auto q = test::random_floats(rng, static_cast<size_t>(n_q * n_heads * c.dk));
  std::vector<float> out(static_cast<size_t>(n_q * n_heads * c.dv), NAN), ref(out);
  AttentionParams p;
  p.q = q.data(); p.n_q = n_q; p.q_pos = c.pos.data(); p.n_heads = n_heads;
  p.k = k.view; p.v = v.view; p.scale = 1.f / std::sqrt(float(c.dk)); p.out = out.data();
  attention_at(p, tier, pool);
  p.out = ref.data();
  attention_ref(p);
  float worst = 0.f;
  for (size_t i = 0; i < out.size(); ++i) {
    const float d = std::fabs(out[i] - ref[i]);
    worst = std::isnan(d) ? INFINITY : std::max(worst, d);
  }
  return worst;
}

std::vector<Isa> tiers() {
  std::vector<Isa> t;
  for (Isa i : {Isa::Scalar, Isa::Avx2, Isa::Avx512})
    if (int(i) <= int(hardware_isa())) t.push_back(i);
  return t;
}

TEST(Attention, TiersMatchReferenceOnShapes) {
  std::mt19937 rng(7);
  ThreadPool pool2(2), pool1(1);
  std::vector<Case> cases;
  // Prefill blocks starting mid-page (and ending mid-page), the engine's 32/4 heads among them.
  for (int ratio : {1, 4, 8})
    for (auto [dk, dv] : {std::pair{64, 64}, {128, 128}, {80, 80}, {128, 80}, {80, 64}, {40, 40}, {64, 104}})
      for (int64_t n_q : {1, 5, 37, 130})
        for (int page : {16, 64}) {
          if (n_q == 130 && ratio == 8 && dk == 128 && page == 16) continue;  // the reference's time
          const int64_t start = 7 + 16 * (n_q % 3);
          Case c{ratio, ratio == 8 ? 4 : 2, dk, dv, page, start + n_q, {}};
          for (int64_t i = 0; i < n_q; ++i) c.pos.push_back(start + i);
          cases.push_back(c);
        }
  // One sequence's queries at scattered, unordered positions (a block's queries see different
  // key counts; one at position 0 sees a single key).
  for (int ratio : {1, 4, 8}) {
    Case c{ratio, 2, 128, 128, 16, 300, {}};
    for (int64_t p : {299, 0, 17, 150, 151, 64, 3, 298, 31, 32, 33}) c.pos.push_back(p);
    cases.push_back(c);
  }
  // Long contexts: decode and a few queries over 3000 keys.
  for (int page : {16, 64})
    for (int64_t n_q : {1, 5}) {
      Case c{8, 2, 128, 128, page, 3000, {}};
      for (int64_t i = 0; i < n_q; ++i) c.pos.push_back(3000 - n_q + i);
      cases.push_back(c);
    }
  // Few queries over many keys, as decode batches (the AVX2 tier cuts their keys into chunks and
  // merges the chunks' softmax sums): queries at scattered positions, some ending inside the first
  // chunk; one query whose last chunk (of 256 keys) holds 3 keys. Each twice, so both pools run it.
  for (int ratio : {4, 8})
    for (int twice = 0; twice < 2; ++twice) {
      cases.push_back(Case{ratio, 2, 128, 128, 16, 3000, {2999, 5, 1500, 64}});
      cases.push_back(Case{ratio, 4, 64, 64, 16, 515, {514}});
    }
  // Past 32 chunks of 256 the chunks grow (320 keys at 9000, the last one ragged).
  cases.push_back(Case{8, 2, 64, 64, 16, 9000, {8999, 4000}});
  cases.push_back(Case{8, 2, 64, 64, 16, 9000, {8999, 4000}});
  for (Isa tier : tiers())
    for (size_t i = 0; i < cases.size(); ++i) {
      const Case& c = cases[i];
      const float d = max_diff(rng, c, tier, i % 2 ? pool2 : pool1);
      ASSERT_LE(d, 2e-5f) << "tier " << isa_name(tier) << " gqa=" << c.ratio << " kv=" << c.kv_heads
                          << " dk=" << c.dk << " dv=" << c.dv << " page=" << c.page << " n_q=" << c.pos.size()
                          << " ctx=" << c.ctx << " first pos=" << c.pos[0];
    }
}

// The same decode batch over many keys gives the same bits on one thread and on two, on every
// tier (how a tier splits the work must not change the sums: a model's logits may not depend on
// the thread count).
TEST(Attention, DecodeResultDoesNotDependOnTheThreadCount) {
  std::mt19937 rng(11);
  ThreadPool pool1(1), pool2(2), pool3(3);
  const int kv_heads = 4, n_heads = 32, dk = 128, dv = 128, page = 16;
  const int64_t ctx = 3000;
  PagedCache k(rng, ctx, page, kv_heads, dk), v(rng, ctx, page, kv_heads, dv);
  const std::vector<int64_t> pos = {2999, 700};
  const auto q = test::random_floats(rng, static_cast<size_t>(2 * n_heads * dk));
  for (Isa tier : tiers()) {
    std::vector<float> out[3];
    ThreadPool* pools[3] = {&pool1, &pool2, &pool3};
    for (int i = 0; i < 3; ++i) {
      out[i].assign(size_t(2 * n_heads * dv), NAN);
      AttentionParams p;
      p.q = q.data(); p.n_q = 2; p.q_pos = pos.data(); p.n_heads = n_heads;
      p.k = k.view; p.v = v.view; p.scale = 1.f / std::sqrt(float(dk)); p.out = out[i].data();
      attention_at(p, tier, *pools[i]);
    }
    for (size_t j = 0; j < out[0].size(); ++j) {
      ASSERT_EQ(out[1][j], out[0][j]) << isa_name(tier) << " 2 threads against 1, at " << j;
      ASSERT_EQ(out[2][j], out[0][j]) << isa_name(tier) << " 3 threads against 1, at " << j;
    }
  }
}

TEST(Attention, ExpMatchesStdExp) {
  std::vector<float> x, y;
  for (float v = -87.f; v <= 88.f; v += 0.0137f) x.push_back(v);
  for (float v : {0.f, -0.f, 1e-30f, -1e-7f, 1.f, -1.f, 88.7f, -87.3f}) x.push_back(v);
  y.resize(x.size());
  attention_exp(x.data(), y.data(), int64_t(x.size()));
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double e = std::exp(double(x[i]));
    worst = std::max(worst, std::fabs(y[i] - e) / e);
  }
  EXPECT_LE(worst, 4e-7) << "max relative error";
  // Scores far below the running max, and masked (-inf) ones, weigh exactly 0.
  const float lo[3] = {-90.f, -1000.f, -INFINITY};
  float z[3] = {1.f, 1.f, 1.f};
  attention_exp(lo, z, 3);
  for (float v : z) EXPECT_EQ(v, 0.f);
}

}  // namespace
}  // namespace hexe::cpu
