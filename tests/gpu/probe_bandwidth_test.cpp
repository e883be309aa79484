// GPU probes: the link and tensor-peak tables against published figures (everywhere), and the
// measured figures against the device's own limits (skipped without a GPU).
#include <string>

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include "gpu_kernels/handoff.h"
#include "gpu_kernels/probe_bandwidth.h"
#include "gpu_test_util.h"

namespace hexe::gpu {
namespace {

TEST(GpuProbe, PcieLaneRatesFollowTheEncodings) {
  // PCIe base specs: 2.5/5 GT/s with 8b/10b, 8/16/32 GT/s with 128b/130b, 64 GT/s FLIT 242/256.
  EXPECT_DOUBLE_EQ(pcie_lane_gbps(2.5), 0.25);
  EXPECT_DOUBLE_EQ(pcie_lane_gbps(5.0), 0.5);
  EXPECT_NEAR(pcie_lane_gbps(8.0), 0.985, 1e-3);
  EXPECT_NEAR(pcie_lane_gbps(16.0) * 16, 31.5, 0.1);   // gen 4 x16: "32 GB/s"
  EXPECT_NEAR(pcie_lane_gbps(32.0) * 16, 63.0, 0.1);   // gen 5 x16: "64 GB/s"
  EXPECT_NEAR(pcie_lane_gbps(64.0) * 16, 121.0, 0.1);  // gen 6 x16 after FLIT overhead
  EXPECT_EQ(pcie_lane_gbps(0), 0);
}

TEST(GpuProbe, TensorPeaksMatchPublishedFigures) {
  // Datasheet dense figures: A100 SXM 312 TFLOPS FP16 / 624 TOPS int8 (108 SMs, 1.41 GHz);
  // H100 SXM 989.4 / 1978.9 (132 SMs, 1.83 GHz); RTX 4090 165.2 FP16 with FP32 accumulate
  // (128 SMs, 2.52 GHz); RTX A6000 154.8 (84 SMs, 1.8 GHz).
  TensorPeaks a100 = tensor_peaks(8, 0, 108, 1.41, "NVIDIA A100-SXM4-80GB");
  EXPECT_NEAR(a100.tflops_fp16, 312, 312 * 0.01);
  EXPECT_NEAR(a100.tops_int8, 624, 624 * 0.01);
  TensorPeaks h100 = tensor_peaks(9, 0, 132, 1.83, "NVIDIA H100 80GB HBM3");
  EXPECT_NEAR(h100.tflops_fp16, 989.4, 989.4 * 0.01);
  EXPECT_NEAR(h100.tops_int8, 1978.9, 1978.9 * 0.01);
  EXPECT_NEAR(tensor_peaks(8, 9, 128, 2.52, "NVIDIA GeForce RTX 4090").tflops_fp16, 165.2, 165.2 * 0.01);
  EXPECT_NEAR(tensor_peaks(8, 6, 84, 1.80, "NVIDIA RTX A6000").tflops_fp16, 154.8, 154.8 * 0.01);
  const TensorPeaks unknown = tensor_peaks(6, 1, 30, 1.5, "Pascal");
  EXPECT_EQ(unknown.tflops_fp16, 0);
  EXPECT_NE(std::string(unknown.source).find("no table entry"), std::string::npos);
}

TEST(GpuProbe, BadArgumentsAndMissingDevicesAreStatuses) {
  double g = 0;
  EXPECT_EQ(measure_copy_gbps(0, CopyDir::kHostToDevice, true, 0, 1, &g).code, StatusCode::kInvalidArgument);
  EXPECT_EQ(measure_device_read_gbps(0, 1 << 20, 0, &g).code, StatusCode::kInvalidArgument);
  const int n = test::presence().count;
  DeviceProbe p;
  EXPECT_EQ(probe_device(n, ProbeOptions{}, &p).code, StatusCode::kCuda) << "device index " << n << " does not exist";
  const PcieLink l = pcie_link(n);
  EXPECT_EQ(l.rated_gbps, 0);
  EXPECT_FALSE(l.reason.empty());
  // Errors are cleared for the next launch. (Without a driver the runtime's init error is
  // sticky: cudaGetLastError() returns it on every call, so this holds only with a device.)
  if (n > 0) {
    EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  }
}

TEST(GpuProbe, MeasuredFiguresAreWithinTheDevicesLimits) {
  HEXE_REQUIRE_GPU();
  ProbeOptions o;
  o.copy_bytes = 64u << 20;
  o.reps = 3;
  DeviceProbe p;
  const Status s = probe_device(0, o, &p);
  ASSERT_TRUE(s.ok()) << to_string(s);
  EXPECT_FALSE(p.info.name.empty());
  EXPECT_GT(p.info.l2_bytes, 0u);
  EXPECT_GT(p.clock_ghz, 0.3);
  EXPECT_LT(p.clock_ghz, 4.0);
  EXPECT_GT(p.reserved_bytes, 0u) << "a context takes some device memory";
  EXPECT_LT(p.reserved_bytes, p.info.total_memory / 4);
  EXPECT_EQ(p.reserved_bytes + p.free_after_context, p.info.total_memory);
  // The read kernel reaches a good part of the theoretical rate and never exceeds it by much.
  EXPECT_GT(p.read_gbps, 0.3 * p.info.memory_bandwidth / 1e9) << p.read_gbps;
  EXPECT_LT(p.read_gbps, 1.1 * p.info.memory_bandwidth / 1e9) << p.read_gbps;
  for (double g : {p.h2d_pinned_gbps, p.d2h_pinned_gbps, p.h2d_pageable_gbps, p.d2h_pageable_gbps}) {
    EXPECT_GT(g, 0.5);
    if (p.link.rated_gbps > 0) {
      EXPECT_LT(g, 1.05 * p.link.rated_gbps) << p.link.bus_id;
    }
  }
  if (p.link.rated_gbps > 0) {
    EXPECT_GT(p.h2d_pinned_gbps, 0.3 * p.link.rated_gbps) << "pinned copies near the link rate";
  }
  if (p.info.cc_major >= 8) {
    EXPECT_GT(p.peaks.tflops_fp16, 10.0) << p.peaks.source;
  }
}

TEST(GpuProbe, HandoffLatenciesArePositiveAndBounded) {
  HEXE_REQUIRE_GPU();
  cudaStream_t st = nullptr;
  HEXE_CUDA_OK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  HandoffTimes t;
  const Status s = measure_handoff(st, 200, &t);
  cudaStreamDestroy(st);
  ASSERT_TRUE(s.ok()) << to_string(s);
  EXPECT_EQ(t.iters, 200);
  // Microseconds: a hand-off costs something and well under a millisecond on an idle machine.
  for (double us : {t.flag_round_trip_us, t.sync_relaunch_us}) {
    EXPECT_GT(us, 0.1);
    EXPECT_LT(us, 1000.0);
  }
  EXPECT_LT(t.host_fn_us, 1000.0);
}

}  // namespace
}  // namespace hexe::gpu
