// Binding shared by the architectures: llama-family layouts, and the FFN (MoE or dense) of any.
#pragma once

#include <string>

#include "runtime/engine/model.h"

namespace hexe {

// Binds token_embd/output/output_norm and, per layer, attn_norm, q/k/v/o, ffn_norm, and either
// routed experts + router or a dense FFN. `qk_norm` also binds attn_q_norm/attn_k_norm.
void bind_llama_family(Model& model, bool qk_norm);

// token_embd, output (token_embd when tied), output_norm; sizes model.layers.
void bind_embeddings(Model& model);

// The FFN of one layer: router + routed experts (+ selection bias exp_probs_b and shared experts
// ffn_*_shexp when the file has them), or a dense FFN when the layer has no router.
void bind_ffn(const Model& model, int layer, LayerWeights& lw);

}  // namespace hexe
