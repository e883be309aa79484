// Weight/activation formats shared by every layer: GGML type ids, block sizes and bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace hexe {

// Ids equal GGML's `ggml_type` values so GGUF type ids map one to one. Gaps are ids GGML retired.
enum class DType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22,
  IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
};

struct DTypeInfo {
  std::string_view name;  // as GGML and llama.cpp print it: "q4_K", "bf16"
  uint32_t block_elems;   // elements per block (1 for plain types)
  uint32_t block_bytes;   // bytes per block
  bool computable;        // hexe has a dequantiser and dot kernels for it
};

namespace detail {
inline constexpr uint32_t kDTypeCount = 40;
inline constexpr DTypeInfo kDTypeTable[kDTypeCount] = {
    {"f32", 1, 4, true},        {"f16", 1, 2, true},        {"q4_0", 32, 18, true},
    {"q4_1", 32, 20, true},     {"", 0, 0, false},          {"", 0, 0, false},
    {"q5_0", 32, 22, true},     {"q5_1", 32, 24, true},     {"q8_0", 32, 34, true},
    {"q8_1", 32, 36, false},    {"q2_K", 256, 84, false},   {"q3_K", 256, 110, false},
    {"q4_K", 256, 144, true},   {"q5_K", 256, 176, true},   {"q6_K", 256, 210, true},
    {"q8_K", 256, 292, false},  {"iq2_xxs", 256, 66, false}, {"iq2_xs", 256, 74, false},
    {"iq3_xxs", 256, 98, false}, {"iq1_s", 256, 50, false}, {"iq4_nl", 32, 18, false},
    {"iq3_s", 256, 110, false}, {"iq2_s", 256, 82, false},  {"iq4_xs", 256, 136, false},
    {"i8", 1, 1, false},        {"i16", 1, 2, false},       {"i32", 1, 4, false},
    {"i64", 1, 8, false},       {"f64", 1, 8, false},       {"iq1_m", 256, 56, false},
    {"bf16", 1, 2, true},       {"", 0, 0, false},          {"", 0, 0, false},
    {"", 0, 0, false},          {"tq1_0", 256, 54, false},  {"tq2_0", 256, 66, false},
    {"", 0, 0, false},          {"", 0, 0, false},          {"", 0, 0, false},
    {"mxfp4", 32, 17, false},
};
}  // namespace detail

// Info for a raw GGUF type id; nullopt for ids GGML never defined or retired.
inline std::optional<DTypeInfo> dtype_info(uint32_t id) {
  if (id >= detail::kDTypeCount || detail::kDTypeTable[id].block_elems == 0) return std::nullopt;
  return detail::kDTypeTable[id];
}
inline const DTypeInfo& info(DType t) { return detail::kDTypeTable[static_cast<uint32_t>(t)]; }
inline std::string_view dtype_name(DType t) { return info(t).name; }
inline bool is_quantized(DType t) { return info(t).block_elems > 1; }

// Parses "q4_K", "Q4_K", "bf16"... (case-insensitive); nullopt when unknown.
inline std::optional<DType> dtype_from_name(std::string_view s) {
  for (uint32_t i = 0; i < detail::kDTypeCount; ++i) {
    auto n = detail::kDTypeTable[i].name;
    if (n.empty() || n.size() != s.size()) continue;
    bool eq = true;
    for (size_t k = 0; k < n.size() && eq; ++k) {
      char a = n[k], b = s[k];
      if (a >= 'A' && a <= 'Z') a = char(a - 'A' + 'a');
      if (b >= 'A' && b <= 'Z') b = char(b - 'A' + 'a');
      eq = a == b;
    }
    if (eq) return static_cast<DType>(i);
  }
  return std::nullopt;
}

// Bytes of a row of n elements; n must be a multiple of the block size (callers check).
inline uint64_t row_bytes(DType t, uint64_t n) {
  const auto& i = info(t);
  return n / i.block_elems * i.block_bytes;
}

}  // namespace hexe
