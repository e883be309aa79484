// Host-only test of the integer GEMV's per-block math (gpu_kernels/gemv_q.cuh), run on the CPU
// with the header's portable dp4a/funnel-shift emulation, so it needs no GPU and never skips:
//   * the activation quantisers (lane split as on the device, lane-crossing steps emulated)
//     byte-identical to cpu::quantize_row (Q8_K, Q8_0);
//   * per block, the lanes' integer sums add up to vec_dot_ref's (the block's float result is
//     then bit-identical when scaled with the reference's expression);
//   * per row, the kernel's lane/step/warp-reduction order within the float rounding bound.
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>

#include "cpu_kernels/blocks.h"
#include "cpu_kernels/kernels.h"
#include "cpu_kernels/quant.h"
#include "gpu_kernels/gemv_q.cuh"
#include "tests/gpu/weights.h"

namespace hexe::gpu::test {
namespace {

namespace q = hexe::gpu::q;

// 64-byte aligned host bytes (the kernel's weight pointers are 16-byte aligned).
struct Bytes {
  std::unique_ptr<uint8_t[]> raw;
  uint8_t* p = nullptr;
  explicit Bytes(size_t n) : raw(new uint8_t[n + 64]()) {
    p = raw.get() + (64 - reinterpret_cast<uintptr_t>(raw.get()) % 64) % 64;
  }
};

// Emulates gemv.cu's quantize_x for one token of k floats into its shared-memory region.
template <q::Act A>
void emulate_quantize(const float* x, int k, const q::ActLayout& lay, uint8_t* tok) {
  if constexpr (A == q::Act::Q8_K) {
    for (int sb = 0; sb < k / 256; ++sb) {
      float amax[16], vmax[16], g = 0.f;
      for (int l = 0; l < 16; ++l) {
        q::q8k_lane_absmax(x + 256 * sb + 16 * l, &amax[l], &vmax[l]);
        g = std::fmax(g, amax[l]);
      }
      int first = 0;
      while (amax[first] != g) ++first;
      for (int l = 0; l < 16; ++l) {
        uint32_t qv[4] = {0, 0, 0, 0};
        int bsum = 0;
        if (g != 0.f) q::q8k_lane_quantize(x + 256 * sb + 16 * l, vmax[first], qv, &bsum);
        q::store_q8k_lane(tok, lay, 16 * sb + l, qv, bsum);
      }
      q::store_q8k_scale(tok, lay, sb, g != 0.f ? q::q8k_scale(vmax[first]) : 0.f);
    }
  } else {
    for (int b = 0; b < k / 32; ++b) {
      const float a = std::fmax(q::q80_lane_absmax(x + 32 * b), q::q80_lane_absmax(x + 32 * b + 16));
      int sum = 0;
      float d16 = 0.f;
      for (int h = 0; h < 2; ++h) {
        uint32_t qv[4];
        int s;
        q::q80_lane_quantize(x + 32 * b + 16 * h, a, qv, &s, &d16);
        sum += s;
        q::store_q80_lane(tok, lay, 2 * b + h, qv);
      }
      q::store_q80_meta(tok, lay, b, d16, sum);
    }
  }
}

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Activation rows that stress the quantisers: magnitudes from 1e-30 to 1e30, zero blocks, ties
// between +max and -max, constant blocks, values landing on rounding ties, single outliers.
std::vector<float> stress_activations(int k, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  const float scales[] = {1e-30f, 3e-12f, 1e-3f, 1.f, 7.5f, 1e6f, 1e30f};
  std::vector<float> x(static_cast<size_t>(k));
  for (int b = 0; b < k / 32; ++b) {
    float* v = x.data() + 32 * b;
    const float s = scales[rng() % 7];
    const int kind = int(rng() % 8);
    for (int j = 0; j < 32; ++j) v[j] = u(rng) * s;
    if (kind == 0) {
      for (int j = 0; j < 32; ++j) v[j] = 0.f;
    } else if (kind == 1) {  // +A and -A: the first one decides the sign of the scale
      v[rng() % 32] = 2 * s;
      v[rng() % 32] = -2 * s;
    } else if (kind == 2) {
      for (int j = 0; j < 32; ++j) v[j] = s;
    } else if (kind == 3) {  // small integers over a power-of-two max: exact .5 products occur
      for (int j = 0; j < 32; ++j) v[j] = float(int(rng() % 255) - 127) * 0.5f;
      v[0] = 127.f;
    } else if (kind == 4) {
      v[rng() % 32] = -1000 * s;
    }
  }
  return x;
}

TEST(GemvQHost, Q8KActivationsMatchReferenceBytes) {
  for (int k : {256, 2048, 4352}) {
    for (uint64_t seed = 1; seed <= 40; ++seed) {
      const auto x = stress_activations(k, seed * 31 + uint64_t(k));
      std::vector<cpu::BlockQ8_K> ref(size_t(k / 256));
      cpu::quantize_row(DType::Q8_K, x.data(), ref.data(), k);
      const auto lay = q::act_layout<q::Act::Q8_K>(k);
      std::vector<uint8_t> tok(size_t(lay.token_bytes), 0xA5);
      emulate_quantize<q::Act::Q8_K>(x.data(), k, lay, tok.data());
      for (int sb = 0; sb < k / 256; ++sb) {
        float d;
        std::memcpy(&d, tok.data() + lay.d_off + 4 * sb, 4);
        ASSERT_EQ(bits(d), bits(ref[size_t(sb)].d)) << "k " << k << " seed " << seed << " sb " << sb;
        for (int e = 0; e < 256; ++e)
          ASSERT_EQ(int8_t(tok[size_t(q::qs_offset<q::Act::Q8_K>(256 * sb + e))]), ref[size_t(sb)].qs[e])
              << "k " << k << " seed " << seed << " sb " << sb << " e " << e;
        for (int j = 0; j < 16; ++j) {
          int16_t bs;
          std::memcpy(&bs, tok.data() + lay.meta_off + 2 * (16 * sb + j), 2);
          ASSERT_EQ(bs, ref[size_t(sb)].bsums[j]) << "k " << k << " seed " << seed << " sb " << sb << " j " << j;
        }
      }
    }
  }
}

TEST(GemvQHost, Q80ActivationsMatchReferenceBytes) {
  for (int k : {32, 2048, 2080}) {
    for (uint64_t seed = 1; seed <= 40; ++seed) {
      const auto x = stress_activations(k, seed * 37 + uint64_t(k));
      std::vector<cpu::BlockQ8_0> ref(size_t(k / 32));
      cpu::quantize_row(DType::Q8_0, x.data(), ref.data(), k);
      const auto lay = q::act_layout<q::Act::Q8_0>(k);
      std::vector<uint8_t> tok(size_t(lay.token_bytes), 0xA5);
      emulate_quantize<q::Act::Q8_0>(x.data(), k, lay, tok.data());
      for (int b = 0; b < k / 32; ++b) {
        float d;
        int sum, ref_sum = 0;
        std::memcpy(&d, tok.data() + lay.meta_off + 8 * b, 4);
        std::memcpy(&sum, tok.data() + lay.meta_off + 8 * b + 4, 4);
        const float ref_d = cpu::f16_to_f32(ref[size_t(b)].d);
        ASSERT_EQ(bits(d), bits(ref_d)) << "k " << k << " seed " << seed << " block " << b;
        for (int e = 0; e < 32; ++e) {
          ASSERT_EQ(int8_t(tok[size_t(q::qs_offset<q::Act::Q8_0>(32 * b + e))]), ref[size_t(b)].qs[e])
              << "k " << k << " seed " << seed << " block " << b << " e " << e;
          ref_sum += ref[size_t(b)].qs[e];
        }
        ASSERT_EQ(sum, ref_sum);
      }
    }
  }
}

// ---- Weight-block dots ------------------------------------------------------------------------

template <class T> constexpr DType kType = DType::F32;
template <> constexpr DType kType<q::Q4K> = DType::Q4_K;
template <> constexpr DType kType<q::Q5K> = DType::Q5_K;
template <> constexpr DType kType<q::Q6K> = DType::Q6_K;
template <> constexpr DType kType<q::Q80> = DType::Q8_0;
template <> constexpr DType kType<q::Q40> = DType::Q4_0;

// Random rows of T: quantised from random floats or random bytes, with the F16 scale fields
// drawn from a list that includes extreme values (subnormal, max finite, 0, negative).
template <class T>
void fill_weights(uint8_t* w, int64_t rows, int64_t k, uint64_t seed) {
  const DType t = kType<T>;
  const auto src = seed % 2 ? Source::kQuantized : Source::kRandomBits;
  const auto v = make_weights(t, rows, k, src, seed);
  std::memcpy(w, v.data(), v.size());
  if (src == Source::kQuantized) return;
  std::mt19937_64 rng(seed);
  const float extremes[] = {6e-8f, 1e-4f, 0.05f, -0.3f, 1.f, 0.f, 60000.f, -65504.f};
  for (size_t off = 0; off < v.size(); off += T::kUnitBytes)
    for (int f : f16_field_offsets(t))
      if (rng() % 3 == 0) {
        const uint16_t h = cpu::f32_to_f16(extremes[rng() % 8]);
        std::memcpy(w + off + size_t(f), &h, 2);
      }
}

// Activations with a block of extreme magnitude here and there (finite products throughout).
std::vector<float> dot_activations(int k, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  std::vector<float> x(static_cast<size_t>(k));
  for (int b = 0; b < k / 32; ++b) {
    const float s = rng() % 5 == 0 ? (rng() % 2 ? 1e-20f : 1e3f) : 1.f;
    for (int j = 0; j < 32; ++j) x[size_t(32 * b + j)] = u(rng) * s;
  }
  return x;
}

// The reference's float expression for one block from the block's integer sums.
template <class T>
float block_float(const q::Ints& s, const typename T::Unpacked& u, const typename T::ActFrag& a) {
  if constexpr (std::is_same_v<T, q::Q4K> || std::is_same_v<T, q::Q5K>)
    return a.d * u.d * float(s.sumi) - a.d * u.dmin * float(s.summ);
  else if constexpr (std::is_same_v<T, q::Q6K>)
    return a.d * u.d * float(s.sumi);
  else
    return float(s.sumi) * (u.d * a.d);
}

// The lane's magnitude of the terms it adds (for the rounding bound).
template <class T>
double lane_magnitude(const q::Ints& s, const typename T::Unpacked& u, const typename T::ActFrag& a) {
  double m = std::fabs(double(a.d) * double(u.d) * double(s.sumi));
  if constexpr (std::is_same_v<T, q::Q4K> || std::is_same_v<T, q::Q5K>)
    m += std::fabs(double(a.d) * double(u.dmin) * double(s.summ));
  return m;
}

template <class T>
void check_block_dots() {
  constexpr DType t = kType<T>;
  constexpr int k = T::kUnitElems;
  constexpr int64_t rows = 301;  // consecutive 1-block rows: every 2-byte alignment occurs
  Bytes w(size_t(rows) * T::kUnitBytes);
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    fill_weights<T>(w.p, rows, k, seed * 1009 + uint64_t(t));
    const auto x = dot_activations(k, seed);
    const DType at = cpu::paired_activation(t);
    std::vector<uint8_t> act_ref(row_bytes(at, k));
    cpu::quantize_row(at, x.data(), act_ref.data(), k);
    const auto lay = q::act_layout<T::kAct>(k);
    std::vector<uint8_t> tok(size_t(lay.token_bytes));
    emulate_quantize<T::kAct>(x.data(), k, lay, tok.data());
    for (int64_t r = 0; r < rows; ++r) {
      const uint8_t* row = w.p + r * T::kUnitBytes;
      q::Ints sum;
      typename T::Unpacked u{};
      typename T::ActFrag a{};
      for (int part = 0; part < T::kLanes; ++part) {
        typename T::Frag f{};
        T::load(row, 0, part, f);
        T::prep(f, part, u);
        T::load_act(tok.data(), lay, 0, part, a);
        const q::Ints s = T::ints(u, a);
        sum.sumi += s.sumi;
        sum.summ += s.summ;
      }
      const float ref = cpu::vec_dot_ref(t, k, row, act_ref.data());
      const float got = 0.f + block_float<T>(sum, u, a);  // vec_dot_ref adds to acc = 0
      if (std::isnan(ref)) {
        ASSERT_TRUE(std::isnan(got)) << dtype_name(t) << " seed " << seed << " row " << r;
      } else {
        ASSERT_EQ(bits(got), bits(ref)) << dtype_name(t) << " seed " << seed << " row " << r << ": " << got
                                        << " vs " << ref;
      }
    }
  }
}

TEST(GemvQHost, Q4KBlockDotsMatchVecDotRef) { check_block_dots<q::Q4K>(); }
TEST(GemvQHost, Q5KBlockDotsMatchVecDotRef) { check_block_dots<q::Q5K>(); }
TEST(GemvQHost, Q6KBlockDotsMatchVecDotRef) { check_block_dots<q::Q6K>(); }
TEST(GemvQHost, Q80BlockDotsMatchVecDotRef) { check_block_dots<q::Q80>(); }
TEST(GemvQHost, Q40BlockDotsMatchVecDotRef) { check_block_dots<q::Q40>(); }

// Whole rows in the kernel's order: lane l adds units s*U + l/kLanes over the steps s, then the
// warp's xor-butterfly sum.
template <class T>
void check_row_dots(int units) {
  constexpr DType t = kType<T>;
  constexpr int kUnitsPerStep = 32 / T::kLanes;
  const int k = units * T::kUnitElems;
  const int64_t rows = 9;
  const uint64_t rb = row_bytes(t, uint64_t(k));
  Bytes w(size_t(rows * int64_t(rb)));
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    fill_weights<T>(w.p, rows, k, seed * 7 + uint64_t(units));
    const auto x = dot_activations(k, seed + 100);
    const DType at = cpu::paired_activation(t);
    std::vector<uint8_t> act_ref(row_bytes(at, uint64_t(k)));
    cpu::quantize_row(at, x.data(), act_ref.data(), k);
    const auto lay = q::act_layout<T::kAct>(k);
    std::vector<uint8_t> tok(size_t(lay.token_bytes));
    emulate_quantize<T::kAct>(x.data(), k, lay, tok.data());
    for (int64_t r = 0; r < rows; ++r) {
      const uint8_t* row = w.p + uint64_t(r) * rb;
      float lane_acc[32] = {};
      double mag = 0;
      for (int lane = 0; lane < 32; ++lane) {
        for (int s = 0; s * kUnitsPerStep < units; ++s) {
          const int unit = s * kUnitsPerStep + lane / T::kLanes, part = lane % T::kLanes;
          if (unit >= units) continue;
          typename T::Frag f{};
          typename T::Unpacked u{};
          typename T::ActFrag a{};
          T::load(row, unit, part, f);
          T::prep(f, part, u);
          T::load_act(tok.data(), lay, unit, part, a);
          lane_acc[lane] += T::dot(u, a);
          mag += lane_magnitude<T>(T::ints(u, a), u, a);
        }
      }
      for (int off = 16; off > 0; off >>= 1) {
        float next[32];
        for (int l = 0; l < 32; ++l) next[l] = lane_acc[l] + lane_acc[l ^ off];
        std::memcpy(lane_acc, next, sizeof next);
      }
      const float ref = cpu::vec_dot_ref(t, k, row, act_ref.data());
      if (!std::isfinite(ref)) continue;  // an extreme F16 scale times a large activation block
      const double tol = double(units + 32) * 0x1.0p-23 * mag;
      ASSERT_NEAR(lane_acc[0], ref, tol) << dtype_name(t) << " units " << units << " seed " << seed << " row " << r;
    }
  }
}

