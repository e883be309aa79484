// Source model -> GGUF layout: output tensor list (expert stacks, llama q/k permutation) and keys.
#pragma once
#include <cstdint>
#include <string>
#include <vector>
#include "cpu_kernels/format.h"
#include "runtime/model/metadata.h"
#include "runtime/model/model_file.h"

namespace hexe {

// One tensor of the output file, described in terms of the source tensors that make it.
struct OutTensor {
  std::string name;                 // GGUF name
  std::vector<int64_t> ne;          // GGUF order; a stack has ne[2] = number of parts
  std::vector<const TensorRef*> parts;  // 1, or one per expert (stacked along the outer axis)
  // llama.cpp's LlamaModel.permute for HF Mixtral/Llama q/k: rows of each head go from
  // [x0..x(d/2-1), y0..y(d/2-1)] to [x0, y0, x1, y1, ...]. 0 = no permutation, else heads.
  int permute_heads = 0;
  int64_t rows() const;                    // product of ne[1..]
  int64_t rows_per_part() const { return rows() / int64_t(parts.size()); }
  DType source_type() const { return parts.front()->type; }
  // True when the rows can be copied byte for byte from the source (no permutation).
  bool plain() const { return permute_heads == 0; }
};

// The output tensors in the source's order (a stack takes the place of its first part). Per-expert
// tensors blk.N.ffn_{gate,up,down}.E.weight (HF checkpoints, old GGUFs) become ffn_*_exps stacks
// {in, out, n_expert}; q/k of HF llama-architecture checkpoints are marked for permutation.
// Throws hexe::Error when an expert is missing or experts disagree in shape/type.
std::vector<OutTensor> plan_output_tensors(const ModelFile& src);

// Dequantises rows [row0, row0 + n_rows) of `t` (row = ne[0] elements) to float32 into dst,
// applying the permutation. Thread-safe; never throws (the plan was validated).
void read_rows_f32(const OutTensor& t, int64_t row0, int64_t n_rows, float* dst);

// Output metadata: the source's keys without hexe.* ones; for HF sources the tokenizer.json
// vocabulary as tokenizer.ggml.* keys (exactly as llama.cpp's convert_hf_to_gguf.py writes them)
// and general.type. `file_type` is general.file_type (llama_ftype); quantization_version = 2.
Metadata output_metadata(const ModelFile& src, uint32_t file_type);

}  // namespace hexe
