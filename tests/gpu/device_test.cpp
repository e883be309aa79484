// Device presence and error messages: these run everywhere, GPU or not.
#include <string>

#include <gtest/gtest.h>

#include "gpu_kernels/device.h"
#include "gpu_kernels/status.h"

namespace hexe::gpu {
namespace {

TEST(GpuDevice, ProbeNeverFailsAndExplainsAbsence) {
  const DevicePresence p = probe_devices();
  ASSERT_GE(p.count, 0);
  if (p.count == 0) {
    EXPECT_EQ(p.reason.rfind("no CUDA device", 0), 0u) << p.reason;
    DeviceInfo info;
    EXPECT_FALSE(device_info(0, &info).ok());
  } else {
    EXPECT_TRUE(p.reason.empty()) << p.reason;
    DeviceInfo info;
    const Status s = device_info(0, &info);
    ASSERT_TRUE(s.ok()) << to_string(s);
    EXPECT_FALSE(info.name.empty());
    EXPECT_GE(info.cc_major, 8) << "gpu_kernels targets sm_80 and newer";
    EXPECT_GT(info.sm_count, 0);
    EXPECT_GT(info.total_memory, 0u);
    EXPECT_GT(info.memory_bandwidth, 1e11) << "bytes/s";
    EXPECT_EQ(device_info(p.count, &info).code, StatusCode::kCuda);
    // The failure is reported once, not again by the next launch's cudaGetLastError().
    EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  }
}

TEST(GpuStatus, MessagesNameTheError) {
  EXPECT_EQ(to_string(Status::success()), "ok");
  EXPECT_EQ(cuda_error_message(cudaErrorNoDevice, "probe").rfind("probe: cudaErrorNoDevice (", 0), 0u)
      << cuda_error_message(cudaErrorNoDevice, "probe");
  const Status c = Status::cuda("gemv", cudaErrorInvalidDeviceFunction);
  EXPECT_EQ(c.code, StatusCode::kCuda);
  EXPECT_NE(to_string(c).find("gemv: cudaErrorInvalidDeviceFunction"), std::string::npos) << to_string(c);
  const Status b = Status::cublas("gemm", CUBLAS_STATUS_NOT_SUPPORTED);
  EXPECT_NE(to_string(b).find("gemm: CUBLAS_STATUS_NOT_SUPPORTED"), std::string::npos) << to_string(b);
  EXPECT_TRUE(Status::cuda("x", cudaSuccess).ok());
  EXPECT_EQ(to_string(Status::invalid("rope", "rot_dim must be even")), "rope: invalid argument: rot_dim must be even");
}

}  // namespace
}  // namespace hexe::gpu
