// The per-tensor type rules of the quantisation recipes (see quant_recipe.h and README.md).
#include "placement/quant_recipe.h"

#include <cctype>

#include "memory/error.h"

namespace hexe::place {

namespace {

struct RecipeEntry {
  QuantRecipe recipe;
  const char* name;
  DType base;  // what most 2-D weights get
};
constexpr RecipeEntry kRecipes[] = {
    {QuantRecipe::Q4_K_M, "q4_k_m", DType::Q4_K}, {QuantRecipe::Q5_K_M, "q5_k_m", DType::Q5_K},
    {QuantRecipe::Q6_K, "q6_k", DType::Q6_K},     {QuantRecipe::Q8_0, "q8_0", DType::Q8_0},
    {QuantRecipe::Q4_0, "q4_0", DType::Q4_0},     {QuantRecipe::F16, "f16", DType::F16},
    {QuantRecipe::BF16, "bf16", DType::BF16},
};

const RecipeEntry& entry(QuantRecipe r) {
  for (const auto& e : kRecipes)
    if (e.recipe == r) return e;
  return kRecipes[0];
}

// llama.cpp's "use more bits" layer pattern: the first and last eighth of the layers, and every
// third layer in between, get the bigger type.
bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

bool name_has(const TensorSpec& t, std::string_view s) { return t.name.find(s) != std::string::npos; }

// When the row length is not a multiple of the block, llama.cpp substitutes a 32-element type.
DType fit_row(DType t, int64_t ne0) {
  if (ne0 % int64_t(info(t).block_elems) == 0) return t;
  DType f = DType::F16;
  switch (t) {
    case DType::Q4_K: f = DType::Q5_0; break;
    case DType::Q5_K: f = DType::Q5_1; break;
    case DType::Q6_K: f = DType::Q8_0; break;
    default: break;
  }
  return ne0 % int64_t(info(f).block_elems) == 0 ? f : DType::F16;
}

}  // namespace

std::optional<QuantRecipe> recipe_from_name(std::string_view name) {
  std::string low;
  for (char c : name) low += char(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& e : kRecipes)
    if (low == e.name) return e.recipe;
  return std::nullopt;
}

const char* recipe_name(QuantRecipe r) { return entry(r).name; }

std::vector<std::string> recipe_names() {
  std::vector<std::string> v;
  for (const auto& e : kRecipes) v.emplace_back(e.name);
  return v;
}

uint64_t tensor_bytes(DType type, const std::vector<int64_t>& ne) {
  if (ne.empty()) return 0;
  uint64_t rows = 1;
  for (size_t i = 1; i < ne.size(); ++i) rows *= uint64_t(ne[i]);
  return rows * row_bytes(type, uint64_t(ne[0]));
}

DType recipe_type(QuantRecipe r, const TensorSpec& t, const RecipeModel& m) {
  const DType base = entry(r).base;
  const bool one_d = t.ne.size() < 2;
  if (one_d || t.role == TensorRole::Router || t.role == TensorRole::RouterBias ||
      name_has(t, ".bias") || name_has(t, "norm") || name_has(t, "sinks")) {
    return DType::F32;
  }
  if (m.keep_expert_type && is_routed_expert(t.role)) return *m.keep_expert_type;
  if (!is_quantized(base)) return base;  // f16/bf16: every matrix in that type, no special rules

  DType ty = base;
  const bool output = t.role == TensorRole::Output || (m.tied_embeddings && t.role == TensorRole::TokenEmbd);
  const bool k_m = r == QuantRecipe::Q4_K_M || r == QuantRecipe::Q5_K_M;
  if (output) {
    // The output head is the most sensitive matrix: q6_K unless the recipe is already q8_0, and
    // q8_0 when its rows do not hold whole q6_K blocks.
    if (t.ne[0] % int64_t(info(base).block_elems) != 0) return DType::Q8_0;
    ty = base == DType::Q8_0 ? DType::Q8_0 : DType::Q6_K;
  } else if (t.role == TensorRole::TokenEmbd) {
    ty = base;  // a row lookup, not a matmul: the base type
  } else if (t.role == TensorRole::AttnV && name_has(t, "attn_v.")) {
    if (k_m && use_more_bits(t.layer, m.n_layers)) ty = DType::Q6_K;
    if (m.n_expert == 8) ty = DType::Q8_0;  // Mixtral: attn_v is small next to 8 experts
  } else if (t.role == TensorRole::AttnK && name_has(t, "attn_k.")) {
    if (m.n_expert == 8) ty = DType::Q8_0;
  } else if (t.role == TensorRole::AttnOut) {
    if (m.n_expert == 8 && r == QuantRecipe::Q4_K_M) ty = DType::Q5_K;
  } else if (t.role == TensorRole::ExpertDown || t.role == TensorRole::SharedDown ||
             t.role == TensorRole::DenseDown) {
    // Every ffn_down (dense, routed and shared) follows the layer pattern.
    if (k_m && use_more_bits(t.layer, m.n_layers)) ty = DType::Q6_K;
  }
  return fit_row(ty, t.ne[0]);
}

void apply_recipe(ModelSpec& spec, QuantRecipe r, const RecipeModel& m) {
  for (auto& t : spec.tensors) {
    t.type = recipe_type(r, t, m);
    t.bytes = tensor_bytes(t.type, t.ne);
  }
}

}  // namespace hexe::place
