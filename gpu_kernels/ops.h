// Row and element-wise ops of the forward pass on the GPU: RMSNorm, RoPE (alone, or fused with the
// q/k norms and the K/V cache store), SwiGLU and MoE routing (softmax + top-k). Device pointers, a
// params struct and a stream; a Status comes back.
#pragma once

#include <cstdint>

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include "gpu_kernels/status.h"

namespace hexe::gpu {

// dst[r] = src[r] / rms(src[r]) * weight for `rows` contiguous rows of n floats; rms =
// sqrt(mean(x^2) + eps). weight may be null (no scale); dst may alias src.
struct RmsNormParams {
  const float* src = nullptr;
  const float* weight = nullptr;  // n floats or null
  float* dst = nullptr;
  int64_t rows = 0;
  int64_t n = 0;
  float eps = 1e-6f;
  float* copy = nullptr;  // optional second destination with the same rows (mapped host memory:
                          // the hand-off's h, written without a copy of its own)
};
Status rms_norm(const RmsNormParams& p, cudaStream_t stream);

// Same modes as cpu::RopeMode: Neox rotates pairs (i, i + rot_dim/2), Interleaved (2i, 2i+1);
// pair i turns by float(pos) * (1 / theta^(2i/rot_dim)), rounded as cpu::rope rounds it.
enum class RopeMode { Neox, Interleaved };
struct RopeParams {
  float* x = nullptr;                 // [n_tokens][n_heads][head_dim] at token_stride; in place
  const int32_t* positions = nullptr; // [n_tokens] device array
  int64_t n_tokens = 0;
  int64_t token_stride = 0;           // floats between tokens (>= n_heads * head_dim)
  int n_heads = 0;
  int head_dim = 0;
  int rot_dim = 0;                    // leading rotated elements of each head; even, <= head_dim
  float theta = 10000.f;
  RopeMode mode = RopeMode::Neox;
};
Status rope(const RopeParams& p, cudaStream_t stream);

// One launch for what follows the q/k/v projections of a GQA layer: per head of each token, the
// optional RMSNorm of q and k heads (q_norm/k_norm), RoPE of both, and the K/V cache store. q and k
// are rewritten in place; token t's K row (roped k) and V row (v unchanged) go as halves into page
// k_pages/v_pages[page_start[t] + positions[t] / page_tokens], row positions[t] % page_tokens, rows
// n_kv_heads * head_dim apart. Bit for bit what rms_norm, rope and store_kv_rows give in sequence.
struct QkRopeStoreParams {
  float* q = nullptr;                  // [n_tokens][n_heads][head_dim] at q_stride; in place
  float* k = nullptr;                  // [n_tokens][n_kv_heads][head_dim] at k_stride; in place
  const float* v = nullptr;            // [n_tokens][n_kv_heads][head_dim] at v_stride
  int64_t n_tokens = 0;
  int64_t q_stride = 0, k_stride = 0, v_stride = 0;  // floats between tokens
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;                    // 1..kMaxQkRopeHeadDim
  const float* q_norm = nullptr;       // head_dim floats, or null (no norm); set with k_norm
  const float* k_norm = nullptr;
  float eps = 1e-6f;
  const int32_t* positions = nullptr;  // [n_tokens] device array
  int rot_dim = 0;                     // as RopeParams
  float theta = 10000.f;
  RopeMode mode = RopeMode::Neox;
  __half* const* k_pages = nullptr;    // device page tables, as store_kv_rows reads them
  __half* const* v_pages = nullptr;
  const int32_t* page_start = nullptr; // [n_tokens] device array, or null: all 0
  int page_tokens = 0;
};
inline constexpr int kMaxQkRopeHeadDim = 256;
Status qk_rope_store(const QkRopeStoreParams& p, cudaStream_t stream);

// RoPE from a frequency table (YaRN-blended, as runtime/engine/mla_block.cpp's rope_pairs): pair i
// of each head, (x[2i], x[2i+1]) for i < n_pairs, turns by float(pos) * inv_freq[i], with cos and
// sin scaled by attn_factor. `x` points at the first rotated element of token 0's head 0.
struct RopeTableParams {
  float* x = nullptr;
  const int32_t* positions = nullptr;  // [n_tokens] device array
  int64_t n_tokens = 0;
  int64_t token_stride = 0;            // floats between tokens
  int n_heads = 1;
  int64_t head_stride = 0;             // floats between heads
  const float* inv_freq = nullptr;     // [n_pairs] device array
  int n_pairs = 0;
  float attn_factor = 1.f;
};
Status rope_table(const RopeTableParams& p, cudaStream_t stream);

// dst[i] = silu(gate[i]) * up[i] for i < n; dst may alias gate or up.
Status swiglu(const float* gate, const float* up, float* dst, int64_t n, cudaStream_t stream);

// Which of the routers' orders: softmax over all experts then the top k (Qwen3-MoE, DeepSeek-V2;
// optionally renormalised over the k), or the top k logits then softmax over those k (Mixtral).
enum class RoutingMode { SoftmaxTopK, TopKSoftmax };
struct RoutingParams {
  const float* logits = nullptr;  // [n_tokens][n_experts]
  int64_t n_tokens = 0;
  int n_experts = 0;              // 1..kMaxRoutedExperts
  int k = 0;                      // 1..n_experts
  RoutingMode mode = RoutingMode::SoftmaxTopK;
  bool renormalize = false;       // SoftmaxTopK: divide the k weights by their sum
  float scale = 1.f;              // every final weight is multiplied by it
  int32_t* ids = nullptr;         // [n_tokens][k] out: experts by descending logit, ties lower id first
  float* weights = nullptr;       // [n_tokens][k] out
};
inline constexpr int kMaxRoutedExperts = 8192;
Status route_topk(const RoutingParams& p, cudaStream_t stream);

}  // namespace hexe::gpu
