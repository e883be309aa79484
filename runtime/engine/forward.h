// What one layer's forward pass sees: the batch, the workspace, the KV cache and the devices.
#pragma once

#include <cstdint>
#include <vector>

#include "cpu_kernels/matmul.h"
#include "memory/expert_homes.h"
#include "memory/kv_cache.h"
#include "runtime/engine/device.h"
#include "runtime/engine/model.h"

namespace hexe {

// A ubatch of T tokens. Tokens of one sequence are contiguous and in position order.
struct BatchView {
  int64_t n = 0;
  const int32_t* tokens = nullptr;
  const int64_t* pos = nullptr;   // position of each token in its sequence
  const int* seq = nullptr;       // KV-cache sequence id of each token
};

// Calls fn(t0, t1) for each run [t0, t1) of consecutive rows of one sequence: the attention
// kernels read one sequence's cache per call.
template <class F>
void for_each_sequence_run(const BatchView& b, F&& fn) {
  for (int64_t t0 = 0; t0 < b.n;) {
    int64_t t1 = t0 + 1;
    while (t1 < b.n && b.seq[t1] == b.seq[t0]) ++t1;
    fn(t0, t1);
    t0 = t1;
  }
}

// Activation buffers, sized for the largest ubatch; reused across layers and calls.
struct Workspace {
  std::vector<float> x;        // [T][n_embd] residual stream
  std::vector<float> h;        // [T][n_embd] normed input of the current block
  std::vector<float> q, k, v;  // [T][n_head*head_dim], [T][n_kv*head_dim] x2
  std::vector<float> attn;     // [T][n_head*head_dim]
  std::vector<float> ffn_out;  // [T][n_embd]
  std::vector<float> router;   // [T][n_expert]
  std::vector<int32_t> expert_ids;    // [T][top_k]
  std::vector<float> expert_weights;  // [T][top_k]
  std::vector<float> gate, up;        // dense FFN [T][n_ff]
  std::vector<float> shared_out;      // [T][n_embd] shared experts' output
  // MLA: q [T][n_head][qk_nope+qk_rope], latent [T][kv_lora+qk_rope],
  // q_lat/o_lat [T][n_head][kv_lora] (attention in latent space), tmp rows for per-head matmuls.
  std::vector<float> mla_qa, mla_lat, mla_qlat, mla_olat;
  std::vector<cpu::MatmulParams> mla_heads;  // the per-head k_b / v_b matmuls of a layer
  void reserve(const place::ModelSpec& s, int64_t t);
};

// Counters the engine keeps per call, for timelines and routing statistics.
struct RoutingCounts {
  std::vector<std::vector<uint64_t>> per_layer;  // [layer][expert] tokens routed
};

struct AttentionOptions {
  bool qk_norm = false;  // per-head RMSNorm of q and k (Qwen3)
  bool qkv_bias = false; // add the layer's bq/bk/bv after the projections (GLM-4.5)
  int rot_dim = 0;       // leading dims of each head that RoPE rotates (0: all; GLM-4.5: half)
};

// What one layer computes, as an architecture describes it: which attention (GQA with its
// options, MLA, or none for layers that only serve speculative decoding) and which FFN. The CPU
// blocks and the GPU executor both run layers from this description.
struct LayerRecipe {
  enum class Attention { Gqa, Mla, None };
  Attention attention = Attention::Gqa;
  AttentionOptions gqa;
  bool moe = false;  // routed experts (+ shared ones where bound); else the dense FFN
};

struct LayerContext {
  const Model& model;
  int layer = 0;
  BatchView batch;
  Workspace& ws;
  mem::KvCache& kv;
  Device& attn_device;    // attention, router, shared experts
  Device& expert_device;  // routed experts
  bool split = false;     // expert_device differs from attn_device
  RoutingCounts* routing = nullptr;  // when set, expert choices are counted
  bool reference_kernels = false;    // scalar reference kernels with float activations
  const mem::ExpertHomes* homes = nullptr;  // NUMA: threads compute their node's experts
};

}  // namespace hexe
