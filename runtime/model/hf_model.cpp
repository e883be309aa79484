// HF safetensors models: tensor names mapped to GGUF's, shards and tokenizer files found.
#include "runtime/model/hf_model.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "memory/error.h"
#include "runtime/model/fp8_blocks.h"
#include "runtime/model/load_progress.h"
#include "runtime/model/mapped_model.h"
#include "runtime/model/safetensors_reader.h"

namespace hexe {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Per-layer HF suffix -> GGUF suffix (after "model.layers.N." / "blk.N.").
struct NameMap {
  const char* hf;
  const char* gguf;
};
constexpr NameMap kLayerNames[] = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.bias", "attn_v.bias"},
    {"self_attn.q_norm.weight", "attn_q_norm.weight"},
    {"self_attn.k_norm.weight", "attn_k_norm.weight"},
    {"mlp.gate.weight", "ffn_gate_inp.weight"},
    {"block_sparse_moe.gate.weight", "ffn_gate_inp.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
    {"mlp.shared_expert.gate_proj.weight", "ffn_gate_shexp.weight"},
    {"mlp.shared_expert.up_proj.weight", "ffn_up_shexp.weight"},
    {"mlp.shared_expert.down_proj.weight", "ffn_down_shexp.weight"},
    {"mlp.shared_expert_gate.weight", "ffn_gate_inp_shexp.weight"},
    // DeepSeek-V2/V3, Kimi-K2, GLM-4.5: MLA projections, shared experts, the selection bias.
    {"self_attn.q_a_proj.weight", "attn_q_a.weight"},
    {"self_attn.q_a_layernorm.weight", "attn_q_a_norm.weight"},
    {"self_attn.q_b_proj.weight", "attn_q_b.weight"},
    {"self_attn.kv_a_proj_with_mqa.weight", "attn_kv_a_mqa.weight"},
    {"self_attn.kv_a_layernorm.weight", "attn_kv_a_norm.weight"},
    {"self_attn.kv_b_proj.weight", "attn_kv_b.weight"},
    {"mlp.shared_experts.gate_proj.weight", "ffn_gate_shexp.weight"},
    {"mlp.shared_experts.up_proj.weight", "ffn_up_shexp.weight"},
    {"mlp.shared_experts.down_proj.weight", "ffn_down_shexp.weight"},
    {"mlp.gate.e_score_correction_bias", "exp_probs_b.bias"},
};
// Per-expert HF suffix (after "experts.E.") -> GGUF stem (ffn_gate -> "blk.N.ffn_gate.E.weight").
constexpr NameMap kExpertNames[] = {
    {"gate_proj.weight", "ffn_gate"}, {"up_proj.weight", "ffn_up"}, {"down_proj.weight", "ffn_down"},
    {"w1.weight", "ffn_gate"},        {"w3.weight", "ffn_up"},      {"w2.weight", "ffn_down"},
};

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// Reads leading decimal digits of s into n; returns how many characters were consumed (0: none).
size_t read_index(std::string_view s, int64_t& n) {
  size_t i = 0;
  n = 0;
  while (i < s.size() && i < 9 && s[i] >= '0' && s[i] <= '9') n = n * 10 + (s[i++] - '0');
  return i;
}

TensorRef view(const TensorRef& hf, std::string name, std::vector<int64_t> ne, uint64_t offset,
               uint64_t bytes) {
  TensorRef t;
  t.name = std::move(name);
  t.type = hf.type;
  t.ne = std::move(ne);
  t.data = hf.data + offset;
  t.bytes = bytes;
  t.file = hf.file;
  t.file_backed = hf.file_backed;
  t.fp8 = hf.fp8;  // only for whole-tensor views (renames); see the fused experts below
  return t;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw Error(p.string() + ": cannot open: " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json read_json(const fs::path& p) {
  try {
    return json::parse(read_text(p));
  } catch (const json::exception& e) {
    throw Error(p.string() + ": not valid JSON: " + e.what());
  }
}

// Block-FP8 checkpoints: each F8_E4M3 tensor "X" gets the scales of "X_scale_inv" (kept on disk
// as they are; decoded where the values are read) and the scale tensors are dropped (their name
// cleared). An FP8 tensor without scales throws naming it.
void attach_fp8_scales(std::vector<TensorRef>& tensors, const std::unordered_map<std::string, size_t>& by_name,
                       const std::vector<std::string>& fp8, Fp8BlockSize block) {
  for (const std::string& name : fp8) {
    TensorRef& w = tensors[by_name.at(name)];
    auto s = by_name.find(name + "_scale_inv");
    if (s == by_name.end())
      throw Error(w.file + ": tensor '" + name + "' is F8_E4M3 but the checkpoint has no '" + name +
                  "_scale_inv' (block-FP8 checkpoints pair each FP8 weight with its scales)");
    w.fp8 = fp8_scales(w, tensors[s->second], block);
    tensors[s->second].name.clear();
  }
}

}  // namespace

std::vector<TensorRef> hf_to_gguf_tensors(const TensorRef& hf) {
  const std::string_view name = hf.name;
  if (name == "model.embed_tokens.weight") return {view(hf, "token_embd.weight", hf.ne, 0, hf.bytes)};
  if (name == "model.norm.weight") return {view(hf, "output_norm.weight", hf.ne, 0, hf.bytes)};
  if (name == "lm_head.weight") return {view(hf, "output.weight", hf.ne, 0, hf.bytes)};

  constexpr std::string_view kLayers = "model.layers.";
  int64_t layer = 0;
  size_t n = starts_with(name, kLayers) ? read_index(name.substr(kLayers.size()), layer) : 0;
  if (n == 0 || name.size() <= kLayers.size() + n || name[kLayers.size() + n] != '.')
    return {hf};  // not a layer tensor we know: keep the HF name
  const std::string blk = "blk." + std::to_string(layer) + ".";
  std::string_view rest = name.substr(kLayers.size() + n + 1);

  for (const auto& m : kLayerNames)
    if (rest == m.hf) return {view(hf, blk + m.gguf, hf.ne, 0, hf.bytes)};

  for (std::string_view moe : {"mlp.experts.", "block_sparse_moe.experts."}) {
    if (!starts_with(rest, moe)) continue;
    std::string_view e_rest = rest.substr(moe.size());
    int64_t e = 0;
    size_t en = read_index(e_rest, e);
    if (en > 0 && en < e_rest.size() && e_rest[en] == '.') {
      for (const auto& m : kExpertNames)
        if (e_rest.substr(en + 1) == m.hf)
          return {view(hf, blk + m.gguf + "." + std::to_string(e) + ".weight", hf.ne, 0, hf.bytes)};
      return {hf};
    }
    // Fused experts (transformers >= 5 in memory): gate_up_proj [E, 2F, H] holds gate rows
    // [0, F) then up rows [F, 2F) per expert; down_proj [E, H, F]. Every expert's slice is
    // contiguous, so each becomes a per-expert view without copying.
    const bool gate_up = e_rest == "gate_up_proj" || e_rest == "gate_up_proj.weight";
    const bool down = e_rest == "down_proj" || e_rest == "down_proj.weight";
    if ((!gate_up && !down) || hf.ne.size() != 3 || (gate_up && hf.ne[1] % 2 != 0)) return {hf};
    if (hf.fp8.data != nullptr)  // FP8 blocks may straddle experts' gate and up rows
      throw Error(hf.file + ": tensor '" + hf.name + "' holds fused experts in FP8; hexe reads FP8 "
                  "experts one tensor per expert (as DeepSeek publishes them)");
    const int64_t n_exp = hf.ne[2];
    const uint64_t per_expert = hf.bytes / uint64_t(n_exp);
    std::vector<TensorRef> out;
    for (int64_t x = 0; x < n_exp; ++x) {
      // append, not "." + to_string(x): a GCC 12 -Wrestrict false positive
      const std::string sfx = std::string(".").append(std::to_string(x)).append(".weight");
      if (down) {
        out.push_back(view(hf, blk + "ffn_down" + sfx, {hf.ne[0], hf.ne[1]}, x * per_expert, per_expert));
      } else {
        const int64_t f = hf.ne[1] / 2;
        out.push_back(view(hf, blk + "ffn_gate" + sfx, {hf.ne[0], f}, x * per_expert, per_expert / 2));
        out.push_back(view(hf, blk + "ffn_up" + sfx, {hf.ne[0], f}, x * per_expert + per_expert / 2,
                           per_expert / 2));
      }
    }
    return out;
  }
  return {hf};
}

std::unique_ptr<ModelFile> open_safetensors_model(const std::string& path, bool progress) {
  const fs::path p(path);
  fs::path dir;
  fs::path index;
  std::vector<fs::path> files;
  auto name_ends = [&](const char* sfx) {
    const std::string s = p.filename().string();
    const std::string x = sfx;
    return s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
  };
  if (fs::is_directory(p)) {
    dir = p;
    if (fs::exists(dir / "model.safetensors.index.json")) {
      index = dir / "model.safetensors.index.json";
    } else if (fs::exists(dir / "model.safetensors")) {
      files.push_back(dir / "model.safetensors");
    } else {
      for (const auto& e : fs::directory_iterator(dir))
        if (e.is_regular_file() && e.path().extension() == ".safetensors") files.push_back(e.path());
      std::sort(files.begin(), files.end());
      if (files.empty())
        throw Error(path + ": no model.safetensors, model.safetensors.index.json or *.safetensors "
                           "in the directory");
    }
  } else if (name_ends(".index.json")) {
    dir = p.parent_path();
    index = p;
  } else {
    dir = p.parent_path();
    files.push_back(p);
  }
  if (dir.empty()) dir = ".";

  std::map<std::string, std::string> weight_map;
  if (!index.empty()) {
    SafetensorsIndex idx = read_safetensors_index(index.string());
    for (const auto& f : idx.files) {
      fs::path shard = dir / f;
      if (!fs::exists(shard))
        throw Error(index.string() + ": names shard '" + f + "' (for tensor '" +
                    [&] {
                      for (const auto& [t, file] : idx.weight_map)
                        if (file == f) return t;
                      return std::string();
                    }() +
                    "') but " + shard.string() + " does not exist");
      files.push_back(shard);
    }
    weight_map = std::move(idx.weight_map);
  }

  // Metadata: config.json mapped to GGUF keys, tokenizer files beside it.
  const fs::path config = dir / "config.json";
  auto model = std::make_unique<MappedModel>(ModelFormat::Safetensors, path);
  Metadata& md = model->mutable_metadata();
  Fp8BlockSize fp8_block;
  if (fs::exists(config)) {
    const json cj = read_json(config);
    md = hf_config_to_metadata(cj, config.string());
    fp8_block = fp8_block_size(cj, config.string());
  } else {
    md.source = path;
    md.set_bool("hexe.rope.neox_from_hf", true);
  }
  std::error_code ec;
  fs::path abs_dir = fs::absolute(dir, ec);
  if (ec) abs_dir = dir;
  md.set_string("general.name", abs_dir.lexically_normal().filename().string().empty()
                                    ? abs_dir.lexically_normal().parent_path().filename().string()
                                    : abs_dir.lexically_normal().filename().string());
  if (fs::exists(dir / "tokenizer.json"))
    md.set_string("hexe.tokenizer_json", (abs_dir / "tokenizer.json").lexically_normal().string());
  if (fs::exists(dir / "chat_template.jinja")) {
    md.set_string("tokenizer.chat_template", read_text(dir / "chat_template.jinja"));
  } else if (fs::exists(dir / "tokenizer_config.json")) {
    json tc = read_json(dir / "tokenizer_config.json");
    auto ct = tc.is_object() ? tc.find("chat_template") : tc.end();
    if (tc.is_object() && ct != tc.end()) {
      if (ct->is_string()) {
        md.set_string("tokenizer.chat_template", ct->get<std::string>());
      } else if (ct->is_array()) {  // [{"name": "default", "template": "..."}, ...]
        for (const auto& e : *ct)
          if (e.is_object() && e.value("name", "") == "default" && e.contains("template") &&
              e["template"].is_string())
            md.set_string("tokenizer.chat_template", e["template"].get<std::string>());
      }
    }
  }

  uint64_t total = 0;
  for (const auto& f : files) total += fs::file_size(f, ec);
  LoadProgress bar(abs_dir.filename().string(), total, progress);
  std::vector<TensorRef> hf_tensors;
  std::unordered_map<std::string, size_t> by_name;  // HF name -> index in hf_tensors
  std::vector<std::string> fp8;
  for (const auto& f : files) {
    SafetensorsFile sf = read_safetensors(f.string());
    for (const TensorRef& t : sf.header.tensors) {
      if (!weight_map.empty()) {
        auto it = weight_map.find(t.name);
        if (it == weight_map.end() || it->second != f.filename().string()) continue;
        weight_map.erase(it);
      }
      by_name[t.name] = hf_tensors.size();
      hf_tensors.push_back(t);
    }
    for (const auto& n : sf.header.f8_e4m3) {
      auto it = by_name.find(n);
      if (it != by_name.end() && hf_tensors[it->second].file == f.string()) fp8.push_back(n);
    }
    bar.advance(sf.map.size());
    model->add_mapping(std::move(sf.map));  // moves keep the tensor pointers valid
  }
  if (!weight_map.empty())
    throw Error(index.string() + ": tensor '" + weight_map.begin()->first + "' is listed in shard '" +
                weight_map.begin()->second + "' but that file does not hold it");
  attach_fp8_scales(hf_tensors, by_name, fp8, fp8_block);
  std::vector<TensorRef>& tensors = model->mutable_tensors();
  for (const TensorRef& t : hf_tensors)
    if (!t.name.empty())
      for (TensorRef& g : hf_to_gguf_tensors(t)) tensors.push_back(std::move(g));
  model->finish();
  return model;
}

}  // namespace hexe
