// The machine limits benchmarks divide by, measured in the benchmark's own process: peak int8 /
// bf16 dot-product rates on every pool thread (the DRAM read bandwidth over a caller's buffer is
// cpu::read_bandwidth_gbs, cpu_kernels/probe.h), and the available memory that bounds weight sets
// (their span above the LLC: cpu::dram_span_bytes, cpu_kernels/probe.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cpu_kernels/format.h"
#include "cpu_kernels/thread_pool.h"

namespace hexe::cli {

size_t mem_available_bytes();   // MemAvailable of /proc/meminfo; 0 if unknown
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
