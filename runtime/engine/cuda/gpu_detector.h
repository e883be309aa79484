// The CUDA side of `hexe profile detect`: each device measured into a place::GpuProfile.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "placement/hardware_profile.h"

namespace hexe {

using DetectLog = std::function<void(const std::string&)>;

// One profile per CUDA device (gpu::probe_device: device read bandwidth, pinned PCIe copies,
// reserved memory, tensor peaks from the table). No device, no driver: an empty list, and `log`
// gets "GPU: none detected: <reason>". A device that fails its probe throws hexe::Error.
std::vector<place::GpuProfile> detect_cuda_gpus(const DetectLog& log);

// place::set_gpu_detector(detect_cuda_gpus with `log`); the hexe executable calls it at start.
void install_cuda_gpu_detector(DetectLog log);

}  // namespace hexe
