// `hexe quantize` / `hexe convert`: any model hexe reads -> a GGUF of the chosen type, streamed.
#pragma once
#include <cstdint>
#include <string>
#include <vector>
#include "cpu_kernels/format.h"
#include "runtime/model/model_file.h"

namespace hexe {

// A target: a plain type (every matrix in it) or one of llama.cpp's mixes (per-tensor recipe).
struct QuantTarget {
  std::string name;        // as the user wrote it, upper-case: "Q4_K_M", "F16"
  uint32_t file_type = 0;  // general.file_type (llama_ftype)
  bool mix = false;        // the recipe of placement/quant_recipe.h decides per tensor
  DType base = DType::F16; // plain: the type of every matrix
};
// F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K, Q4_K_M, Q5_K_M (case-insensitive); throws
// hexe::Error listing these otherwise.
QuantTarget parse_quant_target(const std::string& name);
std::vector<std::string> quant_target_names();

struct QuantizeOptions {
  int threads = 0;        // 0: all hardware threads
  bool dry_run = false;   // plan and report sizes only; no output file
  bool verbose = false;   // RMSE of every tensor against the source (costs one dequantisation)
  bool progress = true;   // progress bar on stderr (terminal only)
};

struct QuantizedTensor {
  std::string name;
  std::vector<int64_t> ne;
  DType from = DType::F32;
  DType to = DType::F32;
  uint64_t bytes = 0;
  double rmse = -1.0;       // verbose only: sqrt(mean((dequant(out) - source)^2))
  double source_rms = -1.0; // verbose only: sqrt(mean(source^2)), for a relative figure
};

struct QuantizeResult {
  std::vector<QuantizedTensor> tensors;
  uint64_t file_bytes = 0;    // the output file's size (exact: header + aligned data)
  uint64_t source_bytes = 0;  // tensor data of the source
  double seconds = 0.0;
};

// Type of each output tensor under `target`: 1-D tensors, norms and the router stay F32; a plain
// quantised type whose block does not divide the row falls back like llama.cpp (q4_K -> q5_0,
// q5_K -> q5_1, q6_K -> q8_0, then f16 when even 32 does not divide it).
DType plain_tensor_type(DType base, const std::string& name, const std::vector<int64_t>& ne);

// Writes `out_path` (via a temp file renamed at the end) tensor by tensor: each tensor's rows are
// dequantised from the memory-mapped source and quantised in chunks by `threads` workers, and the
// source pages are released after each tensor, so memory stays at a few chunk buffers whatever
// the model size. Tensors already in their target type are copied byte for byte.
QuantizeResult quantize_model(const ModelFile& src, const std::string& out_path,
                              const QuantTarget& target, const QuantizeOptions& opt);

// Text report: per-type tensor counts/sizes and the file size (and the RMSE table if verbose).
std::string format_quantize_report(const QuantizeResult& r, bool verbose);

}  // namespace hexe
