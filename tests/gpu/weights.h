// Test weights in GGML block layouts: quantised from random floats by cpu::quantize_row, or
// random bytes with finite scales (every bit pattern of the quants and packed scales occurs).
#pragma once

#include <cstdint>
#include <ostream>
#include <random>
#include <vector>

#include "cpu_kernels/format.h"
#include "cpu_kernels/quant.h"
#include "tests/gpu/gpu_test_util.h"

namespace hexe {
// Test names and failure messages print weight types as GGML names ("q4_K"), not numbers.
inline void PrintTo(DType t, std::ostream* os) { *os << dtype_name(t); }
}  // namespace hexe

namespace hexe::gpu::test {

enum class Source { kQuantized, kRandomBits };
inline const char* source_name(Source s) { return s == Source::kQuantized ? "quantized" : "bits"; }
inline void PrintTo(Source s, std::ostream* os) { *os << source_name(s); }

// Byte offsets of the F16 scale fields in a block of t (GGML layouts, see cpu_kernels/blocks.h).
inline std::vector<int> f16_field_offsets(DType t) {
  switch (t) {
    case DType::Q4_0: case DType::Q5_0: case DType::Q8_0: return {0};
    case DType::Q4_1: case DType::Q5_1: case DType::Q4_K: case DType::Q5_K: return {0, 2};
    case DType::Q6_K: return {208};
    default: return {};
  }
}

// n rows of k elements of t, rows contiguous.
inline std::vector<uint8_t> make_weights(DType t, int64_t n, int64_t k, Source src, uint64_t seed) {
  const uint64_t rb = row_bytes(t, uint64_t(k));
  std::vector<uint8_t> w(rb * uint64_t(n));
  std::mt19937_64 rng(seed);
  if (src == Source::kQuantized) {
    for (int64_t r = 0; r < n; ++r) {
      const auto row = random_floats(size_t(k), seed * 7919 + uint64_t(r));
      cpu::quantize_row(t, row.data(), w.data() + rb * uint64_t(r), k);
    }
    return w;
  }
  for (auto& b : w) b = uint8_t(rng());
  if (t == DType::F32 || t == DType::F16 || t == DType::BF16) {
    // Finite values only: clear the top exponent bit pattern by redrawing (F32: exponent < 0xFF;
    // halves: exponent < max), then keep magnitudes tame for F32/BF16 so dot products stay finite.
    std::uniform_real_distribution<float> d(-8.f, 8.f);
    for (int64_t i = 0; i < n * k; ++i) {
      if (t == DType::F16) {
        uint16_t h = uint16_t(rng());
        while (((h >> 10) & 0x1F) == 0x1F) h = uint16_t(rng());
        std::memcpy(w.data() + 2 * i, &h, 2);
      } else if (t == DType::BF16) {
        const uint16_t h = cpu::f32_to_bf16(d(rng));
        std::memcpy(w.data() + 2 * i, &h, 2);
      } else {
        const float v = d(rng);
        std::memcpy(w.data() + 4 * i, &v, 4);
      }
    }
    return w;
  }
  const uint32_t bb = info(t).block_bytes;
  std::uniform_real_distribution<float> scale(-1.f, 1.f);
  for (size_t off = 0; off < w.size(); off += bb)
    for (int f : f16_field_offsets(t)) {
      const uint16_t h = cpu::f32_to_f16(scale(rng) * 0.05f);
      std::memcpy(w.data() + off + size_t(f), &h, 2);
    }
  return w;
}

// Row r of w dequantised by the CPU reference (the single truth).
inline std::vector<float> dequantize_ref(DType t, const std::vector<uint8_t>& w, int64_t n, int64_t k) {
  std::vector<float> out(static_cast<size_t>(n * k));
  const uint64_t rb = row_bytes(t, uint64_t(k));
  for (int64_t r = 0; r < n; ++r) cpu::dequantize_row(t, w.data() + rb * uint64_t(r), out.data() + r * k, k);
  return out;
}

inline const std::vector<DType>& gpu_weight_types() {
  static const std::vector<DType> v = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0,
                                       DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0,
                                       DType::Q4_K, DType::Q5_K, DType::Q6_K};
  return v;
}

}  // namespace hexe::gpu::test
