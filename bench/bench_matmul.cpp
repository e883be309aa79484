// Decode-shape (m = 1) matmul throughput per weight format: GB/s of weights read, next to the
// DRAM read bandwidth measured on the same buffer just before that format's runs (a VM's
// bandwidth can move between formats; one probe at the start once gave ratios of 0.55 and 1.37
// for the same kernels); `ratio <x>` ends each line.
//   bench_matmul [--mb N (weight bytes per format, default 1024)] [--threads T] [--k K] [--m M]
//                [--layout gguf|rows16]   (rows16: the repacked decode layout; q8_0, q4_0, q4_K, q5_K, q6_K only)
// The weights sit in 2 MiB-aligned memory advised to use huge pages, as the engine's copies do.
// GFLOP/s is printed too: with --m above 1 (prefill) the kernels are compute-bound, so the ratio
// to DRAM bandwidth falls well below 1 and GFLOP/s is the figure to watch (no peak-FLOP/s limit
// is measured yet).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cpu_kernels/dispatch.h"
#include "cpu_kernels/matmul.h"
#include "cpu_kernels/probe.h"
#include "cpu_kernels/repack.h"
#include "cpu_kernels/thread_pool.h"

#include <sys/mman.h>

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace hexe;
  using namespace hexe::cpu;
  size_t mb = 1024;
  int threads = int(std::max(1u, std::thread::hardware_concurrency()));
  int64_t k = 4096, m = 1;
  bool rows16 = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--layout")) rows16 = !std::strcmp(argv[i + 1], "rows16");
    if (!std::strcmp(argv[i], "--mb")) mb = size_t(std::atoll(argv[i + 1]));
    else if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--k")) k = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--m")) m = std::max<int64_t>(1, std::atoll(argv[i + 1]));
  }
  ThreadPool pool(threads);
  const size_t bytes = mb << 20;
  // Random bytes, except that every odd byte is 0x3C..0x3F with a random sign bit: read as F32,
  // BF16 or F16 (little-endian), every value is then a normal number near 1. Random float bits
  // hold denormals (1 in 256), and FMAs on denormals take microcode assists that slow every
  // kernel several-fold; quantised kernels' speed does not depend on the values.
  struct Buf {
    uint8_t* p = nullptr;
    explicit Buf(size_t n) {
      void* v = nullptr;
      if (posix_memalign(&v, size_t(2) << 20, n) != 0) std::abort();
      madvise(v, n, MADV_HUGEPAGE);
      p = static_cast<uint8_t*>(v);
    }
    ~Buf() { std::free(p); }
    uint8_t* data() const { return p; }
  } w(bytes), packed(rows16 ? bytes / 8 * 9 : 64);  // Rows16 groups carry unpacked scales: under 1/8 more
  std::mt19937_64 rng(1);
  for (size_t i = 0; i + 8 <= bytes; i += 8) {
    const uint64_t v = rng();
    std::memcpy(w.data() + i, &v, 8);
  }
  for (size_t i = 1; i < bytes; i += 2) w.data()[i] = uint8_t((w.data()[i] & 0x83) | 0x3C);
  // The probe reads the buffer the kernels read: with rows16 that is the repacked copy (its pages
  // touched here first), whose physical placement, and speed, may differ from the source's.
  if (rows16) std::memcpy(packed.data(), w.data(), bytes);
  std::printf("cpu %s, isa %s, threads %d, m %lld, k %lld, %zu MiB of weights per format, layout %s\n",
              cpu_features().brand.c_str(), isa_name(active_isa()), threads,
              static_cast<long long>(m), static_cast<long long>(k), mb, rows16 ? "rows16" : "gguf");
  std::printf("dram: read bandwidth of the buffer the kernels read, same threads, just before each format\n");

  std::vector<float> x(static_cast<size_t>(m * k), 0.5f);
  const DType types[] = {DType::F32, DType::F16,  DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1,
                         DType::Q5_0, DType::Q5_1, DType::Q4_K, DType::Q5_K, DType::Q6_K};
  for (DType t : types) {
    if (rows16 && (!rows16_supported(t) || k % int64_t(info(t).block_elems) != 0)) continue;
    const uint64_t rb = row_bytes(t, uint64_t(k));
    const int64_t n = rows16 ? int64_t(bytes / rb) / kRows16 * kRows16 : int64_t(bytes / rb);
    std::vector<float> y(static_cast<size_t>(m * n));
    MatmulParams p;
    p.w = w.data(); p.w_type = t; p.n = n; p.k = k;
    if (rows16) {
      if (rows16_group_bytes(t, k) * size_t(n / kRows16) > bytes / 8 * 9) std::abort();
      repack_rows16_into(t, n, k, w.data(), size_t(rb), packed.data());
      p.w = packed.data();
      p.w_layout = WeightLayout::Rows16;
    }
    p.x = x.data(); p.m = m; p.x_stride = k; p.y = y.data(); p.y_stride = n;
    matmul(p, pool);  // warm-up
    const double dram = read_bandwidth_gbs(rows16 ? packed.data() : w.data(), bytes, pool, 2);
    double best = 1e30;
    for (int rep = 0; rep < 5; ++rep) {
      const auto t0 = Clock::now();
      matmul(p, pool);
      best = std::min(best, seconds_since(t0));
    }
    const double gbs = double(rb) * double(n) / best / 1e9;
    const KernelChoice c = matmul_choice(t, k, active_isa(), p.w_layout);
    const double gflops = 2.0 * double(m) * double(n) * double(k) / best / 1e9;
    std::printf("%-5s %-20s n %-8lld %8.2f ms %7.1f GFLOP/s %7.2f GB/s  dram %6.2f GB/s  ratio %.2f\n",
                std::string(dtype_name(t)).c_str(), c.name.c_str(), static_cast<long long>(n),
                best * 1e3, gflops, gbs, dram, gbs / dram);
  }
  return 0;
}
