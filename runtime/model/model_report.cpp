// `hexe inspect` report: the model's shape, parameter and byte figures, as text or JSON.
#include "runtime/model/model_report.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>

#include "runtime/model/load_progress.h"

namespace hexe {
namespace {

using nlohmann::json;
using place::ModelSpec;

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string shape_str(const std::vector<int64_t>& ne) {
  std::string s;
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? " x " : "") + std::to_string(ne[i]);
  return s;
}

struct Figures {
  uint64_t routed_bytes = 0;         // all routed-expert weights
  uint64_t routed_bytes_token = 0;   // the share one token reads
  std::map<std::string, std::pair<uint64_t, uint64_t>> by_type;  // name -> (bytes, tensors)
  int64_t context = 0;
  uint64_t kv_token_f16 = 0;
};

Figures figures(const ModelSpec& s, const ReportOptions& o) {
  Figures f;
  for (const auto& t : s.tensors) {
    auto& bt = f.by_type[std::string(dtype_name(t.type))];
    bt.first += t.bytes;
    bt.second += 1;
    if (place::is_routed_expert(t.role)) {
      f.routed_bytes += t.bytes;
      if (s.n_expert > 0) f.routed_bytes_token += t.bytes * uint64_t(s.n_expert_used) / uint64_t(s.n_expert);
    }
  }
  f.context = o.context > 0 ? o.context : (s.n_ctx_train > 0 ? s.n_ctx_train : 4096);
  f.kv_token_f16 = s.kv_bytes_per_token(2);
  return f;
}

// MLA (deepseek2): what per-head K (qk_nope + qk_rope) and V (v_head_dim) would take per token
// in F16, against the latent the cache holds.
uint64_t mla_expanded_kv_f16(const place::ModelSpec& s) {
  return uint64_t(s.n_layers) * s.n_head * uint64_t(s.qk_nope_dim + s.qk_rope_dim + s.v_head_dim) * 2;
}
std::string mla_note(const place::ModelSpec& s) {
  if (s.kv_lora_rank <= 0) return "";
  return "; MLA latent " + std::to_string(s.kv_lora_rank) + " + rope " + std::to_string(s.qk_rope_dim) +
         " per layer (expanded K/V would need " + format_bytes(mla_expanded_kv_f16(s)) + " per token)";
}

struct TokenizerInfo {
  std::string model;  // "gpt2", "llama", "hf tokenizer.json", "none"
  int64_t tokens = 0;
  std::optional<int64_t> bos, eos;
  bool chat_template = false;
  std::string json_path;
};

TokenizerInfo tokenizer_info(const ModelFile& m, const ModelSpec& s) {
  const Metadata& md = m.metadata();
  TokenizerInfo t;
  t.json_path = md.get_string("hexe.tokenizer_json").value_or("");
  if (auto v = md.find("tokenizer.ggml.model"); v && v->type == GgufValueType::String) t.model = v->s;
  else if (!t.json_path.empty()) t.model = "hf tokenizer.json";
  else t.model = "none";
  if (const MetaValue* v = md.find("tokenizer.ggml.tokens")) t.tokens = int64_t(v->array_size());
  auto id = [&](const char* k) -> std::optional<int64_t> {
    const MetaValue* v = md.find(k);
    return v && v->is_int() ? std::optional<int64_t>(v->i) : std::nullopt;
  };
  t.bos = id("tokenizer.ggml.bos_token_id");
  t.eos = id("tokenizer.ggml.eos_token_id");
  t.chat_template = md.has("tokenizer.chat_template");
  (void)s;
  return t;
}

const char* rope_name(place::RopeType r) { return r == place::RopeType::Neox ? "neox" : "interleaved"; }
const char* gating_name(const ModelSpec& s) {
  return s.gating == place::GatingOrder::SoftmaxThenTopK ? "softmax then top-k" : "top-k then softmax";
}
const char* format_name(const ModelFile& m) { return m.format() == ModelFormat::Gguf ? "gguf" : "safetensors"; }

}  // namespace

