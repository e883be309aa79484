// MLA latent attention front: the latent cache as one kv head whose keys are [c | k_rope] and
// whose values are c, run by the shared tiled kernel (attention_tile.cu).
#include <climits>

#include "gpu_kernels/attention.h"
#include "gpu_kernels/attention_tile.h"

namespace hexe::gpu {
namespace {

const char* check(const MlaAttentionParams& p) {
  if (p.n_q < 0) return "n_q must be >= 0";
  if (p.n_heads <= 0) return "n_heads must be > 0";
  if (p.kv_lora_rank <= 0 || p.kv_lora_rank > kMaxMlaLoraRank) return "kv_lora_rank must be in 1..512";
  if (p.rope_dim < 0 || p.kv_lora_rank + p.rope_dim > kMaxMlaRowDim)
    return "rope_dim must be >= 0 with kv_lora_rank + rope_dim <= 576";
  if (p.latent.page_tokens <= 0) return "latent.page_tokens must be > 0";
  if (p.max_keys <= 0 || p.max_keys > INT_MAX) return "max_keys must be in 1..2^31-1";
  if (p.n_q * int64_t(p.n_heads) > INT_MAX) return "n_q x n_heads exceeds one grid";
  if (p.n_q > 0 && (!p.q_lat || (p.rope_dim > 0 && !p.q_rope) || !p.q_pos || !p.o_lat || !p.latent.pages))
    return "q_lat, q_rope, q_pos, o_lat or latent.pages is null";
  return nullptr;
}

}  // namespace

int64_t mla_attention_blocks(const MlaAttentionParams& p) {
  return detail::tile_row_blocks(p.n_q, p.n_heads, p.q_page_start != nullptr);
}

Status mla_attention(const MlaAttentionParams& p, int n_splits, void* workspace, size_t workspace_bytes,
                     cudaStream_t stream) {
  constexpr const char* kOp = "mla_attention";
  if (const char* why = check(p)) return Status::invalid(kOp, why);
  if (const char* why = detail::check_workspace(p.n_q, p.n_heads, p.kv_lora_rank, n_splits, workspace, workspace_bytes))
    return Status::invalid(kOp, why);
  if (p.n_q == 0) return Status::success();
  detail::TileArgs a;
  a.q_a = p.q_lat;
  a.q_b = p.q_rope;
  a.q_a_dim = p.kv_lora_rank;
  a.n_q = p.n_q;
  a.q_pos = p.q_pos;
  a.q_page_start = p.q_page_start;
  a.n_heads = p.n_heads;
  a.n_kv_heads = 1;  // every head reads the same latent row
  a.dk = p.kv_lora_rank + p.rope_dim;
  a.dv = p.kv_lora_rank;
  a.k_pages = p.latent.pages;
  a.page_tokens = p.latent.page_tokens;
  a.k_row = a.dk;
  a.max_keys = p.max_keys;
  a.n_splits = n_splits;
  a.scale = p.scale;
  a.out = p.o_lat;
  a.ws = static_cast<float*>(workspace);
  return detail::launch_tiled_attention(detail::TileKind::kMla576, a, stream, kOp);
}

}  // namespace hexe::gpu
