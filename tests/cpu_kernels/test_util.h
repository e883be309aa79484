// Shared helpers of the cpu_kernels tests: tiers x formats parameters, random data, tolerances.
#pragma once

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include "cpu_kernels/format.h"
#include "cpu_kernels/isa.h"
#include "cpu_kernels/kernels.h"
#include "cpu_kernels/quant.h"

namespace hexe::cpu::test {

inline const std::vector<Isa>& all_tiers() {
  static const std::vector<Isa> t = {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Amx};
  return t;
}

inline const std::vector<DType>& computable_types() {
  static const std::vector<DType> t = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0,
                                       DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0,
                                       DType::Q4_K, DType::Q5_K, DType::Q6_K};
  return t;
}

// Skips the running test when the CPU cannot execute `tier`.
#define HEXE_SKIP_IF_TIER_ABSENT(tier)                                                          \
  do {                                                                                          \
    if (int(tier) > int(::hexe::cpu::hardware_isa()))                                           \
      GTEST_SKIP() << "CPU lacks " << ::hexe::cpu::isa_name(tier) << " (best: "                 \
                   << ::hexe::cpu::isa_name(::hexe::cpu::hardware_isa()) << ")";                \
  } while (0)

inline std::vector<float> random_floats(std::mt19937& rng, size_t n, float scale = 1.f) {
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// n rows of k elements in blocks of `block_bytes` (block_elems each) with random bytes everywhere
// (every scale, level and bit pattern occurs, which quantised data may miss), then the f16 fields
// at `f16_offsets` of each block set, in that order, to random finite values in [-0.01, 0.01].
inline std::vector<uint8_t> random_block_bits(std::mt19937& rng, int64_t n, int64_t k, size_t block_bytes,
                                              int64_t block_elems, std::initializer_list<size_t> f16_offsets) {
  std::vector<uint8_t> w(size_t(n * k / block_elems) * block_bytes);
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : w) b = uint8_t(byte(rng));
  std::uniform_real_distribution<float> dd(-0.01f, 0.01f);
  for (size_t b = 0; b < w.size() / block_bytes; ++b)
    for (size_t off : f16_offsets) {
      const uint16_t h = f32_to_f16(dd(rng));
      std::memcpy(w.data() + b * block_bytes + off, &h, 2);
    }
  return w;
}

// Activation row counts for the tiles' ragged-m tests: the edge cases first (a whole tile, one
// over, the overlapping last tile, under a tile: the AVX-512 hand-over), then random 1..72.
inline int64_t ragged_m(int rep, std::mt19937& rng) {
  static const int64_t kEdges[] = {16, 17, 31, 32, 33, 47, 64, 15, 1, 80};
  return rep < 10 ? kEdges[rep] : std::uniform_int_distribution<int64_t>(1, 72)(rng);
}

// n rows of k elements of `type` quantised from random floats (realistic, valid blocks).
inline std::vector<uint8_t> random_weights(std::mt19937& rng, DType type, int64_t n, int64_t k) {
  const auto f = random_floats(rng, size_t(n * k));
  const size_t rb = row_bytes(type, uint64_t(k));
  std::vector<uint8_t> w(rb * size_t(n));
  for (int64_t r = 0; r < n; ++r) quantize_row(type, f.data() + r * k, w.data() + r * rb, k);
  return w;
}

// The matmul tests' tolerance for one quantised dot against vec_dot_ref: 64 float ulp of
// sum |w x| over the dequantised weight row (type) and activation row (its paired format).
inline double ref_dot_tolerance(DType type, const uint8_t* w_row, const uint8_t* act_row, int64_t len) {
  std::vector<float> wf(static_cast<size_t>(len)), xf(static_cast<size_t>(len));
  dequantize_row(type, w_row, wf.data(), len);
  dequantize_row(paired_activation(type), act_row, xf.data(), len);
  double mag = 0;
  for (int64_t t = 0; t < len; ++t) mag += std::fabs(double(xf[size_t(t)]) * wf[size_t(t)]);
  return 64.0 * FLT_EPSILON * mag + 1e-30;
}

inline std::string lower(std::string_view s) {
  std::string r(s);
  for (auto& c : r) c = char(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

}  // namespace hexe::cpu::test
