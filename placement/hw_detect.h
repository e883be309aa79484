// `hexe profile detect`: this machine's profile from hwloc (sockets, NUMA nodes, cores, caches),
// CPUID (ISA) and measurements (DRAM read bandwidth, matmul rates, GEMV streaming efficiency).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "placement/hardware_profile.h"

namespace hexe::place {

struct DetectOptions {
  uint64_t dram_bytes_per_node = 2ull << 30;  // >= 2 GiB: far above any LLC (this VM reports 480 MiB)
  uint64_t gemv_bytes = 1ull << 30;
  double matmul_seconds = 0.3;
  bool measure = true;                         // false: topology and ISA only (tests)
  std::function<void(const std::string&)> progress;  // one line per step, may be empty
};

// Topology and ISA without measurements.
HardwareProfile detect_topology();
// Topology, ISA, measurements and (through the hook below) CUDA devices.
HardwareProfile detect_profile(const DetectOptions& opt);

// The CUDA issue installs a detector (memory, SMs, HBM and pinned PCIe bandwidth per device);
// without one the profile lists no GPU.
using GpuDetector = std::function<std::vector<GpuProfile>()>;
void set_gpu_detector(GpuDetector fn);

// One-screen summary of a profile.
std::string describe_profile(const HardwareProfile& p);

}  // namespace hexe::place
