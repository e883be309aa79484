// Routed experts of one MoE layer: for each token, sum over its top-k experts of
// weight * down(silu(gate(x)) * up(x)).
#pragma once

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "cpu_kernels/format.h"
#include "cpu_kernels/thread_pool.h"

namespace hexe::cpu {

struct ExpertWeights {
  const void* gate = nullptr;  // n_ff rows of hidden (gate_type)
  const void* up = nullptr;    // n_ff rows of hidden (up_type)
  const void* down = nullptr;  // hidden rows of n_ff (down_type)
};

struct MoeParams {
  const ExpertWeights* experts = nullptr;  // n_experts entries (stacked tensors: pointer offsets)
  int n_experts = 0;
  DType gate_type = DType::F32, up_type = DType::F32, down_type = DType::F32;
  int64_t hidden = 0;
  int64_t n_ff = 0;
  const float* x = nullptr;        // [n_tokens][hidden]
  int64_t n_tokens = 0;
  int top_k = 0;
  const int32_t* ids = nullptr;    // [n_tokens][top_k] expert ids; < 0: an empty slot (that
                                   // expert is computed elsewhere, e.g. hot on the GPU)
  const float* weights = nullptr;  // [n_tokens][top_k]
  float* y = nullptr;              // [n_tokens][hidden]; overwritten with the weighted sum
  // Optional Rows16 copies of the experts (repack_for_decode), read instead of `experts`, which
  // stays the GGUF view (GPU path, formats without the layout). Null, or n_experts entries
  // (those of unrouted experts are not read); a null matrix means that matrix has no copy, the
  // same in every routed entry. Used where its tile is of the GGUF tile's tier or better: on
  // AVX-512 VNNI the Rows16 tiles win at every token count (qwen3-30b-a3b layer, q4_K: decode
  // ratio 0.50 -> 0.88, 512-token prefill 32 -> 140 GFLOP/s); AVX2 has Rows16 tiles for Q4_K and
  // Q8_0 (on the Zen 3 VM 512-token prefill 104 -> 202 and 75 -> 154 GFLOP/s).
  const ExpertWeights* packed = nullptr;
  // NUMA homes (memory/expert_homes.h): when n_homes > 1, expert e is held on home
  // expert_home[e] and pool thread t belongs to home thread_home[t]; a thread then computes only
  // the experts of its own home, so no expert weight crosses the inter-socket link. The result
  // is the same as without homes (the same partial sums, reduced in the same order).
  int n_homes = 0;
  const int* expert_home = nullptr;  // n_experts entries
  const int* thread_home = nullptr;  // pool.size() entries
  // Tests: when set, receives (expert, thread) for every unit of work computed.
  std::vector<std::pair<int, int>>* trace = nullptr;
  // Run once by the calling thread inside the pool's dispatch, before it takes any work, while
  // the other threads start on the experts (the hybrid engine queues the GPU's share of the
  // layer there). Null: none.
  const std::function<void()>* on_caller = nullptr;
};

void moe_experts(const MoeParams& p, ThreadPool& pool);
void moe_experts_ref(const MoeParams& p);  // scalar reference for tests

}  // namespace hexe::cpu
