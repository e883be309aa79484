// NumaTopology from an hwloc topology (real or synthetic).
#include "memory/numa_topology.h"

#include <sched.h>

#include <hwloc.h>

#include "memory/error.h"

namespace hexe::mem {

namespace {

struct Topo {
  hwloc_topology_t t = nullptr;
  Topo() { hwloc_topology_init(&t); }
  ~Topo() { hwloc_topology_destroy(t); }
  Topo(const Topo&) = delete;
  Topo& operator=(const Topo&) = delete;
};

// One entry per core inside `set`: the OS index of its first hardware thread.
std::vector<int> cores_in(hwloc_topology_t t, hwloc_const_cpuset_t set) {
  std::vector<int> out;
  const int n = hwloc_get_nbobjs_inside_cpuset_by_type(t, set, HWLOC_OBJ_CORE);
  for (int i = 0; i < n; ++i) {
    hwloc_obj_t core = hwloc_get_obj_inside_cpuset_by_type(t, set, HWLOC_OBJ_CORE, unsigned(i));
    hwloc_obj_t pu = hwloc_get_obj_inside_cpuset_by_type(t, core->cpuset, HWLOC_OBJ_PU, 0);
    if (pu) out.push_back(int(pu->os_index));
  }
  if (out.empty()) {  // no core objects (some VMs): one entry per hardware thread
    const int npu = hwloc_get_nbobjs_inside_cpuset_by_type(t, set, HWLOC_OBJ_PU);
    for (int i = 0; i < npu; ++i)
      out.push_back(int(hwloc_get_obj_inside_cpuset_by_type(t, set, HWLOC_OBJ_PU, unsigned(i))->os_index));
  }
  return out;
}

NumaTopology from_hwloc(hwloc_topology_t t) {
  NumaTopology topo;
  const int n = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
  for (int i = 0; i < n; ++i) {
    hwloc_obj_t node = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, unsigned(i));
    NumaNodeInfo info;
    info.os_index = int(node->os_index);
    info.cores = cores_in(t, node->cpuset);
    info.memory_bytes = node->attr ? node->attr->numanode.local_memory : 0;
    if (!info.cores.empty()) topo.nodes.push_back(std::move(info));  // memory-only nodes (CXL, HBM) hold no threads
  }
  if (topo.nodes.empty()) {
    NumaNodeInfo all;
    all.cores = cores_in(t, hwloc_topology_get_topology_cpuset(t));
    topo.nodes.push_back(std::move(all));
  }
  return topo;
}

}  // namespace

int NumaTopology::n_cores() const {
  int n = 0;
  for (const auto& node : nodes) n += int(node.cores.size());
  return n;
}

std::vector<int> NumaTopology::all_cores() const {
  std::vector<int> c;
  for (const auto& node : nodes) c.insert(c.end(), node.cores.begin(), node.cores.end());
  return c;
}

std::vector<int> NumaTopology::allowed_cores() const {
  std::vector<int> all = all_cores();
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return all;
  std::vector<int> c;
  for (int core : all)
    if (core >= 0 && core < CPU_SETSIZE && CPU_ISSET(core, &allowed)) c.push_back(core);
  return c;
}

NumaTopology NumaTopology::detect() {
  Topo t;
  if (hwloc_topology_load(t.t) != 0) throw Error("hwloc could not read this machine's topology");
  return from_hwloc(t.t);
}

NumaTopology NumaTopology::synthetic(const std::string& description) {
  Topo t;
  if (hwloc_topology_set_synthetic(t.t, description.c_str()) != 0 || hwloc_topology_load(t.t) != 0)
    throw Error("hwloc rejected the synthetic topology '" + description + "'");
  return from_hwloc(t.t);
}

}  // namespace hexe::mem
