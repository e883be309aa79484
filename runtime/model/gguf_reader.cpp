// GGUF v2/v3 parser: every count, length, offset, dim and type id is checked before it is used.
#include "runtime/model/gguf_reader.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <unordered_map>

#include "memory/error.h"

namespace hexe {
namespace {

constexpr int kMaxArrayDepth = 8;     // nested arrays deeper than this are refused (stack bound)
constexpr uint32_t kMaxDims = 4;      // GGML_MAX_DIMS
// Smallest encodings, used to bound header counts by the bytes left before anything is reserved.
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;              // key length, type, 1-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;  // name length, n_dims, ne[0], type, offset

std::string quoted(std::string_view s) {
  std::string out = "'";
  // Names from hostile files may hold anything: keep messages printable and short.
  size_t n = std::min<size_t>(s.size(), 200);
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += char(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > n) out += "...";
  return out + "'";
}

// Bounds-checked little-endian reader over the file bytes. `ctx` says what is being read, so a
// truncation error names the key or tensor it cut.
class Cursor {
 public:
  Cursor(const uint8_t* data, uint64_t size, const std::string& file)
      : data_(data), size_(size), file_(file) {}

  uint64_t pos() const { return pos_; }
  uint64_t left() const { return size_ - pos_; }
  const std::string& file() const { return file_; }
  std::string ctx;  // "key 'general.name'", "tensor info #3 'blk.0.attn_q.weight'", ...

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(file_ + ": " + (ctx.empty() ? std::string() : ctx + ": ") + what);
  }

  void need(uint64_t n, const char* what) const {
    if (n > left())
      fail(std::string("truncated: ") + what + " needs " + std::to_string(n) + " bytes at offset " +
           std::to_string(pos_) + ", the file has " + std::to_string(size_) + " bytes");
  }

