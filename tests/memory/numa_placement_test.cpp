// Expert placement on synthetic 1-, 2- and 4-node machines (hwloc synthetic topologies), and
// node-local buffers on this machine.
#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <set>

#include "memory/error.h"
#include "memory/expert_homes.h"
#include "memory/node_buffer.h"
#include "memory/numa_topology.h"

namespace hexe::mem {
namespace {

// Every expert has exactly one home, homes hold equal shares (+-1), experts interleave by id,
// and every thread is pinned to a distinct core of its home's node.
void expect_consistent(const NumaTopology& topo, const ExpertHomes& h, int n_expert, int n_threads) {
  ASSERT_EQ(int(h.node_of_expert.size()), n_expert);
  ASSERT_EQ(int(h.thread_cores.size()), n_threads);
  std::set<int> cores(h.thread_cores.begin(), h.thread_cores.end());
  EXPECT_EQ(int(cores.size()), n_threads) << "two threads on one core";
  size_t lo = SIZE_MAX, hi = 0;
  for (int home = 0; home < h.n_homes(); ++home) {
    lo = std::min(lo, h.experts_of_home[size_t(home)].size());
    hi = std::max(hi, h.experts_of_home[size_t(home)].size());
    EXPECT_FALSE(h.threads_of_home[size_t(home)].empty()) << "a home without threads holds experts";
    const auto& node = *std::find_if(topo.nodes.begin(), topo.nodes.end(),
                                     [&](const NumaNodeInfo& n) { return n.os_index == h.node_os_index[size_t(home)]; });
    for (int t : h.threads_of_home[size_t(home)]) {
      EXPECT_EQ(h.thread_home[size_t(t)], home);
      EXPECT_NE(std::find(node.cores.begin(), node.cores.end(), h.thread_cores[size_t(t)]), node.cores.end())
          << "thread " << t << " is pinned off its node";
    }
    for (int e : h.experts_of_home[size_t(home)]) EXPECT_EQ(h.node_of_expert[size_t(e)], home);
  }
  EXPECT_LE(hi - lo, 1u);
  for (int e = 1; e < n_expert; ++e)
    EXPECT_EQ(h.node_of_expert[size_t(e)], (h.node_of_expert[size_t(e - 1)] + 1) % h.n_homes());
  // Threads are numbered node by node: each home's threads form a contiguous range.
  for (const auto& ts : h.threads_of_home)
    for (size_t i = 1; i < ts.size(); ++i) EXPECT_EQ(ts[i], ts[i - 1] + 1);
}

TEST(NumaTopology, SyntheticTwoSocketMachine) {
  const NumaTopology t = NumaTopology::synthetic("pack:2 numa:1 core:8 pu:2");
  ASSERT_EQ(t.nodes.size(), 2u);
  EXPECT_EQ(t.n_cores(), 16);
  EXPECT_EQ(t.nodes[1].os_index, 1);
  // One entry per core (the first of its two hardware threads), all on node 1's side.
  EXPECT_EQ(t.nodes[1].cores.front(), 16);
  EXPECT_THROW(NumaTopology::synthetic("pack:two"), Error);
}

TEST(ExpertHomes, TwoNodesSplitExpertsAndThreads) {
  const NumaTopology t = NumaTopology::synthetic("pack:2 numa:1 core:8 pu:1");
  const ExpertHomes h = home_experts(t, 256, 0);
  ASSERT_EQ(h.n_homes(), 2);
  expect_consistent(t, h, 256, 16);
  EXPECT_EQ(h.experts_of_home[0].size(), 128u);
  EXPECT_EQ(h.node_of_expert[0], 0);
  EXPECT_EQ(h.node_of_expert[1], 1);
}

TEST(ExpertHomes, FourNodesWithFewerThreadsThanCores) {
  const NumaTopology t = NumaTopology::synthetic("pack:2 numa:2 core:6 pu:2");
  ASSERT_EQ(t.nodes.size(), 4u);
  for (int threads : {1, 3, 4, 5, 10, 24, 100}) {
    const ExpertHomes h = home_experts(t, 128, threads);
    const int used = std::min(threads, 24);
    expect_consistent(t, h, 128, used);
    EXPECT_EQ(h.n_homes(), std::min(used, 4)) << threads;  // nodes left without threads hold nothing
  }
}

TEST(ExpertHomes, OneNodeIsTheIdentity) {
  const NumaTopology t = NumaTopology::synthetic("pack:1 numa:1 core:4 pu:1");
  const ExpertHomes h = home_experts(t, 8, 0);
  ASSERT_EQ(h.n_homes(), 1);
  expect_consistent(t, h, 8, 4);
  std::vector<int> all(8);
  std::iota(all.begin(), all.end(), 0);
  EXPECT_EQ(h.experts_of_home[0], all);
}

TEST(ExpertHomes, ThisMachine) {
  const NumaTopology t = NumaTopology::detect();
  ASSERT_FALSE(t.nodes.empty());
  expect_consistent(t, home_experts(t, 64, 0), 64, t.n_cores());
}

TEST(NodeBuffer, LandsOnTheRequestedNodeAndHoldsData) {
  const NumaTopology t = NumaTopology::detect();
  const int node = t.nodes.back().os_index;
  NodeBuffer b((size_t(5) << 20) + 123, node, HugePages::Madvise);
  ASSERT_NE(b.data(), nullptr);
  std::memset(b.data(), 0x5a, b.size());
  EXPECT_EQ(b.data()[b.size() - 1], 0x5a);
  if (b.bound() && b.node_of_first_page() >= 0) {
    EXPECT_EQ(b.node_of_first_page(), node);
  }
  NodeBuffer moved = std::move(b);
  EXPECT_EQ(b.data(), nullptr);
  EXPECT_EQ(moved.data()[0], 0x5a);
  EXPECT_EQ(NodeBuffer(0, node, HugePages::Off).data(), nullptr);
}

}  // namespace
}  // namespace hexe::mem
