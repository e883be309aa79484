// HF models (config.json + safetensors) seen in GGUF's vocabulary: metadata keys and tensor names.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "runtime/model/metadata.h"
#include "runtime/model/model_file.h"

namespace hexe {

// config.json -> the keys llama.cpp's convert_hf_to_gguf.py writes. Supported architectures:
// Qwen3MoeForCausalLM (qwen3moe), MixtralForCausalLM / MistralForCausalLM / LlamaForCausalLM
// (llama), Qwen3ForCausalLM (qwen3), Qwen2MoeForCausalLM (qwen2moe); others get the generic keys
// under their model_type. `source` names config.json in messages.
Metadata hf_config_to_metadata(const nlohmann::json& config, const std::string& source);

// One HF tensor as GGUF tensors: usually one renamed view; fused expert tensors
// (mlp.experts.gate_up_proj [E, 2F, H], mlp.experts.down_proj [E, H, F]) become one view per
// expert (blk.N.ffn_gate.E.weight ...). Unknown names are kept as they are.
std::vector<TensorRef> hf_to_gguf_tensors(const TensorRef& hf);

// Opens an HF model directory, a *.safetensors file or a model.safetensors.index.json; config.json
// and tokenizer files are looked for beside it.
std::unique_ptr<ModelFile> open_safetensors_model(const std::string& path, bool progress);

}  // namespace hexe
