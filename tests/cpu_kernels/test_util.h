// Shared helpers of the cpu_kernels tests: tiers x formats parameters, random data, tolerances.
#pragma once

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
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
