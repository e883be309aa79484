// GGUF v2/v3 parsing over a mapped file: metadata, tensor infos, split sets; all validated.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "memory/mapped_file.h"
#include "runtime/model/metadata.h"
#include "runtime/model/model_file.h"

namespace hexe {

inline constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian uint32
inline constexpr uint64_t kGgufDefaultAlignment = 32;

// The parsed header of one GGUF file. Tensor data pointers point into the bytes that were parsed.
struct GgufHeader {
  uint32_t version = 0;
  uint64_t alignment = kGgufDefaultAlignment;
  uint64_t data_offset = 0;  // file offset of the data section (aligned end of the tensor infos)
  Metadata metadata;
  std::vector<TensorRef> tensors;  // file order
};

// Parses and validates GGUF bytes [data, data + size); `name` is the file for messages. Every
// count, length, offset, dim and type is checked against the bytes before it is used; any problem
// throws hexe::Error naming the file, the key or tensor, the value and what was expected.
GgufHeader parse_gguf(const uint8_t* data, uint64_t size, const std::string& name);

// One mapped and parsed GGUF file.
struct GgufFile {
  mem::MappedFile map;
  GgufHeader header;
};
GgufFile read_gguf(const std::string& path);

// Split sets: "NAME-00001-of-00003.gguf" ... with split.no / split.count / split.tensors.count.
// Returns the shard paths in order for any member of a set (or {path} when not split).
std::vector<std::string> gguf_split_paths(const std::string& path, const Metadata& first);
// The same from the name alone (no file read): every shard a "-0000i-of-0000N.gguf" name implies.
std::vector<std::string> gguf_split_paths_from_name(const std::string& path);

// Opens a GGUF model: a single file or every shard of a split set (any shard may be named). The
// metadata is the first shard's; each tensor points into the mapping of the shard that holds it.
// `on_file(bytes)` is called after each shard is mapped and validated (progress).
std::unique_ptr<ModelFile> open_gguf_model(const std::string& path,
                                           const std::function<void(uint64_t)>& on_file = {});

}  // namespace hexe
