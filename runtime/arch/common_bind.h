// Binding shared by the llama-family layouts: norms, attention projections, FFN (MoE or dense).
#pragma once

#include <string>

#include "runtime/engine/model.h"

namespace hexe {

// Binds token_embd/output/output_norm and, per layer, attn_norm, q/k/v/o, ffn_norm, and either
// routed experts + router or a dense FFN. `qk_norm` also binds attn_q_norm/attn_k_norm.
void bind_llama_family(Model& model, bool qk_norm);

}  // namespace hexe
