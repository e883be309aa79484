// Internal: the one tiled attention kernel behind attention_decode, attention_prefill and
// mla_attention, described by plain arguments the fronts (attention.cpp, mla_attention.cpp) fill.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include "gpu_kernels/status.h"

namespace hexe::gpu::detail {

// Rows of a block: 16 (query, head) pairs of one kv head, 8 threads each; keys per tile: 16.
inline constexpr int kTileRows = 16, kTileKeys = 16, kTileThreads = 128;
inline constexpr int kMaxSplits = 1024;

// Instantiations, by the largest key / value width they hold in registers and shared memory.
enum class TileKind { kHead64, kHead128, kHead256, kMla576 };

struct TileArgs {
  // The query row of (query i, head h) is q_a[i][h][0..q_a_dim) followed by
  // q_b[i][h][0..dk - q_a_dim); GQA passes q_a only (q_a_dim = dk).
  const float* q_a = nullptr;
  const float* q_b = nullptr;
  int q_a_dim = 0;
  int64_t n_q = 0;
  const int32_t* q_pos = nullptr;
  const int32_t* q_page_start = nullptr;  // non-null: one query per block (per-query page tables)
  int n_heads = 0, n_kv_heads = 0;
  int dk = 0, dv = 0;                     // key and value widths of one head
  const __half* const* k_pages = nullptr;
  const __half* const* v_pages = nullptr;  // unused by kMla576: values are the keys' first dv
  int page_tokens = 0;
  int64_t k_row = 0, v_row = 0;           // halves between tokens in a page
  int64_t max_keys = 0;
  int n_splits = 1;
  float scale = 1.f;
  float* out = nullptr;                   // [n_q][n_heads][dv]
  float* ws = nullptr;                    // n_splits > 1: attention_workspace_bytes() floats
};

// Blocks along the row axis of the grid (the grid is rows x n_kv_heads x n_splits).
int64_t tile_row_blocks(int64_t n_q, int group, bool per_query);

// Null when a launch with n_splits ranges may use `ws` (bytes long), else the reason.
const char* check_workspace(int64_t n_q, int n_heads, int value_dim, int n_splits, const void* ws, size_t bytes);

// Checks the launch limits, runs the kernel and, for n_splits > 1, the combine kernel; `op` names
// the entry point in the Status.
Status launch_tiled_attention(TileKind kind, const TileArgs& a, cudaStream_t stream, const char* op);

}  // namespace hexe::gpu::detail
