// A ModelFile whose tensors point into file mappings it owns (GGUF and safetensors readers).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "memory/mapped_file.h"
#include "runtime/model/model_file.h"

namespace hexe {

class MappedModel : public ModelFile {
 public:
  MappedModel(ModelFormat format, std::string path) {
    format_ = format;
    path_ = std::move(path);
  }
  Metadata& mutable_metadata() { return metadata_; }
  std::vector<TensorRef>& mutable_tensors() { return tensors_; }
  // Keeps `m` alive as long as the model; tensor pointers into it stay valid (moves keep them).
  void add_mapping(mem::MappedFile m) { maps_.push_back(std::move(m)); }
  const std::vector<mem::MappedFile>& mappings() const { return maps_; }
  // Memory for tensors computed at open (FP8 checkpoints dequantised), owned by the model.
  float* add_buffer(size_t n_floats) {
    buffers_.push_back(std::make_unique<float[]>(n_floats));
    return buffers_.back().get();
  }
  // Builds the name index once the tensors are final; throws on a duplicate name.
  void finish() { index_tensors(); }

 private:
  std::vector<mem::MappedFile> maps_;
  std::vector<std::unique_ptr<float[]>> buffers_;
};

}  // namespace hexe
