// Paged causal GQA attention against attention_ref: GQA ratios 1/4/8, 16-token pages, ragged
// context lengths, prefill (many queries) and decode (one), 1 and 2 threads.
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

}  // namespace
}  // namespace hexe::cpu
