// Key/value metadata of a model file, in GGUF's vocabulary (safetensors configs are mapped to it).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hexe {

// GGUF metadata value type ids (gguf_type).
enum class GgufValueType : uint32_t {
  UInt8 = 0, Int8 = 1, UInt16 = 2, Int16 = 3, UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7,
  String = 8, Array = 9, UInt64 = 10, Int64 = 11, Float64 = 12,
};

// One metadata value. Scalars live in the field of their family; arrays keep their element type
// and the elements in the matching vector (strings, ints, floats, or nested arrays).
struct MetaValue {
  GgufValueType type = GgufValueType::UInt32;
  GgufValueType elem_type = GgufValueType::UInt32;  // arrays only
  int64_t i = 0;        // every integer type and Bool (uint64 values above INT64_MAX wrap; none seen)
  double f = 0.0;       // Float32/Float64
  std::string s;        // String
  std::vector<int64_t> ints;           // arrays of integers / bools
  std::vector<double> floats;          // arrays of floats
  std::vector<std::string> strings;    // arrays of strings
  std::vector<MetaValue> arrays;       // arrays of arrays

  bool is_int() const;
  bool is_float() const;
  bool is_array() const { return type == GgufValueType::Array; }
  size_t array_size() const;
};

const char* gguf_value_type_name(GgufValueType t);

// Ordered map so printing and writing are deterministic.
class Metadata {
 public:
  std::map<std::string, MetaValue, std::less<>> values;
  std::string source;  // file the values came from, for error messages

  const MetaValue* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }
  // Typed getters; the `require_` ones throw an error naming the source file, key and expectation.
  std::optional<int64_t> get_int(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;  // ints convert
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<std::string> get_string(std::string_view key) const;
  int64_t require_int(std::string_view key) const;
  double require_float(std::string_view key) const;
  std::string require_string(std::string_view key) const;

  void set_int(std::string key, int64_t v, GgufValueType t = GgufValueType::UInt32);
  void set_float(std::string key, double v);
  void set_bool(std::string key, bool v);
  void set_string(std::string key, std::string v);
};

}  // namespace hexe
