// Causal GQA attention over a paged KV cache.
#pragma once

#include <cstdint>

#include "cpu_kernels/isa.h"
#include "cpu_kernels/thread_pool.h"

namespace hexe::cpu {

// A view of one sequence's K or V cache for one layer: token t lives in page t / page_tokens at
// row t % page_tokens; a row holds n_kv_heads x head_dim floats, row_floats apart (0: packed; MLA
// reads its values as the first kv_lora_rank floats of each 576-float latent row). Pages are
// owned elsewhere.
struct KvPageView {
  float* const* pages = nullptr;
  int page_tokens = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int row_floats = 0;
  float* row(int64_t t) const {
    const int64_t stride = row_floats > 0 ? row_floats : int64_t(n_kv_heads) * head_dim;
    return pages[t / page_tokens] + (t % page_tokens) * stride;
  }
};

struct AttentionParams {
  const float* q = nullptr;  // [n_q][n_heads][head_dim]
  int64_t n_q = 0;
  const int64_t* q_pos = nullptr;  // position of each query; it attends to keys 0..q_pos[i]
  int n_heads = 0;                 // query heads; a multiple of k.n_kv_heads (GQA)
  KvPageView k, v;                 // keys/values for positions 0..max(q_pos)
  float scale = 1.f;               // usually 1/sqrt(head_dim)
  float* out = nullptr;            // [n_q][n_heads][v.head_dim]
};

// Kernels: avx512 (x86/avx512/attention_avx512.cpp: one KV head x a block of queries x that
// head's query group per task, rows in vector lanes, online softmax over 32-key blocks), avx2
// (x86/avx2/attention_avx2.cpp: one query x a KV head's query heads per task, online softmax over
// 64-key blocks) and the portable one below them (one (query, head) per task; scalar tier).
void attention(const AttentionParams& p, ThreadPool& pool);
// attention() is attention_at(p, active_isa(), pool); tests and benchmarks compare the tiers.
void attention_at(const AttentionParams& p, Isa max_tier, ThreadPool& pool);
void attention_ref(const AttentionParams& p);  // scalar reference for tests

// exp over n floats with the vectorised exp the avx512 or avx2 kernel uses (std::exp on the
// scalar tier), 0 below -87.34 on all; tests hold it to std::exp.
void attention_exp(const float* x, float* y, int64_t n);

}  // namespace hexe::cpu