  template <class T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(const char* what) {
    uint64_t n = read<uint64_t>(what);
    if (n > left())
      fail(std::string(what) + " length " + std::to_string(n) + " at offset " +
           std::to_string(pos_ - 8) + " runs past the end of the file (" + std::to_string(left()) +
           " bytes left)");
    std::string s(reinterpret_cast<const char*>(data_ + pos_), size_t(n));
    pos_ += n;
    return s;
  }

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
  const std::string& file_;
};

bool valid_value_type(uint32_t t) { return t <= uint32_t(GgufValueType::Float64); }

// Bytes of one scalar of type t (0 for strings and arrays).
uint64_t scalar_bytes(GgufValueType t) {
  switch (t) {
    case GgufValueType::UInt8: case GgufValueType::Int8: case GgufValueType::Bool: return 1;
    case GgufValueType::UInt16: case GgufValueType::Int16: return 2;
    case GgufValueType::UInt32: case GgufValueType::Int32: case GgufValueType::Float32: return 4;
    case GgufValueType::UInt64: case GgufValueType::Int64: case GgufValueType::Float64: return 8;
    default: return 0;
  }
}

int64_t read_int(Cursor& c, GgufValueType t) {
  switch (t) {
    case GgufValueType::UInt8: return c.read<uint8_t>("uint8 value");
    case GgufValueType::Int8: return c.read<int8_t>("int8 value");
    case GgufValueType::Bool: return c.read<uint8_t>("bool value") != 0 ? 1 : 0;
    case GgufValueType::UInt16: return c.read<uint16_t>("uint16 value");
    case GgufValueType::Int16: return c.read<int16_t>("int16 value");
    case GgufValueType::UInt32: return c.read<uint32_t>("uint32 value");
    case GgufValueType::Int32: return c.read<int32_t>("int32 value");
    case GgufValueType::UInt64: return int64_t(c.read<uint64_t>("uint64 value"));
    case GgufValueType::Int64: return c.read<int64_t>("int64 value");
    default: return 0;
  }
}

double read_float(Cursor& c, GgufValueType t) {
  if (t == GgufValueType::Float32) return c.read<float>("float32 value");
  return c.read<double>("float64 value");
}

void read_value(Cursor& c, GgufValueType t, MetaValue& v, int depth);

void read_array(Cursor& c, MetaValue& v, int depth) {
  if (depth >= kMaxArrayDepth)
    c.fail("arrays nested deeper than " + std::to_string(kMaxArrayDepth) + " levels");
  uint32_t et = c.read<uint32_t>("array element type");
  if (!valid_value_type(et))
    c.fail("array element type id " + std::to_string(et) + " is not a GGUF value type (0..12)");
  v.elem_type = GgufValueType(et);
  uint64_t n = c.read<uint64_t>("array length");
  // Bound the count by what the remaining bytes could hold before reserving anything.
  uint64_t min_elem = scalar_bytes(v.elem_type);
  if (v.elem_type == GgufValueType::String) min_elem = 8;
  if (v.elem_type == GgufValueType::Array) min_elem = 12;
  if (n > c.left() / min_elem)
    c.fail("array of " + std::to_string(n) + " " + gguf_value_type_name(v.elem_type) +
           " elements cannot fit in the " + std::to_string(c.left()) + " bytes left");
  switch (v.elem_type) {
    case GgufValueType::String:
      v.strings.reserve(n);
      for (uint64_t i = 0; i < n; ++i) v.strings.push_back(c.read_string("array string"));
      break;
    case GgufValueType::Float32: case GgufValueType::Float64:
      v.floats.reserve(n);
      for (uint64_t i = 0; i < n; ++i) v.floats.push_back(read_float(c, v.elem_type));
      break;
    case GgufValueType::Array:
      v.arrays.reserve(n);
      for (uint64_t i = 0; i < n; ++i) {
        MetaValue e;
        read_value(c, GgufValueType::Array, e, depth + 1);
        v.arrays.push_back(std::move(e));
      }
      break;
    default:
      v.ints.reserve(n);
      for (uint64_t i = 0; i < n; ++i) v.ints.push_back(read_int(c, v.elem_type));
      break;
  }
}

void read_value(Cursor& c, GgufValueType t, MetaValue& v, int depth) {
  v.type = t;
  switch (t) {
    case GgufValueType::String: v.s = c.read_string("string value"); break;
    case GgufValueType::Array: read_array(c, v, depth); break;
    case GgufValueType::Float32: case GgufValueType::Float64: v.f = read_float(c, t); break;
    default: v.i = read_int(c, t); break;
  }
}

bool checked_mul(uint64_t a, uint64_t b, uint64_t& out) { return !__builtin_mul_overflow(a, b, &out); }

std::string shape_str(const std::vector<int64_t>& ne) {
  std::string s = "[";
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

// A raw tensor info before the data section's offset is known.
struct RawInfo {
  std::string name;
  uint32_t type_id;
  std::vector<int64_t> ne;
  uint64_t offset;
};

}  // namespace

GgufHeader parse_gguf(const uint8_t* data, uint64_t size, const std::string& name) {
  Cursor c(data, size, name);
  GgufHeader h;
  h.metadata.source = name;

  c.ctx = "header";
  uint32_t magic = c.read<uint32_t>("magic");
  if (magic != kGgufMagic) {
    char got[5] = {};
    std::memcpy(got, &magic, 4);
    for (char& ch : got)
      if (ch != 0 && (ch < 0x20 || ch > 0x7e)) ch = '?';
    c.fail(std::string("bad magic '") + got + "', expected 'GGUF' (not a GGUF file)");
  }
  h.version = c.read<uint32_t>("version");
  if (h.version == 1)
    c.fail("GGUF version 1 is not supported (it predates 64-bit counts); expected version 2 or 3 "
           "(re-convert the model with a current llama.cpp)");
  if (h.version != 2 && h.version != 3) {
    if (h.version == 0x03000000u || h.version == 0x02000000u)
      c.fail("big-endian GGUF is not supported; expected a little-endian file");
    c.fail("unsupported GGUF version " + std::to_string(h.version) + ", expected 2 or 3");
  }
  uint64_t n_tensors = c.read<uint64_t>("tensor count");
  uint64_t n_kv = c.read<uint64_t>("key/value count");
  if (n_kv > c.left() / kMinKvBytes)
    c.fail("key/value count " + std::to_string(n_kv) + " cannot fit in the " +
           std::to_string(c.left()) + " bytes after the header (truncated file?)");
  if (n_tensors > c.left() / kMinTensorInfoBytes)
    c.fail("tensor count " + std::to_string(n_tensors) + " cannot fit in the " +
           std::to_string(c.left()) + " bytes after the header (truncated file?)");

  for (uint64_t k = 0; k < n_kv; ++k) {
    c.ctx = "key/value #" + std::to_string(k);
    std::string key = c.read_string("key");
    if (key.empty()) c.fail("empty key");
    c.ctx = "key " + quoted(key);
    uint32_t t = c.read<uint32_t>("value type");
    if (!valid_value_type(t))
      c.fail("value type id " + std::to_string(t) + " is not a GGUF value type (0..12)");
    MetaValue v;
    read_value(c, GgufValueType(t), v, 0);
    if (!h.metadata.values.emplace(key, std::move(v)).second) c.fail("duplicate key");
  }

  if (const MetaValue* a = h.metadata.find("general.alignment")) {
    c.ctx = "key 'general.alignment'";
    if (!a->is_int() || a->type == GgufValueType::Bool)
      c.fail(std::string("is a ") + gguf_value_type_name(a->type) + ", expected a uint32");
    if (a->i <= 0 || (a->i & (a->i - 1)) != 0)
      c.fail("value " + std::to_string(a->i) + " is not a power of two >= 1");
    h.alignment = uint64_t(a->i);
  }

  std::vector<RawInfo> infos;
  infos.reserve(n_tensors);  // bounded above by the bytes left / kMinTensorInfoBytes
  std::unordered_map<std::string, uint64_t> seen;
  for (uint64_t ti = 0; ti < n_tensors; ++ti) {
    c.ctx = "tensor info #" + std::to_string(ti);
    RawInfo r;
    r.name = c.read_string("tensor name");
    if (r.name.empty()) c.fail("empty tensor name");
    c.ctx = "tensor " + quoted(r.name);
    auto [it, fresh] = seen.emplace(r.name, ti);
    if (!fresh) c.fail("duplicate tensor name (also tensor #" + std::to_string(it->second) + ")");
    uint32_t n_dims = c.read<uint32_t>("n_dims");
    if (n_dims < 1 || n_dims > kMaxDims)
      c.fail("n_dims " + std::to_string(n_dims) + ", expected 1 to " + std::to_string(kMaxDims));
    r.ne.resize(n_dims);
    uint64_t n_elem = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t ne = c.read<uint64_t>("dimension");
      if (ne == 0 || ne > uint64_t(INT64_MAX))
        c.fail("dimension " + std::to_string(d) + " is " + std::to_string(ne) +
               ", expected 1 to 2^63-1");
      if (!checked_mul(n_elem, ne, n_elem) || n_elem > uint64_t(INT64_MAX))
        c.fail("element count of the dimensions overflows 2^63 (dimension " + std::to_string(d) +
               " is " + std::to_string(ne) + ")");
      r.ne[d] = int64_t(ne);
    }
    r.type_id = c.read<uint32_t>("type");
    auto ti_info = dtype_info(r.type_id);
    if (!ti_info)
      c.fail("unknown type id " + std::to_string(r.type_id) +
             " (not a GGML type this build knows; a newer llama.cpp type?)");
    if (uint64_t(r.ne[0]) % ti_info->block_elems != 0)
      c.fail(std::string("type ") + std::string(ti_info->name) + " needs ne[0] to be a multiple of " +
             std::to_string(ti_info->block_elems) + ", got shape " + shape_str(r.ne));
    r.offset = c.read<uint64_t>("data offset");
    infos.push_back(std::move(r));
  }

