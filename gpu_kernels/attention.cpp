// GQA attention fronts: argument checks, the kernel instance for the head width, split planning.
#include "gpu_kernels/attention.h"

#include <algorithm>
#include <climits>

#include "gpu_kernels/attention_tile.h"

namespace hexe::gpu {
namespace {

using detail::TileArgs;
using detail::TileKind;

// Null when p is acceptable, else the violated constraint.
const char* check(const AttentionParams& p) {
  if (p.n_q < 0) return "n_q must be >= 0";
  if (p.n_heads <= 0 || p.n_kv_heads <= 0 || p.n_heads % p.n_kv_heads != 0)
    return "n_heads must be a positive multiple of n_kv_heads";
  if (p.head_dim <= 0 || p.head_dim > kMaxAttentionHeadDim) return "head_dim must be in 1..256";
  if (p.k.page_tokens <= 0 || p.v.page_tokens != p.k.page_tokens)
    return "k.page_tokens must be > 0 and equal v.page_tokens";
  if (p.max_keys <= 0 || p.max_keys > INT_MAX) return "max_keys must be in 1..2^31-1";
  if (p.n_q * int64_t(p.n_heads) > INT_MAX) return "n_q x n_heads exceeds one grid";
  if (p.n_q > 0 && (!p.q || !p.q_pos || !p.out || !p.k.pages || !p.v.pages))
    return "q, q_pos, out, k.pages or v.pages is null";
  return nullptr;
}

TileKind kind_for(int head_dim) {
  return head_dim <= 64 ? TileKind::kHead64 : head_dim <= 128 ? TileKind::kHead128 : TileKind::kHead256;
}

TileArgs tile_args(const AttentionParams& p, int n_splits, void* workspace) {
  TileArgs a;
  a.q_a = p.q;
  a.q_a_dim = p.head_dim;
  a.n_q = p.n_q;
  a.q_pos = p.q_pos;
  a.q_page_start = p.q_page_start;
  a.n_heads = p.n_heads;
  a.n_kv_heads = p.n_kv_heads;
  a.dk = a.dv = p.head_dim;
  a.k_pages = p.k.pages;
  a.v_pages = p.v.pages;
  a.page_tokens = p.k.page_tokens;
  a.k_row = a.v_row = int64_t(p.n_kv_heads) * p.head_dim;
  a.max_keys = p.max_keys;
  a.n_splits = n_splits;
  a.scale = p.scale;
  a.out = p.out;
  a.ws = static_cast<float*>(workspace);
  return a;
}

}  // namespace

namespace detail {
const char* check_workspace(int64_t n_q, int n_heads, int value_dim, int n_splits, const void* ws, size_t bytes) {
  if (n_splits < 1 || n_splits > kMaxSplits) return "n_splits must be in 1..1024";
  if (n_splits == 1) return nullptr;
  if (!ws || reinterpret_cast<uintptr_t>(ws) % 4 != 0) return "workspace is null or not 4-byte aligned";
  if (bytes < attention_workspace_bytes(n_q, n_heads, value_dim, n_splits))
    return "workspace smaller than attention_workspace_bytes()";
  return nullptr;
}
}  // namespace detail

size_t attention_workspace_bytes(int64_t n_q, int n_heads, int value_dim, int n_splits) {
  if (n_splits <= 1 || n_q <= 0 || n_heads <= 0) return 0;
  return size_t(n_q) * size_t(n_heads) * size_t(n_splits) * (size_t(std::max(value_dim, 0)) + 2) * sizeof(float);
}

int attention_decode_splits(int64_t max_keys, int64_t blocks, int sm_count) {
  if (max_keys <= 0 || blocks <= 0 || sm_count <= 0) return 1;
  const int64_t want = (2 * int64_t(sm_count) + blocks - 1) / blocks;
  const int64_t most = std::max<int64_t>(1, max_keys / 64);
  return int(std::clamp<int64_t>(std::min(want, most), 1, detail::kMaxSplits));
}

int64_t attention_blocks(const AttentionParams& p) {
  if (p.n_kv_heads <= 0 || p.n_heads % p.n_kv_heads != 0) return 0;
  return detail::tile_row_blocks(p.n_q, p.n_heads / p.n_kv_heads, p.q_page_start != nullptr) * p.n_kv_heads;
}

Status attention_decode(const AttentionParams& p, int n_splits, void* workspace, size_t workspace_bytes,
                        cudaStream_t stream) {
  constexpr const char* kOp = "attention_decode";
  if (const char* why = check(p)) return Status::invalid(kOp, why);
  if (const char* why = detail::check_workspace(p.n_q, p.n_heads, p.head_dim, n_splits, workspace, workspace_bytes))
    return Status::invalid(kOp, why);
  if (p.n_q == 0) return Status::success();
  return detail::launch_tiled_attention(kind_for(p.head_dim), tile_args(p, n_splits, workspace), stream, kOp);
}

Status attention_prefill(const AttentionParams& p, cudaStream_t stream) {
  constexpr const char* kOp = "attention_prefill";
  if (const char* why = check(p)) return Status::invalid(kOp, why);
  if (p.n_q == 0) return Status::success();
  return detail::launch_tiled_attention(kind_for(p.head_dim), tile_args(p, 1, nullptr), stream, kOp);
}

}  // namespace hexe::gpu
