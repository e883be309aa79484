// The list of architectures hexe runs, and the lookup by spec.
#include "runtime/arch/architecture.h"

#include <string>

#include "memory/error.h"
#include "runtime/engine/blocks.h"
#include "runtime/engine/mla_block.h"
#include "runtime/engine/phase_times.h"

namespace hexe {

const Architecture& qwen3moe_architecture();
const Architecture& mixtral_architecture();
const Architecture& deepseek2_architecture();
const Architecture& glm4moe_architecture();

void Architecture::forward_layer(LayerContext& ctx) const {
  const LayerRecipe r = recipe(ctx.model, ctx.layer);
  switch (r.attention) {
    case LayerRecipe::Attention::None: return;
    case LayerRecipe::Attention::Gqa: attention_block(ctx, r.gqa); break;
    case LayerRecipe::Attention::Mla: {
      const PhaseTimer timer(Phase::MlaAttention);  // (not split into phases)
      mla_attention_block(ctx);
      break;
    }
  }
  if (r.moe) moe_block(ctx);
  else dense_ffn_block(ctx);
}

const Architecture& find_architecture(const place::ModelSpec& spec) {
  const Architecture* all[] = {&qwen3moe_architecture(), &mixtral_architecture(), &deepseek2_architecture(),
                                  &glm4moe_architecture()};
  std::string names;
  for (const Architecture* a : all) {
    if (a->accepts(spec)) return *a;
    names += (names.empty() ? "" : ", ") + std::string(a->name());
  }
  throw Error(spec.source + ": architecture '" + spec.arch + "' (" + std::to_string(spec.n_expert) +
              " experts) is not supported; hexe runs: " + names);
}

}  // namespace hexe
