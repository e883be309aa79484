// Binding shared by the llama-family layouts (qwen3moe, Mixtral).
#include "runtime/arch/common_bind.h"

namespace hexe {

void bind_llama_family(Model& m, bool qk_norm) {
  const auto& s = m.spec();
  const int64_t E = s.n_embd, D = s.head_dim;
  bind_embeddings(m);
  for (int l = 0; l < s.n_layers; ++l) {
    const std::string blk = "blk." + std::to_string(l) + ".";
    LayerWeights& lw = m.layers[l];
    lw.attn_norm = m.vector_f32(blk + "attn_norm.weight", E);
    lw.ffn_norm = m.vector_f32(blk + "ffn_norm.weight", E);
    lw.wq = m.linear(blk + "attn_q.weight", E, s.n_head * D);
    lw.wk = m.linear(blk + "attn_k.weight", E, s.n_head_kv * D);
    lw.wv = m.linear(blk + "attn_v.weight", E, s.n_head_kv * D);
    lw.wo = m.linear(blk + "attn_output.weight", s.n_head * D, E);
    if (qk_norm) {
      lw.q_norm = m.vector_f32(blk + "attn_q_norm.weight", D);
      lw.k_norm = m.vector_f32(blk + "attn_k_norm.weight", D);
    }
    bind_ffn(m, l, lw);
  }
}

void bind_embeddings(Model& m) {
  const auto& s = m.spec();
  m.token_embd = m.linear("token_embd.weight", s.n_embd, s.n_vocab);
  m.output = m.has("output.weight") ? m.linear("output.weight", s.n_embd, s.n_vocab) : m.token_embd;
  m.output_norm = m.vector_f32("output_norm.weight", s.n_embd);
  m.layers.resize(s.n_layers);
}

void bind_ffn(const Model& m, int layer, LayerWeights& lw) {
  const auto& s = m.spec();
  const int64_t E = s.n_embd;
  const std::string blk = "blk." + std::to_string(layer) + ".";
  if (s.n_expert > 0 && m.has(blk + "ffn_gate_inp.weight")) {
    lw.router = m.linear(blk + "ffn_gate_inp.weight", E, s.n_expert);
    m.bind_experts(layer, lw);
    if (m.has(blk + "exp_probs_b.bias")) lw.router_bias = m.vector_f32(blk + "exp_probs_b.bias", s.n_expert);
    if (m.has(blk + "ffn_gate_shexp.weight")) {
      const int64_t F = s.n_ff_shexp;
      lw.shexp_gate = m.linear(blk + "ffn_gate_shexp.weight", E, F);
      lw.shexp_up = m.linear(blk + "ffn_up_shexp.weight", E, F);
      lw.shexp_down = m.linear(blk + "ffn_down_shexp.weight", F, E);
    }
  } else {
    lw.ffn_gate = m.linear(blk + "ffn_gate.weight", E, s.n_ff);
    lw.ffn_up = m.linear(blk + "ffn_up.weight", E, s.n_ff);
    lw.ffn_down = m.linear(blk + "ffn_down.weight", s.n_ff, E);
  }
}

}  // namespace hexe
