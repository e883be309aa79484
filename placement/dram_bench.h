// DRAM read-bandwidth microbenchmark: threads pinned to a NUMA node's cores stream-read a buffer
// bound to that node, far larger than the last-level cache (>= 2 GiB), and sum it.
#pragma once

#include <cstdint>
#include <vector>

namespace hexe::place {

struct DramBenchNode {
  std::vector<int> cpus;     // OS CPU ids to read with (one per core)
  int node_os_index = -1;    // hwloc NUMA node to bind the buffer to; -1: no binding
};

struct DramBenchResult {
  std::vector<double> node_gbps;  // each node alone
  double all_gbps = 0;            // every node at once, each reading its own buffer
  uint64_t bytes_per_node = 0;
};

// `bytes_per_node` is rounded down to a multiple of 4 KiB; `passes` timed passes (best kept)
// after one untimed pass that faults the pages in. Throws hexe::Error when memory cannot be
// allocated or bound.
DramBenchResult measure_dram_read(const std::vector<DramBenchNode>& nodes, uint64_t bytes_per_node, int passes = 3);

}  // namespace hexe::place
