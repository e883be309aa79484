// Causal attention over a paged F16 KV cache on the GPU: GQA (decode by flash-decoding, prefill by
// a tiled online softmax) and DeepSeek MLA in latent space (weight absorption). Device pointers,
// a params struct, an optional workspace and a stream; a Status comes back.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include "gpu_kernels/status.h"

namespace hexe::gpu {

// One layer's K or V cache: cpu::KvPageView's layout with F16 values. Token t of a sequence lives
// in page t / page_tokens at row t % page_tokens; a row holds n_kv_heads x head_dim halves.
// `pages` is a DEVICE array of device pointers (page i's first row), like KvCache::k_pages().
struct KvPagesF16 {
  const __half* const* pages = nullptr;
  int page_tokens = 0;
};

// Query i of n_q (all heads) attends to keys 0..q_pos[i] of its sequence: decode is n_q = 1 per
// sequence at q_pos = context - 1; a prefill chunk is n_q new tokens whose rows are already in the
// cache, at consecutive positions after the cached prefix.
struct AttentionParams {
  const float* q = nullptr;             // [n_q][n_heads][head_dim]
  int64_t n_q = 0;
  const int32_t* q_pos = nullptr;       // device [n_q]
  // Optional device [n_q]: query i's page table starts at pages[q_page_start[i]], so one launch
  // serves several sequences (their tables concatenated, the same offsets into k and v). Null:
  // every query reads the one table from pages[0].
  const int32_t* q_page_start = nullptr;
  int n_heads = 0;                      // query heads, a multiple of n_kv_heads (GQA)
  int n_kv_heads = 0;
  int head_dim = 0;                     // of K and V alike: 1..kMaxAttentionHeadDim
  KvPagesF16 k, v;
  // Upper bound on q_pos[i] + 1 over all queries (host side: the positions live on the device).
  // It sizes the split grid, so a CUDA graph can be captured once with the capacity here; keys
  // past it are never read.
  int64_t max_keys = 0;
  float scale = 1.f;                    // usually 1/sqrt(head_dim)
  float* out = nullptr;                 // [n_q][n_heads][head_dim]
};
inline constexpr int kMaxAttentionHeadDim = 256;

// Flash-decoding: the keys are cut into n_splits ranges, one thread block per (heads of a query,
// kv head, range) writes a partial max/sum/output to `workspace`, and a second kernel combines
// them. n_splits = 1 writes `out` directly and needs no workspace. Any n_q works; the split pays
// off when n_q x n_kv_heads alone would leave the GPU's SMs idle (decode).
Status attention_decode(const AttentionParams& p, int n_splits, void* workspace, size_t workspace_bytes,
                        cudaStream_t stream);
// Tiled attention for a prefill chunk (no split): 16 (query, head) rows of one kv head per block
// stream the keys in tiles with an online softmax.
Status attention_prefill(const AttentionParams& p, cudaStream_t stream);

// Workspace attention_decode / mla_attention need for n_splits ranges (0 for n_splits = 1):
// per (query, head, range) the unnormalised output of `value_dim` floats plus its max and sum.
size_t attention_workspace_bytes(int64_t n_q, int n_heads, int value_dim, int n_splits);

// A split count that gives about two blocks per SM with at least 64 keys per range: `blocks` is
// the number of blocks one range needs (the launch's grid without the split), sm_count the GPU's.
int attention_decode_splits(int64_t max_keys, int64_t blocks, int sm_count);
int64_t attention_blocks(const AttentionParams& p);  // `blocks` of attention_decode

// DeepSeek MLA over the latent cache, as runtime/engine/mla_block.cpp computes it: a token's cache
// row is [c (kv_lora_rank) | k_rope (rope_dim)] in F16 (normed latent, roped shared key), one row
// for all heads. For each query and head, s_t = scale * (q_lat . c_t + q_rope . k_rope_t),
// p = softmax_t(s), and o_lat = sum_t p_t c_t; the caller turns o_lat into values with v_b.
struct MlaAttentionParams {
  const float* q_lat = nullptr;         // [n_q][n_heads][kv_lora_rank]: k_b absorbed into q_nope
  const float* q_rope = nullptr;        // [n_q][n_heads][rope_dim]: the roped q_pe
  int64_t n_q = 0;
  const int32_t* q_pos = nullptr;       // device [n_q]; query i attends to keys 0..q_pos[i]
  const int32_t* q_page_start = nullptr;  // as in AttentionParams
  int n_heads = 0;
  int kv_lora_rank = 0;                 // 1..kMaxMlaLoraRank
  int rope_dim = 0;                     // kv_lora_rank + rope_dim <= kMaxMlaRowDim
  KvPagesF16 latent;                    // rows of kv_lora_rank + rope_dim halves
  int64_t max_keys = 0;                 // as in AttentionParams
  // mla_block.cpp's scale: attn_scale_mul / sqrt(qk_nope_dim + qk_rope_dim), where
  // attn_scale_mul carries DeepSeek's YaRN mscale^2 (placement/model_spec.h).
  float scale = 1.f;
  float* o_lat = nullptr;               // [n_q][n_heads][kv_lora_rank]
};
inline constexpr int kMaxMlaLoraRank = 512, kMaxMlaRowDim = 576;

// Flash-decoding over the latent cache with all heads of a query sharing each row (MQA with
// 576-element keys whose first kv_lora_rank elements are also the values); n_splits and the
// workspace as attention_decode (value_dim = kv_lora_rank). Works for prefill chunks too.
Status mla_attention(const MlaAttentionParams& p, int n_splits, void* workspace, size_t workspace_bytes,
                     cudaStream_t stream);
int64_t mla_attention_blocks(const MlaAttentionParams& p);  // `blocks` of mla_attention

}  // namespace hexe::gpu
