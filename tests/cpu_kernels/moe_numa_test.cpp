// moe_experts with NUMA homes (memory/expert_homes.h): each thread computes only the experts of
// its own home, and the result is bitwise the one without homes.
#include <set>

#include "cpu_kernels/dispatch.h"
#include "cpu_kernels/moe.h"
#include "cpu_kernels/thread_pool.h"
#include "memory/expert_homes.h"
#include "tests/cpu_kernels/test_util.h"

namespace hexe::cpu {
namespace {

TEST(MoeNuma, ThreadsComputeOnlyTheirHomesExpertsAndTheResultIsUnchanged) {
  std::mt19937 rng(5);
  const int n_experts = 16;
  const int64_t hidden = 256, n_ff = 512;
  std::vector<std::vector<uint8_t>> store;
  std::vector<ExpertWeights> experts;
  for (int e = 0; e < n_experts; ++e) {
    store.push_back(test::random_weights(rng, DType::Q8_0, n_ff, hidden));  // gate
    store.push_back(test::random_weights(rng, DType::Q8_0, n_ff, hidden));  // up
    store.push_back(test::random_weights(rng, DType::Q8_0, hidden, n_ff));  // down
    experts.push_back({store[store.size() - 3].data(), store[store.size() - 2].data(), store.back().data()});
  }
  // A synthetic two-socket machine with 2 cores per socket: 4 threads, 2 homes.
  const mem::ExpertHomes homes = home_experts(mem::NumaTopology::synthetic("pack:2 numa:1 core:2 pu:1"), n_experts, 4);
  ASSERT_EQ(homes.n_homes(), 2);
  ThreadPool pool(4);  // unpinned: the synthetic cores need not exist here
  for (auto [n_tokens, top_k] : {std::pair<int64_t, int>{1, 4}, {1, 8}, {9, 4}, {64, 8}}) {
    const auto x = test::random_floats(rng, static_cast<size_t>(n_tokens * hidden), 0.1f);
    std::vector<int32_t> ids(static_cast<size_t>(n_tokens * top_k));
    std::vector<float> wts(ids.size());
    for (int64_t t = 0; t < n_tokens; ++t)
      for (int k = 0; k < top_k; ++k) {
        ids[size_t(t * top_k + k)] = int32_t((t * 5 + k * 3) % n_experts);
        wts[size_t(t * top_k + k)] = 0.1f + 0.1f * float(k);
      }
    std::vector<float> plain(static_cast<size_t>(n_tokens * hidden)), numa(plain.size());
    MoeParams p;
    p.experts = experts.data(); p.n_experts = n_experts;
    p.gate_type = p.up_type = p.down_type = DType::Q8_0;
    p.hidden = hidden; p.n_ff = n_ff; p.x = x.data(); p.n_tokens = n_tokens; p.top_k = top_k;
    p.ids = ids.data(); p.weights = wts.data(); p.y = plain.data();
    moe_experts(p, pool);
    std::vector<std::pair<int, int>> trace;
    p.n_homes = homes.n_homes();
    p.expert_home = homes.node_of_expert.data();
    p.thread_home = homes.thread_home.data();
    p.trace = &trace;
    p.y = numa.data();
    moe_experts(p, pool);
    EXPECT_EQ(numa, plain) << "tokens " << n_tokens << " top-k " << top_k;
    std::set<int> computed;
    for (auto [e, t] : trace) {
      computed.insert(e);
      EXPECT_EQ(homes.node_of_expert[size_t(e)], homes.thread_home[size_t(t)])
          << "thread " << t << " computed expert " << e << " of another home";
    }
    std::set<int> routed(ids.begin(), ids.end());
    EXPECT_EQ(computed, routed);
  }
}

}  // namespace
}  // namespace hexe::cpu
