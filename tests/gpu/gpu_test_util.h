// Shared helpers of the GPU tests: skip without a device, device buffers, seeded random data.
#pragma once

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include "gpu_kernels/device.h"
#include "gpu_kernels/status.h"

namespace hexe::gpu::test {

// Probed once per process: every GPU test starts with HEXE_REQUIRE_GPU().
inline const DevicePresence& presence() {
  static const DevicePresence p = probe_devices();
  return p;
}
#define HEXE_REQUIRE_GPU()                                                              \
  do {                                                                                   \
    if (::hexe::gpu::test::presence().count == 0)                                        \
      GTEST_SKIP() << "needs a CUDA device: " << ::hexe::gpu::test::presence().reason;    \
  } while (0)

#define HEXE_CUDA_OK(expr)                                                               \
  do {                                                                                   \
    const cudaError_t hexe_e_ = (expr);                                                  \
    ASSERT_EQ(hexe_e_, cudaSuccess) << ::hexe::gpu::cuda_error_message(hexe_e_, #expr);  \
  } while (0)

#define HEXE_GPU_OK(expr)                                                         \
  do {                                                                            \
    const ::hexe::gpu::Status hexe_s_ = (expr);                                   \
    ASSERT_TRUE(hexe_s_.ok()) << ::hexe::gpu::to_string(hexe_s_);                 \
    HEXE_CUDA_OK(cudaDeviceSynchronize());                                        \
  } while (0)

// Device memory of `bytes` bytes (plus `pad` spare bytes so tests can offset pointers).
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    if (cudaMalloc(&ptr_, bytes ? bytes : 1) != cudaSuccess) ptr_ = nullptr;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }
  template <class T = void>
  T* get() const { return static_cast<T*>(ptr_); }
  size_t bytes() const { return bytes_; }
  bool ok() const { return ptr_ != nullptr; }
  cudaError_t upload(const void* src, size_t n) { return cudaMemcpy(ptr_, src, n, cudaMemcpyHostToDevice); }
  cudaError_t download(void* dst, size_t n) const { return cudaMemcpy(dst, ptr_, n, cudaMemcpyDeviceToHost); }

 private:
  void* ptr_ = nullptr;
  size_t bytes_;
};

inline std::vector<float> random_floats(size_t n, uint64_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// Unit roundoff of float (2^-24), F16 (2^-11) and BF16 (2^-8).
inline constexpr double kU32 = 0x1.0p-24, kU16 = 0x1.0p-11, kUBf16 = 0x1.0p-8;

}  // namespace hexe::gpu::test
