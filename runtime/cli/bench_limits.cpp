// Measured machine limits for the benchmarks (see bench_limits.h).
#include "runtime/cli/bench_limits.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>

#include "cpu_kernels/blocks.h"
#include "cpu_kernels/probe.h"
#include "cpu_kernels/quant.h"

namespace hexe::cli {
namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Peak rate of `op` (returns operations done) run on every thread at once, in G ops/s. Each pass
// runs ~10-30 ms of instructions per thread, best of 5 passes: long enough that a busy machine's
// scheduling shows in the figure the way it shows in the kernels' own timings.
template <class Op>
double peak_rate(cpu::ThreadPool& pool, Op op) {
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    std::atomic<double> ops{0};
    const double t0 = now();
    pool.run([&](int, int) {
      const double d = op(2000000);
      double cur = ops.load();
      while (!ops.compare_exchange_weak(cur, cur + d)) {}
    });
    best = std::max(best, ops.load() / (now() - t0) / 1e9);
  }
  return best;
}

}  // namespace

size_t mem_available_bytes() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  size_t kb = 0;
  std::string unit;
  while (f >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb << 10;
  return 0;
}

std::string load_average() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

double peak_int8_gops(cpu::ThreadPool& pool) { return peak_rate(pool, cpu::int8_dot_ops); }
double peak_bf16_gflops(cpu::ThreadPool& pool) { return peak_rate(pool, cpu::bf16_dot_flops); }
double peak_amx_int8_gops(cpu::ThreadPool& pool) { return peak_rate(pool, cpu::amx_int8_dot_ops); }
double peak_amx_bf16_gflops(cpu::ThreadPool& pool) { return peak_rate(pool, cpu::amx_bf16_dot_flops); }

void fill_random_weights(DType type, uint8_t* dst, size_t bytes, uint64_t seed,
                         cpu::ThreadPool& pool) {
  const DTypeInfo& inf = info(type);
  const size_t bb = inf.block_bytes;
  const size_t blocks = bytes / bb;
  pool.parallel_for(int64_t(blocks), 4096, [&](int64_t b0, int64_t b1) {
    uint64_t s = seed ^ (uint64_t(b0) * 0x2545F4914F6CDD1Dull);
    for (size_t i = size_t(b0) * bb; i + 8 <= size_t(b1) * bb; i += 8) {
      const uint64_t v = splitmix(s);
      std::memcpy(dst + i, &v, 8);
    }
    for (size_t i = (size_t(b1) * bb) & ~size_t(7); i < size_t(b1) * bb; ++i) dst[i] = uint8_t(splitmix(s));
    // Random scale bits could be Inf/NaN: give each block a small positive scale instead.
    for (int64_t b = b0; b < b1; ++b) {
      uint8_t* blk = dst + size_t(b) * bb;
      const uint16_t d = inf.block_elems > 1 ? cpu::f32_to_f16(0.001f + float(splitmix(s) % 1000) * 1e-6f) : 0;
      switch (type) {
        case DType::Q4_K: case DType::Q5_K:  // d, dmin first
          std::memcpy(blk, &d, 2);
          std::memcpy(blk + 2, &d, 2);
          break;
        case DType::Q6_K:  // d last
          std::memcpy(blk + offsetof(cpu::BlockQ6_K, d), &d, 2);
          break;
        case DType::Q4_0: case DType::Q5_0: case DType::Q8_0:
        case DType::Q4_1: case DType::Q5_1:
          std::memcpy(blk, &d, 2);
          if (type == DType::Q4_1 || type == DType::Q5_1) std::memcpy(blk + 2, &d, 2);
          break;
        case DType::BF16: case DType::F16: {  // sign, exponent near 1, random mantissa
          uint16_t v;
          std::memcpy(&v, blk, 2);
          v = type == DType::BF16 ? uint16_t((v & 0x807F) | 0x3C00) : uint16_t((v & 0x83FF) | 0x3000);
          std::memcpy(blk, &v, 2);
          break;
        }
        case DType::F32: {
          const float f = float(int(blk[0]) - 128) * 1e-3f;
          std::memcpy(blk, &f, 4);
          break;
        }
        default: break;
      }
    }
  });
}

AlignedBytes::AlignedBytes(size_t n) : size(n) {
  void* p = nullptr;
  if (posix_memalign(&p, 2u << 20, n ? n : 64) != 0) throw std::bad_alloc();
  madvise(p, n, MADV_HUGEPAGE);  // fewer TLB misses while streaming; advisory only
  data = static_cast<uint8_t*>(p);
}
AlignedBytes::~AlignedBytes() { std::free(data); }

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace hexe::cli
