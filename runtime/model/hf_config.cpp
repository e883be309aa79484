// HF config.json -> GGUF metadata keys, as llama.cpp's convert_hf_to_gguf.py names them.
#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "memory/error.h"
#include "runtime/model/hf_model.h"

namespace hexe {
namespace {

using nlohmann::json;

struct ArchMap {
  const char* hf;    // config.json "architectures"[0]
  const char* gguf;  // general.architecture
};
constexpr ArchMap kArchs[] = {
    {"Qwen3MoeForCausalLM", "qwen3moe"}, {"MixtralForCausalLM", "llama"},
    {"MistralForCausalLM", "llama"},     {"LlamaForCausalLM", "llama"},
    {"Qwen3ForCausalLM", "qwen3"},       {"Qwen2MoeForCausalLM", "qwen2moe"},
    {"DeepseekV3ForCausalLM", "deepseek2"}, {"DeepseekV2ForCausalLM", "deepseek2"},
    {"KimiK2ForCausalLM", "deepseek2"},     {"Glm4MoeForCausalLM", "glm4moe"},
};

class Config {
 public:
  Config(const json& j, const std::string& source) : j_(j), source_(source) {}

  const json* get(const char* key) const {
    auto it = j_.find(key);
    return it == j_.end() || it->is_null() ? nullptr : &*it;
  }
  std::optional<int64_t> get_int(const char* key) const {
    const json* v = get(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_number_integer()) bad(key, *v, "an integer");
    return v->get<int64_t>();
  }
  int64_t require_int(const char* key) const {
    auto v = get_int(key);
    if (!v) throw Error(source_ + ": key '" + key + "' is missing, expected an integer");
    if (*v < 0) bad(key, *get(key), "a non-negative integer");
    return *v;
  }
  std::optional<double> get_float(const char* key) const {
    const json* v = get(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_number()) bad(key, *v, "a number");
    return v->get<double>();
  }
  std::optional<bool> get_bool(const char* key) const {
    const json* v = get(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_boolean()) bad(key, *v, "true or false");
    return v->get<bool>();
  }
  // rope_theta moved into "rope_parameters" in transformers 5; older configs keep it top-level.
  std::optional<double> rope_theta() const {
    if (auto t = get_float("rope_theta")) return t;
    const json* rp = get("rope_parameters");
    if (rp != nullptr && rp->is_object()) {
      auto it = rp->find("rope_theta");
      if (it != rp->end() && it->is_number()) return it->get<double>();
    }
    return std::nullopt;
  }
  const json* rope_scaling() const {
    for (const char* k : {"rope_scaling", "rope_parameters"}) {
      const json* r = get(k);
      if (r == nullptr || !r->is_object()) continue;
      auto t = r->find("rope_type");
      if (t == r->end()) t = r->find("type");
      if (t != r->end() && t->is_string() && *t != "default") return r;
    }
    return nullptr;
  }
  [[noreturn]] void bad(const char* key, const json& v, const char* expected) const {
    throw Error(source_ + ": key '" + key + "' is " + v.dump() + ", expected " + expected);
  }

