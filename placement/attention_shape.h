// The attention geometry the cost model and the KV-cache sizing need: GQA (K and V per KV head)
// or MLA (DeepSeek: one compressed latent per token), plus sliding-window layers.
#pragma once

#include <cstdint>

#include "placement/model_spec.h"

namespace hexe::place {

struct AttentionShape {
  bool mla = false;
  int n_head = 0;
  int n_head_kv = 0;     // GQA only
  int head_dim_k = 0;    // per head: query/key size (MLA: qk_nope + qk_rope)
  int head_dim_v = 0;
  int kv_lora_rank = 0;  // MLA: compressed KV latent (512 for DeepSeek-V3)
  int qk_rope_dim = 0;   // MLA: decoupled RoPE key part cached beside the latent (64)
  int sliding_window = 0;    // tokens; 0 = no sliding-window layers
  int n_sliding_layers = 0;  // layers that attend to the last `sliding_window` tokens only

  // Cached values per token per layer: MLA kv_lora_rank + qk_rope_dim (576 for DeepSeek),
  // GQA n_head_kv * (head_dim_k + head_dim_v).
  int64_t kv_values_per_token_layer() const;
  // KV-cache bytes for `context` tokens of one sequence over `n_layers` layers, with sliding
  // layers capped at their window.
  uint64_t kv_bytes(int64_t context, int n_layers, int elem_bytes) const;
  // Attention FLOPs (scores + weighted values, 2 per multiply-add) of one query token over
  // `ctx` cached positions in one layer. MLA is counted in its absorbed form (what decode
  // runs): scores over kv_lora_rank + qk_rope_dim, values over kv_lora_rank.
  double flops_per_query(int64_t ctx) const;
};

// Derives the shape from the tensors: MLA when blk.0.attn_kv_a_mqa exists (its rows are
// kv_lora_rank + qk_rope_dim, kv_lora_rank from attn_kv_a_norm), else GQA from attn_q/attn_k.
// Sliding windows are not in ModelSpec; shapes from files are treated as full attention.
AttentionShape attention_shape(const ModelSpec& spec);

}  // namespace hexe::place
