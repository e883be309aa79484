// ModelFile -> place::ModelSpec: hyper-parameters, routing and every tensor's role.
#pragma once

#include <string_view>

#include "placement/model_spec.h"
#include "runtime/model/model_file.h"

namespace hexe {

// Reads the architecture's keys (qwen3moe, llama/Mixtral, qwen3, qwen2moe, deepseek2 checked;
// other architectures: whatever keys exist) and classifies every tensor. For the checked
// architectures missing keys and tensor shapes that disagree with the hyper-parameters throw
// hexe::Error naming the file, the key or tensor, the value and what was expected.
place::ModelSpec build_model_spec(const ModelFile& model);

// Role of one GGUF tensor name and its block index (-1 outside blocks), e.g.
// "blk.3.ffn_up_exps.weight" -> ExpertUp, 3; "blk.0.ffn_gate.7.weight" -> ExpertGate, 0.
struct TensorClass {
  place::TensorRole role = place::TensorRole::Other;
  int layer = -1;
  int expert = -1;  // the expert of a per-expert tensor (ffn_gate.E), -1 otherwise
};
TensorClass classify_tensor(std::string_view name);

}  // namespace hexe
