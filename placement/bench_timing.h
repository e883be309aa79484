// Timing helpers shared by the measurements of `hexe profile detect` (peak_bench.cpp,
// moe_layer_bench.cpp); internal to placement/.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <utility>
#include <vector>

#include "cpu_kernels/probe.h"
#include "cpu_kernels/thread_pool.h"
#include "placement/peak_bench.h"

namespace hexe::place::timing {

using clock_type = std::chrono::steady_clock;

// Runs `fn` once to warm up, then until `min_seconds` have passed and at least 5 times, with
// `between()` (untimed) before each timed run; returns the runs' times in seconds.
template <class F, class G>
std::vector<double> timed_runs(F&& fn, G&& between, double min_seconds) {
  fn();
  std::vector<double> runs;
  double total = 0;
  do {
    between();
    const auto t0 = clock_type::now();
    fn();
    const double s = std::chrono::duration<double>(clock_type::now() - t0).count();
    runs.push_back(s);
    total += s;
  } while (total < min_seconds || runs.size() < 5);
  return runs;
}

// The fastest of timed_runs: compute rates, which a shared machine only ever slows down.
// (Streaming rates pair each run with a read instead: paired_stream_rate.)
template <class F>
double time_per_run(F&& fn, double min_seconds) {
  const std::vector<double> runs = timed_runs(fn, [] {}, min_seconds);
  return *std::min_element(runs.begin(), runs.end());
}

inline double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// `fn` reads `bytes_per_run` of weights; each timed run follows a read of `probe` (64-byte
// aligned, `probe_bytes`, far above the LLC) on the same pool. At least 5 runs and min_seconds.
template <class F>
StreamRate paired_stream_rate(F&& fn, double bytes_per_run, const uint8_t* probe, size_t probe_bytes,
                              cpu::ThreadPool& pool, double min_seconds) {
  fn();
  std::vector<double> rates, ratios;
  double total = 0;
  do {
    const double read = cpu::read_bandwidth_gbs(probe, probe_bytes, pool, 1);
    auto t0 = clock_type::now();
    fn();
    const double s = std::chrono::duration<double>(clock_type::now() - t0).count();
    total += s;
    rates.push_back(bytes_per_run / s / 1e9);
    ratios.push_back(rates.back() / std::max(1e-9, read));
  } while (total < min_seconds || rates.size() < 5);
  return {median_of(rates), median_of(ratios)};
}

// The largest 64-byte aligned span of v.
inline std::pair<const uint8_t*, size_t> aligned_span(const std::vector<uint8_t>& v) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(v.data()), b = (a + 63) & ~uintptr_t(63);
  const size_t skip = size_t(b - a);
  return {v.data() + skip, v.size() > skip ? (v.size() - skip) & ~size_t(63) : 0};
}

}  // namespace hexe::place::timing
