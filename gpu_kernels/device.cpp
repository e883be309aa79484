// Device presence check and property query over the CUDA runtime API.
#include "gpu_kernels/device.h"

namespace hexe::gpu {

DevicePresence probe_devices() noexcept {
  DevicePresence p;
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();  // clear the error so later unrelated calls do not report it
    try {
      // No libcuda at all also reads "insufficient driver": say both possibilities.
      p.reason = cuda_error_message(e, e == cudaErrorInsufficientDriver
                                           ? "no CUDA device (no NVIDIA driver, or one older than this "
                                             "build's CUDA runtime)"
                                           : "no CUDA device");
    } catch (...) {  // allocation failure while building the message: keep the count only
    }
    return p;
  }
  p.count = n;
  if (n == 0) p.reason = "no CUDA device: the driver reports 0 devices";
  return p;
}

namespace {
// An API error is returned in the Status and cleared, so that the next kernel launch's
// cudaGetLastError() does not report it as its own.
Status api_error(const char* op, cudaError_t e) {
  cudaGetLastError();
  return Status::cuda(op, e);
}
}  // namespace

Status device_info(int index, DeviceInfo* out) noexcept {
  constexpr const char* kOp = "device_info";
  cudaDeviceProp prop{};
  if (auto e = cudaGetDeviceProperties(&prop, index); e != cudaSuccess) return api_error(kOp, e);
  // The memory clock left cudaDeviceProp in CUDA 13; the attribute still reports it (kHz).
  int mem_clock_khz = 0;
  if (auto e = cudaDeviceGetAttribute(&mem_clock_khz, cudaDevAttrMemoryClockRate, index);
      e != cudaSuccess)
    return api_error(kOp, e);
  try {
    out->name = prop.name;
  } catch (...) {
    return Status::cuda(kOp, cudaErrorMemoryAllocation);
  }
  out->index = index;
  out->cc_major = prop.major;
  out->cc_minor = prop.minor;
  out->sm_count = prop.multiProcessorCount;
  out->total_memory = prop.totalGlobalMem;
  out->l2_bytes = size_t(prop.l2CacheSize);
  // Double data rate: two transfers per clock over a bus of memoryBusWidth bits.
  out->memory_bandwidth = 2.0 * double(mem_clock_khz) * 1e3 * double(prop.memoryBusWidth) / 8.0;
  return Status::success();
}

}  // namespace hexe::gpu
