// Metadata: typed access to GGUF-style key/value pairs, with errors that name the file and key.
#include "runtime/model/metadata.h"

#include <cmath>

#include "memory/error.h"

namespace hexe {

bool MetaValue::is_int() const {
  switch (type) {
    case GgufValueType::UInt8: case GgufValueType::Int8: case GgufValueType::UInt16:
    case GgufValueType::Int16: case GgufValueType::UInt32: case GgufValueType::Int32:
    case GgufValueType::UInt64: case GgufValueType::Int64: case GgufValueType::Bool:
      return true;
    default:
      return false;
  }
}

bool MetaValue::is_float() const {
  return type == GgufValueType::Float32 || type == GgufValueType::Float64;
}

size_t MetaValue::array_size() const {
  if (!is_array()) return 0;
  switch (elem_type) {
    case GgufValueType::String: return strings.size();
    case GgufValueType::Float32: case GgufValueType::Float64: return floats.size();
    case GgufValueType::Array: return arrays.size();
    default: return ints.size();
  }
}

const char* gguf_value_type_name(GgufValueType t) {
  switch (t) {
    case GgufValueType::UInt8: return "uint8";
    case GgufValueType::Int8: return "int8";
    case GgufValueType::UInt16: return "uint16";
    case GgufValueType::Int16: return "int16";
    case GgufValueType::UInt32: return "uint32";
    case GgufValueType::Int32: return "int32";
    case GgufValueType::Float32: return "float32";
    case GgufValueType::Bool: return "bool";
    case GgufValueType::String: return "string";
    case GgufValueType::Array: return "array";
    case GgufValueType::UInt64: return "uint64";
    case GgufValueType::Int64: return "int64";
    case GgufValueType::Float64: return "float64";
  }
  return "unknown";
}

const MetaValue* Metadata::find(std::string_view key) const {
  auto it = values.find(key);
  return it == values.end() ? nullptr : &it->second;
}

namespace {
std::string where(const Metadata& m, std::string_view key) {
  return (m.source.empty() ? std::string("metadata") : m.source) + ": key '" + std::string(key) + "'";
}
}  // namespace

std::optional<int64_t> Metadata::get_int(std::string_view key) const {
  const MetaValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (v->is_int()) return v->i;
  if (v->is_float() && std::isfinite(v->f) && v->f == std::floor(v->f) && std::fabs(v->f) < 9e18)
    return int64_t(v->f);
  throw Error(where(*this, key) + ": is a " + gguf_value_type_name(v->type) +
              ", expected an integer");
}

std::optional<double> Metadata::get_float(std::string_view key) const {
  const MetaValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (v->is_float()) return v->f;
  if (v->is_int()) return double(v->i);
  throw Error(where(*this, key) + ": is a " + gguf_value_type_name(v->type) +
              ", expected a number");
}

std::optional<bool> Metadata::get_bool(std::string_view key) const {
  const MetaValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (v->is_int()) return v->i != 0;
  throw Error(where(*this, key) + ": is a " + gguf_value_type_name(v->type) +
              ", expected a bool");
}

std::optional<std::string> Metadata::get_string(std::string_view key) const {
  const MetaValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (v->type == GgufValueType::String) return v->s;
  throw Error(where(*this, key) + ": is a " + gguf_value_type_name(v->type) +
              ", expected a string");
}

int64_t Metadata::require_int(std::string_view key) const {
  auto v = get_int(key);
  if (!v) throw Error(where(*this, key) + ": missing, expected an integer");
  return *v;
}

double Metadata::require_float(std::string_view key) const {
  auto v = get_float(key);
  if (!v) throw Error(where(*this, key) + ": missing, expected a number");
  return *v;
}

std::string Metadata::require_string(std::string_view key) const {
  auto v = get_string(key);
  if (!v) throw Error(where(*this, key) + ": missing, expected a string");
  return *v;
}

void Metadata::set_int(std::string key, int64_t v, GgufValueType t) {
  MetaValue probe;
  probe.type = t;
  if (!probe.is_int())
    throw Error(where(*this, key) + ": set_int with value type " + gguf_value_type_name(t) +
                ", expected an integer or bool type");
  MetaValue m;
  m.type = t;
  m.i = v;
  values[std::move(key)] = std::move(m);
}

void Metadata::set_float(std::string key, double v) {
  MetaValue m;
  m.type = GgufValueType::Float32;
  m.f = v;
  values[std::move(key)] = std::move(m);
}

void Metadata::set_bool(std::string key, bool v) {
  MetaValue m;
  m.type = GgufValueType::Bool;
  m.i = v ? 1 : 0;
  values[std::move(key)] = std::move(m);
}

void Metadata::set_string(std::string key, std::string v) {
  MetaValue m;
  m.type = GgufValueType::String;
  m.s = std::move(v);
  values[std::move(key)] = std::move(m);
}

}  // namespace hexe
