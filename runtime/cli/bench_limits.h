// The machine limits benchmarks divide by, measured in the benchmark's own process: peak int8 /
// bf16 dot-product rates on every pool thread (the DRAM read bandwidth over a caller's buffer is
// cpu::read_bandwidth_gbs, cpu_kernels/probe.h), and the sizes (last-level cache, available
// memory) that size weight sets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cpu_kernels/format.h"
#include "cpu_kernels/thread_pool.h"

namespace hexe::cli {

size_t llc_bytes();             // largest data/unified cache level of cpu0 (sysfs); 32 MiB if unknown
size_t mem_available_bytes();   // MemAvailable of /proc/meminfo; 0 if unknown
// The bytes a DRAM measurement spans (the read probe's buffer, a decode weight set): 16 x the LLC
// and at least 512 MiB, before the caller's bounds. 4 x the LLC (the size used before) was not
// enough on the Zen 4 VM (32 MiB L3, which keeps some lines of a buffer read over and over): the
// read probe over 64 / 128 / 512 MiB / 2 GiB read 44.6 / 34.4 / 33.7 / 33.8 GB/s (means of 42
// passes of each, alternating), so a probe over 4 x the LLC flattered the limit by about 2%;
// moe-layer qwen3-30b-a3b q8_0 decode over a 124 MiB set gave ratios 0.89 at the VM's lower
// bandwidth level and 0.71 at its higher one, against 0.91 and 0.78 over 765 MiB (medians of
// 4-21 runs). A model's experts are thousands, far more than either set.
size_t dram_span_bytes();
std::string load_average();     // "a b c" from /proc/loadavg

// Peak rates over all pool threads at once, in G operations/s (2 per multiply-add); best of 5.
double peak_int8_gops(cpu::ThreadPool& pool);
double peak_bf16_gflops(cpu::ThreadPool& pool);
// The AMX tile rates (tdpbusd, tdpbf16ps); 0 where the machine has no AMX.
double peak_amx_int8_gops(cpu::ThreadPool& pool);
double peak_amx_bf16_gflops(cpu::ThreadPool& pool);

// Fills n_rows rows of `row_bytes` with random blocks of `type` whose values are finite and of
// unit-ish magnitude (random levels, small positive scales); split over the pool (first touch).
void fill_random_weights(DType type, uint8_t* dst, size_t bytes, uint64_t seed,
                         cpu::ThreadPool& pool);

// A 64-byte aligned, page-touched byte buffer (no value initialisation cost beyond the fill).
struct AlignedBytes {
  uint8_t* data = nullptr;
  size_t size = 0;
  explicit AlignedBytes(size_t n);
  ~AlignedBytes();
  AlignedBytes(const AlignedBytes&) = delete;
  AlignedBytes& operator=(const AlignedBytes&) = delete;
};

double median(std::vector<double> v);

}  // namespace hexe::cli
