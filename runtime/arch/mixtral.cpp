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
  LayerRecipe recipe(const Model& m, int layer) const override {
    return {.gqa = {.qk_norm = false}, .moe = m.layers[layer].is_moe()};
  }
};

}  // namespace

const Architecture& mixtral_architecture() {
  static const Mixtral arch;
  return arch;
}

}  // namespace hexe
