// A model on disk (GGUF, split GGUF, or an HF safetensors directory) seen as one set of tensors.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cpu_kernels/format.h"
#include "runtime/model/metadata.h"

namespace hexe {

enum class ModelFormat { Gguf, Safetensors };

// Block-FP8 weights of HF checkpoints (DeepSeek-V3's float8_e4m3fn + weight_scale_inv): the
// tensor's type is I8 holding the FP8 bytes; value = f8 * scale[r / block_rows][c / block_cols]
// over its last two dims (scales [.., ceil(R / block_rows), ceil(C / block_cols)] of `type`).
// Decoded by runtime/model/fp8_blocks.h; data == nullptr for every other tensor.
struct Fp8Scales {
  const uint8_t* data = nullptr;
  DType type = DType::F32;
  int64_t block_rows = 0, block_cols = 0;
};

// One tensor, mapped in place. Shape in GGUF order: ne[0] is the contiguous (row) dimension.
// HF tensors use the same memory layout ([out, in] row-major == ne {in, out}).
struct TensorRef {
  std::string name;         // GGUF name ("blk.0.attn_q.weight"); HF names are mapped to these
  DType type = DType::F32;
  std::vector<int64_t> ne;  // 1..4 dims
  const uint8_t* data = nullptr;
  uint64_t bytes = 0;
  std::string file;         // the file that holds it (for messages)
  // data lies in a read-only file mapping (its pages may be dropped and read again); false for
  // values computed at open into memory the model owns (FP8 checkpoints dequantised).
  bool file_backed = true;
  Fp8Scales fp8;  // block-FP8 (type I8): the scales; see Fp8Scales

  int64_t n_elements() const;
  int64_t rows() const { return ne.empty() ? 0 : n_elements() / ne[0]; }
  uint64_t row_bytes() const { return hexe::row_bytes(type, uint64_t(ne.empty() ? 0 : ne[0])); }
};

class ModelFile {
 public:
  // Opens FILE.gguf (the first of a split set finds the others), a *.safetensors file, or an HF
  // directory (config.json + safetensors). Validates everything before returning; throws
  // hexe::Error naming the file, the key or tensor, the value and what was expected.
  // `progress` draws a bar on stderr for large models.
  static std::unique_ptr<ModelFile> open(const std::string& path, bool progress = true);
  virtual ~ModelFile() = default;

  ModelFormat format() const { return format_; }
  const std::string& path() const { return path_; }
  // GGUF keys. For HF directories: config.json mapped to the keys llama.cpp's converter writes
  // (general.architecture, <arch>.block_count, ...), plus "hexe.rope.neox_from_hf" = true when
  // q/k are stored unpermuted (HF), and tokenizer.json's path in "hexe.tokenizer_json".
  const Metadata& metadata() const { return metadata_; }
  const std::vector<TensorRef>& tensors() const { return tensors_; }
  const TensorRef* find(std::string_view name) const;
  // Throws an error naming the file and the missing tensor.
  const TensorRef& require(std::string_view name) const;

 protected:
  // Sorts a name index for find(); throws hexe::Error on a duplicate name. Readers call it once
  // after filling tensors_ (find() falls back to a linear scan when the index is stale).
  void index_tensors();

  ModelFormat format_ = ModelFormat::Gguf;
  std::string path_;
  Metadata metadata_;
  std::vector<TensorRef> tensors_;
  std::vector<uint32_t> by_name_;  // indices into tensors_, sorted by name
};

}  // namespace hexe