 private:
  const json& j_;
  const std::string& source_;
};

// First id of an int or a list of ints (eos_token_id may be either).
std::optional<int64_t> first_id(const json* v) {
  if (v == nullptr) return std::nullopt;
  if (v->is_number_integer()) return v->get<int64_t>();
  if (v->is_array() && !v->empty() && (*v)[0].is_number_integer()) return (*v)[0].get<int64_t>();
  return std::nullopt;
}

// partial_rotary_factor: top-level in older configs, in rope_parameters in transformers 5.
std::optional<double> partial_rotary_factor(const Config& c) {
  if (auto f = c.get_float("partial_rotary_factor")) return f;
  const json* rp = c.get("rope_parameters");
  if (rp != nullptr && rp->is_object()) {
    auto it = rp->find("partial_rotary_factor");
    if (it != rp->end() && it->is_number()) return it->get<double>();
  }
  return std::nullopt;
}

// DeepSeek-V2/V3 (and Kimi-K2) MLA, grouped sigmoid routing, shared experts, leading dense
// layers, YaRN with DeepSeek's mscale; GLM-4.5's routing shares the keys. As convert_hf_to_gguf
// writes them for the older GGUF layout (attn_kv_b): key_length = nope + rope dims.
void deepseek_family_keys(const Config& c, Metadata& md, const std::string& p, const std::string& arch) {
  if (auto n = c.get_int("n_routed_experts")) {
    md.set_int(p + "expert_count", *n);
    md.set_int(p + "expert_used_count", c.require_int("num_experts_per_tok"));
  }
  if (auto v = c.get_int("moe_intermediate_size")) md.set_int(p + "expert_feed_forward_length", *v);
  if (auto v = c.get_int("n_shared_experts")) md.set_int(p + "expert_shared_count", *v);
  if (auto v = c.get_int("first_k_dense_replace")) md.set_int(p + "leading_dense_block_count", *v);
  // DeepSeek-V2's topk_method "greedy" ignores n_group / topk_group (V2-Lite lists 1 / 1, but
  // the keys are free to say more); "group_limited_greedy" (V2) and "noaux_tc" (V3) use them.
  const json* tm = c.get("topk_method");
  const bool grouped = tm == nullptr || !tm->is_string() || *tm != "greedy";
  if (auto v = c.get_int("n_group"); v && grouped) md.set_int(p + "expert_group_count", *v);
  if (auto v = c.get_int("topk_group"); v && grouped) md.set_int(p + "expert_group_used_count", *v);
  if (auto v = c.get_float("routed_scaling_factor")) md.set_float(p + "expert_weights_scale", *v);
  const bool v2 = md.get_string("hexe.hf_architecture").value_or("") == "DeepseekV2ForCausalLM";
  // transformers' DeepseekV2 router never renormalises (it ignores norm_topk_prob; DeepSeek's
  // published V2 configs all say false anyway).
  if (auto v = c.get_bool("norm_topk_prob")) md.set_bool(p + "expert_weights_norm", *v && !v2);
  const json* sf = c.get("scoring_func");
  // V3, Kimi-K2 and GLM-4.5 score with a sigmoid; V2 with a softmax, unless scoring_func says.
  const bool sigmoid = sf != nullptr && sf->is_string() ? *sf == "sigmoid" : !v2;
  md.set_int(p + "expert_gating_func", sigmoid ? 2 : 1);
  if (arch == "deepseek2") {
    const int64_t rope = c.require_int("qk_rope_head_dim"), nope = c.require_int("qk_nope_head_dim");
    md.set_int(p + "attention.kv_lora_rank", c.require_int("kv_lora_rank"));
    if (auto q = c.get_int("q_lora_rank")) md.set_int(p + "attention.q_lora_rank", *q);
    md.set_int(p + "attention.key_length", nope + rope);
    md.set_int(p + "attention.value_length", c.require_int("v_head_dim"));
    md.set_int(p + "rope.dimension_count", rope);
  } else if (auto f = partial_rotary_factor(c)) {
    const int64_t hd = c.get_int("head_dim").value_or(c.require_int("hidden_size") / c.require_int("num_attention_heads"));
    md.set_int(p + "rope.dimension_count", int64_t(double(hd) * *f));
  }
  if (const json* rs = c.rope_scaling()) {
    auto num = [&](const char* k) -> std::optional<double> {
      auto it = rs->find(k);
      if (it == rs->end() || !it->is_number()) return std::nullopt;
      return it->get<double>();
    };
    const double factor = num("factor").value_or(1.0);
    auto mscale = [&](double m) { return factor <= 1 ? 1.0 : 0.1 * m * std::log(factor) + 1.0; };
    const auto ms = num("mscale"), ms_all = num("mscale_all_dim");
    if (ms_all && *ms_all != 0) md.set_float(p + "rope.scaling.yarn_log_multiplier", 0.1 * *ms_all);
    // HF's cos/sin multiplier (attention_factor); llama.cpp folds the same into its RoPE.
    double attn = num("attention_factor").value_or(ms && ms_all && *ms != 0 && *ms_all != 0
                                                       ? mscale(*ms) / mscale(*ms_all)
                                                       : mscale(1.0));
    md.set_float("hexe.rope.yarn_attn_factor", attn);
    if (auto b = num("beta_fast")) md.set_float(p + "rope.scaling.yarn_beta_fast", *b);
    if (auto b = num("beta_slow")) md.set_float(p + "rope.scaling.yarn_beta_slow", *b);
  }
}

}  // namespace

Metadata hf_config_to_metadata(const json& config, const std::string& source) {
  if (!config.is_object()) throw Error(source + ": expected a JSON object");
  Config c(config, source);
  Metadata md;
  md.source = source;

  std::string hf_arch;
  if (const json* a = c.get("architectures"); a != nullptr && a->is_array() && !a->empty() &&
                                               (*a)[0].is_string())
    hf_arch = (*a)[0].get<std::string>();
  std::string arch;
  for (const auto& m : kArchs)
    if (hf_arch == m.hf) arch = m.gguf;
  if (arch.empty()) {
    const json* mt = c.get("model_type");
    if (mt == nullptr || !mt->is_string())
      throw Error(source + ": neither a known 'architectures' entry (got '" + hf_arch +
                  "') nor a 'model_type'");
    arch = mt->get<std::string>();
  }
  md.set_string("general.architecture", arch);
  if (!hf_arch.empty()) md.set_string("hexe.hf_architecture", hf_arch);
  const std::string p = arch + ".";

  const int64_t n_embd = c.require_int("hidden_size");
  const int64_t n_head = c.require_int("num_attention_heads");
  if (n_head == 0) c.bad("num_attention_heads", *c.get("num_attention_heads"), ">= 1");
  md.set_int(p + "block_count", c.require_int("num_hidden_layers"));
  md.set_int(p + "embedding_length", n_embd);
  md.set_int(p + "attention.head_count", n_head);
  md.set_int(p + "attention.head_count_kv", c.get_int("num_key_value_heads").value_or(n_head));
  md.set_int(p + "vocab_size", c.require_int("vocab_size"));
  if (auto v = c.get_int("max_position_embeddings")) md.set_int(p + "context_length", *v);
  if (auto v = c.get_int("intermediate_size")) md.set_int(p + "feed_forward_length", *v);
  const auto head_dim = c.get_int("head_dim");
  if (head_dim) {
    md.set_int(p + "attention.key_length", *head_dim);
    md.set_int(p + "attention.value_length", *head_dim);
  }
  md.set_int(p + "rope.dimension_count", head_dim.value_or(n_embd / n_head));
  if (auto v = c.rope_theta()) md.set_float(p + "rope.freq_base", *v);
  if (auto v = c.get_float("rms_norm_eps")) md.set_float(p + "attention.layer_norm_rms_epsilon", *v);

  // Experts: Qwen names the count num_experts (transformers 5 saves num_local_experts).
  auto n_expert = c.get_int("num_experts");
  if (!n_expert) n_expert = c.get_int("num_local_experts");
  if (n_expert && *n_expert > 0) {
    md.set_int(p + "expert_count", *n_expert);
    md.set_int(p + "expert_used_count", c.require_int("num_experts_per_tok"));
    if (auto v = c.get_int("moe_intermediate_size")) md.set_int(p + "expert_feed_forward_length", *v);
    if (auto v = c.get_int("shared_expert_intermediate_size"))
      md.set_int(p + "expert_shared_feed_forward_length", *v);
    if (arch == "qwen3moe" || arch == "qwen2moe")
      md.set_bool(p + "expert_weights_norm", c.get_bool("norm_topk_prob").value_or(false));
  }

  if (const json* rs = c.rope_scaling()) {
    auto t = rs->find("rope_type");
    if (t == rs->end()) t = rs->find("type");
    md.set_string(p + "rope.scaling.type", t->get<std::string>());
    if (auto f = rs->find("factor"); f != rs->end() && f->is_number())
      md.set_float(p + "rope.scaling.factor", f->get<double>());
    if (auto o = rs->find("original_max_position_embeddings"); o != rs->end() && o->is_number_integer())
      md.set_int(p + "rope.scaling.original_context_length", o->get<int64_t>());
  }

  if (arch == "deepseek2" || arch == "glm4moe") deepseek_family_keys(c, md, p, arch);

  if (auto v = first_id(c.get("bos_token_id"))) md.set_int("tokenizer.ggml.bos_token_id", *v);
  if (auto v = first_id(c.get("eos_token_id"))) md.set_int("tokenizer.ggml.eos_token_id", *v);
  if (auto v = first_id(c.get("pad_token_id"))) md.set_int("tokenizer.ggml.padding_token_id", *v);
  if (auto v = c.get_bool("tie_word_embeddings")) md.set_bool("hexe.tie_word_embeddings", *v);
  // HF stores q/k unpermuted: RoPE rotates halves (NEOX) whatever the architecture.
  md.set_bool("hexe.rope.neox_from_hf", true);
  return md;
}

}  // namespace hexe
