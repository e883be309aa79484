// `hexe bench moe-layer`: one synthetic routed-expert layer with a real model's shapes, experts
// drawn from a weight set many times the last-level cache; prints GB/s (decode) or GFLOP/s
// (prefill) and, last, `ratio <x>` against a limit measured in the same process.
#pragma once

#include <cstdint>
#include <string>

namespace hexe::cli {

struct MoeLayerBenchOptions {
  std::string shape = "qwen3-30b-a3b";  // qwen3-30b-a3b | qwen3-235b-a22b | deepseek-v3
  std::string quant = "q4_k";           // q4_k | q8_0 | bf16 (any computable GGML type name)
  int64_t tokens = 1;
  int threads = 0;                      // 0: every hardware thread
  bool pin = false;                     // pin thread i to core i
  std::string pool = "spin";            // spin | tbb: the thread pool's backend (cpu::PoolKind)
  int runs = 3;                         // the figure is the median over runs
  uint64_t set_mib = 0;                 // 0: cpu::dram_span_bytes() (16 x LLC, >= 512 MiB), bounded by 6 GiB and MemAvailable
  uint64_t seed = 1;
  // gguf | rows16 | auto: the experts' layout (rows16: repack_for_decode copies of the set; auto:
  // rows16 where the format has it, the faster layout on AVX-512 VNNI).
  std::string layout = "auto";
};

// Runs the benchmark, printing to stdout. Throws hexe::Error for an unknown shape or quant.
void run_moe_layer_bench(const MoeLayerBenchOptions& o);

}  // namespace hexe::cli
