// Streaming GGUF writer: header first (sizes known up front), then tensor data one piece at a time.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "cpu_kernels/format.h"
#include "runtime/model/metadata.h"

namespace hexe {

// Usage: add metadata and every tensor (name, type, shape), write_header(), then the tensors'
// bytes in the order they were added (whole or in chunks), then finish(). Output goes to
// "<path>.partial" and is renamed to `path` by finish(); if anything fails or finish() is never
// reached, the partial file is removed, so `path` is either complete or untouched.
class GgufWriter {
 public:
  explicit GgufWriter(std::string path, uint64_t alignment = 32, uint32_t version = 3);
  ~GgufWriter();
  GgufWriter(const GgufWriter&) = delete;
  GgufWriter& operator=(const GgufWriter&) = delete;

  Metadata& metadata() { return metadata_; }
  // Validates the shape (1..4 dims, each >= 1, ne[0] a multiple of the block size) and the name
  // (non-empty, unique); throws hexe::Error otherwise. Before write_header() only.
  void add_tensor(std::string name, DType type, std::vector<int64_t> ne);
  size_t tensor_count() const { return tensors_.size(); }
  uint64_t tensor_bytes(size_t i) const { return tensors_[i].bytes; }

  void write_header();
  // Appends bytes to the current tensor (the first not yet complete); moves to the next one, with
  // alignment padding, once it is full. Throws if more bytes arrive than the tensors hold.
  void write_tensor_data(const void* data, uint64_t bytes);
  // Writes one whole tensor; `name` must be the next tensor's.
  void write_tensor(std::string_view name, const void* data, uint64_t bytes);
  // Checks every tensor is complete, flushes, closes and renames to the final path.
  void finish();

  // Absolute file offset of tensor i's data (valid after write_header()).
  uint64_t tensor_file_offset(size_t i) const { return data_offset_ + tensors_[i].offset; }

 private:
  struct Info {
    std::string name;
    DType type;
    std::vector<int64_t> ne;
    uint64_t bytes;
    uint64_t offset;  // from the start of the data section
  };
  void put(const void* p, uint64_t n);
  void pad_to(uint64_t alignment);
  void abort_file() noexcept;

  std::string path_;
  std::string tmp_path_;
  uint64_t alignment_;
  uint32_t version_;
  Metadata metadata_;
  std::vector<Info> tensors_;
  std::FILE* file_ = nullptr;
  uint64_t pos_ = 0;          // bytes written so far
  uint64_t data_offset_ = 0;  // file offset of the data section
  size_t current_ = 0;        // tensor being written
  uint64_t current_done_ = 0; // its bytes written so far
  bool header_written_ = false;
  bool finished_ = false;
};

}  // namespace hexe
