// Multi-head latent attention (DeepSeek-V2/V3, Kimi-K2) over a latent KV cache, and YaRN RoPE.
#pragma once

#include <vector>

#include "runtime/engine/forward.h"

namespace hexe {

// RoPE frequencies of one spec: rope_dim/2 inverse frequencies (YaRN-blended when
// rope_scaling_factor > 1, as HF's _compute_yarn_parameters computes them in float32) and the
// cos/sin multiplier.
struct RopeTable {
  std::vector<float> inv_freq;
  float attn_factor = 1.f;
};
RopeTable make_rope_table(const place::ModelSpec& s, int rope_dim);
// Rotates interleaved pairs (x[2i], x[2i+1]) of x[0, 2*inv_freq.size()) by pos * inv_freq[i].
void rope_pairs(float* x, int64_t pos, const RopeTable& rt);

// x += Wo · MLA(norm(x)). The cache row of a token is [norm(kv_a latent) (kv_lora_rank) |
// roped shared key (qk_rope_dim)]; attention runs in latent space with the per-head k_b folded
// into the query and v_b applied after (weight absorption), so K/V are never expanded.
void mla_attention_block(LayerContext& ctx);

}  // namespace hexe
