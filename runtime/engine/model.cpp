// Model loading: open + validate the file, build the spec, bind weights, load the tokenizer.
#include "runtime/engine/model.h"

#include <string>

#include "cpu_kernels/quant.h"
#include "memory/error.h"
#include "runtime/arch/architecture.h"
#include "runtime/model/fp8_blocks.h"
#include "runtime/model/mapped_model.h"
#include "runtime/model/spec_builder.h"
#include "runtime/tokenizer/tokenizer.h"

namespace hexe {

namespace {

std::string shape_str(const std::vector<int64_t>& ne) {
  std::string s = "[";
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

void check_computable(const TensorRef& t) {
  if (!info(t.type).computable)
    throw Error(t.file + ": tensor '" + t.name + "' has type " + std::string(dtype_name(t.type)) +
                ", which hexe cannot compute with yet (supported: f32, f16, bf16, q4_0, q4_1, "
                "q5_0, q5_1, q8_0, q4_K, q5_K, q6_K)");
}

}  // namespace

Model::~Model() = default;

std::unique_ptr<Model> Model::load(const std::string& path, bool progress) {
  std::unique_ptr<Model> m(new Model());
  m->file_ = ModelFile::open(path, progress);
  // Block-FP8 HF checkpoints: the kernels compute on the float32 values.
  if (auto* mapped = dynamic_cast<MappedModel*>(m->file_.get())) materialise_fp8(*mapped);
  m->spec_ = build_model_spec(*m->file_);
  m->arch_ = &find_architecture(m->spec_);
  m->arch_->bind(*m);
  m->tokenizer_ = Tokenizer::from_model_file(*m->file_);
  if (m->tokenizer_->n_vocab() > m->spec_.n_vocab)
    throw Error(path + ": tokenizer has " + std::to_string(m->tokenizer_->n_vocab()) +
                " tokens but the embedding table has " + std::to_string(m->spec_.n_vocab) + " rows");
  return m;
}

Linear Model::linear(const std::string& name, int64_t n_in, int64_t n_out) const {
  const TensorRef& t = file_->require(name);
  if (t.ne.size() != 2 || t.ne[0] != n_in || t.ne[1] != n_out)
    throw Error(t.file + ": tensor '" + name + "' has shape " + shape_str(t.ne) + ", expected [" +
                std::to_string(n_in) + ", " + std::to_string(n_out) + "]");
  check_computable(t);
  return Linear{t.data, t.type, n_in, n_out};
}

const TensorRef& Model::tensor(const std::string& name, const std::vector<int64_t>& ne) const {
  const TensorRef& t = file_->require(name);
  if (t.ne != ne)
    throw Error(t.file + ": tensor '" + name + "' has shape " + shape_str(t.ne) + ", expected " + shape_str(ne) +
                " from the " + spec_.arch + " hyper-parameters");
  check_computable(t);
  return t;
}

std::vector<float> Model::vector_f32(const std::string& name, int64_t n) const {
  const TensorRef& t = file_->require(name);
  if (t.n_elements() != n)
    throw Error(t.file + ": tensor '" + name + "' has shape " + shape_str(t.ne) + ", expected " +
                std::to_string(n) + " elements");
  check_computable(t);
  std::vector<float> v(n);
  cpu::dequantize_row(t.type, t.data, v.data(), n);
  return v;
}

void Model::bind_experts(int layer, LayerWeights& lw) const {
  const auto& s = spec_;
  const std::string blk = "blk." + std::to_string(layer) + ".";
  const int64_t E = s.n_embd, F = s.n_ff_exp, N = s.n_expert;
  lw.n_ff_exp = F;
  lw.experts.resize(N);
  if (has(blk + "ffn_gate_exps.weight")) {
    auto stacked = [&](const char* what, int64_t n_in, int64_t n_out, DType& type) {
      const TensorRef& t = file_->require(blk + what);
      if (t.ne.size() != 3 || t.ne[0] != n_in || t.ne[1] != n_out || t.ne[2] != N)
        throw Error(t.file + ": tensor '" + t.name + "' has shape " + shape_str(t.ne) + ", expected [" +
                    std::to_string(n_in) + ", " + std::to_string(n_out) + ", " + std::to_string(N) + "]");
      check_computable(t);
      type = t.type;
      return std::pair<const uint8_t*, uint64_t>{t.data, row_bytes(t.type, n_in) * n_out};
    };
    auto [g, gs] = stacked("ffn_gate_exps.weight", E, F, lw.gate_type);
    auto [u, us] = stacked("ffn_up_exps.weight", E, F, lw.up_type);
    auto [d, ds] = stacked("ffn_down_exps.weight", F, E, lw.down_type);
    for (int64_t e = 0; e < N; ++e) lw.experts[e] = {g + e * gs, u + e * us, d + e * ds};
    return;
  }
  // Per-expert tensors (older Mixtral GGUFs, HF checkpoints): types must agree across experts.
  for (int64_t e = 0; e < N; ++e) {
    // append, not "." + to_string(e): a GCC 12 -Wrestrict false positive
    const std::string idx = std::string(".").append(std::to_string(e)).append(".weight");
    Linear g = linear(blk + "ffn_gate" + idx, E, F);
    Linear u = linear(blk + "ffn_up" + idx, E, F);
    Linear d = linear(blk + "ffn_down" + idx, F, E);
    if (e == 0) {
      lw.gate_type = g.type;
      lw.up_type = u.type;
      lw.down_type = d.type;
    } else if (g.type != lw.gate_type || u.type != lw.up_type || d.type != lw.down_type) {
      throw Error(file_->path() + ": layer " + std::to_string(layer) + " expert " + std::to_string(e) +
                  " has weight types that differ from expert 0's; hexe needs one type per tensor kind");
    }
    lw.experts[e] = {g.data, u.data, d.data};
  }
}

}  // namespace hexe
