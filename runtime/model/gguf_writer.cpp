// GGUF writer: metadata, tensor infos and aligned data, streamed to a temp file then renamed.
#include "runtime/model/gguf_writer.h"

#include <algorithm>
#include <cerrno>
#include <functional>
#include <cstring>

#include "memory/error.h"

namespace hexe {

GgufWriter::GgufWriter(std::string path, uint64_t alignment, uint32_t version)
    : path_(std::move(path)), tmp_path_(path_ + ".partial"), alignment_(alignment),
      version_(version) {
  if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0 || alignment_ > (uint64_t(1) << 31))
    throw Error(path_ + ": alignment " + std::to_string(alignment_) +
                " is not a power of two between 1 and 2^31");
  if (version_ != 2 && version_ != 3)
    throw Error(path_ + ": GGUF version " + std::to_string(version_) + ", expected 2 or 3");
}

GgufWriter::~GgufWriter() {
  if (!finished_) abort_file();
}

void GgufWriter::abort_file() noexcept {
  if (file_ != nullptr) {
    std::fclose(file_);
    file_ = nullptr;
  }
  if (header_written_ || pos_ > 0) std::remove(tmp_path_.c_str());
}

void GgufWriter::add_tensor(std::string name, DType type, std::vector<int64_t> ne) {
  if (header_written_) throw Error(path_ + ": tensor '" + name + "' added after the header");
  if (name.empty()) throw Error(path_ + ": empty tensor name");
  for (const auto& t : tensors_)
    if (t.name == name) throw Error(path_ + ": tensor '" + name + "' added twice");
  if (ne.empty() || ne.size() > 4)
    throw Error(path_ + ": tensor '" + name + "' has " + std::to_string(ne.size()) +
                " dimensions, expected 1 to 4");
  auto ti = dtype_info(uint32_t(type));
  if (!ti) throw Error(path_ + ": tensor '" + name + "' has unknown type id " + std::to_string(uint32_t(type)));
  uint64_t rows = 1;
  for (int64_t d : ne) {
    if (d < 1) throw Error(path_ + ": tensor '" + name + "' has a dimension " + std::to_string(d) + ", expected >= 1");
  }
  for (size_t i = 1; i < ne.size(); ++i)
    if (__builtin_mul_overflow(rows, uint64_t(ne[i]), &rows))
      throw Error(path_ + ": tensor '" + name + "' is too large");
  if (uint64_t(ne[0]) % ti->block_elems != 0)
    throw Error(path_ + ": tensor '" + name + "': ne[0] = " + std::to_string(ne[0]) +
                " is not a multiple of " + std::string(ti->name) + "'s block of " +
                std::to_string(ti->block_elems));
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(row_bytes(type, uint64_t(ne[0])), rows, &bytes))
    throw Error(path_ + ": tensor '" + name + "' is too large");
  uint64_t offset = 0;
  if (!tensors_.empty()) {
    const Info& last = tensors_.back();
    offset = (last.offset + last.bytes + alignment_ - 1) / alignment_ * alignment_;
  }
  tensors_.push_back({std::move(name), type, std::move(ne), bytes, offset});
}

void GgufWriter::put(const void* p, uint64_t n) {
  if (n == 0) return;
  if (std::fwrite(p, 1, n, file_) != n) {
    int e = errno;
    throw Error(tmp_path_ + ": write failed after " + std::to_string(pos_) + " bytes: " + std::strerror(e));
  }
  pos_ += n;
}

void GgufWriter::pad_to(uint64_t alignment) {
  static const uint8_t kZeros[256] = {};
  uint64_t pad = (alignment - pos_ % alignment) % alignment;
  while (pad > 0) {
    uint64_t n = pad < sizeof kZeros ? pad : sizeof kZeros;
    put(kZeros, n);
    pad -= n;
  }
}

namespace {

struct Out {
  GgufWriter* w;
  std::function<void(const void*, uint64_t)> put;
  template <class T>
  void scalar(T v) { put(&v, sizeof v); }
  void str(const std::string& s) {
    scalar<uint64_t>(s.size());
    put(s.data(), s.size());
  }
  void int_as(GgufValueType t, int64_t v) {
    switch (t) {
      case GgufValueType::UInt8: case GgufValueType::Bool: scalar<uint8_t>(uint8_t(v)); break;
      case GgufValueType::Int8: scalar<int8_t>(int8_t(v)); break;
      case GgufValueType::UInt16: scalar<uint16_t>(uint16_t(v)); break;
      case GgufValueType::Int16: scalar<int16_t>(int16_t(v)); break;
      case GgufValueType::UInt32: scalar<uint32_t>(uint32_t(v)); break;
      case GgufValueType::Int32: scalar<int32_t>(int32_t(v)); break;
      case GgufValueType::UInt64: scalar<uint64_t>(uint64_t(v)); break;
      case GgufValueType::Int64: scalar<int64_t>(v); break;
      default: break;
    }
  }
  void value(const MetaValue& v) {
    switch (v.type) {
      case GgufValueType::String: str(v.s); break;
      case GgufValueType::Float32: scalar<float>(float(v.f)); break;
      case GgufValueType::Float64: scalar<double>(v.f); break;
      case GgufValueType::Array: {
        scalar<uint32_t>(uint32_t(v.elem_type));
        scalar<uint64_t>(v.array_size());
        switch (v.elem_type) {
          case GgufValueType::String: for (const auto& s : v.strings) str(s); break;
          case GgufValueType::Float32: for (double f : v.floats) scalar<float>(float(f)); break;
          case GgufValueType::Float64: for (double f : v.floats) scalar<double>(f); break;
          case GgufValueType::Array: for (const auto& a : v.arrays) value(a); break;
          default: for (int64_t i : v.ints) int_as(v.elem_type, i); break;
        }
        break;
      }
      default: int_as(v.type, v.i); break;
    }
  }
};

// Nested arrays must say they are arrays; anything else would write a file that misparses.
void check_value(const std::string& path, const std::string& key, const MetaValue& v) {
  if (uint32_t(v.type) > uint32_t(GgufValueType::Float64))
    throw Error(path + ": key '" + key + "' has value type id " + std::to_string(uint32_t(v.type)));
  if (!v.is_array()) return;
  if (uint32_t(v.elem_type) > uint32_t(GgufValueType::Float64))
    throw Error(path + ": key '" + key + "' has array element type id " +
                std::to_string(uint32_t(v.elem_type)));
  if (v.elem_type == GgufValueType::Array)
    for (const auto& a : v.arrays) {
      if (!a.is_array())
        throw Error(path + ": key '" + key + "': an array of arrays holds a " +
                    gguf_value_type_name(a.type));
      check_value(path, key, a);
    }
}

}  // namespace

