// The pinned-flag hand-off kernels (gpu_kernels/host_flags.h) with this thread as the host side:
// published rows arrive bit for bit, the answer is added (with the extra rows), the fused norm
// matches a double-precision reference, and a second round reuses the same buffers.
#include <atomic>
#include <chrono>
#include <cmath>
#include <vector>

#include "gpu_kernels/host_flags.h"
#include "gpu_kernels/ops.h"
#include "tests/gpu/gpu_test_util.h"

namespace hexe::gpu {
namespace {

using test::DeviceBuffer;

// Waits until the GPU published hand-off n; false after 5 s.
bool wait_published(volatile unsigned long long* to_host, unsigned long long n) {
  const auto t0 = std::chrono::steady_clock::now();
  while (*to_host < n)
    if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(5)) return false;
  std::atomic_thread_fence(std::memory_order_acquire);
  return true;
}

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-2.f, 2.f);
  std::vector<float> v(n);
  for (float& f : v) f = d(rng);
  return v;
}

TEST(GpuHostFlags, PublishAndAwaitRoundTrips) {
  HEXE_REQUIRE_GPU();
  const int64_t rows = 3, n = 1000;  // n not a multiple of the 256 threads
  const size_t cells = size_t(rows * n), words = 24;
  void* host = nullptr;
  HEXE_CUDA_OK(cudaHostAlloc(&host, words * 8 + 2 * cells * 4, cudaHostAllocMapped));
  auto* w = static_cast<volatile unsigned long long*>(host);
  for (size_t i = 0; i < words; ++i) w[i] = 0;
  float* out = reinterpret_cast<float*>(static_cast<char*>(host) + words * 8);  // published rows
  float* in = out + cells;                                                       // the host's answer
  void* dev = nullptr;
  HEXE_CUDA_OK(cudaHostGetDevicePointer(&dev, host, 0));
  auto* dev_words = static_cast<unsigned long long*>(dev);
  float* dev_out = reinterpret_cast<float*>(static_cast<char*>(dev) + words * 8);

  const auto src = random_floats(cells, 1), x0 = random_floats(cells, 2), extra = random_floats(cells, 3);
  const auto weight = random_floats(size_t(n), 4), a1 = random_floats(cells, 5), a2 = random_floats(cells, 6);
  DeviceBuffer d_src(cells * 4), d_x(cells * 4), d_extra(cells * 4), d_w(size_t(n) * 4), d_h(cells * 4), d_cnt(24);
  ASSERT_TRUE(d_src.ok() && d_x.ok() && d_extra.ok() && d_w.ok() && d_h.ok() && d_cnt.ok());
  HEXE_CUDA_OK(d_src.upload(src.data(), cells * 4));
  HEXE_CUDA_OK(d_x.upload(x0.data(), cells * 4));
  HEXE_CUDA_OK(d_extra.upload(extra.data(), cells * 4));
  HEXE_CUDA_OK(d_w.upload(weight.data(), size_t(n) * 4));
  HEXE_CUDA_OK(cudaMemset(d_cnt.get(), 0, 24));

  HostFlags f;
  f.to_host = dev_words;
  f.to_device = dev_words + 8;
  f.failed = reinterpret_cast<int*>(dev_words + 16);
  f.published = d_cnt.get<unsigned long long>();
  f.started_ns = f.published + 1;
  f.busy_ns = f.published + 2;
  PublishParams p;
  p.flags = f;
  p.parts = 1;
  p.src[0] = d_src.get<float>(), p.dst[0] = dev_out, p.n[0] = int64_t(cells);
  AwaitAddParams a;
  a.flags = f;
  a.x = d_x.get<float>();
  a.host = dev_out + cells;
  a.extra = d_extra.get<float>();
  a.rows = rows;
  a.n = n;
  a.norm_weight = d_w.get<float>();
  a.norm_out = d_h.get<float>();
  a.timeout_ns = 5'000'000'000ull;
  AwaitAddParams a2p = a;  // second round: no extra rows, no norm
  a2p.extra = nullptr;
  a2p.norm_weight = nullptr;
  a2p.norm_out = nullptr;

  cudaStream_t st;
  HEXE_CUDA_OK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  ASSERT_TRUE(stamp_start(f, st).ok());
  ASSERT_TRUE(publish_to_host(p, st).ok());
  ASSERT_TRUE(await_host_add(a, st).ok());
  ASSERT_TRUE(publish_to_host(p, st).ok());
  ASSERT_TRUE(await_host_add(a2p, st).ok());

  bool ok1 = wait_published(w, 1);
  const std::vector<float> seen(out, out + cells);
  for (size_t i = 0; i < cells; ++i) in[i] = a1[i];
  std::atomic_thread_fence(std::memory_order_seq_cst);
  w[8] = 1;
  bool ok2 = ok1 && wait_published(w, 2);
  for (size_t i = 0; i < cells; ++i) in[i] = a2[i];
  std::atomic_thread_fence(std::memory_order_seq_cst);
  w[8] = ok2 ? 2 : ~0ull;  // (releases the GPU either way)
  if (!ok1) w[8] = ~0ull;
  HEXE_CUDA_OK(cudaStreamSynchronize(st));
  ASSERT_TRUE(ok1 && ok2) << "the GPU did not publish within 5 s";
  EXPECT_EQ(w[16], 0u) << "an await timed out";
  EXPECT_EQ(seen, src);

  std::vector<float> x(cells), h(cells);
  HEXE_CUDA_OK(d_x.download(x.data(), cells * 4));
  HEXE_CUDA_OK(d_h.download(h.data(), cells * 4));
  unsigned long long cnt[3];
  HEXE_CUDA_OK(cudaMemcpy(cnt, d_cnt.get(), 24, cudaMemcpyDeviceToHost));
  EXPECT_EQ(cnt[0], 2u);
  EXPECT_GT(cnt[2], 0u) << "busy time not stamped";
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < n; ++i) {
      const size_t c = size_t(r * n + i);
      const float after1 = (x0[c] + a1[c]) + extra[c];
      ss += double(after1) * after1;
      ASSERT_EQ(x[c], after1 + a2[c]) << "row " << r << " element " << i;
    }
    const double scale = 1.0 / std::sqrt(ss / double(n) + 1e-6);
    for (int64_t i = 0; i < n; ++i) {
      const size_t c = size_t(r * n + i);
      const double want = double((x0[c] + a1[c]) + extra[c]) * scale * weight[size_t(i)];
      ASSERT_NEAR(h[c], want, 1e-5 * (1 + std::fabs(want))) << "row " << r << " element " << i;
    }
  }
  cudaStreamDestroy(st);
  cudaFreeHost(host);
}

