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

// GB/s reading [buf, buf + bytes) once, split over the pool's threads: the best of `reps` passes
// of every pattern (the limit, so the best pass). buf 64-byte aligned. by_pattern, when given,
// gets each pattern's best.
double read_bandwidth_gbs(const uint8_t* buf, size_t bytes, ThreadPool& pool, int reps,
                          std::vector<double>* by_pattern = nullptr);

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
