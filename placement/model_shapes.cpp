// Turning profiles/models/*.json shape documents into ModelSpecs (tensor lists with GGUF names).
#include "placement/model_shapes.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "memory/error.h"
#include "placement/data_paths.h"

namespace hexe::place {

using nlohmann::json;

namespace {

struct Builder {
  ModelSpec& s;
  void add(std::string name, std::vector<int64_t> ne, TensorRole role, int layer, int experts = 1) {
    TensorSpec t;
    t.name = std::move(name);
    t.ne = std::move(ne);
    t.role = role;
    t.layer = layer;
    t.experts = experts;
    t.type = t.ne.size() < 2 ? DType::F32 : DType::BF16;  // source dtype of published checkpoints
    t.bytes = tensor_bytes(t.type, t.ne);
    s.tensors.push_back(std::move(t));
  }
};

std::string blk(int il, const char* what) { return "blk." + std::to_string(il) + "." + what; }

template <class T>
T req(const json& j, const char* key, const std::string& where) {
  if (!j.contains(key)) throw Error(where + ": missing field '" + key + "'");
  try {
    return j.at(key).get<T>();
  } catch (const json::exception& e) {
    throw Error(where + ": field '" + key + "': " + e.what());
  }
}

}  // namespace

PlanModel model_from_shape(const json& j, QuantRecipe recipe, const std::string& origin) {
  PlanModel pm;
  ModelSpec& s = pm.spec;
  s.name = req<std::string>(j, "name", origin);
  s.arch = req<std::string>(j, "arch", origin);
  s.source = origin;
  s.n_layers = req<int>(j, "n_layers", origin);
  s.n_embd = req<int>(j, "n_embd", origin);
  s.n_vocab = req<int>(j, "n_vocab", origin);
  s.n_ctx_train = j.value("n_ctx_train", 0);
  s.tied_embeddings = j.value("tied_embeddings", false);
  s.rope_theta = j.value("rope_theta", 10000.f);
  s.rms_eps = j.value("rms_eps", 1e-6f);
  if (s.n_layers <= 0 || s.n_embd <= 0 || s.n_vocab <= 0)
    throw Error(origin + ": n_layers, n_embd and n_vocab must be positive");

  const std::string aw = origin + " attention";
  const json& ja = j.contains("attention") ? j.at("attention") : throw Error(origin + ": missing field 'attention'");
  const std::string atype = req<std::string>(ja, "type", aw);
  AttentionShape& a = pm.attn;
  a.n_head = req<int>(ja, "n_head", aw);
  s.n_head = a.n_head;
  if (atype == "mla") {
    a.mla = true;
    a.kv_lora_rank = req<int>(ja, "kv_lora_rank", aw);
    a.qk_rope_dim = req<int>(ja, "qk_rope_head_dim", aw);
    const int nope = req<int>(ja, "qk_nope_head_dim", aw);
    a.head_dim_k = nope + a.qk_rope_dim;
    a.head_dim_v = req<int>(ja, "v_head_dim", aw);
    a.n_head_kv = a.n_head;
    s.n_head_kv = a.n_head;
    s.head_dim = a.head_dim_k;
  } else if (atype == "gqa") {
    a.n_head_kv = req<int>(ja, "n_head_kv", aw);
    a.head_dim_k = a.head_dim_v = req<int>(ja, "head_dim", aw);
    a.sliding_window = ja.value("sliding_window", 0);
    a.n_sliding_layers = ja.value("n_sliding_layers", 0);
    s.n_head_kv = a.n_head_kv;
    s.head_dim = a.head_dim_k;
  } else {
    throw Error(aw + ": type '" + atype + "' is not 'mla' or 'gqa'");
  }

  const std::string fw = origin + " ffn";
  const json& jf = j.contains("ffn") ? j.at("ffn") : throw Error(origin + ": missing field 'ffn'");
  s.n_ff = jf.value("n_ff", 0);
  s.n_leading_dense = jf.value("n_leading_dense", 0);
  const int moe_step = jf.value("moe_layer_step", 1);  // Llama 4: every 2nd layer is MoE
  s.n_expert = req<int>(jf, "n_expert", fw);
  s.n_expert_used = req<int>(jf, "n_expert_used", fw);
  s.n_ff_exp = req<int>(jf, "n_ff_exp", fw);
  s.n_expert_shared = jf.value("n_expert_shared", 0);
  const int n_ff_shexp = jf.value("n_ff_shexp", s.n_ff_exp) * std::max(1, s.n_expert_shared);
  s.router_fn = jf.value("router", std::string("softmax")) == "sigmoid" ? RouterFn::Sigmoid : RouterFn::Softmax;
  s.norm_topk_prob = jf.value("norm_topk_prob", false);
  s.routed_scaling = jf.value("routed_scaling", 1.f);
  const bool router_bias = jf.value("router_bias", false);
  const bool expert_bias = jf.value("expert_bias", false);
  if (s.n_expert <= 0 || s.n_expert_used <= 0 || s.n_expert_used > s.n_expert || s.n_ff_exp <= 0 || moe_step <= 0)
    throw Error(fw + ": need 0 < n_expert_used <= n_expert, n_ff_exp > 0, moe_layer_step > 0");

  RecipeModel rm;
  rm.n_layers = s.n_layers;
  rm.n_expert = s.n_expert;
  rm.tied_embeddings = s.tied_embeddings;
  if (jf.contains("source_expert_type")) {
    auto t = dtype_from_name(jf.at("source_expert_type").get<std::string>());
    if (!t) throw Error(fw + ": unknown source_expert_type");
    rm.keep_expert_type = *t;
  }

  const int64_t E = s.n_embd;
  Builder b{s};
  b.add("token_embd.weight", {E, s.n_vocab}, TensorRole::TokenEmbd, -1);
  b.add("output_norm.weight", {E}, TensorRole::OutputNorm, -1);
  if (!s.tied_embeddings) b.add("output.weight", {E, s.n_vocab}, TensorRole::Output, -1);
  const bool qk_norm = ja.value("qk_norm", false), attn_bias = ja.value("bias", false);
  const bool sinks = ja.value("sinks", false);
  const int q_lora = ja.value("q_lora_rank", 0);
  for (int il = 0; il < s.n_layers; ++il) {
    b.add(blk(il, "attn_norm.weight"), {E}, TensorRole::AttnNorm, il);
    if (a.mla) {
      const int64_t qdim = int64_t(a.n_head) * a.head_dim_k;
      if (q_lora > 0) {
        b.add(blk(il, "attn_q_a.weight"), {E, q_lora}, TensorRole::AttnQ, il);
        b.add(blk(il, "attn_q_a_norm.weight"), {q_lora}, TensorRole::AttnQNorm, il);
        b.add(blk(il, "attn_q_b.weight"), {q_lora, qdim}, TensorRole::AttnQ, il);
      } else {
        b.add(blk(il, "attn_q.weight"), {E, qdim}, TensorRole::AttnQ, il);
      }
      b.add(blk(il, "attn_kv_a_mqa.weight"), {E, a.kv_lora_rank + a.qk_rope_dim}, TensorRole::AttnK, il);
      b.add(blk(il, "attn_kv_a_norm.weight"), {a.kv_lora_rank}, TensorRole::AttnKNorm, il);
      b.add(blk(il, "attn_kv_b.weight"),
            {a.kv_lora_rank, int64_t(a.n_head) * (a.head_dim_k - a.qk_rope_dim + a.head_dim_v)},
            TensorRole::AttnV, il);
      b.add(blk(il, "attn_output.weight"), {int64_t(a.n_head) * a.head_dim_v, E}, TensorRole::AttnOut, il);
    } else {
      const int64_t qd = int64_t(a.n_head) * a.head_dim_k, kvd = int64_t(a.n_head_kv) * a.head_dim_k;
      b.add(blk(il, "attn_q.weight"), {E, qd}, TensorRole::AttnQ, il);
      b.add(blk(il, "attn_k.weight"), {E, kvd}, TensorRole::AttnK, il);
      b.add(blk(il, "attn_v.weight"), {E, kvd}, TensorRole::AttnV, il);
      b.add(blk(il, "attn_output.weight"), {qd, E}, TensorRole::AttnOut, il);
      if (attn_bias) {
        b.add(blk(il, "attn_q.bias"), {qd}, TensorRole::AttnBias, il);
        b.add(blk(il, "attn_k.bias"), {kvd}, TensorRole::AttnBias, il);
        b.add(blk(il, "attn_v.bias"), {kvd}, TensorRole::AttnBias, il);
      }
      if (qk_norm) {
        b.add(blk(il, "attn_q_norm.weight"), {a.head_dim_k}, TensorRole::AttnQNorm, il);
        b.add(blk(il, "attn_k_norm.weight"), {a.head_dim_k}, TensorRole::AttnKNorm, il);
      }
      if (sinks) b.add(blk(il, "attn_sinks.weight"), {a.n_head}, TensorRole::Other, il);
    }
    b.add(blk(il, "ffn_norm.weight"), {E}, TensorRole::FfnNorm, il);
    const bool moe = il >= s.n_leading_dense && (il + 1) % moe_step == 0;
    if (!moe) {
      if (s.n_ff <= 0) throw Error(fw + ": layer " + std::to_string(il) + " is dense but n_ff is 0");
      b.add(blk(il, "ffn_gate.weight"), {E, s.n_ff}, TensorRole::DenseGate, il);
      b.add(blk(il, "ffn_up.weight"), {E, s.n_ff}, TensorRole::DenseUp, il);
      b.add(blk(il, "ffn_down.weight"), {s.n_ff, E}, TensorRole::DenseDown, il);
      continue;
    }
    const int64_t F = s.n_ff_exp, NE = s.n_expert;
    b.add(blk(il, "ffn_gate_inp.weight"), {E, NE}, TensorRole::Router, il);
    if (router_bias) b.add(blk(il, "exp_probs_b.bias"), {NE}, TensorRole::RouterBias, il);
    b.add(blk(il, "ffn_gate_exps.weight"), {E, F, NE}, TensorRole::ExpertGate, il, s.n_expert);
    b.add(blk(il, "ffn_up_exps.weight"), {E, F, NE}, TensorRole::ExpertUp, il, s.n_expert);
    b.add(blk(il, "ffn_down_exps.weight"), {F, E, NE}, TensorRole::ExpertDown, il, s.n_expert);
    if (expert_bias) {
      b.add(blk(il, "ffn_gate_exps.bias"), {F, NE}, TensorRole::Other, il);
      b.add(blk(il, "ffn_up_exps.bias"), {F, NE}, TensorRole::Other, il);
      b.add(blk(il, "ffn_down_exps.bias"), {E, NE}, TensorRole::Other, il);
    }
    if (s.n_expert_shared > 0) {
      b.add(blk(il, "ffn_gate_shexp.weight"), {E, n_ff_shexp}, TensorRole::SharedGate, il);
      b.add(blk(il, "ffn_up_shexp.weight"), {E, n_ff_shexp}, TensorRole::SharedUp, il);
      b.add(blk(il, "ffn_down_shexp.weight"), {n_ff_shexp, E}, TensorRole::SharedDown, il);
    }
  }
  apply_recipe(s, recipe, rm);
  pm.quant = recipe_name(recipe);
  return pm;
}

namespace {
json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot open model shape " + path);
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw Error("model shape " + path + ": " + e.what());
  }
}
std::string lower(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
}  // namespace

PlanModel load_model_shape(const std::string& name_or_path, QuantRecipe recipe) {
  std::string path;
  try {
    path = resolve_data_file(lower(name_or_path), "profiles/models");
  } catch (const Error&) {
    // Not a file stem: look for the name among the shapes' aliases.
    for (const auto& root : data_roots()) {
      std::error_code ec;
      for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(root) / "profiles/models", ec)) {
        if (e.path().extension() != ".json") continue;
        json j = read_json(e.path().string());
        for (const auto& al : j.value("aliases", std::vector<std::string>{}))
          if (lower(al) == lower(name_or_path)) return model_from_shape(j, recipe, e.path().string());
      }
    }
    throw;
  }
  return model_from_shape(read_json(path), recipe, path);
}

PlanModel plan_model_from_spec(ModelSpec spec) {
  PlanModel pm;
  pm.attn = attention_shape(spec);
  pm.spec = std::move(spec);
  pm.quant = "file";
  return pm;
}

std::vector<std::string> model_shape_names() { return list_data_names("profiles/models"); }

}  // namespace hexe::place
