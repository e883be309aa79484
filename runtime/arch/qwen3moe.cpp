// qwen3moe (Qwen3-30B-A3B, Qwen3-235B-A22B): GQA with per-head q/k RMSNorm, NEOX RoPE,
// softmax router, top-k, weights renormalised when norm_topk_prob.
#include "runtime/arch/architecture.h"
#include "runtime/arch/common_bind.h"
#include "runtime/engine/blocks.h"

namespace hexe {
namespace {

class Qwen3Moe final : public Architecture {
 public:
  std::string_view name() const override { return "qwen3moe"; }
  bool accepts(const place::ModelSpec& s) const override { return s.arch == "qwen3moe"; }
  void bind(Model& model) const override { bind_llama_family(model, /*qk_norm=*/true); }
  LayerRecipe recipe(const Model& m, int layer) const override {
    return {.gqa = {.qk_norm = true}, .moe = m.layers[layer].is_moe()};
  }
};

}  // namespace

const Architecture& qwen3moe_architecture() {
  static const Qwen3Moe arch;
  return arch;
}

}  // namespace hexe
