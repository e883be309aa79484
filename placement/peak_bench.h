// Compute-rate microbenchmarks with hexe's own matmul kernels: the rate on a cache-resident
// problem per weight path (int8 via Q8_0 weights, BF16, FP32), and the DRAM bandwidth a Q4_K
// GEMV achieves when its weights stream from memory (hexe's achieved kernel efficiency).
#pragma once

#include <cstdint>
#include <vector>

#include "cpu_kernels/format.h"
#include "cpu_kernels/repack.h"

namespace hexe::place {

// 10^9 FLOP/s (a multiply-add = 2) of matmul with `w_type` weights on all `cpus`, weights small
// enough to stay in cache (n x k per run, m activation rows; n grows with m, see the source).
// layout Rows16: the weights are repacked first (repack.h) and read in that layout.
double measure_matmul_gflops(DType w_type, const std::vector<int>& cpus, double min_seconds = 0.3, int64_t m = 64,
                             cpu::WeightLayout layout = cpu::WeightLayout::Gguf);

// A streaming rate and its ratio to the DRAM read bandwidth, each run paired with a read of
// the same size taken just before it (cpu::read_bandwidth_gbs): on machines whose bandwidth
// moves from minute to minute (a VM's two levels, 33 and 60 GB/s, on the Zen 4 build machine),
// a ratio to one read taken minutes earlier mixes two levels. Medians over the runs.
struct StreamRate {
  double gbps = 0;   // weight bytes read per second
  double ratio = 0;  // over the read bandwidth just before each run
};

// A single-token (m = 1) matmul with `w_type` weights whose weights (`bytes`, far above the
// LLC) come from DRAM.
StreamRate measure_gemv_stream(const std::vector<int>& cpus, uint64_t bytes, DType w_type = DType::Q4_K,
                               cpu::WeightLayout layout = cpu::WeightLayout::Gguf);

// 10^9 FLOP/s of cpu::attention: a causal prefill of 512 tokens, 32 query heads over 4 KV heads
// of 128, F32 cache in 256-token pages (FLOPs as AttentionShape counts them: 2 per
// multiply-add over scores and values).
double measure_attention_gflops(const std::vector<int>& cpus, double min_seconds = 0.3);

// The weight types `hexe profile detect` measures one by one (those hexe has fast paths for).
const std::vector<DType>& measured_weight_types();

}  // namespace hexe::place
