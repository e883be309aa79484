// safetensors parser: 8-byte header length, JSON header (nlohmann), then the tensor bytes.
#include "runtime/model/safetensors_reader.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "memory/error.h"

namespace hexe {
namespace {

using nlohmann::json;

constexpr int kMaxJsonDepth = 8;  // a safetensors header is 3 levels deep; refuse deeper input

// Bracket depth of JSON text, skipping strings; bounds recursion before nlohmann sees the input.
int json_depth(const char* p, uint64_t n) {
  int depth = 0, max_depth = 0;
  bool in_str = false;
  for (uint64_t i = 0; i < n; ++i) {
    char c = p[i];
    if (in_str) {
      if (c == '\\') ++i;
      else if (c == '"') in_str = false;
    } else if (c == '"') {
      in_str = true;
    } else if (c == '{' || c == '[') {
      max_depth = std::max(max_depth, ++depth);
      if (max_depth > kMaxJsonDepth) return max_depth;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return max_depth;
}

std::optional<DType> st_dtype(const std::string& s) {
  if (s == "F32") return DType::F32;
  if (s == "F16") return DType::F16;
  if (s == "BF16") return DType::BF16;
  if (s == "F8_E4M3") return DType::I8;  // raw bytes; listed in SafetensorsHeader::f8_e4m3
  return std::nullopt;
}

std::string shape_str(const json& shape) { return shape.dump(); }

bool as_u64(const json& j, uint64_t& out) {
  if (!j.is_number_unsigned() && !(j.is_number_integer() && j.get<int64_t>() >= 0)) return false;
  out = j.get<uint64_t>();
  return true;
}

}  // namespace

SafetensorsHeader parse_safetensors(const uint8_t* data, uint64_t size, const std::string& name) {
  auto fail = [&](const std::string& what) -> void { throw Error(name + ": " + what); };
  if (size < 8)
    fail("truncated: " + std::to_string(size) +
         " bytes, a safetensors file starts with an 8-byte header length");
  uint64_t n = 0;
  std::memcpy(&n, data, 8);
  if (n > size - 8)
    fail("header length " + std::to_string(n) + " runs past the end of the file (size " +
         std::to_string(size) + "); not a safetensors file?");
  if (n < 2) fail("header length " + std::to_string(n) + ", expected a JSON object");
  const char* text = reinterpret_cast<const char*>(data + 8);
  if (json_depth(text, n) > kMaxJsonDepth)
    fail("header JSON nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  json header;
  try {
    header = json::parse(text, text + n);
  } catch (const json::exception& e) {
    fail(std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) fail("header JSON is a " + std::string(header.type_name()) + ", expected an object");

  SafetensorsHeader h;
  h.data_offset = 8 + n;
  const uint64_t data_bytes = size - h.data_offset;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& tname = it.key();
    const json& v = it.value();
    if (tname == "__metadata__") {
      if (!v.is_object()) fail("'__metadata__' is a " + std::string(v.type_name()) + ", expected an object");
      for (auto m = v.begin(); m != v.end(); ++m)
        if (m.value().is_string()) h.meta[m.key()] = m.value().get<std::string>();
      continue;
    }
    const std::string where = "tensor '" + tname + "': ";
    if (!v.is_object()) fail(where + "entry is a " + std::string(v.type_name()) + ", expected an object");
    auto dt = v.find("dtype");
    auto sh = v.find("shape");
    auto off = v.find("data_offsets");
    if (dt == v.end() || !dt->is_string()) fail(where + "missing string 'dtype'");
    if (sh == v.end() || !sh->is_array()) fail(where + "missing array 'shape'");
    if (off == v.end() || !off->is_array() || off->size() != 2)
      fail(where + "missing 'data_offsets' [begin, end]");
    auto type = st_dtype(dt->get<std::string>());
    if (!type)
      fail(where + "dtype " + dt->get<std::string>() + " is not supported (expected F32, F16, BF16 or F8_E4M3)");
    if (sh->size() > 4) fail(where + "shape " + shape_str(*sh) + " has more than 4 dimensions");
    TensorRef t;
    t.name = tname;
    t.type = *type;
    t.file = name;
    uint64_t n_elem = 1;
    for (auto d = sh->rbegin(); d != sh->rend(); ++d) {  // HF [out, in] -> GGUF ne {in, out}
      uint64_t x = 0;
      if (!as_u64(*d, x) || x == 0 || x > uint64_t(INT64_MAX))
        fail(where + "shape " + shape_str(*sh) + ": every dimension must be an integer >= 1");
      if (__builtin_mul_overflow(n_elem, x, &n_elem) || n_elem > uint64_t(INT64_MAX))
        fail(where + "shape " + shape_str(*sh) + ": element count overflows");
      t.ne.push_back(int64_t(x));
    }
    if (t.ne.empty()) t.ne.push_back(1);  // a scalar
    uint64_t begin = 0, end = 0;
    if (!as_u64((*off)[0], begin) || !as_u64((*off)[1], end) || end < begin)
      fail(where + "data_offsets " + off->dump() + ", expected [begin, end] with 0 <= begin <= end");
    if (end > data_bytes)
      fail(where + "data_offsets " + off->dump() + " end past the data section (" +
           std::to_string(data_bytes) + " bytes after the header; file size " +
           std::to_string(size) + ")");
    uint64_t want = 0;
    if (__builtin_mul_overflow(n_elem, uint64_t(info(*type).block_bytes), &want) || want != end - begin)
      fail(where + "data_offsets " + off->dump() + " hold " + std::to_string(end - begin) +
           " bytes but shape " + shape_str(*sh) + " x " + dt->get<std::string>() + " needs " +
           std::to_string(want));
    t.data = data + h.data_offset + begin;
    t.bytes = want;
    if (*dt == "F8_E4M3") h.f8_e4m3.push_back(tname);
    h.tensors.push_back(std::move(t));
  }
  std::sort(h.tensors.begin(), h.tensors.end(),
            [](const TensorRef& a, const TensorRef& b) { return a.data < b.data; });
  for (size_t i = 1; i < h.tensors.size(); ++i) {
    const TensorRef& a = h.tensors[i - 1];
    const TensorRef& b = h.tensors[i];
    if (a.data + a.bytes > b.data)
      fail("tensor '" + b.name + "' overlaps tensor '" + a.name + "' in the data section");
  }
  return h;
}

SafetensorsFile read_safetensors(const std::string& path) {
  SafetensorsFile f;
  f.map = mem::MappedFile::open(path);
  f.header = parse_safetensors(f.map.data(), f.map.size(), path);
  return f;
}

SafetensorsIndex read_safetensors_index(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open: " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  if (json_depth(text.data(), text.size()) > kMaxJsonDepth)
    throw Error(path + ": JSON nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(path + ": not valid JSON: " + e.what());
  }
  auto wm = j.is_object() ? j.find("weight_map") : j.end();
  if (!j.is_object() || wm == j.end() || !wm->is_object())
    throw Error(path + ": missing object 'weight_map' (tensor name -> shard file)");
  SafetensorsIndex idx;
  std::set<std::string> seen;
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it.value().is_string())
      throw Error(path + ": weight_map entry '" + it.key() + "' is a " + it.value().type_name() +
                  ", expected a file name");
    std::string file = it.value().get<std::string>();
    if (file.empty() || file.find('/') != std::string::npos || file == "." || file == "..")
      throw Error(path + ": weight_map entry '" + it.key() + "' names '" + file +
                  "', expected a file name in the same directory");
    idx.weight_map[it.key()] = file;
    if (seen.insert(file).second) idx.files.push_back(file);
  }
  return idx;
}

}  // namespace hexe
