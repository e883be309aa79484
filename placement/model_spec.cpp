// ModelSpec's derived figures: parameter counts, bytes read per decoded token, KV bytes per token.
#include "placement/model_spec.h"

namespace hexe::place {

const char* role_name(TensorRole r) {
  switch (r) {
    case TensorRole::TokenEmbd: return "token_embd";
    case TensorRole::Output: return "output";
    case TensorRole::OutputNorm: return "output_norm";
    case TensorRole::AttnNorm: return "attn_norm";
    case TensorRole::AttnQ: return "attn_q";
    case TensorRole::AttnK: return "attn_k";
    case TensorRole::AttnV: return "attn_v";
    case TensorRole::AttnOut: return "attn_out";
    case TensorRole::AttnQNorm: return "attn_q_norm";
    case TensorRole::AttnKNorm: return "attn_k_norm";
    case TensorRole::AttnBias: return "attn_bias";
    case TensorRole::FfnNorm: return "ffn_norm";
    case TensorRole::Router: return "router";
    case TensorRole::RouterBias: return "router_bias";
    case TensorRole::ExpertGate: return "expert_gate";
    case TensorRole::ExpertUp: return "expert_up";
    case TensorRole::ExpertDown: return "expert_down";
    case TensorRole::SharedGate: return "shared_gate";
    case TensorRole::SharedUp: return "shared_up";
    case TensorRole::SharedDown: return "shared_down";
    case TensorRole::DenseGate: return "dense_gate";
    case TensorRole::DenseUp: return "dense_up";
    case TensorRole::DenseDown: return "dense_down";
    case TensorRole::Other: return "other";
  }
  return "other";
}

bool is_routed_expert(TensorRole r) {
  return r == TensorRole::ExpertGate || r == TensorRole::ExpertUp || r == TensorRole::ExpertDown;
}

int64_t TensorSpec::n_elements() const {
  if (ne.empty()) return 0;
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

namespace {
// Share of a routed-expert tensor one token touches: n_expert_used of n_expert experts, whether
// the tensor stacks all experts (*_exps) or holds one (ffn_gate.E: each is used with that odds).
uint64_t routed_share(uint64_t x, const ModelSpec& s) {
  if (s.n_expert <= 0) return x;
  return x * uint64_t(s.n_expert_used) / uint64_t(s.n_expert);
}
}  // namespace

uint64_t ModelSpec::params_total() const {
  uint64_t n = 0;
  for (const auto& t : tensors) n += uint64_t(t.n_elements());
  return n;
}

uint64_t ModelSpec::params_active() const {
  uint64_t n = 0;
  for (const auto& t : tensors) {
    const uint64_t e = uint64_t(t.n_elements());
    n += is_routed_expert(t.role) ? routed_share(e, *this) : e;
  }
  return n;
}

uint64_t ModelSpec::bytes_total() const {
  uint64_t n = 0;
  for (const auto& t : tensors) n += t.bytes;
  return n;
}

uint64_t ModelSpec::bytes_per_token() const {
  uint64_t n = 0;
  for (const auto& t : tensors) {
    if (is_routed_expert(t.role)) {
      n += routed_share(t.bytes, *this);
    } else if (t.role == TensorRole::TokenEmbd && !tied_embeddings && t.ne.size() >= 2) {
      n += t.bytes / uint64_t(t.n_elements() / t.ne[0]);  // one row is looked up
    } else {
      n += t.bytes;  // includes a tied embedding table: it is the output projection too
    }
  }
  return n;
}

uint64_t ModelSpec::host_bytes_per_token(int gpu_layers, const std::vector<char>& experts_on_gpu,
                                         bool head_on_gpu) const {
  uint64_t n = 0;
  for (const auto& t : tensors) {
    const bool routed = is_routed_expert(t.role);
    bool on_gpu;
    if (t.layer >= 0 && t.layer < gpu_layers)
      on_gpu = !routed || (size_t(t.layer) < experts_on_gpu.size() && experts_on_gpu[t.layer]);
    else
      on_gpu = t.layer < 0 && head_on_gpu && (t.role != TensorRole::TokenEmbd || tied_embeddings);
    if (on_gpu) continue;
    if (routed) n += routed_share(t.bytes, *this);
    else if (t.role == TensorRole::TokenEmbd && t.ne.size() >= 2) n += t.bytes / uint64_t(t.n_elements() / t.ne[0]);
    else n += t.bytes;
  }
  return n;
}

uint64_t ModelSpec::kv_bytes_per_token(int elem_bytes) const {
  // MLA (deepseek2): the cache holds the latent and the shared rope key, kv_lora_rank +
  // qk_rope_dim values per layer (576 for DeepSeek-V3), not per-head K and V.
  if (kv_lora_rank > 0) return uint64_t(n_layers) * uint64_t(kv_lora_rank + qk_rope_dim) * uint64_t(elem_bytes);
  // K and V, each n_head_kv x head_dim per layer.
  return uint64_t(n_layers) * 2 * uint64_t(n_head_kv) * uint64_t(head_dim) * uint64_t(elem_bytes);
}

}  // namespace hexe::place
