// Micro-kernels that measure this machine's limits: the denominators of the benchmarks' ratios
// (DRAM read bandwidth, peak int8 and bf16 dot-product rates, with vectors and with AMX tiles).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "cpu_kernels/thread_pool.h"

namespace hexe::cpu {

// Reads every byte of [p, p + bytes) once (p 64-byte aligned); returns a checksum so the reads
// cannot be elided. `pattern` (0 .. stream_read_patterns() - 1) picks the loop: two 32-byte loads
// per line, four 32-byte loads per two lines, four 64-byte loads per four lines (AVX-512). The
// same bytes read at rates up to 20% apart depending on the loop's shape (and even its code
// layout) on the 2-core Xeon VM, with no shape fastest at every time, so a bandwidth figure is
// the best over every pattern: the fastest read this machine was seen to do.
int stream_read_patterns();
uint64_t stream_read(const void* p, size_t bytes, int pattern = 0);

// The largest data/unified cache level of cpu0 (sysfs); 32 MiB if unknown.
size_t llc_bytes();
// The bytes a DRAM measurement should span (a read probe's buffer, a decode weight set): 16 x the
// LLC and at least 512 MiB, before the caller's memory bounds. 4 x the LLC was not enough on the
// Zen 4 VM (32 MiB L3, which keeps some lines of a buffer read over and over): the read probe over
// 64 / 128 / 512 MiB / 2 GiB read 44.6 / 34.4 / 33.7 / 33.8 GB/s (means of 42 passes of each,
// alternating), so a probe over 4 x the LLC flattered the limit by about 2% and one over 2 x by a
// third; moe-layer qwen3-30b-a3b q8_0 decode over a 124 MiB set gave ratios 0.89 at the VM's lower
// bandwidth level and 0.71 at its higher one, against 0.91 and 0.78 over 765 MiB (medians of
// 4-21 runs). A model's experts are thousands, far more than either set.
size_t dram_span_bytes();

// GB/s reading [buf, buf + bytes) once, split over the pool's threads: the best of `reps` passes
// of every pattern (the limit, so the best pass). buf 64-byte aligned. by_pattern, when given,
// gets each pattern's best.
double read_bandwidth_gbs(const uint8_t* buf, size_t bytes, ThreadPool& pool, int reps,
                          std::vector<double>* by_pattern = nullptr);

// GB/s of one pass of `pattern` over [buf, bytes), split over the pool's threads: a plain read
// timed the way a kernel run is (one sample, where the bandwidth figure is the best of several).
// The benches run one after each timed run, with the probe's fastest pattern, and print its ratio
// by the run's measure: how far the run is from only reading its bytes. On the Zen 4 VM such a
// pass scored 0.97-1.00 at both bandwidth levels (moe-layer decode, medians of 5-10 runs a shape),
// while a pass of the 64-byte pattern alone scored 0.90 at the higher level (median of 107).
double read_pass_gbs(const uint8_t* buf, size_t bytes, ThreadPool& pool, int pattern);
// The fastest pattern of a read_bandwidth_gbs by_pattern list.
int fastest_pattern(const std::vector<double>& by_pattern);

// Runs `iters` rounds of 16 independent int8 dot-product instructions on the calling thread
// (vpdpbusd zmm with AVX512_VNNI, else AVX2 maddubs+madd) and returns the int8 operations done
// (2 per multiply-add: the convention of GFLOP/s). Time it on every core for the peak rate.
double int8_dot_ops(int64_t iters);

// Likewise with vdpbf16ps zmm (AVX512_BF16), else AVX2 float FMA on converted values; returns
// floating-point operations done (2 per multiply-add).
double bf16_dot_flops(int64_t iters);

// Likewise with float FMAs (vfmadd zmm with AVX-512, ymm with AVX2+FMA; 0 without either);
// returns floating-point operations done (2 per multiply-add): the f32 kernels' ceiling.
double f32_fma_flops(int64_t iters);

// The same with AMX tiles (tdpbusd, tdpbf16ps on 16x64-byte tiles); 0 where AMX-INT8 / AMX-BF16
// is absent or the kernel refuses the tile state. The prefill tiles' own ceiling.
double amx_int8_dot_ops(int64_t iters);
double amx_bf16_dot_flops(int64_t iters);

// The instruction int8_dot_ops / bf16_dot_flops use on this CPU ("avx512_vnni vpdpbusd zmm").
const char* int8_dot_name();
const char* bf16_dot_name();
const char* f32_fma_name();

}  // namespace hexe::cpu
