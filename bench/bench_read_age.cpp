// How fast memory reads back depending on how long ago it was last read: a buffer read once, the
// threads idle for a while, then the buffer read again. On bare metal every line reads at the same
// rate; on the 2-vCPU VM the benches run on, memory not read for a few hundred ms reads 15-40%
// slower (the host's handling of guest pages idle for a while, not the CPU caches: the buffer is
// larger than the LLC and the same rate shows for any size), which is why the DRAM probes of the
// decode benchmarks read the bytes the kernel reads right before it (bench_moe_layer.cpp).
//   bench_read_age [--mib N (buffer, default 512)] [--threads T] [--reps R (default 5)]
// Prints the median re-read rate per idle time and, last, `ratio <x>`: the rate after the longest
// idle time over the rate right away.
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "cpu_kernels/probe.h"
#include "cpu_kernels/thread_pool.h"

int main(int argc, char** argv) {
  using namespace hexe::cpu;
  using Clock = std::chrono::steady_clock;
  size_t mib = 512;
  int threads = int(std::max(1u, std::thread::hardware_concurrency())), reps = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--mib")) mib = size_t(std::max(64LL, std::atoll(argv[i + 1])));
    else if (!std::strcmp(argv[i], "--threads")) threads = std::max(1, std::atoi(argv[i + 1]));
    else if (!std::strcmp(argv[i], "--reps")) reps = std::max(1, std::atoi(argv[i + 1]));
    else {
      std::fprintf(stderr, "bench_read_age: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  const size_t bytes = mib << 20;
  void* p = nullptr;
  if (posix_memalign(&p, size_t(2) << 20, bytes) != 0) {
    std::fprintf(stderr, "bench_read_age: cannot allocate %zu MiB\n", mib);
    return 1;
  }
  madvise(p, bytes, MADV_HUGEPAGE);
  auto* buf = static_cast<uint8_t*>(p);
  std::memset(buf, 1, bytes);
  ThreadPool pool(threads);
  std::atomic<uint64_t> sink{0};
  const size_t per = bytes / size_t(threads) / 256 * 256;
  auto pass = [&] {  // GB/s of one pass over the buffer, split over the threads
    const auto t0 = Clock::now();
    pool.run([&](int ith, int) { sink ^= stream_read(buf + size_t(ith) * per, per, 2); });
    return double(per) * threads / std::chrono::duration<double>(Clock::now() - t0).count() / 1e9;
  };
  const int idle_ms[] = {0, 50, 200, 400, 800, 1600};
  constexpr int kIdles = 6;
  std::vector<double> rate[kIdles];
  for (int rep = 0; rep < reps; ++rep)
    for (int j = 0; j < kIdles; ++j) {
      const int k = (j + rep) % kIdles;  // rotate the order so a drift of the machine spreads evenly
      pass();
      std::this_thread::sleep_for(std::chrono::milliseconds(idle_ms[k]));
      rate[k].push_back(pass());
    }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::printf("buffer %zu MiB, %d threads, median of %d reps\n", mib, threads, reps);
  for (int k = 0; k < kIdles; ++k)
    std::printf("re-read after %5d ms idle: %6.2f GB/s\n", idle_ms[k], median(rate[k]));
  std::printf("ratio %.3f\n", median(rate[kIdles - 1]) / median(rate[0]));
  std::free(p);
  return sink.load() == 42 ? 3 : 0;
}
