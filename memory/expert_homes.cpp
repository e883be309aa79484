// home_experts (see expert_homes.h).
#include "memory/expert_homes.h"

#include <algorithm>

#include "memory/error.h"

namespace hexe::mem {

ExpertHomes home_experts(const NumaTopology& topo, int n_expert, int n_threads) {
  if (topo.nodes.empty()) throw Error("expert placement: the topology has no NUMA node with cores");
  if (n_expert < 0) throw Error("expert placement: negative expert count " + std::to_string(n_expert));
  const int total = topo.n_cores();
  if (n_threads <= 0 || n_threads > total) n_threads = total;
  // Round-robin over nodes: thread counts differ by at most one between nodes with spare cores.
  std::vector<int> take(topo.nodes.size(), 0);
  for (int given = 0; given < n_threads;)
    for (size_t n = 0; n < topo.nodes.size() && given < n_threads; ++n)
      if (take[n] < int(topo.nodes[n].cores.size())) ++take[n], ++given;

  ExpertHomes h;
  for (size_t n = 0; n < topo.nodes.size(); ++n) {
    if (take[n] == 0) continue;
    const int home = h.n_homes();
    h.node_os_index.push_back(topo.nodes[n].os_index);
    h.threads_of_home.emplace_back();
    for (int i = 0; i < take[n]; ++i) {
      h.threads_of_home.back().push_back(int(h.thread_cores.size()));
      h.thread_cores.push_back(topo.nodes[n].cores[size_t(i)]);
      h.thread_home.push_back(home);
    }
  }
  h.experts_of_home.resize(size_t(h.n_homes()));
  h.node_of_expert.resize(size_t(n_expert));
  for (int e = 0; e < n_expert; ++e) {
    const int home = e % h.n_homes();
    h.node_of_expert[size_t(e)] = home;
    h.experts_of_home[size_t(home)].push_back(e);
  }
  return h;
}

}  // namespace hexe::mem