TEST(GemvQHost, Q4KRowDotsMatchVecDotRef) { for (int u : {1, 8, 9, 28}) check_row_dots<q::Q4K>(u); }
TEST(GemvQHost, Q5KRowDotsMatchVecDotRef) { for (int u : {1, 8, 9, 17}) check_row_dots<q::Q5K>(u); }
TEST(GemvQHost, Q6KRowDotsMatchVecDotRef) { for (int u : {1, 3, 8, 9, 17}) check_row_dots<q::Q6K>(u); }
TEST(GemvQHost, Q80RowDotsMatchVecDotRef) { for (int u : {1, 31, 64, 70}) check_row_dots<q::Q80>(u); }
TEST(GemvQHost, Q40RowDotsMatchVecDotRef) { for (int u : {1, 33, 64, 70}) check_row_dots<q::Q40>(u); }

// The portable primitives against their definitions.
TEST(GemvQHost, PrimitivesMatchDefinitions) {
  std::mt19937_64 rng(5);
  for (int i = 0; i < 10000; ++i) {
    const auto a = uint32_t(rng()), b = uint32_t(rng());
    int ref = 7;
    for (int j = 0; j < 4; ++j) ref += int(int8_t(a >> (8 * j))) * int(int8_t(b >> (8 * j)));
    ASSERT_EQ(q::dp4a(a, b, 7), ref);
    for (uint32_t s : {0u, 8u, 16u, 24u}) ASSERT_EQ(q::funnel_r(a, b, s), s ? (a >> s) | (b << (32 - s)) : a);
  }
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = q::f16_bits_to_float(h);
    const float r = cpu::f16_to_f32(uint16_t(h));
    if (std::isnan(r)) ASSERT_TRUE(std::isnan(f));
    else ASSERT_EQ(bits(f), bits(r)) << h;
  }
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (int i = 0; i < 100000; ++i) {
    const float f = std::ldexp(u(rng), int(rng() % 60) - 40);
    ASSERT_EQ(bits(q::f16_round(f)), bits(cpu::f16_to_f32(cpu::f32_to_f16(f)))) << f;
    const float v = u(rng) * 200.f;
    ASSERT_EQ(q::round_away(v), int(std::round(v))) << v;
  }
  for (float v : {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 126.5f, -127.5f})
    ASSERT_EQ(q::round_away(v), int(std::round(v))) << v;
}

}  // namespace
}  // namespace hexe::gpu::test
