// An architecture: how its tensors are named and bound, and one layer's forward pass written
// against the engine's blocks. One file per architecture registers itself here.
#pragma once

#include <string_view>

#include "placement/model_spec.h"
#include "runtime/engine/forward.h"

namespace hexe {


class Architecture {
 public:
  virtual ~Architecture() = default;
  virtual std::string_view name() const = 0;
  // True when this architecture runs a model with this spec (GGUF arch name and shape).
  virtual bool accepts(const place::ModelSpec& spec) const = 0;
  // Fills model.layers, token_embd, output and output_norm.
  virtual void bind(Model& model) const = 0;
  // What layer `layer` computes (runtime/engine/forward.h); the CPU blocks and the GPU executor
  // both follow it.
  virtual LayerRecipe recipe(const Model& model, int layer) const = 0;
  // Runs layer ctx.layer on the batch in ctx with the CPU blocks (residual stream updated in place).
  void forward_layer(LayerContext& ctx) const;
};

// The architecture for a spec; throws hexe::Error listing the supported ones when none fits.
const Architecture& find_architecture(const place::ModelSpec& spec);

}  // namespace hexe