void GgufWriter::write_header() {
  if (header_written_) throw Error(path_ + ": header written twice");
  if (alignment_ != 32 || metadata_.has("general.alignment"))
    metadata_.set_int("general.alignment", int64_t(alignment_), GgufValueType::UInt32);
  for (const auto& [k, v] : metadata_.values) check_value(path_, k, v);

  file_ = std::fopen(tmp_path_.c_str(), "wb");
  if (file_ == nullptr) {
    int e = errno;
    throw Error(tmp_path_ + ": cannot create: " + std::strerror(e));
  }
  header_written_ = true;
  std::setvbuf(file_, nullptr, _IOFBF, 1 << 22);
  Out o{this, [this](const void* p, uint64_t n) { put(p, n); }};
  o.scalar<uint32_t>(0x46554747);  // "GGUF"
  o.scalar<uint32_t>(version_);
  o.scalar<uint64_t>(tensors_.size());
  o.scalar<uint64_t>(metadata_.values.size());
  for (const auto& [k, v] : metadata_.values) {
    o.str(k);
    o.scalar<uint32_t>(uint32_t(v.type));
    o.value(v);
  }
  for (const auto& t : tensors_) {
    o.str(t.name);
    o.scalar<uint32_t>(uint32_t(t.ne.size()));
    for (int64_t d : t.ne) o.scalar<uint64_t>(uint64_t(d));
    o.scalar<uint32_t>(uint32_t(t.type));
    o.scalar<uint64_t>(t.offset);
  }
  pad_to(alignment_);
  data_offset_ = pos_;
  current_ = 0;
  current_done_ = 0;
}

void GgufWriter::write_tensor_data(const void* data, uint64_t bytes) {
  if (!header_written_ || finished_) throw Error(path_ + ": tensor data written outside write_header()..finish()");
  const uint8_t* p = static_cast<const uint8_t*>(data);
  while (bytes > 0) {
    if (current_ >= tensors_.size())
      throw Error(path_ + ": " + std::to_string(bytes) + " bytes of tensor data past the last tensor");
    const Info& t = tensors_[current_];
    if (current_done_ == 0) pad_to(alignment_);  // data_offset_ + t.offset
    uint64_t n = std::min(bytes, t.bytes - current_done_);
    put(p, n);
    p += n;
    bytes -= n;
    current_done_ += n;
    if (current_done_ == t.bytes) {
      ++current_;
      current_done_ = 0;
    }
  }
}

void GgufWriter::write_tensor(std::string_view name, const void* data, uint64_t bytes) {
  if (current_ >= tensors_.size() || current_done_ != 0 || tensors_[current_].name != name)
    throw Error(path_ + ": tensor '" + std::string(name) + "' written out of order (next is '" +
                (current_ < tensors_.size() ? tensors_[current_].name : std::string("none")) + "')");
  if (bytes != tensors_[current_].bytes)
    throw Error(path_ + ": tensor '" + std::string(name) + "' given " + std::to_string(bytes) +
                " bytes, its shape and type need " + std::to_string(tensors_[current_].bytes));
  write_tensor_data(data, bytes);
}

void GgufWriter::finish() {
  if (!header_written_) write_header();
  // Zero-byte tensors do not exist (every dim >= 1), so a tensor left is an incomplete file.
  if (current_ < tensors_.size())
    throw Error(path_ + ": tensor '" + tensors_[current_].name + "' has " +
                std::to_string(current_done_) + " of its " + std::to_string(tensors_[current_].bytes) +
                " bytes written; the file is incomplete");
  if (!tensors_.empty()) pad_to(alignment_);
  std::FILE* f = file_;
  file_ = nullptr;
  if (std::fflush(f) != 0 || std::ferror(f)) {
    int e = errno;
    std::fclose(f);
    throw Error(tmp_path_ + ": write failed: " + std::strerror(e));
  }
  if (std::fclose(f) != 0) {
    int e = errno;
    throw Error(tmp_path_ + ": close failed: " + std::strerror(e));
  }
  if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    int e = errno;
    throw Error(tmp_path_ + ": cannot rename to " + path_ + ": " + std::strerror(e));
  }
  finished_ = true;
}

}  // namespace hexe