  // The data section starts at the next multiple of the alignment after the tensor infos.
  c.ctx.clear();
  uint64_t pad = (h.alignment - c.pos() % h.alignment) % h.alignment;
  if (__builtin_add_overflow(c.pos(), pad, &h.data_offset))
    c.fail("data section offset overflows (alignment " + std::to_string(h.alignment) + ")");
  if (!infos.empty() && h.data_offset > size)
    c.fail("data section starts at offset " + std::to_string(h.data_offset) +
           " (tensor infos end at " + std::to_string(c.pos()) + ", alignment " +
           std::to_string(h.alignment) + ") past the end of the file (size " + std::to_string(size) +
           ")");
  const uint64_t data_bytes = infos.empty() ? 0 : size - h.data_offset;

  h.tensors.reserve(infos.size());
  for (auto& r : infos) {
    c.ctx = "tensor " + quoted(r.name);
    DType type = static_cast<DType>(r.type_id);
    const DTypeInfo& ti = info(type);
    uint64_t rows = 1;
    for (size_t d = 1; d < r.ne.size(); ++d) rows *= uint64_t(r.ne[d]);  // checked above
    uint64_t bytes = 0;
    if (!checked_mul(uint64_t(r.ne[0]) / ti.block_elems * ti.block_bytes, rows, bytes))
      c.fail("byte size of shape " + shape_str(r.ne) + " overflows 2^64");
    if (r.offset % h.alignment != 0)
      c.fail("data offset " + std::to_string(r.offset) + " is not a multiple of the alignment " +
             std::to_string(h.alignment));
    if (r.offset > data_bytes || bytes > data_bytes - r.offset)
      c.fail("data [offset " +
             std::to_string(r.offset > UINT64_MAX - h.data_offset ? r.offset
                                                                  : h.data_offset + r.offset) +
             ", size " + std::to_string(bytes) + "] ends past the end of the file (size " +
             std::to_string(size) + ")");
    TensorRef t;
    t.name = std::move(r.name);
    t.type = type;
    t.ne = std::move(r.ne);
    t.data = data + h.data_offset + r.offset;
    t.bytes = bytes;
    t.file = name;
    h.tensors.push_back(std::move(t));
  }
  return h;
}

GgufFile read_gguf(const std::string& path) {
  GgufFile f;
  f.map = mem::MappedFile::open(path);
  f.header = parse_gguf(f.map.data(), f.map.size(), path);
  return f;
}

}  // namespace hexe
