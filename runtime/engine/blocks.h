// Building blocks that architectures compose: attention with the paged KV cache, MoE and dense
// FFNs, routing. Each runs its kernels on the device the design assigns it.
#pragma once

#include "runtime/engine/forward.h"

namespace hexe {

// y[m][n_out] = x[m][n_in] · Wᵀ on the pool (reference: the scalar kernel, float activations).
void linear(const Linear& w, const float* x, int64_t m, float* y, cpu::ThreadPool& pool, bool reference = false);

struct AttentionOptions {
  bool qk_norm = false;  // per-head RMSNorm of q and k (Qwen3)
  bool qkv_bias = false; // add the layer's bq/bk/bv after the projections (GLM-4.5)
  int rot_dim = 0;       // leading dims of each head that RoPE rotates (0: all; GLM-4.5: half)
};
// x += Wo · attention(rope(Wq·norm(x)), rope(Wk·norm(x)), Wv·norm(x)), storing K/V in the cache.
void attention_block(LayerContext& ctx, const AttentionOptions& opt);

// Router: ws.expert_ids / ws.expert_weights from ws.h per the spec's gating order.
void route_tokens(LayerContext& ctx);

// x += MoE(norm(x)): router on the attention device, routed experts on the expert device.
void moe_block(LayerContext& ctx);

// x += down(silu(gate(norm(x))) * up(norm(x))).
void dense_ffn_block(LayerContext& ctx);

}  // namespace hexe