// add_host_rows, an event hand-off's tail: host rows written before the launch are added (with
// the extra rows) with no flag read, and the fused norm is rms_norm's, bit for bit; rows of
// n % 4 == 0 take the 16-byte reads, the others the 4-byte ones.
TEST(GpuHostFlags, AddHostRowsWithoutWaiting) {
  HEXE_REQUIRE_GPU();
  for (const int64_t n : {2048, 1001}) {
    const int64_t rows = 3;
    const size_t cells = size_t(rows * n);
    void* host = nullptr;
    HEXE_CUDA_OK(cudaHostAlloc(&host, cells * 4, cudaHostAllocMapped));
    float* y = static_cast<float*>(host);
    void* dev = nullptr;
    HEXE_CUDA_OK(cudaHostGetDevicePointer(&dev, host, 0));
    const auto x0 = random_floats(cells, 11), extra = random_floats(cells, 12), ys = random_floats(cells, 13);
    const auto weight = random_floats(size_t(n), 14);
    for (size_t i = 0; i < cells; ++i) y[i] = ys[i];
    DeviceBuffer d_x(cells * 4), d_extra(cells * 4), d_w(size_t(n) * 4), d_h(cells * 4), d_ref(cells * 4);
    HEXE_CUDA_OK(d_x.upload(x0.data(), cells * 4));
    HEXE_CUDA_OK(d_extra.upload(extra.data(), cells * 4));
    HEXE_CUDA_OK(d_w.upload(weight.data(), size_t(n) * 4));
    AwaitAddParams a;  // no flags: add_host_rows reads none
    a.x = d_x.get<float>();
    a.host = static_cast<const float*>(dev);
    a.extra = d_extra.get<float>();
    a.rows = rows;
    a.n = n;
    a.norm_weight = d_w.get<float>();
    a.norm_out = d_h.get<float>();
    ASSERT_TRUE(add_host_rows(a, nullptr).ok());
    RmsNormParams np{d_x.get<float>(), d_w.get<float>(), d_ref.get<float>(), rows, n, a.eps};
    ASSERT_TRUE(rms_norm(np, nullptr).ok());
    HEXE_CUDA_OK(cudaDeviceSynchronize());
    std::vector<float> x(cells), h(cells), ref(cells);
    HEXE_CUDA_OK(d_x.download(x.data(), cells * 4));
    HEXE_CUDA_OK(d_h.download(h.data(), cells * 4));
    HEXE_CUDA_OK(d_ref.download(ref.data(), cells * 4));
    for (size_t i = 0; i < cells; ++i) ASSERT_EQ(x[i], (x0[i] + ys[i]) + extra[i]) << "n " << n << " element " << i;
    EXPECT_EQ(h, ref) << "n " << n << ": the fused norm differs from rms_norm";
    cudaFreeHost(host);
  }
}

TEST(GpuHostFlagsArgs, RejectsBadParamsBeforeTouchingTheDevice) {
  HostFlags none;
  PublishParams p;
  EXPECT_FALSE(publish_to_host(p, nullptr).ok());  // counters missing
  HostFlags f;
  unsigned long long fake[4] = {};
  f.to_host = fake, f.to_device = fake + 1, f.failed = reinterpret_cast<int*>(fake + 2), f.published = fake + 3;
  p.flags = f;
  p.parts = 4;
  EXPECT_FALSE(publish_to_host(p, nullptr).ok());
  p.parts = 1;
  p.n[0] = 8;  // src/dst null
  EXPECT_FALSE(publish_to_host(p, nullptr).ok());
  AwaitAddParams a;
  a.flags = none;
  EXPECT_FALSE(await_host_add(a, nullptr).ok());
  a.flags = f;
  a.rows = 1, a.n = kAwaitMaxElements + 1;
  float dummy = 0;
  a.x = &dummy, a.host = &dummy;
  EXPECT_FALSE(await_host_add(a, nullptr).ok());
  a.n = 16;
  a.norm_weight = &dummy;  // without norm_out
  EXPECT_FALSE(await_host_add(a, nullptr).ok());
  EXPECT_FALSE(stamp_start(f, nullptr).ok());  // untimed flags
}

}  // namespace
}  // namespace hexe::gpu
