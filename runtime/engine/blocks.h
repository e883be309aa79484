// Building blocks that architectures compose: attention with the paged KV cache, MoE and dense
// FFNs, routing. Each runs its kernels on the device the design assigns it.
#pragma once

#include <initializer_list>
#include <utility>

#include "cpu_kernels/matmul.h"
#include "cpu_kernels/moe.h"
#include "runtime/engine/forward.h"

namespace hexe {

// y[m][n_out] = x[m][n_in] · Wᵀ on the pool (reference: the scalar kernel, float activations).
void linear(const Linear& w, const float* x, int64_t m, float* y, cpu::ThreadPool& pool, bool reference = false);
// linear()'s matmul, for callers that set strides or batch several (cpu::matmul_many).
cpu::MatmulParams linear_params(const Linear& w, const float* x, int64_t m, float* y, bool reference);
// Several projections of the same input x (up to four in one pool dispatch, cpu::matmul_many):
// each y as linear() gives it.
void linears(std::initializer_list<std::pair<const Linear*, float*>> outs, const float* x, int64_t m,
             cpu::ThreadPool& pool, bool reference = false);

// x += Wo · attention(rope(Wq·norm(x)), rope(Wk·norm(x)), Wv·norm(x)), storing K/V in the cache.
void attention_block(LayerContext& ctx, const AttentionOptions& opt);

// Router: ws.expert_ids / ws.expert_weights from ws.h per the spec's gating order.
void route_tokens(LayerContext& ctx);
// The routing of route_tokens on T rows of router logits (overwritten): ids/weights [T][top_k];
// counted into routing->per_layer[layer] when routing is set. A prefill chunk's rows are split
// over `pool` when one is given (it must be idle).
void route_rows(const place::ModelSpec& s, const LayerWeights& lw, float* logits, int64_t T, int32_t* ids,
                float* weights, RoutingCounts* routing, int layer, cpu::ThreadPool* pool = nullptr);
// The routed-expert job of one layer: y[T][n_embd] = sum over the top-k of weight x expert(x).
// `homes` (NUMA) splits the work by the experts' home nodes.
cpu::MoeParams routed_expert_params(const Model& m, int layer, const float* x, int64_t T, const int32_t* ids,
                                    const float* weights, float* y, const mem::ExpertHomes* homes);

// x += MoE(norm(x)): router on the attention device, routed experts on the expert device.
void moe_block(LayerContext& ctx);

// x += down(silu(gate(norm(x))) * up(norm(x))).
void dense_ffn_block(LayerContext& ctx);

}  // namespace hexe
