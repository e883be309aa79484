// The machine's NUMA nodes and the cores whose memory is local to each, from hwloc: the input of
// expert placement on multi-socket machines (expert_homes.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hexe::mem {

struct NumaNodeInfo {
  int os_index = 0;          // the node number libnuma and the kernel use
  std::vector<int> cores;    // OS index of the first hardware thread of each core on this node
  uint64_t memory_bytes = 0;
};

struct NumaTopology {
  std::vector<NumaNodeInfo> nodes;  // at least one

  int n_cores() const;
  std::vector<int> all_cores() const;  // every node's cores, node by node
  // all_cores() less those whose first hardware thread the calling thread's affinity mask leaves
  // out: hwloc lists a cgroup's CPUs, not a `taskset` mask's, and pinning to those would escape it.
  std::vector<int> allowed_cores() const;
  // This machine. A machine hwloc reports without NUMA nodes counts as one node.
  static NumaTopology detect();
  // An hwloc synthetic description, e.g. "pack:2 numa:1 core:8 pu:2" (tests, what-if plans).
  // Throws hexe::Error naming the description when hwloc rejects it.
  static NumaTopology synthetic(const std::string& description);
};

}  // namespace hexe::mem
