// A loaded model: the mapped file, its spec, the tokenizer, and weights bound per layer.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cpu_kernels/format.h"
#include "cpu_kernels/moe.h"
#include "cpu_kernels/repack.h"
#include "memory/expert_homes.h"
#include "placement/model_spec.h"
#include "runtime/model/model_file.h"

namespace hexe {

class Tokenizer;
class Architecture;

// A weight matrix of n_out rows of n_in elements (y = W x), mapped in place.
struct Linear {
  const void* data = nullptr;
  DType type = DType::F32;
  int64_t n_in = 0;
  int64_t n_out = 0;
  // The CPU decode copy (Model::repack_for_cpu), read instead of `data` by the CPU kernels when
  // set, in `packed_layout`: Rows16 (cpu_kernels/repack.h), or Gguf for a byte-identical copy in
  // huge-page memory (F32 matrices, the routers; below AVX-512 VNNI every matrix without a Rows16
  // tile at the tier). `data` stays the
  // mapped GGUF view.
  const void* packed = nullptr;
  cpu::WeightLayout packed_layout = cpu::WeightLayout::Rows16;
  explicit operator bool() const { return data != nullptr; }
};

struct LayerWeights {
  std::vector<float> attn_norm, ffn_norm, q_norm, k_norm;  // F32 copies of the 1-D weights
  Linear wq, wk, wv, wo;
  // MoE FFN
  Linear router;                              // n_expert rows of n_embd
  std::vector<cpu::ExpertWeights> experts;    // per routed expert
  std::vector<cpu::ExpertWeights> experts_packed;  // empty, or their Rows16 copies (null: none)
  // Empty, or what the CPU reads in place of `experts` (which the GPU paths upload): the same
  // blocks, copied into huge-page memory where no Rows16 tile serves them (repack_for_cpu).
  std::vector<cpu::ExpertWeights> experts_cpu;
  DType gate_type = DType::F32, up_type = DType::F32, down_type = DType::F32;
  int64_t n_ff_exp = 0;
  // Dense FFN (layers without experts)
  Linear ffn_gate, ffn_up, ffn_down;
  bool is_moe() const { return !experts.empty(); }
  // Appended for deepseek2/glm4moe (helper I).
  std::vector<float> router_bias;             // exp_probs_b: added to scores to choose experts only
  Linear shexp_gate, shexp_up, shexp_down;    // shared experts (fused), run on every token
  std::vector<float> bq, bk, bv;              // attention q/k/v biases (GLM-4.5)
  // Multi-head latent attention: q = q_b(norm(q_a x)) or wq x; kv_a -> latent + rope part.
  Linear wq_a, wq_b, wkv_a;
  std::vector<float> q_a_norm, kv_a_norm;
  // Per head h: k_b[h] maps q_nope (qk_nope) to latent space (kv_lora rows), v_b[h] maps the
  // latent (kv_lora) to the value head (v_head_dim rows). Views into the file (attn_k_b/attn_v_b)
  // or into mla_owned (F32, split out of attn_kv_b).
  std::vector<Linear> k_b, v_b;
  std::vector<float> mla_owned;
};

class Model {
 public:
  // Opens and validates the file, builds the spec, binds the weights for its architecture and
  // loads the tokenizer. Throws hexe::Error naming the file and what is wrong.
  static std::unique_ptr<Model> load(const std::string& path, bool progress = true);
  ~Model();

  const ModelFile& file() const { return *file_; }
  const place::ModelSpec& spec() const { return spec_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const Architecture& arch() const { return *arch_; }

  Linear token_embd, output;  // output == token_embd when embeddings are tied
  std::vector<float> output_norm;
  std::vector<LayerWeights> layers;

  // Binding helpers for architecture files; errors name the file and tensor.
  Linear linear(const std::string& name, int64_t n_in, int64_t n_out) const;
  std::vector<float> vector_f32(const std::string& name, int64_t n) const;
  // The tensor, which must have exactly shape `ne` (GGUF order) and a computable type.
  const TensorRef& tensor(const std::string& name, const std::vector<int64_t>& ne) const;
  bool has(const std::string& name) const { return file_->find(name) != nullptr; }
  // Routed experts of a layer, from stacked ffn_*_exps tensors or per-expert ffn_*.E tensors.
  void bind_experts(int layer, LayerWeights& lw) const;

  // Copies every weight matrix whose format has a faster CPU layout on this machine (Rows16 on
  // AVX-512 VNNI: q8_0, q4_0, q4_K, q5_K, q6_K; on AVX2: q4_K, q8_0) into one huge-page-backed buffer and
  // points the bindings at the copies; F32 matrices, and below AVX-512 VNNI every other matrix, are copied as they are (huge
  // pages, fewer TLB misses). The mapped views stay (GPU uploads, embedding rows). Returns the bytes copied; 0
  // when no tier gains from it. Not thread-safe with running engines: call before evaluating.
  // With `homes` (NUMA), each routed expert's copy is placed on the node of its home.
  // With `release_experts_of` (for layers whose routed experts nothing but the CPU reads from the
  // mapping: no GPU upload), each copied expert's mapped blocks are handed back to the kernel as
  // soon as they are copied (mem::page_out), so that the copy takes their place in host memory,
  // even while it is being made; a page read again faults back in from the file, so results never
  // change, only speed. released_expert_bytes() then says how many bytes of whole pages went.
  uint64_t repack_for_cpu(cpu::ThreadPool& pool, const mem::ExpertHomes* homes = nullptr,
                          const std::function<bool(int layer)>& release_experts_of = {});
  uint64_t released_expert_bytes() const { return released_expert_bytes_; }
  // What repack_for_cpu would copy (same rule), without copying: the copy's bytes, and the bytes
  // of the routed experts' blocks it copies from (what it can hand back).
  struct RepackBytes {
    uint64_t copy = 0, expert_sources = 0;
  };
  RepackBytes repackable_bytes() const;

 private:
  Model() = default;
  std::unique_ptr<ModelFile> file_;
  std::vector<std::shared_ptr<void>> packed_store_;  // the Rows16 copies (mem::NodeBuffers)
  uint64_t released_expert_bytes_ = 0;
  place::ModelSpec spec_;
  std::unique_ptr<Tokenizer> tokenizer_;
  const Architecture* arch_ = nullptr;
};

}  // namespace hexe
