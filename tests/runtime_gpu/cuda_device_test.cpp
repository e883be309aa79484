// CudaDevice, its allocator and the GPU detector (label gpu). Tests that need a GPU skip with the
// probe's reason; the no-GPU behaviour of a CUDA build is tested everywhere.
#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include "gpu_kernels/device.h"
#include "gpu_kernels/ops.h"
#include "memory/error.h"
#include "placement/hw_detect.h"
#include "runtime/engine/cuda/cuda_device.h"
#include "runtime/engine/cuda/gpu_detector.h"

namespace hexe {
namespace {

const gpu::DevicePresence& presence() {
  static const gpu::DevicePresence p = gpu::probe_devices();
  return p;
}
#define REQUIRE_GPU() \
  if (presence().count == 0) GTEST_SKIP() << "needs a CUDA device: " << presence().reason

std::vector<unsigned char> random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<unsigned char> v(n);
  for (auto& b : v) b = static_cast<unsigned char>(rng());
  return v;
}

TEST(CudaDetector, ProfileListsEveryDeviceOrSaysWhyNone) {
  std::string log;
  install_cuda_gpu_detector([&](const std::string& s) { log += s + "\n"; });
  place::DetectOptions o;
  o.measure = false;
  const place::HardwareProfile p = place::detect_profile(o);
  place::set_gpu_detector(nullptr);
  ASSERT_EQ(int(p.gpus.size()), presence().count);
  if (presence().count == 0) {
    EXPECT_NE(log.find("GPU: none detected: no CUDA device"), std::string::npos) << log;
    EXPECT_NE(place::describe_profile(p).find("GPU: none detected"), std::string::npos);
    EXPECT_THROW(CudaDevice dev(0), Error);
    return;
  }
  for (const auto& g : p.gpus) {
    EXPECT_FALSE(g.name.empty());
    EXPECT_GT(g.memory_bytes, 1ull << 30);
    EXPECT_GT(g.sms, 0);
    EXPECT_GT(g.mem_gbps, 100.0);
    EXPECT_GT(g.pcie_h2d_gbps, 0.5);
    EXPECT_GT(g.pcie_d2h_gbps, 0.5);
    EXPECT_GT(g.reserved_bytes, 0u);
    EXPECT_LT(g.reserved_bytes, g.memory_bytes / 4);
  }
}

TEST(CudaAllocator, SizeClasses) {
  EXPECT_EQ(CudaCachingAllocator::size_class(1), 512u);
  EXPECT_EQ(CudaCachingAllocator::size_class(513), 1024u);
  EXPECT_EQ(CudaCachingAllocator::size_class(1 << 20), size_t(1) << 20);
  EXPECT_EQ(CudaCachingAllocator::size_class((1 << 20) + 1), size_t(2) << 20);
  EXPECT_EQ(CudaCachingAllocator::size_class((3 << 20) - 5), size_t(4) << 20);
}

TEST(CudaAllocator, ReusesBlocksAndCountsThem) {
  REQUIRE_GPU();
  CudaCachingAllocator a(0);
  void* p = a.allocate(1000);
  ASSERT_NE(p, nullptr);
  a.deallocate(p);
  EXPECT_EQ(a.allocate(900), p) << "same class (1 KiB): the cached block comes back";
  void* big = a.allocate(3u << 20);  // class 4 MiB
  a.deallocate(big);
  EXPECT_EQ(a.allocate((3u << 20) + 1000), big);
  a.deallocate(big);
  void* bigger = a.allocate(6u << 20);  // 6 MiB: the 4 MiB block does not fit
  EXPECT_NE(bigger, big);
  AllocatorStats s = a.stats();
  EXPECT_EQ(s.cuda_mallocs, 3u);
  EXPECT_EQ(s.cache_hits, 2u);
  EXPECT_EQ(s.allocations, 5u);
  EXPECT_EQ(s.in_use_bytes, 1024u + (6u << 20));
  EXPECT_EQ(s.cached_bytes, 4u << 20);
  EXPECT_EQ(s.reserved_bytes, s.in_use_bytes + s.cached_bytes);
  EXPECT_EQ(s.peak_in_use_bytes, 1024u + (6u << 20));
  EXPECT_THROW(a.deallocate(reinterpret_cast<void*>(0x1000)), Error);
  a.release_cached();
  s = a.stats();
  EXPECT_EQ(s.cached_bytes, 0u);
  EXPECT_EQ(s.reserved_bytes, s.in_use_bytes);
  EXPECT_EQ(s.cuda_frees, 1u);
  a.free_all();
  s = a.stats();
  EXPECT_EQ(s.reserved_bytes, 0u);
  EXPECT_EQ(s.in_use_bytes, 0u);
  EXPECT_EQ(a.allocate(0), nullptr);
}

TEST(CudaDevice, RoundTripPageableAndPinned) {
  REQUIRE_GPU();
  CudaDevice dev(0);
  // Pageable: 20 MiB + 3 bytes crosses the 8 MiB staging buffers with a ragged last chunk.
  const size_t n = (20u << 20) + 3;
  const auto src = random_bytes(n, 1);
  void* d = dev.allocator().allocate(n);
  dev.copy_to_device(d, src.data(), n);
  std::vector<unsigned char> back(n, 0);
  dev.copy_to_host(back.data(), d, n);
  EXPECT_TRUE(back == src);
  // Pinned: asynchronous both ways, complete after synchronize().
  PinnedBuffer in(n), out(n);
  const auto src2 = random_bytes(n, 2);
  std::memcpy(in.data(), src2.data(), n);
  ASSERT_TRUE(CudaDevice::is_pinned(in.data()));
  ASSERT_FALSE(CudaDevice::is_pinned(src2.data()));
  dev.copy_to_device(d, in.data(), n);
  dev.copy_to_host(out.data(), d, n);
  dev.synchronize();
  EXPECT_EQ(std::memcmp(out.data(), src2.data(), n), 0);
  dev.allocator().deallocate(d);
}

TEST(CudaDevice, HostFunctionsRunInStreamOrder) {
  REQUIRE_GPU();
  CudaDevice dev(0);
  void* d = dev.allocator().allocate(4);
  PinnedBuffer flag(4);
  std::vector<int> seen;
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(cudaMemsetAsync(d, i, 4, dev.stream()), cudaSuccess);
    dev.copy_to_host(flag.data(), d, 4);
    // Sees the byte the memset and copy before it wrote: the stream ran them first.
    dev.enqueue([&seen, p = flag.data<unsigned char>()] { seen.push_back(p[0]); });
  }
  dev.synchronize();
  ASSERT_EQ(seen.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(seen[i], i);
  dev.enqueue([] { throw Error("from a host function"); });
  EXPECT_THROW(dev.synchronize(), Error);
  EXPECT_NO_THROW(dev.synchronize()) << "the error is reported once";
}

TEST(CudaDevice, EventsOrderWorkAcrossDevices) {
  REQUIRE_GPU();
  CudaDevice dev(0);
  Event e = dev.record();
  e.wait();
  EXPECT_TRUE(e.ready());
  // A CPU device's event: the GPU stream's later host function runs after the CPU op.
  CpuDevice cpu("cpu", 1);
  std::atomic<bool> cpu_done{false};
  cpu.enqueue([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    cpu_done = true;
  });
  dev.wait(cpu.record());
  bool seen_done = false;
  dev.enqueue([&] { seen_done = cpu_done.load(); });
  dev.synchronize();
  EXPECT_TRUE(seen_done);
  dev.wait(dev.record());  // a CUDA event: cudaStreamWaitEvent
  dev.synchronize();
}

TEST(CudaDevice, GraphReplayMatchesEagerRun) {
  REQUIRE_GPU();
  CudaDevice dev(0);
  constexpr int64_t kRows = 4, kN = 256;
  const size_t bytes = size_t(kRows * kN) * sizeof(float);
  PinnedBuffer in(bytes), out(bytes);
  float* x = static_cast<float*>(dev.allocator().allocate(bytes));
  float* y = static_cast<float*>(dev.allocator().allocate(bytes));
  int host_calls = 0;
  // Upload, RMSNorm, SwiGLU of the result with itself, download, a host function.
  auto step = [&] {
    dev.copy_to_device(x, in.data(), bytes);
    gpu::RmsNormParams p;
    p.src = x, p.dst = y, p.rows = kRows, p.n = kN;
    ASSERT_TRUE(gpu::rms_norm(p, dev.stream()).ok());
    ASSERT_TRUE(gpu::swiglu(y, x, y, kRows * kN, dev.stream()).ok());
    dev.copy_to_host(out.data(), y, bytes);
    dev.enqueue([&] { ++host_calls; });
  };
  auto fill = [&](uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> u(-2.f, 2.f);
    for (int64_t i = 0; i < kRows * kN; ++i) in.data<float>()[i] = u(rng);
  };
  CudaGraph g = dev.capture(step);
  ASSERT_FALSE(g.empty());
  EXPECT_GE(g.node_count(), 5u);
  EXPECT_EQ(host_calls, 0) << "nothing runs during a capture";
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    fill(seed);
    step();
    dev.synchronize();
    const std::vector<float> eager(out.data<float>(), out.data<float>() + kRows * kN);
    std::memset(out.data(), 0, bytes);
    dev.launch(g);  // reads the pinned input as it is now
    dev.synchronize();
    EXPECT_EQ(std::memcmp(out.data(), eager.data(), bytes), 0) << "seed " << seed;
  }
  EXPECT_EQ(host_calls, 6) << "3 eager steps and 3 replays";
  dev.allocator().deallocate(x);
  dev.allocator().deallocate(y);
}

TEST(CudaDevice, HandoffMeasurementRuns) {
  REQUIRE_GPU();
  CudaDevice dev(0);
  const gpu::HandoffTimes t = dev.measure_handoff(100);
  EXPECT_EQ(t.iters, 100);
  EXPECT_GT(t.flag_round_trip_us, 0.0);
  EXPECT_GT(t.sync_relaunch_us, 0.0);
}

}  // namespace
}  // namespace hexe