std::string format_count(uint64_t n) {
  if (n >= 1000000000ull) return fmt(n >= 100000000000ull ? "%.0f B" : "%.2f B", double(n) / 1e9);
  if (n >= 1000000ull) return fmt("%.1f M", double(n) / 1e6);
  if (n >= 1000ull) return fmt("%.1f K", double(n) / 1e3);
  return std::to_string(n);
}

std::string model_report_text(const ModelFile& m, const ModelSpec& s, const ReportOptions& o) {
  const Figures f = figures(s, o);
  const TokenizerInfo tk = tokenizer_info(m, s);
  std::string out;
  auto line = [&](const char* label, const std::string& text) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%-14s", label);
    out += buf + text + "\n";
  };
  line("model", (s.name.empty() ? std::string("?") : s.name) + " (" +
                    (s.arch.empty() ? std::string("unknown architecture") : s.arch) + ")");
  line("file", s.source + " (" + format_name(m) + ")");
  const int moe_layers = s.n_expert > 0 ? s.n_layers - s.n_leading_dense : 0;
  line("layers", std::to_string(s.n_layers) + (s.n_expert > 0 ? " (" + std::to_string(moe_layers) +
                                                                   " MoE, " + std::to_string(s.n_leading_dense) +
                                                                   " dense first)"
                                                             : " (dense)"));
  if (s.n_expert > 0) {
    line("experts", std::to_string(s.n_expert) + " routed, top-" + std::to_string(s.n_expert_used) +
                        ", " + std::to_string(s.n_expert_shared) + " shared; expert ffn " +
                        std::to_string(s.n_ff_exp));
    line("routing", std::string(s.router_fn == place::RouterFn::Softmax ? "softmax" : "sigmoid") +
                        ", " + gating_name(s) + (s.norm_topk_prob ? ", top-k renormalised" : "") +
                        (s.routed_scaling != 1.f ? ", scaled x" + fmt("%g", s.routed_scaling) : ""));
  }
  line("hidden", std::to_string(s.n_embd) + "; heads " + std::to_string(s.n_head) + " q / " +
                     std::to_string(s.n_head_kv) + " kv x " + std::to_string(s.head_dim) +
                     "; dense ffn " + (s.n_ff > 0 ? std::to_string(s.n_ff) : std::string("-")));
  line("vocab", std::to_string(s.n_vocab) + "; training context " + std::to_string(s.n_ctx_train) +
                    (s.tied_embeddings ? "; output tied to token_embd" : ""));
  line("rope", std::string(rope_name(s.rope_type)) + ", theta " + fmt("%g", s.rope_theta) +
                   "; rms eps " + fmt("%g", s.rms_eps));
  line("params", format_count(s.params_total()) + " total, " + format_count(s.params_active()) +
                     " active per token");
  std::string types;
  for (const auto& [name, bt] : f.by_type)
    types += (types.empty() ? "" : ", ") + name + " " + format_bytes(bt.first) + " (" +
             std::to_string(bt.second) + ")";
  line("size", format_bytes(s.bytes_total()) + ": " + types);
  line("per token", format_bytes(s.bytes_per_token()) + " of weights read per decoded token" +
                        (s.n_expert > 0 ? " (routed experts " + format_bytes(f.routed_bytes_token) +
                                              " of " + format_bytes(f.routed_bytes) + ")"
                                        : std::string()));
  line("kv cache", format_bytes(f.kv_token_f16) + " per token (f16); " +
                       format_bytes(f.kv_token_f16 * uint64_t(f.context)) + " at context " +
                       std::to_string(f.context) + mla_note(s));
  std::string tok = tk.model;
  if (tk.tokens > 0) tok += ", " + std::to_string(tk.tokens) + " tokens";
  if (!tk.json_path.empty()) tok += " (" + tk.json_path + ")";
  if (tk.bos) tok += ", bos " + std::to_string(*tk.bos);
  if (tk.eos) tok += ", eos " + std::to_string(*tk.eos);
  tok += tk.chat_template ? ", chat template" : ", no chat template";
  line("tokenizer", tok);

  if (o.tensors) {
    size_t w = 4;
    for (const auto& t : s.tensors) w = std::max(w, t.name.size());
    char buf[512];
    std::snprintf(buf, sizeof buf, "\n%-*s  %-7s  %-26s  %12s  %s\n", int(w), "name", "type", "shape",
                  "bytes", "role");
    out += buf;
    for (const auto& t : s.tensors) {
      std::snprintf(buf, sizeof buf, "%-*s  %-7s  %-26s  %12s  %s\n", int(w), t.name.c_str(),
                    std::string(dtype_name(t.type)).c_str(), shape_str(t.ne).c_str(),
                    format_bytes(t.bytes).c_str(), place::role_name(t.role));
      out += buf;
    }
  }
  return out;
}

