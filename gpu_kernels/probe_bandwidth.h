// Measured properties of a CUDA device for the hardware profile and `hexe bench pcie`: device
// memory read bandwidth, pinned and pageable PCIe copies, the context's reserved memory, the PCIe
// link's rated bandwidth, and tensor-core peaks from a table. Safe without a GPU (Status errors).
#pragma once

#include <cstddef>
#include <string>

#include "gpu_kernels/device.h"
#include "gpu_kernels/status.h"

namespace hexe::gpu {

// The PCIe link of a device, from sysfs (/sys/bus/pci/devices/<bus id>/), which the CUDA runtime
// does not expose. Idle NVIDIA GPUs train the link down (2.5 GT/s): read it right after a copy.
struct PcieLink {
  std::string bus_id;          // "0000:3b:00.0"
  double gts = 0;              // current transfer rate per lane, GT/s (0: unknown)
  int width = 0;               // current lanes
  double max_gts = 0;          // the device's maximum
  int max_width = 0;
  // Per direction, after line encoding (8b/10b to gen 2, 128b/130b gen 3-5, 242B/256B FLIT gen 6),
  // of the max rate and width: the figure a link reaches when busy. 0 when sysfs has no entry.
  double rated_gbps = 0;
  std::string reason;          // why the figures are 0 ("no /sys/bus/pci/devices/... entry")
};
// `index`'s bus id from cudaDeviceGetPCIBusId, then sysfs; never fails (reason says what is missing).
PcieLink pcie_link(int index) noexcept;
// GB/s per direction of one lane at `gts` GT/s after encoding; 0 for an unknown rate.
double pcie_lane_gbps(double gts) noexcept;

enum class CopyDir { kHostToDevice, kDeviceToHost };

// Best of `reps` timed copies of `bytes` between `index`'s memory and host memory that is pinned
// (cudaMallocHost) or pageable (new[]), in GB/s (10^9 B/s). One warm-up copy is not counted.
Status measure_copy_gbps(int index, CopyDir dir, bool pinned, size_t bytes, int reps, double* gbps) noexcept;

// Best of `reps` passes of a read-only kernel over `bytes` of device memory, GB/s: the rate at
// which decode streams weights. `bytes` should be far above the L2 (default: 16 x L2, >= 256 MiB).
Status measure_device_read_gbps(int index, size_t bytes, int reps, double* gbps) noexcept;

// Dense tensor-core peaks from a table of per-SM, per-clock rates by compute capability (NVIDIA's
// architecture whitepapers: V100, Turing, A100, GA102, AD102, H100, Blackwell), times SMs and the
// boost clock. FP16/BF16 inputs with FP32 accumulate; GeForce parts run that at half the rate of
// FP16 accumulate, which the table applies by name. 0 for an architecture not in the table.
// The clock is the driver's maximum (cudaDevAttrClockRate); NVIDIA's datasheets assume a lower
// one on Hopper (H100 SXM: 1.83 GHz for 989 TFLOPS vs 1.98 GHz reported), so there the figure is
// ~8% above the datasheet's. The profile's efficiency.gpu_compute absorbs the difference.
struct TensorPeaks {
  double tflops_fp16 = 0;
  double tops_int8 = 0;
  const char* source = "";     // "table sm_90: 4096 FLOP/clk/SM (H100 whitepaper)"
};
TensorPeaks tensor_peaks(int cc_major, int cc_minor, int sm_count, double clock_ghz, const std::string& name) noexcept;

struct ProbeOptions {
  size_t read_bytes = 0;          // device-read buffer; 0: 16 x L2, at least 256 MiB, <= free / 4
  size_t copy_bytes = 256u << 20; // PCIe copy size (pinned and pageable)
  int reps = 5;                   // best of
  bool pageable = true;           // also measure pageable copies
};

struct DeviceProbe {
  DeviceInfo info;                // name, cc, SMs, memory, L2, theoretical bandwidth
  double clock_ghz = 0;           // boost clock (cudaDevAttrClockRate)
  size_t free_after_context = 0;  // cudaMemGetInfo right after the context was created
  size_t reserved_bytes = 0;      // total - free at that point: the context and the driver's share
  double read_gbps = 0;           // measured device memory read bandwidth
  double h2d_pinned_gbps = 0, d2h_pinned_gbps = 0;
  double h2d_pageable_gbps = 0, d2h_pageable_gbps = 0;  // 0 when not measured
  TensorPeaks peaks;
  PcieLink link;                  // read after the copies, while the link is trained up
};

// Creates `index`'s context (cudaSetDevice + cudaFree(0)), reads the reserved memory (call it
// before this process allocates on the device; other processes' memory counts too), then
// measures. Takes about a second per device; needs ~copy_bytes of host and read_bytes of device memory.
Status probe_device(int index, const ProbeOptions& opt, DeviceProbe* out) noexcept;

}  // namespace hexe::gpu
