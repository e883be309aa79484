// Model shapes of models too big to ship (profiles/models/*.json, from their published HF
// configs): turned into a ModelSpec with every tensor's GGUF name, role, shape and, per a
// quantisation recipe, its type and bytes.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "placement/attention_shape.h"
#include "placement/model_spec.h"
#include "placement/quant_recipe.h"

namespace hexe::place {

// What the planner reasons on: the spec plus the attention geometry (not in ModelSpec).
struct PlanModel {
  ModelSpec spec;
  AttentionShape attn;
  std::string quant;  // recipe name, or "file" for a real model file
};

// Builds the spec from a shape document (see profiles/models/README.md for the fields). Throws
// hexe::Error naming `origin` and the field on bad input.
PlanModel model_from_shape(const nlohmann::json& shape, QuantRecipe recipe, const std::string& origin);

// NAME (a file stem or an "aliases" entry under profiles/models) or a path to a shape file.
PlanModel load_model_shape(const std::string& name_or_path, QuantRecipe recipe);

// Wraps a spec built from a real file (runtime's build_model_spec).
PlanModel plan_model_from_spec(ModelSpec spec);

// Names of the shipped shapes.
std::vector<std::string> model_shape_names();

}  // namespace hexe::place
