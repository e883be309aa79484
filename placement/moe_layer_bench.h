// The routed-expert layer as `hexe profile detect` measures it: cpu::moe_experts on a synthetic
// layer of Qwen3-30B-A3B's shape (128 experts of hidden 2048 x n_ff 768, top-8), in prefill and
// in decode, with the weights streaming from DRAM as a real model's do.
#pragma once

#include <cstdint>
#include <vector>

#include "cpu_kernels/format.h"
#include "cpu_kernels/repack.h"
#include "placement/peak_bench.h"

namespace hexe::place {

struct MoeLayerRates {
  // 10^9 FLOP/s in prefill at 8, 32 and 128 tokens per expert on average (128, 512 and 2048
  // tokens, each routed to 8 distinct random experts: Poisson-spread counts, as routing spreads
  // them; the engine's tiles pay for partly filled 16-row tiles, and a layer's experts are
  // unequal jobs). The cost model interpolates between them by a step's tokens per expert.
  double prefill_gops_8 = 0, prefill_gops_32 = 0, prefill_gops_128 = 0;
  // One token, 8 random experts a layer: the expert bytes streamed per second and their ratio to
  // a read just before each run. Lower than a long GEMV's: each layer is a short job (23 MB at
  // q4_K) with a fork, a barrier between gate/up and down, and a join.
  StreamRate decode;
};

// Both on one weight set of at least `bytes` (whole layers, cycled run by run), so that a run
// does not find its layer in the LLC: no layer of a real model is there when its turn comes.
// (Until session 22 the prefill rates re-read one layer run after run; on the 16-core Xeon host
// of a GPU machine they came to 3976-4433 GFLOP/s where `hexe bench moe-layer`, reading a fresh
// weight set, measured 3164-3468, and the planner's CPU-expert prefill came out a third fast.)
// layout Rows16: the experts are read from the repacked layout (repack.h), as the engine reads
// them where it makes the copy.
MoeLayerRates measure_moe_layer(DType w_type, const std::vector<int>& cpus, uint64_t bytes,
                                cpu::WeightLayout layout, double prefill_seconds);

}  // namespace hexe::place
