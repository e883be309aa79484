// Routed experts on NUMA machines: each expert lives whole on one node (interleaved by expert id,
// so every node holds an equal share and a token's top-k usually spans all nodes), and the
// threads of a node compute only the experts held there, so no expert weight crosses the
// inter-socket link. On one node this is the identity: one home, every thread.
#pragma once

#include <vector>

#include "memory/numa_topology.h"

namespace hexe::mem {

struct ExpertHomes {
  std::vector<int> node_os_index;              // per home: the NUMA node number
  std::vector<int> node_of_expert;             // expert id -> home index
  std::vector<int> thread_cores;               // thread t runs pinned on core thread_cores[t]
  std::vector<int> thread_home;                // thread t -> home index
  std::vector<std::vector<int>> threads_of_home;
  std::vector<std::vector<int>> experts_of_home;

  int n_homes() const { return int(node_os_index.size()); }
};

// n_threads <= 0: one thread per core. Threads are spread over the nodes in turn (a node gets
// at most one thread per core); nodes left without a thread hold no experts. Threads are
// numbered node by node, so each node's threads are a contiguous range.
ExpertHomes home_experts(const NumaTopology& topo, int n_expert, int n_threads);

}  // namespace hexe::mem
