// safetensors parsing over a mapped file (one file or a sharded index); all offsets validated.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "memory/mapped_file.h"
#include "runtime/model/model_file.h"

namespace hexe {

// Parses and validates safetensors bytes [data, data + size); `name` is the file for messages.
// Tensors keep their HF names and get GGUF-order shapes (ne = reversed HF shape). Accepts dtypes
// F32, F16 and BF16 (and F8_E4M3, below); anything else, a header past the end of the file, JSON that is not a
// safetensors header, or data_offsets outside the data or inconsistent with shape x dtype throws
// hexe::Error naming the file and the tensor. F8_E4M3 (float8_e4m3fn, DeepSeek-V3's and other
// block-FP8 checkpoints) is accepted too: such tensors come as DType::I8 (one byte per element,
// raw) and are listed in f8_e4m3; hexe computes nothing on them, open_safetensors_model
// dequantises them with their *_scale_inv tensors.
struct SafetensorsHeader {
  uint64_t data_offset = 0;                  // 8 + header length
  std::vector<TensorRef> tensors;            // sorted by data offset
  std::map<std::string, std::string> meta;   // "__metadata__" (string values only)
  std::vector<std::string> f8_e4m3;          // names of the tensors stored as F8_E4M3
};
SafetensorsHeader parse_safetensors(const uint8_t* data, uint64_t size, const std::string& name);

struct SafetensorsFile {
  mem::MappedFile map;
  SafetensorsHeader header;
};
SafetensorsFile read_safetensors(const std::string& path);

// model.safetensors.index.json: the shard files (relative to the index's directory, in first-use
// order) and the tensor -> shard map. Throws naming the index file on malformed JSON.
struct SafetensorsIndex {
  std::vector<std::string> files;
  std::map<std::string, std::string> weight_map;
};
SafetensorsIndex read_safetensors_index(const std::string& path);

}  // namespace hexe
