// Source model -> GGUF layout: expert stacking, llama q/k row permutation, metadata and vocabulary.
#include "runtime/model/convert.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <string_view>

#include "cpu_kernels/quant.h"
#include "memory/error.h"
#include "runtime/model/convert_vocab.h"
#include "runtime/model/fp8_blocks.h"
#include "runtime/model/spec_builder.h"

namespace hexe {
namespace {

// "blk.3.ffn_up.7.weight" -> stack name "blk.3.ffn_up_exps.weight", expert 7; else false.
bool per_expert_name(const std::string& name, std::string& stack, int& expert) {
  TensorClass c = classify_tensor(name);
  if (c.expert < 0 || c.layer < 0) return false;
  static constexpr std::string_view kKinds[] = {"ffn_gate", "ffn_up", "ffn_down"};
  for (auto kind : kKinds) {
    std::string prefix = "blk." + std::to_string(c.layer) + "." + std::string(kind) + ".";
    if (name.rfind(prefix, 0) == 0) {
      stack = "blk." + std::to_string(c.layer) + "." + std::string(kind) + "_exps.weight";
      expert = c.expert;
      return true;
    }
  }
  return false;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

int64_t OutTensor::rows() const {
  int64_t r = 1;
  for (size_t i = 1; i < ne.size(); ++i) r *= ne[i];
  return r;
}

std::vector<OutTensor> plan_output_tensors(const ModelFile& src) {
  const Metadata& md = src.metadata();
  const std::string arch = md.get_string("general.architecture").value_or("");
  // HF checkpoints of llama-architecture models store q/k for rotate_half RoPE; GGUF "llama"
  // expects the interleaved layout, so the converter permutes them (qwen* use NEOX: no change).
  const bool permute_qk = src.format() == ModelFormat::Safetensors &&
                          md.get_bool("hexe.rope.neox_from_hf").value_or(false) && arch == "llama";
  int n_head = 0, n_head_kv = 0;
  if (permute_qk) {
    n_head = int(md.require_int(arch + ".attention.head_count"));
    n_head_kv = int(md.get_int(arch + ".attention.head_count_kv").value_or(n_head));
  }

  std::vector<OutTensor> out;
  std::map<std::string, size_t> stacks;              // stack name -> index in out
  std::map<std::string, std::map<int, const TensorRef*>> experts;
  for (const TensorRef& t : src.tensors()) {
    std::string stack;
    int e = -1;
    if (per_expert_name(t.name, stack, e)) {
      if (!stacks.count(stack)) {
        stacks[stack] = out.size();
        OutTensor o;
        o.name = stack;
        out.push_back(std::move(o));
      }
      if (!experts[stack].emplace(e, &t).second)
        throw Error(src.path() + ": expert tensor '" + t.name + "' appears twice");
      continue;
    }
    OutTensor o;
    o.name = t.name;
    o.ne = t.ne;
    o.parts = {&t};
    if (permute_qk && t.ne.size() == 2) {
      if (ends_with(t.name, ".attn_q.weight")) o.permute_heads = n_head;
      if (ends_with(t.name, ".attn_k.weight")) o.permute_heads = n_head_kv;
      if (o.permute_heads && (t.ne[1] % (2 * o.permute_heads) != 0))
        throw Error(src.path() + ": tensor '" + t.name + "' has " + std::to_string(t.ne[1]) +
                    " rows, expected a multiple of 2 x " + std::to_string(o.permute_heads) +
                    " heads for the q/k permutation");
    }
    out.push_back(std::move(o));
  }
  for (auto& [name, idx] : stacks) {
    OutTensor& o = out[idx];
    const auto& parts = experts[name];
    int expect = 0;
    for (const auto& [e, t] : parts) {
      if (e != expect)
        throw Error(src.path() + ": expert " + std::to_string(expect) + " of '" + name +
                    "' is missing (found expert " + std::to_string(e) + ")");
      ++expect;
      const TensorRef* first = parts.begin()->second;
      if (t->ne != first->ne || t->type != first->type || t->ne.size() != 2)
        throw Error(src.path() + ": expert tensor '" + t->name +
                    "' differs in shape or type from '" + first->name +
                    "' (all experts of a layer must match, 2-D)");
      o.parts.push_back(t);
    }
    o.ne = {o.parts[0]->ne[0], o.parts[0]->ne[1], int64_t(o.parts.size())};
  }
  return out;
}

void read_rows_f32(const OutTensor& t, int64_t row0, int64_t n_rows, float* dst) {
  const int64_t n = t.ne[0];
  const int64_t per_part = t.rows_per_part();
  for (int64_t r = row0; r < row0 + n_rows; ++r) {
    const TensorRef* part = t.parts[size_t(r / per_part)];
    int64_t src_row = r % per_part;
    if (t.permute_heads) {
      // Output row j of head h (head size d) takes source row h*d + (j % 2)*(d/2) + j/2.
      const int64_t d = per_part / t.permute_heads;
      const int64_t h = src_row / d, j = src_row % d;
      src_row = h * d + (j % 2) * (d / 2) + j / 2;
    }
    if (part->fp8.data != nullptr) {  // block-FP8 HF weights, decoded with their block scales
      dequantize_fp8_rows(*part, src_row, 1, dst + (r - row0) * n);
      continue;
    }
    const uint8_t* p = part->data + uint64_t(src_row) * part->row_bytes();
    cpu::dequantize_row(part->type, p, dst + (r - row0) * n, n);
  }
}

Metadata output_metadata(const ModelFile& src, uint32_t file_type) {
  const Metadata& in = src.metadata();
  Metadata md;
  md.source = src.path();
  for (const auto& [k, v] : in.values)
    if (k.rfind("hexe.", 0) != 0) md.values[k] = v;
  const std::string arch = in.get_string("general.architecture").value_or("");
  // llama.cpp's converter writes no expert_weights_norm for qwen3moe (its graph always
  // renormalises); keep the key only where it says something (false).
  if (arch == "qwen3moe" && in.get_bool(arch + ".expert_weights_norm").value_or(false))
    md.values.erase(arch + ".expert_weights_norm");
  // ... nor these two for qwen3moe (hexe's HF reader adds them for its own use).
  if (arch == "qwen3moe") {
    md.values.erase("qwen3moe.vocab_size");
    md.values.erase("qwen3moe.rope.dimension_count");
  }
  if (!md.has("general.type")) md.set_string("general.type", "model");
  md.set_int("general.file_type", file_type, GgufValueType::UInt32);
  md.set_int("general.quantization_version", 2, GgufValueType::UInt32);
  if (auto json = in.get_string("hexe.tokenizer_json"); json && !md.has("tokenizer.ggml.model")) {
    namespace fs = std::filesystem;
    fs::path cfg = fs::path(*json).parent_path() / "tokenizer_config.json";
    add_vocab_metadata(*json, fs::exists(cfg) ? cfg.string() : std::string(), md);
  }
  return md;
}

}  // namespace hexe
