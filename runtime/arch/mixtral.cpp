// Mixtral: GGUF architecture `llama` with experts (and HF MixtralForCausalLM). Softmax over the
// top-k router logits; RoPE interleaved as llama GGUFs store q/k (NEOX for unpermuted HF q/k).
#include "runtime/arch/architecture.h"
#include "runtime/arch/common_bind.h"
#include "runtime/engine/blocks.h"

namespace hexe {
namespace {

class Mixtral final : public Architecture {
 public:
  std::string_view name() const override { return "mixtral (llama with experts)"; }
  bool accepts(const place::ModelSpec& s) const override {
    return (s.arch == "llama" || s.arch == "mixtral") && s.n_expert > 0;
  }
  void bind(Model& model) const override { bind_llama_family(model, /*qk_norm=*/false); }
  void forward_layer(LayerContext& ctx) const override {
    attention_block(ctx, {.qk_norm = false});
    if (ctx.model.layers[ctx.layer].is_moe()) moe_block(ctx);
    else dense_ffn_block(ctx);
  }
};

}  // namespace

const Architecture& mixtral_architecture() {
  static const Mixtral arch;
  return arch;
}

}  // namespace hexe