json model_report_json(const ModelFile& m, const ModelSpec& s, const ReportOptions& o) {
  const Figures f = figures(s, o);
  const TokenizerInfo tk = tokenizer_info(m, s);
  json j;
  j["name"] = s.name;
  j["architecture"] = s.arch;
  j["source"] = s.source;
  j["format"] = format_name(m);
  j["layers"] = s.n_layers;
  j["leading_dense_layers"] = s.n_leading_dense;
  j["experts"] = {{"total", s.n_expert}, {"used", s.n_expert_used}, {"shared", s.n_expert_shared},
                  {"ffn", s.n_ff_exp}};
  j["routing"] = {{"function", s.router_fn == place::RouterFn::Softmax ? "softmax" : "sigmoid"},
                  {"order", s.gating == place::GatingOrder::SoftmaxThenTopK ? "softmax_topk" : "topk_softmax"},
                  {"norm_topk_prob", s.norm_topk_prob},
                  {"scaling", s.routed_scaling}};
  j["hidden"] = s.n_embd;
  j["heads"] = s.n_head;
  j["heads_kv"] = s.n_head_kv;
  j["head_dim"] = s.head_dim;
  j["ffn"] = s.n_ff;
  j["vocab"] = s.n_vocab;
  j["context_train"] = s.n_ctx_train;
  j["rope"] = {{"type", rope_name(s.rope_type)}, {"theta", s.rope_theta}};
  j["rms_eps"] = s.rms_eps;
  j["tied_embeddings"] = s.tied_embeddings;
  j["params"] = {{"total", s.params_total()}, {"active", s.params_active()}};
  j["bytes_total"] = s.bytes_total();
  json types = json::object();
  for (const auto& [name, bt] : f.by_type) types[name] = {{"bytes", bt.first}, {"tensors", bt.second}};
  j["bytes_by_type"] = types;
  j["bytes_per_token"] = s.bytes_per_token();
  j["routed_bytes"] = f.routed_bytes;
  j["routed_bytes_per_token"] = f.routed_bytes_token;
  j["kv_bytes_per_token_f16"] = f.kv_token_f16;
  j["context"] = f.context;
  j["kv_bytes_at_context_f16"] = f.kv_token_f16 * uint64_t(f.context);
  if (s.kv_lora_rank > 0) j["kv_bytes_per_token_f16_expanded"] = mla_expanded_kv_f16(s);
  json tok = {{"model", tk.model}, {"tokens", tk.tokens}, {"chat_template", tk.chat_template}};
  if (tk.bos) tok["bos"] = *tk.bos;
  if (tk.eos) tok["eos"] = *tk.eos;
  if (!tk.json_path.empty()) tok["tokenizer_json"] = tk.json_path;
  j["tokenizer"] = tok;
  if (o.tensors) {
    json ts = json::array();
    for (const auto& t : s.tensors)
      ts.push_back({{"name", t.name}, {"type", std::string(dtype_name(t.type))}, {"ne", t.ne},
                    {"bytes", t.bytes}, {"role", place::role_name(t.role)}, {"layer", t.layer},
                    {"experts", t.experts}});
    j["tensors"] = ts;
  }
  return j;
}

}  // namespace hexe
