// deepseek2 (DeepSeek-V2/V2-Lite/V3/R1, Kimi-K2; HF DeepseekV3ForCausalLM): MLA attention over a
// latent KV cache, sigmoid (V3) or softmax (V2) routing with group limits and selection bias,
// shared experts, the first leading_dense_block_count layers dense.
#include <string>

#include "cpu_kernels/quant.h"
#include "memory/error.h"
#include "runtime/arch/architecture.h"
#include "runtime/arch/common_bind.h"
#include "runtime/engine/blocks.h"
#include "runtime/engine/mla_block.h"

namespace hexe {
namespace {

// k_b/v_b per head, from the newer per-head tensors or split out of attn_kv_b.
void bind_kv_b(const Model& m, const std::string& blk, LayerWeights& lw) {
  const auto& s = m.spec();
  const int64_t H = s.n_head, R = s.kv_lora_rank, nope = s.qk_nope_dim, vd = s.v_head_dim;
  lw.k_b.resize(H);
  lw.v_b.resize(H);
  if (m.has(blk + "attn_k_b.weight")) {
    const TensorRef& kb = m.tensor(blk + "attn_k_b.weight", {nope, R, H});
    const TensorRef& vb = m.tensor(blk + "attn_v_b.weight", {R, vd, H});
    for (int64_t h = 0; h < H; ++h) {
      lw.k_b[h] = Linear{kb.data + h * row_bytes(kb.type, nope) * R, kb.type, nope, R};
      lw.v_b[h] = Linear{vb.data + h * row_bytes(vb.type, R) * vd, vb.type, R, vd};
    }
    return;
  }
  // attn_kv_b [R -> H*(nope+vd)]: per head nope K rows then vd V rows. K rows are transposed
  // (absorption multiplies q_nope by k_bᵀ), both kept as F32 copies.
  const Linear kvb = m.linear(blk + "attn_kv_b.weight", R, H * (nope + vd));
  lw.mla_owned.resize(H * (nope * R + vd * R));
  std::vector<float> row(R);
  const uint64_t rb = row_bytes(kvb.type, R);
  for (int64_t h = 0; h < H; ++h) {
    float* kt = lw.mla_owned.data() + h * (nope + vd) * R;  // [R][nope]
    float* v = kt + nope * R;                                // [vd][R]
    for (int64_t r = 0; r < nope + vd; ++r) {
      cpu::dequantize_row(kvb.type, static_cast<const uint8_t*>(kvb.data) + (h * (nope + vd) + r) * rb,
                          row.data(), R);
      if (r < nope) {
        for (int64_t c = 0; c < R; ++c) kt[c * nope + r] = row[c];
      } else {
        std::copy(row.begin(), row.end(), v + (r - nope) * R);
      }
    }
    lw.k_b[h] = Linear{kt, DType::F32, nope, R};
    lw.v_b[h] = Linear{v, DType::F32, R, vd};
  }
}

class Deepseek2 final : public Architecture {
 public:
  std::string_view name() const override { return "deepseek2"; }
  bool accepts(const place::ModelSpec& s) const override { return s.arch == "deepseek2"; }

  void bind(Model& m) const override {
    const auto& s = m.spec();
    if (s.kv_lora_rank <= 0)
      throw Error(s.source + ": deepseek2 model without deepseek2.attention.kv_lora_rank");
    const int64_t E = s.n_embd, H = s.n_head, qk = s.qk_nope_dim + s.qk_rope_dim;
    bind_embeddings(m);
    for (int l = 0; l < s.n_layers; ++l) {
      const std::string blk = "blk." + std::to_string(l) + ".";
      LayerWeights& lw = m.layers[l];
      lw.attn_norm = m.vector_f32(blk + "attn_norm.weight", E);
      lw.ffn_norm = m.vector_f32(blk + "ffn_norm.weight", E);
      if (s.q_lora_rank > 0) {
        lw.wq_a = m.linear(blk + "attn_q_a.weight", E, s.q_lora_rank);
        lw.q_a_norm = m.vector_f32(blk + "attn_q_a_norm.weight", s.q_lora_rank);
        lw.wq_b = m.linear(blk + "attn_q_b.weight", s.q_lora_rank, H * qk);
      } else {
        lw.wq = m.linear(blk + "attn_q.weight", E, H * qk);
      }
      lw.wkv_a = m.linear(blk + "attn_kv_a_mqa.weight", E, s.kv_lora_rank + s.qk_rope_dim);
      lw.kv_a_norm = m.vector_f32(blk + "attn_kv_a_norm.weight", s.kv_lora_rank);
      bind_kv_b(m, blk, lw);
      lw.wo = m.linear(blk + "attn_output.weight", H * s.v_head_dim, E);
      bind_ffn(m, l, lw);
    }
  }

  LayerRecipe recipe(const Model& m, int layer) const override {
    LayerRecipe r;
    r.attention = LayerRecipe::Attention::Mla;
    r.moe = m.layers[layer].is_moe();
    return r;
  }
};

}  // namespace

const Architecture& deepseek2_architecture() {
  static const Deepseek2 arch;
  return arch;
}

}  // namespace hexe
