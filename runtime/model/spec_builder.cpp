// Builds the architecture-neutral ModelSpec from a model file's metadata and tensors.
#include "runtime/model/spec_builder.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>
#include <set>

#include "memory/error.h"

namespace hexe {
namespace {

using place::GatingOrder;
using place::ModelSpec;
using place::RopeType;
using place::RouterFn;
using place::TensorRole;

struct RoleName {
  std::string_view stem;  // name inside a block, without ".weight"/".bias"
  TensorRole role;
};
constexpr RoleName kBlockRoles[] = {
    {"attn_norm", TensorRole::AttnNorm},       {"attn_q", TensorRole::AttnQ},
    {"attn_k", TensorRole::AttnK},             {"attn_v", TensorRole::AttnV},
    {"attn_output", TensorRole::AttnOut},      {"attn_q_norm", TensorRole::AttnQNorm},
    {"attn_k_norm", TensorRole::AttnKNorm},    {"ffn_norm", TensorRole::FfnNorm},
    {"ffn_gate_inp", TensorRole::Router},      {"exp_probs_b", TensorRole::RouterBias},
    {"ffn_gate_exps", TensorRole::ExpertGate}, {"ffn_up_exps", TensorRole::ExpertUp},
    {"ffn_down_exps", TensorRole::ExpertDown}, {"ffn_gate_shexp", TensorRole::SharedGate},
    {"ffn_up_shexp", TensorRole::SharedUp},    {"ffn_down_shexp", TensorRole::SharedDown},
    {"ffn_gate", TensorRole::DenseGate},       {"ffn_up", TensorRole::DenseUp},
    {"ffn_down", TensorRole::DenseDown},
    // DeepSeek's multi-head latent attention: still attention weights for placement.
    {"attn_q_a", TensorRole::AttnQ},           {"attn_q_b", TensorRole::AttnQ},
    {"attn_kv_a_mqa", TensorRole::AttnK},      {"attn_kv_b", TensorRole::AttnK},
    {"attn_k_b", TensorRole::AttnK},           {"attn_v_b", TensorRole::AttnV},
    {"attn_q_a_norm", TensorRole::AttnNorm},   {"attn_kv_a_norm", TensorRole::AttnNorm},
};

// Architectures whose GGUF q/k are stored for NEOX RoPE (llama.cpp's llama_model_rope_type).
constexpr std::string_view kNeoxArchs[] = {
    "qwen",  "qwen2",   "qwen2moe", "qwen3",   "qwen3moe", "phi2",     "phi3",  "phimoe",
    "gemma", "gemma2",  "gemma3",   "stablelm", "falcon",  "gptneox",  "starcoder2",
    "olmo2", "olmoe",   "dbrx",     "grok",    "glm4",     "glm4moe",  "gpt-oss", "dots1",
    "exaone", "minicpm3", "hunyuan-moe",
};
// Architectures whose keys and shapes this file checks.
constexpr std::string_view kCheckedArchs[] = {"qwen3moe", "llama", "qwen3", "qwen2moe"};

bool parse_int(std::string_view s, int& out) {
  if (s.empty() || s.size() > 6) return false;
  out = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  return true;
}

std::string shape_str(const std::vector<int64_t>& ne) {
  std::string s = "[";
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

// Integer key that may be stored per layer as an array (some architectures do): first element.
std::optional<int64_t> get_int_or_first(const Metadata& md, const std::string& key) {
  const MetaValue* v = md.find(key);
  if (v != nullptr && v->is_array() && !v->ints.empty()) return v->ints.front();
  return md.get_int(key);
}

int to_int(const Metadata& md, const std::string& key, int64_t v) {
  if (v < 0 || v > INT32_MAX)
    throw Error(md.source + ": key '" + key + "' is " + std::to_string(v) +
                ", expected 0 to 2^31-1");
  return int(v);
}

// Multi-head latent attention, group-limited routing, shared experts and YaRN (deepseek2,
// glm4moe). Keys as llama.cpp names them; both deepseek2 GGUF layouts: the older one with
// attn_kv_b (key_length 192 = nope + rope, value_length 128) and the newer one with per-head
// attn_k_b/attn_v_b (head_count_kv 1, key_length 576, key_length_mla 192, value_length_mla 128).
void read_extended_keys(const Metadata& md, const std::string& p, ModelSpec& s) {
  auto get = [&](const std::string& k) { return get_int_or_first(md, p + k); };
  if (auto v = get("rope.dimension_count")) s.rope_dim = to_int(md, p + "rope.dimension_count", *v);
  if (auto v = get("expert_group_count")) s.n_group = std::max(1, to_int(md, p + "expert_group_count", *v));
  if (auto v = get("expert_group_used_count"))
    s.topk_group = std::max(1, to_int(md, p + "expert_group_used_count", *v));
  for (const auto& t : s.tensors)
    if (t.role == TensorRole::SharedGate && t.ne.size() >= 2) s.n_ff_shexp = int(t.ne[1]);
  if (auto v = get("attention.kv_lora_rank")) {
    s.kv_lora_rank = to_int(md, p + "attention.kv_lora_rank", *v);
    s.q_lora_rank = to_int(md, p + "attention.q_lora_rank", get("attention.q_lora_rank").value_or(0));
    s.qk_rope_dim = s.rope_dim;
    const int64_t k_len = get("attention.key_length_mla").value_or(get("attention.key_length").value_or(0));
    const int64_t v_len = get("attention.value_length_mla").value_or(get("attention.value_length").value_or(0));
    if (s.qk_rope_dim <= 0 || k_len <= s.qk_rope_dim || v_len <= 0)
      throw Error(md.source + ": MLA keys inconsistent: rope.dimension_count " + std::to_string(s.qk_rope_dim) +
                  ", key length " + std::to_string(k_len) + ", value length " + std::to_string(v_len) +
                  " (expected key length > rope dims > 0 and value length > 0)");
    s.qk_nope_dim = int(k_len) - s.qk_rope_dim;
    s.v_head_dim = int(v_len);
    s.head_dim = int(k_len);
    s.n_head_kv = s.n_head;  // expanded attention's view; the cache holds the latent instead
    s.rope_type = RopeType::Interleaved;  // DeepSeek's rope dims are interleaved pairs (HF too)
  }
  const std::string scaling = md.get_string(p + "rope.scaling.type").value_or("");
  if (scaling == "yarn") {
    s.rope_scaling_factor = float(md.get_float(p + "rope.scaling.factor").value_or(1.0));
    s.rope_orig_ctx = int(get("rope.scaling.original_context_length").value_or(s.n_ctx_train));
    s.yarn_beta_fast = float(md.get_float(p + "rope.scaling.yarn_beta_fast").value_or(32.0));
    s.yarn_beta_slow = float(md.get_float(p + "rope.scaling.yarn_beta_slow").value_or(1.0));
    const double log_mul = md.get_float(p + "rope.scaling.yarn_log_multiplier").value_or(0.0);
    if (s.rope_scaling_factor > 1.f && log_mul > 0) {
      const double m = 1.0 + log_mul * std::log(double(s.rope_scaling_factor));
      s.attn_scale_mul = float(m * m);
    }
    s.rope_attn_factor = float(md.get_float("hexe.rope.yarn_attn_factor").value_or(1.0));
  } else if (!scaling.empty() && scaling != "none" && scaling != "default") {
    throw Error(md.source + ": key '" + p + "rope.scaling.type' is '" + scaling +
                "', hexe supports 'yarn' (or none)");
  }
  if (auto v = get("nextn_predict_layers")) s.n_nextn = to_int(md, p + "nextn_predict_layers", *v);
  if (s.n_nextn >= s.n_layers && s.n_nextn > 0)
    throw Error(md.source + ": key '" + p + "nextn_predict_layers' is " + std::to_string(s.n_nextn) +
                ", expected fewer than block_count (" + std::to_string(s.n_layers) + ")");
  s.attn_qkv_bias = false;
  for (const auto& t : s.tensors)
    if (t.role == TensorRole::AttnBias) s.attn_qkv_bias = true;
}

}  // namespace

TensorClass classify_tensor(std::string_view name) {
  TensorClass c;
  if (name == "token_embd.weight") c.role = TensorRole::TokenEmbd;
  else if (name == "output.weight") c.role = TensorRole::Output;
  else if (name == "output_norm.weight") c.role = TensorRole::OutputNorm;
  if (c.role != TensorRole::Other || name.substr(0, 4) != "blk.") return c;

  std::string_view rest = name.substr(4);
  size_t dot = rest.find('.');
  if (dot == std::string_view::npos || !parse_int(rest.substr(0, dot), c.layer)) {
    c.layer = -1;
    return c;
  }
  rest = rest.substr(dot + 1);
  bool bias = false;
  if (rest.size() > 7 && rest.substr(rest.size() - 7) == ".weight") {
    rest.remove_suffix(7);
  } else if (rest.size() > 5 && rest.substr(rest.size() - 5) == ".bias") {
    rest.remove_suffix(5);
    bias = true;
  }
  // One expert per tensor (old Mixtral GGUFs, HF): "ffn_gate.E".
  if (size_t d = rest.find('.'); d != std::string_view::npos) {
    int e = 0;
    std::string_view stem = rest.substr(0, d);
    if (parse_int(rest.substr(d + 1), e)) {
      if (stem == "ffn_gate") c.role = TensorRole::ExpertGate;
      else if (stem == "ffn_up") c.role = TensorRole::ExpertUp;
      else if (stem == "ffn_down") c.role = TensorRole::ExpertDown;
      if (c.role != TensorRole::Other) c.expert = e;
    }
    return c;
  }
  for (const auto& r : kBlockRoles) {
    if (rest != r.stem) continue;
    c.role = r.role;
    if (bias && r.role != TensorRole::RouterBias) {
      const bool attn = r.role == TensorRole::AttnQ || r.role == TensorRole::AttnK ||
                        r.role == TensorRole::AttnV || r.role == TensorRole::AttnOut;
      c.role = attn ? TensorRole::AttnBias : TensorRole::Other;
    }
    break;
  }
  return c;
}

namespace {

// Expected GGUF-order shape of a tensor from the hyper-parameters; empty when not checked.
std::vector<int64_t> expected_shape(const ModelSpec& s, const place::TensorSpec& t) {
  const int64_t e = s.n_embd, q = int64_t(s.n_head) * s.head_dim,
                kv = int64_t(s.n_head_kv) * s.head_dim;
  const bool stacked = t.experts > 1 || t.ne.size() == 3;
  auto exp = [&](std::vector<int64_t> ne) {
    if (stacked) ne.push_back(s.n_expert);
    return ne;
  };
  switch (t.role) {
    case TensorRole::TokenEmbd: case TensorRole::Output: return {e, s.n_vocab};
    case TensorRole::OutputNorm: case TensorRole::AttnNorm: case TensorRole::FfnNorm: return {e};
    case TensorRole::AttnQ: return {e, q};
    case TensorRole::AttnK: case TensorRole::AttnV: return {e, kv};
    case TensorRole::AttnOut: return {q, e};
    case TensorRole::AttnQNorm: case TensorRole::AttnKNorm: return {s.head_dim};
    case TensorRole::Router: return {e, s.n_expert};
    case TensorRole::ExpertGate: case TensorRole::ExpertUp: return exp({e, s.n_ff_exp});
    case TensorRole::ExpertDown: return exp({s.n_ff_exp, e});
    case TensorRole::DenseGate: case TensorRole::DenseUp: return {e, s.n_ff};
    case TensorRole::DenseDown: return {s.n_ff, e};
    default: return {};
  }
}

}  // namespace

place::ModelSpec build_model_spec(const ModelFile& model) {
  const Metadata& md = model.metadata();
  const std::string file = md.source.empty() ? model.path() : md.source;
  ModelSpec s;
  s.source = model.path();
  s.arch = md.get_string("general.architecture").value_or("");
  s.name = md.get_string("general.name").value_or("");
  if (s.name.empty()) s.name = std::filesystem::path(model.path()).stem().string();
  const std::string p = s.arch + ".";
  const bool checked =
      std::find(std::begin(kCheckedArchs), std::end(kCheckedArchs), s.arch) != std::end(kCheckedArchs);

  // Tensors first: some figures fall back on shapes when keys are absent.
  int max_layer = -1;
  const place::TensorSpec* embd = nullptr;
  bool has_output = false, has_dense = false, has_shared = false;
  std::set<int> dense_layers;
  int64_t exp_ff_from_shape = 0, dense_ff_from_shape = 0;
  s.tensors.reserve(model.tensors().size());
  for (const TensorRef& r : model.tensors()) {
    place::TensorSpec t;
    t.name = r.name;
    t.type = r.type;
    t.ne = r.ne;
    t.bytes = r.bytes;
    TensorClass c = classify_tensor(r.name);
    t.role = c.role;
    t.layer = c.layer;
    if (place::is_routed_expert(c.role) && c.expert < 0 && r.ne.size() == 3)
      t.experts = int(std::min<int64_t>(r.ne[2], INT32_MAX));
    max_layer = std::max(max_layer, c.layer);
    if (c.role == TensorRole::Output) has_output = true;
    if (c.role == TensorRole::DenseGate || c.role == TensorRole::DenseUp ||
        c.role == TensorRole::DenseDown) {
      has_dense = true;
      dense_layers.insert(c.layer);
      if (c.role == TensorRole::DenseGate && r.ne.size() >= 2) dense_ff_from_shape = r.ne[1];
    }
    if (c.role == TensorRole::SharedGate) has_shared = true;
    if (c.role == TensorRole::ExpertGate && r.ne.size() >= 2) exp_ff_from_shape = r.ne[1];
    s.tensors.push_back(std::move(t));
  }
  for (const auto& t : s.tensors)
    if (t.role == TensorRole::TokenEmbd) embd = &t;

  auto key_int = [&](const std::string& key, std::optional<int64_t> fallback) -> int {
    auto v = get_int_or_first(md, key);
    if (!v) v = fallback;
    if (!v) {
      if (checked) throw Error(file + ": key '" + key + "' is missing, expected an integer");
      return 0;
    }
    return to_int(md, key, *v);
  };
  auto opt_int = [&](const std::string& key) -> std::optional<int64_t> {
    return get_int_or_first(md, key);
  };

  s.n_layers = key_int(p + "block_count", max_layer >= 0 ? std::optional<int64_t>(max_layer + 1) : std::nullopt);
  s.n_embd = key_int(p + "embedding_length",
                     embd != nullptr ? std::optional<int64_t>(embd->ne[0]) : std::nullopt);
  s.n_head = key_int(p + "attention.head_count", std::nullopt);
  s.n_head_kv = key_int(p + "attention.head_count_kv", s.n_head);
  if (s.n_head > 0)
    s.head_dim = key_int(p + "attention.key_length", s.n_embd / s.n_head);
  s.n_expert = key_int(p + "expert_count", 0);
  s.n_expert_used = key_int(p + "expert_used_count", 0);
  s.n_expert_shared = key_int(p + "expert_shared_count", has_shared ? 1 : 0);
  // Mixtral (llama) keeps the expert FFN size in feed_forward_length; qwen3moe and deepseek2
  // have expert_feed_forward_length and use feed_forward_length for dense layers only.
  if (s.n_expert > 0) {
    auto exp_ff = opt_int(p + "expert_feed_forward_length");
    if (!exp_ff && !has_dense) exp_ff = opt_int(p + "feed_forward_length");
    s.n_ff_exp = key_int(p + "expert_feed_forward_length",
                         exp_ff ? exp_ff : (exp_ff_from_shape ? std::optional<int64_t>(exp_ff_from_shape) : std::nullopt));
    if (has_dense)
      s.n_ff = key_int(p + "feed_forward_length",
                       dense_ff_from_shape ? std::optional<int64_t>(dense_ff_from_shape) : std::nullopt);
  } else {
    s.n_ff = key_int(p + "feed_forward_length",
                     dense_ff_from_shape ? std::optional<int64_t>(dense_ff_from_shape) : std::nullopt);
  }
  if (auto v = opt_int(p + "leading_dense_block_count")) {
    s.n_leading_dense = to_int(md, p + "leading_dense_block_count", *v);
  } else if (s.n_expert > 0) {
    while (dense_layers.count(s.n_leading_dense)) ++s.n_leading_dense;
  }
  if (embd != nullptr && embd->ne.size() >= 2) {
    s.n_vocab = int(std::min<int64_t>(embd->ne[1], INT32_MAX));
  } else if (auto v = opt_int(p + "vocab_size")) {
    s.n_vocab = to_int(md, p + "vocab_size", *v);
  } else if (const MetaValue* tok = md.find("tokenizer.ggml.tokens")) {
    s.n_vocab = int(tok->array_size());
  }
  s.n_ctx_train = key_int(p + "context_length", checked ? std::optional<int64_t>() : 0);
  s.rope_theta = float(md.get_float(p + "rope.freq_base").value_or(10000.0));
  s.rms_eps = float(md.get_float(p + "attention.layer_norm_rms_epsilon").value_or(s.rms_eps));

  const bool neox_arch =
      std::find(std::begin(kNeoxArchs), std::end(kNeoxArchs), s.arch) != std::end(kNeoxArchs);
  s.rope_type = neox_arch || md.get_bool("hexe.rope.neox_from_hf").value_or(false)
                    ? RopeType::Neox
                    : RopeType::Interleaved;

  // Routing. llama.cpp's gating-function ids: 1 softmax, 2 sigmoid.
  if (auto g = opt_int(p + "expert_gating_func")) {
    if (*g == 2) s.router_fn = RouterFn::Sigmoid;
    else if (*g != 1 && *g != 0)
      throw Error(file + ": key '" + p + "expert_gating_func' is " + std::to_string(*g) +
                  ", expected 1 (softmax) or 2 (sigmoid)");
  }
  s.gating = s.arch == "llama" ? GatingOrder::TopKThenSoftmax : GatingOrder::SoftmaxThenTopK;
  // qwen3moe always renormalises in llama.cpp; the key (or HF's norm_topk_prob) can say otherwise.
  s.norm_topk_prob = md.get_bool(p + "expert_weights_norm").value_or(s.arch == "qwen3moe");
  s.routed_scaling = float(md.get_float(p + "expert_weights_scale").value_or(1.0));
  s.tied_embeddings = !has_output && embd != nullptr;
  read_extended_keys(md, p, s);

  if (s.n_expert > 0 && (s.n_expert_used < 1 || s.n_expert_used > s.n_expert))
    throw Error(file + ": key '" + p + "expert_used_count' is " + std::to_string(s.n_expert_used) +
                ", expected 1 to " + p + "expert_count (" + std::to_string(s.n_expert) + ")");
  if (!checked) return s;

  for (const char* what : {"block_count", "embedding_length", "attention.head_count"}) {
    const int v = std::string(what) == "block_count" ? s.n_layers
                : std::string(what) == "embedding_length" ? s.n_embd : s.n_head;
    if (v < 1) throw Error(file + ": key '" + p + what + "' is " + std::to_string(v) + ", expected >= 1");
  }
  if (s.n_head_kv < 1 || s.n_head % s.n_head_kv != 0)
    throw Error(file + ": key '" + p + "attention.head_count_kv' is " + std::to_string(s.n_head_kv) +
                ", expected a divisor of attention.head_count (" + std::to_string(s.n_head) + ")");
  for (const auto& t : s.tensors) {
    const std::string& tf = model.find(t.name) ? model.find(t.name)->file : file;
    if (t.layer >= s.n_layers)
      throw Error(tf + ": tensor '" + t.name + "' is in block " + std::to_string(t.layer) +
                  " but " + p + "block_count is " + std::to_string(s.n_layers));
    if (s.n_expert == 0 && place::is_routed_expert(t.role))
      throw Error(tf + ": tensor '" + t.name + "' is a routed expert but " + p +
                  "expert_count is 0 or missing");
    std::vector<int64_t> want = expected_shape(s, t);
    if (!want.empty() && want != t.ne)
      throw Error(tf + ": tensor '" + t.name + "' has shape " + shape_str(t.ne) +
                  " (GGUF order), expected " + shape_str(want) + " from the " + s.arch +
                  " hyper-parameters (embd " + std::to_string(s.n_embd) + ", heads " +
                  std::to_string(s.n_head) + "/" + std::to_string(s.n_head_kv) + " x " +
                  std::to_string(s.head_dim) + ", experts " + std::to_string(s.n_expert) +
                  " x ffn " + std::to_string(s.n_ff_exp) + ", dense ffn " + std::to_string(s.n_ff) +
                  ", vocab " + std::to_string(s.n_vocab) + ")");
  }
  return s;
}

}  // namespace hexe
