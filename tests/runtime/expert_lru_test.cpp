// ExpertLru (runtime/engine/expert_lru.h): the GPU expert cache's slot bookkeeping, checked
// against a plain list-based LRU on random routing, and the pass order that keeps a pass's hits.
#include <gtest/gtest.h>

#include <algorithm>
#include <list>
#include <random>
#include <set>

#include "runtime/engine/expert_lru.h"

namespace hexe {
namespace {

TEST(ExpertLru, FillsEmptySlotsThenEvictsTheLeastRecentlyUsed) {
  ExpertLru c(8, 3);
  EXPECT_EQ(c.use(5).miss, true);
  EXPECT_EQ(c.use(2).miss, true);
  EXPECT_EQ(c.use(7).miss, true);
  const auto hit = c.use(5);  // 5 is now the most recent; 2 the least
  EXPECT_FALSE(hit.miss);
  EXPECT_EQ(hit.evicted, -1);
  const auto u = c.use(1);
  EXPECT_TRUE(u.miss);
  EXPECT_EQ(u.evicted, 2);
  EXPECT_EQ(c.slot_of(2), -1);
  EXPECT_EQ(c.slot_of(1), u.slot);
  EXPECT_EQ(c.expert_in(u.slot), 1);
}

// Against a list-based LRU (front = most recent) over random passes of top-k distinct experts,
// used in pass order: the same hits and the same evictions; every slot holds a distinct expert.
TEST(ExpertLru, MatchesAListLruOnRandomPasses) {
  std::mt19937 rng(3);
  for (int slots : {2, 4, 8, 16}) {
    const int n_experts = 16, k = 2;
    ExpertLru c(n_experts, slots);
    std::list<int> ref;
    int hits = 0;
    for (int pass = 0; pass < 500; ++pass) {
      std::set<int> pick;
      // Skewed routing: low ids more likely, so hits happen.
      while (int(pick.size()) < k) pick.insert(int(std::min(rng() % n_experts, rng() % n_experts)));
      const std::vector<int> order = c.pass_order({pick.begin(), pick.end()});
      ASSERT_EQ(order.size(), pick.size());
      bool seen_miss = false;
      for (int e : order) {
        const auto it = std::find(ref.begin(), ref.end(), e);
        const bool ref_hit = it != ref.end();
        int ref_evicted = -1;
        if (ref_hit) {
          ref.erase(it);
        } else if (int(ref.size()) == slots) {
          ref_evicted = ref.back();
          ref.pop_back();
        }
        ref.push_front(e);
        const auto u = c.use(e);
        ASSERT_EQ(!u.miss, ref_hit) << "pass " << pass << " expert " << e;
        ASSERT_EQ(u.evicted, ref_evicted) << "pass " << pass << " expert " << e;
        // Hits come first, and no miss evicts an expert of this pass.
        if (u.miss) seen_miss = true;
        else ASSERT_FALSE(seen_miss);
        ASSERT_EQ(pick.count(u.evicted), 0u);
        hits += !u.miss;
      }
      std::set<int> held;
      for (int s = 0; s < c.slots(); ++s)
        if (c.expert_in(s) >= 0) {
          ASSERT_TRUE(held.insert(c.expert_in(s)).second);
          ASSERT_EQ(c.slot_of(c.expert_in(s)), s);
        }
    }
    EXPECT_GT(hits, 0) << slots << " slots";
  }
}

}  // namespace
}  // namespace hexe
