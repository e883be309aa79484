// CUDA device presence and properties. Safe to call on a machine without a GPU or driver.
#pragma once

#include <cstddef>
#include <string>

#include "gpu_kernels/status.h"

namespace hexe::gpu {

struct DevicePresence {
  int count = 0;       // usable CUDA devices; 0 without a driver or a device
  std::string reason;  // why count is 0: "no CUDA device: cudaErrorNoDevice (...)"; empty otherwise
};

// Asks the CUDA runtime once per call; never throws and never aborts: a missing libcuda,
// an old driver or no device all give count 0 with the reason. One CUDA-enabled build therefore
// runs CPU-only on any machine.
DevicePresence probe_devices() noexcept;
inline int device_count() noexcept { return probe_devices().count; }

struct DeviceInfo {
  int index = 0;
  std::string name;                   // "NVIDIA H100 80GB HBM3"
  int cc_major = 0, cc_minor = 0;     // compute capability
  int sm_count = 0;
  size_t total_memory = 0;            // bytes
  size_t l2_bytes = 0;
  double memory_bandwidth = 0;        // bytes/s, theoretical: 2 x memory clock x bus width
};

// Properties of device `index`; a CUDA error (bad index, no driver) comes back in the Status.
Status device_info(int index, DeviceInfo* out) noexcept;

}  // namespace hexe::gpu
