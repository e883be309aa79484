// detect_cuda_gpus: gpu::probe_device per device, reported in place::GpuProfile's units.
#include "runtime/engine/cuda/gpu_detector.h"

#include <cstdio>

#include "gpu_kernels/device.h"
#include "gpu_kernels/probe_bandwidth.h"
#include "memory/error.h"
#include "placement/hw_detect.h"

namespace hexe {

std::vector<place::GpuProfile> detect_cuda_gpus(const DetectLog& log) {
  auto say = [&](const std::string& s) {
    if (log) log(s);
  };
  std::vector<place::GpuProfile> out;
  const gpu::DevicePresence presence = gpu::probe_devices();
  if (presence.count == 0) {
    say("GPU: none detected: " + presence.reason);
    return out;
  }
  for (int i = 0; i < presence.count; ++i) {
    say("measuring CUDA device " + std::to_string(i) + " (device read, pinned and pageable PCIe copies)...");
    gpu::DeviceProbe d;
    if (const gpu::Status s = gpu::probe_device(i, gpu::ProbeOptions{}, &d); !s.ok())
      throw Error("CUDA device " + std::to_string(i) + ": " + gpu::to_string(s));
    char b[512];
    std::snprintf(b, sizeof b,
                  "GPU %d: %s, sm_%d%d, %d SMs at %.2f GHz, L2 %zu MiB; read %.0f GB/s (theoretical %.0f); "
                  "context reserves %.0f MiB; PCIe pinned H2D %.1f / D2H %.1f GB/s, pageable %.1f / %.1f GB/s; "
                  "link %s rated %.1f GB/s%s%s; peaks fp16 %.0f TFLOP/s, int8 %.0f TOP/s (%s)",
                  i, d.info.name.c_str(), d.info.cc_major, d.info.cc_minor, d.info.sm_count, d.clock_ghz,
                  d.info.l2_bytes >> 20, d.read_gbps, d.info.memory_bandwidth / 1e9,
                  double(d.reserved_bytes) / double(1 << 20), d.h2d_pinned_gbps, d.d2h_pinned_gbps,
                  d.h2d_pageable_gbps, d.d2h_pageable_gbps, d.link.bus_id.c_str(), d.link.rated_gbps,
                  d.link.reason.empty() ? "" : ": ", d.link.reason.c_str(), d.peaks.tflops_fp16, d.peaks.tops_int8,
                  d.peaks.source);
    say(b);
    place::GpuProfile g;
    g.name = d.info.name;
    g.memory_bytes = d.info.total_memory;
    g.sms = d.info.sm_count;
    g.mem_gbps = d.read_gbps;
    g.peak_tflops_fp16 = d.peaks.tflops_fp16;
    g.peak_tops_int8 = d.peaks.tops_int8;
    g.pcie_h2d_gbps = d.h2d_pinned_gbps;
    g.pcie_d2h_gbps = d.d2h_pinned_gbps;
    g.reserved_bytes = d.reserved_bytes;
    out.push_back(std::move(g));
  }
  return out;
}

void install_cuda_gpu_detector(DetectLog log) {
  place::set_gpu_detector([log = std::move(log)] { return detect_cuda_gpus(log); });
}

}  // namespace hexe
