// Streaming-read bandwidth per NUMA node and for all nodes together.
#include "placement/dram_bench.h"

#include <hwloc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

#include "cpu_kernels/probe.h"
#include "cpu_kernels/thread_pool.h"
#include "memory/error.h"

namespace hexe::place {

namespace {

// The same vector streaming read `hexe bench` divides by (cpu_kernels/probe.h), so a profile's
// DRAM figure and the benchmarks' ratios share one denominator.
// Passes cycle through the read patterns (best of them all, as there).
uint64_t read_range(const uint64_t* p, size_t n, int pattern) {
  return cpu::stream_read(p, n * sizeof(uint64_t), pattern);
}

struct Topo {
  hwloc_topology_t t = nullptr;
  Topo() {
    if (hwloc_topology_init(&t) != 0 || hwloc_topology_load(t) != 0) throw Error("hwloc: cannot load the topology");
  }
  ~Topo() { hwloc_topology_destroy(t); }
};

struct Buffer {
  hwloc_topology_t topo;
  void* p = nullptr;
  size_t bytes = 0;
  ~Buffer() {
    if (p) hwloc_free(topo, p, bytes);
  }
};

}  // namespace

DramBenchResult measure_dram_read(const std::vector<DramBenchNode>& nodes, uint64_t bytes_per_node, int passes) {
  if (nodes.empty()) throw Error("DRAM benchmark: no NUMA node to measure");
  Topo topo;
  DramBenchResult res;
  res.bytes_per_node = bytes_per_node & ~uint64_t(4095);
  const size_t words = size_t(res.bytes_per_node / 8);
  std::vector<std::unique_ptr<Buffer>> bufs;
  std::vector<std::unique_ptr<cpu::ThreadPool>> pools;
  for (const auto& n : nodes) {
    auto b = std::make_unique<Buffer>();
    b->topo = topo.t;
    b->bytes = size_t(res.bytes_per_node);
    hwloc_obj_t node = n.node_os_index >= 0
                           ? hwloc_get_numanode_obj_by_os_index(topo.t, unsigned(n.node_os_index))
                           : nullptr;
    b->p = node ? hwloc_alloc_membind(topo.t, b->bytes, node->nodeset, HWLOC_MEMBIND_BIND, HWLOC_MEMBIND_BYNODESET)
                : hwloc_alloc(topo.t, b->bytes);
    if (!b->p)
      throw Error("DRAM benchmark: cannot allocate " + std::to_string(b->bytes >> 20) + " MiB on NUMA node " +
                  std::to_string(n.node_os_index));
    pools.push_back(std::make_unique<cpu::ThreadPool>(int(std::max<size_t>(1, n.cpus.size())), n.cpus));
    // First touch from the node's own threads, with a pattern that is not all zero pages.
    auto* w = static_cast<uint64_t*>(b->p);
    pools.back()->parallel_for(int64_t(words), 512, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) w[i] = uint64_t(i) * 0x9E3779B97F4A7C15ull;
    });
    bufs.push_back(std::move(b));
  }
  std::atomic<uint64_t> sink{0};
  int pattern = 0;
  auto read_node = [&](size_t i) {
    const auto* w = static_cast<const uint64_t*>(bufs[i]->p);
    pools[i]->parallel_for(int64_t(words), 8192, [&](int64_t s, int64_t e) {
      sink += read_range(w + s, size_t(e - s), pattern);
    });
  };
  using clock = std::chrono::steady_clock;
  auto best_of = [&](auto&& fn) {
    fn();  // untimed
    double best = 1e30;
    for (int p = 0; p < std::max(passes, cpu::stream_read_patterns()); ++p) {
      pattern = p;
      auto t0 = clock::now();
      fn();
      best = std::min(best, std::chrono::duration<double>(clock::now() - t0).count());
    }
    return best;
  };
  for (size_t i = 0; i < nodes.size(); ++i) {
    const double s = best_of([&] { read_node(i); });
    res.node_gbps.push_back(double(res.bytes_per_node) / s / 1e9);
  }
  if (nodes.size() == 1) {
    res.all_gbps = res.node_gbps[0];
  } else {
    const double s = best_of([&] {
      std::vector<std::thread> ts;
      for (size_t i = 0; i < nodes.size(); ++i) ts.emplace_back([&, i] { read_node(i); });
      for (auto& t : ts) t.join();
    });
    res.all_gbps = double(res.bytes_per_node) * double(nodes.size()) / s / 1e9;
  }
  if (sink.load() == 0x5555) std::fputc(' ', stderr);  // keeps the sums observable
  return res;
}

}  // namespace hexe::place
