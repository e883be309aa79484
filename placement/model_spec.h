// Architecture-neutral description of a model: hyper-parameters, routing and every tensor's
// shape/type/bytes/role. No weights: the planner reasons on this; runtime fills it from files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cpu_kernels/format.h"

namespace hexe::place {

enum class TensorRole {
  TokenEmbd, Output, OutputNorm,
  AttnNorm, AttnQ, AttnK, AttnV, AttnOut, AttnQNorm, AttnKNorm, AttnBias,
  FfnNorm, Router, RouterBias,
  ExpertGate, ExpertUp, ExpertDown,      // routed experts (stacked [n_expert, ...] or one expert)
  SharedGate, SharedUp, SharedDown,      // shared experts (always active)
  DenseGate, DenseUp, DenseDown,         // dense FFN layers
  Other,
};
const char* role_name(TensorRole r);
bool is_routed_expert(TensorRole r);

struct TensorSpec {
  std::string name;
  DType type = DType::F32;
  std::vector<int64_t> ne;   // GGUF order, ne[0] contiguous
  uint64_t bytes = 0;
  TensorRole role = TensorRole::Other;
  int layer = -1;            // -1: not in a block
  int experts = 1;           // experts stacked in this tensor (n_expert for *_exps, 1 otherwise)
  int64_t n_elements() const;
};

enum class RopeType { Neox, Interleaved };   // NEOX rotates halves; interleaved rotates pairs
enum class RouterFn { Softmax, Sigmoid };
// Softmax over all experts then top-k (qwen3moe, deepseek2), or top-k logits then softmax over
// the k chosen (Mixtral). Both give the same experts; the weights differ unless renormalised.
enum class GatingOrder { SoftmaxThenTopK, TopKThenSoftmax };

struct ModelSpec {
  std::string arch;          // GGUF general.architecture: "qwen3moe", "llama", ...
  std::string name;          // general.name or the directory name
  std::string source;        // the file or directory it came from
  int n_layers = 0;
  int n_embd = 0;            // hidden size
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;          // key/value head size
  int n_ff = 0;              // dense FFN size (0 when every layer is MoE)
  int n_ff_exp = 0;          // routed expert FFN size
  int n_expert = 0;          // routed experts per layer (0: dense model)
  int n_expert_used = 0;     // top-k
  int n_expert_shared = 0;
  int n_leading_dense = 0;   // first layers with a dense FFN
  int n_vocab = 0;
  int n_ctx_train = 0;
  float rope_theta = 10000.f;
  RopeType rope_type = RopeType::Neox;
  float rms_eps = 1e-6f;
  RouterFn router_fn = RouterFn::Softmax;
  GatingOrder gating = GatingOrder::SoftmaxThenTopK;
  bool norm_topk_prob = false;  // renormalise the chosen experts' weights to sum to 1
  float routed_scaling = 1.f;
  bool tied_embeddings = false;

  // Multi-head latent attention (deepseek2). kv_lora_rank > 0 marks MLA: the KV cache holds
  // kv_lora_rank + qk_rope_dim values per token per layer; head_dim is qk_nope_dim + qk_rope_dim.
  int q_lora_rank = 0;       // 0: q = Wq x directly (V2-Lite)
  int kv_lora_rank = 0;
  int qk_nope_dim = 0;
  int qk_rope_dim = 0;
  int v_head_dim = 0;
  // Group-limited routing (DeepSeek-V3): experts in n_group groups, tokens pick topk_group groups
  // by the sum of each group's two best biased scores, then top-k inside them.
  int n_group = 1;
  int topk_group = 1;
  int n_ff_shexp = 0;        // shared-expert FFN size (all shared experts fused), 0: none
  // YaRN RoPE (rope_scaling_factor > 1): inv_freq blended by the ramp between beta_fast/slow
  // over the original context; cos/sin times rope_attn_factor; attention scores times
  // attn_scale_mul (DeepSeek's mscale^2 = (1 + 0.1 mscale_all_dim ln factor)^2).
  float rope_scaling_factor = 1.f;
  int rope_orig_ctx = 0;
  float yarn_beta_fast = 32.f;
  float yarn_beta_slow = 1.f;
  float rope_attn_factor = 1.f;
  float attn_scale_mul = 1.f;
  int rope_dim = 0;          // rotated dims per head (0: all of head_dim)
  bool attn_qkv_bias = false;
  int n_nextn = 0;           // trailing multi-token-prediction blocks (bound, not run)

  std::vector<TensorSpec> tensors;

  // Derived figures; "active" counts n_expert_used routed experts (+ shared) per token.
  uint64_t params_total() const;
  uint64_t params_active() const;
  uint64_t bytes_total() const;
  // Weight bytes one decoded token reads: every non-routed tensor except the embedding table
  // (one row; the whole table when tied_embeddings, as it is the output projection too), plus
  // n_expert_used/n_expert of each routed-expert tensor.
  uint64_t bytes_per_token() const;
  // The part of bytes_per_token() read from host memory when blocks [0, gpu_layers) live on a
  // GPU, except the routed experts of block l when experts_on_gpu[l] is 0 (experts-cpu), and the
  // output norm and head live there too when head_on_gpu. The embedding row is always read here.
  uint64_t host_bytes_per_token(int gpu_layers, const std::vector<char>& experts_on_gpu, bool head_on_gpu) const;
  // KV-cache bytes per token over all layers for the given element size (F32 = 4, F16 = 2).
  uint64_t kv_bytes_per_token(int elem_bytes) const;
};

}  // namespace hexe::place
