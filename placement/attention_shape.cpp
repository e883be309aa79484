// Attention geometry from a model spec, KV-cache bytes and attention FLOPs.
#include "placement/attention_shape.h"

#include <algorithm>

namespace hexe::place {

int64_t AttentionShape::kv_values_per_token_layer() const {
  if (mla) return int64_t(kv_lora_rank) + qk_rope_dim;
  return int64_t(n_head_kv) * (head_dim_k + head_dim_v);
}

uint64_t AttentionShape::kv_bytes(int64_t context, int n_layers, int elem_bytes) const {
  const int n_slide = std::min(n_sliding_layers, n_layers);
  const int64_t slide_ctx = sliding_window > 0 ? std::min<int64_t>(context, sliding_window) : context;
  const uint64_t per = uint64_t(kv_values_per_token_layer()) * uint64_t(elem_bytes);
  return per * (uint64_t(n_layers - n_slide) * uint64_t(context) + uint64_t(n_slide) * uint64_t(slide_ctx));
}

double AttentionShape::flops_per_query(int64_t ctx) const {
  const double c = double(ctx);
  if (mla) return 2.0 * n_head * c * (2.0 * kv_lora_rank + qk_rope_dim);
  return 2.0 * n_head * c * (double(head_dim_k) + head_dim_v);
}

namespace {
const TensorSpec* find_tensor(const ModelSpec& s, const std::string& name) {
  for (const auto& t : s.tensors)
    if (t.name == name) return &t;
  return nullptr;
}
}  // namespace

AttentionShape attention_shape(const ModelSpec& spec) {
  AttentionShape a;
  a.n_head = spec.n_head;
  a.n_head_kv = spec.n_head_kv > 0 ? spec.n_head_kv : spec.n_head;
  a.head_dim_k = a.head_dim_v = spec.head_dim;
  if (const auto* mqa = find_tensor(spec, "blk.0.attn_kv_a_mqa.weight"); mqa && mqa->ne.size() >= 2) {
    a.mla = true;
    const auto* norm = find_tensor(spec, "blk.0.attn_kv_a_norm.weight");
    a.kv_lora_rank = norm ? int(norm->ne[0]) : 512;
    a.qk_rope_dim = int(mqa->ne[1]) - a.kv_lora_rank;
    // attn_kv_b: [kv_lora_rank, n_head * (qk_nope + v_head)]; attn_q_b / attn_q: [.., n_head * (qk_nope + rope)]
    const auto* q = find_tensor(spec, "blk.0.attn_q_b.weight");
    if (!q) q = find_tensor(spec, "blk.0.attn_q.weight");
    if (q && a.n_head > 0) a.head_dim_k = int(q->ne[1] / a.n_head);
    const auto* o = find_tensor(spec, "blk.0.attn_output.weight");
    if (o && a.n_head > 0) a.head_dim_v = int(o->ne[0] / a.n_head);
    return a;
  }
  if (const auto* k = find_tensor(spec, "blk.0.attn_k.weight"); k && k->ne.size() >= 2 && a.n_head_kv > 0) {
    a.head_dim_k = int(k->ne[1] / a.n_head_kv);
  }
  if (const auto* v = find_tensor(spec, "blk.0.attn_v.weight"); v && v->ne.size() >= 2 && a.n_head_kv > 0) {
    a.head_dim_v = int(v->ne[1] / a.n_head_kv);
  }
  return a;
}

}  // namespace hexe::place
