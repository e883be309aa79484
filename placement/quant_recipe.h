// Quantisation recipes (`--quant q4_k_m|...`): which GGML type each tensor gets, following the
// rules of llama.cpp's llama-quantize so predicted sizes match the GGUFs people download.
// `hexe plan --model NAME --quant Q` and `hexe quantize` share this table.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cpu_kernels/format.h"
#include "placement/model_spec.h"

namespace hexe::place {

enum class QuantRecipe { Q4_K_M, Q5_K_M, Q6_K, Q8_0, Q4_0, F16, BF16 };

std::optional<QuantRecipe> recipe_from_name(std::string_view name);  // case-insensitive
const char* recipe_name(QuantRecipe r);                              // "q4_k_m"
std::vector<std::string> recipe_names();

// Facts about the whole model a recipe looks at.
struct RecipeModel {
  int n_layers = 0;
  int n_expert = 0;             // routed experts per layer (8: Mixtral rules apply)
  bool tied_embeddings = false;
  // Routed-expert tensors already in this type in the source (GPT-OSS ships MXFP4 experts):
  // the recipe keeps them as they are. nullopt: no such tensors.
  std::optional<DType> keep_expert_type;
};

// The type one tensor gets. 1-D tensors (norms, biases) and the router stay F32. A type whose
// block does not divide the row (ne[0]) falls back as llama.cpp does (q4_K->q5_0, q5_K->q5_1,
// q6_K->q8_0, then f16).
DType recipe_type(QuantRecipe r, const TensorSpec& t, const RecipeModel& m);

// Sets type and bytes of every tensor of `spec` per the recipe.
void apply_recipe(ModelSpec& spec, QuantRecipe r, const RecipeModel& m);

// Bytes of a tensor of shape `ne` (GGUF order) in `type`: rows x row_bytes(ne[0]).
uint64_t tensor_bytes(DType type, const std::vector<int64_t>& ne);

}  // namespace hexe::place
