// glm4moe (GLM-4.5, GLM-4.5-Air; HF Glm4MoeForCausalLM): GQA with q/k/v biases, optional per-head
// q/k RMSNorm, NEOX RoPE on the first rope.dimension_count dims of each head (half), sigmoid
// routing with selection bias and groups, shared experts, leading dense layers. The trailing
// nextn_predict_layers blocks (multi-token prediction) are bound but not run.
#include <string>

#include "runtime/arch/architecture.h"
#include "runtime/arch/common_bind.h"
#include "runtime/engine/blocks.h"

namespace hexe {
namespace {

class Glm4Moe final : public Architecture {
 public:
  std::string_view name() const override { return "glm4moe"; }
  bool accepts(const place::ModelSpec& s) const override { return s.arch == "glm4moe"; }

  void bind(Model& m) const override {
    const auto& s = m.spec();
    const int64_t E = s.n_embd, D = s.head_dim, qd = int64_t(s.n_head) * D, kd = int64_t(s.n_head_kv) * D;
    bind_embeddings(m);
    for (int l = 0; l < s.n_layers; ++l) {
      const std::string blk = "blk." + std::to_string(l) + ".";
      LayerWeights& lw = m.layers[l];
      lw.attn_norm = m.vector_f32(blk + "attn_norm.weight", E);
      // llama.cpp's glm4moe GGUFs name the pre-FFN norm post_attention_norm; HF dirs map to ffn_norm.
      lw.ffn_norm = m.vector_f32(blk + (m.has(blk + "post_attention_norm.weight") ? "post_attention_norm.weight"
                                                                                  : "ffn_norm.weight"), E);
      lw.wq = m.linear(blk + "attn_q.weight", E, qd);
      lw.wk = m.linear(blk + "attn_k.weight", E, kd);
      lw.wv = m.linear(blk + "attn_v.weight", E, kd);
      lw.wo = m.linear(blk + "attn_output.weight", qd, E);
      if (m.has(blk + "attn_q.bias")) {
        lw.bq = m.vector_f32(blk + "attn_q.bias", qd);
        lw.bk = m.vector_f32(blk + "attn_k.bias", kd);
        lw.bv = m.vector_f32(blk + "attn_v.bias", kd);
      }
      if (m.has(blk + "attn_q_norm.weight")) {
        lw.q_norm = m.vector_f32(blk + "attn_q_norm.weight", D);
        lw.k_norm = m.vector_f32(blk + "attn_k_norm.weight", D);
      }
      bind_ffn(m, l, lw);
    }
  }

  LayerRecipe recipe(const Model& m, int layer) const override {
    const auto& s = m.spec();
    // MTP block: only for speculative decoding.
    LayerRecipe r;
    if (layer >= s.n_layers - s.n_nextn) {
      r.attention = LayerRecipe::Attention::None;
      return r;
    }
    const auto& lw = m.layers[layer];
    return {.gqa = {.qk_norm = !lw.q_norm.empty(), .qkv_bias = !lw.bq.empty(), .rot_dim = s.rope_dim},
            .moe = lw.is_moe()};
  }
};

}  // namespace

const Architecture& glm4moe_architecture() {
  static const Glm4Moe arch;
  return arch;
}

}  // namespace hexe
