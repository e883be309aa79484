// Device-side readers of GGML's block layouts: each trait turns one "chunk" (a run of kElems
// consecutive elements of a weight row) into floats, in the CPU reference's operation order.
#pragma once

#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cpu_kernels/format.h"

namespace hexe::gpu::detail {

// The byte layouts below must agree with cpu_kernels/format.h's table (and blocks.h's structs).
constexpr uint32_t block_bytes(DType t) { return hexe::detail::kDTypeTable[uint32_t(t)].block_bytes; }
constexpr uint32_t block_elems(DType t) { return hexe::detail::kDTypeTable[uint32_t(t)].block_elems; }

__device__ __forceinline__ float half_at(const uint8_t* p) {
  return __half2float(__ushort_as_half(*reinterpret_cast<const unsigned short*>(p)));
}
__device__ __forceinline__ float bf16_bits(unsigned short b) { return __uint_as_float(uint32_t(b) << 16); }

// Loads 32 bytes from a 16-byte aligned address into b[0..32).
__device__ __forceinline__ void load32(const uint8_t* p, uint8_t* b) {
  const uint4 lo = __ldg(reinterpret_cast<const uint4*>(p));
  const uint4 hi = __ldg(reinterpret_cast<const uint4*>(p + 16));
  const uint32_t w[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
#pragma unroll
  for (int i = 0; i < 32; ++i) b[i] = uint8_t(w[i / 4] >> (8 * (i % 4)));
}

// Every trait: kType, kElems (elements per chunk; chunks never straddle a block), and
// load(row, c, v): v[0..kElems) = elements [c*kElems, (c+1)*kElems) of the row starting at `row`.
// Arithmetic uses __fmul_rn/__fadd_rn where the reference does a*b+c, so no FMA contraction
// changes the rounding: GPU dequantisation equals cpu::dequantize_row bit for bit.

// Legacy 32-element blocks: one chunk per block.
struct Q4_0 {
  static constexpr DType kType = DType::Q4_0;
  static constexpr int kElems = 32;
  __device__ static void load(const uint8_t* row, int64_t c, float* v) {
    const uint8_t* b = row + c * 18;
    const float d = half_at(b);
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      const uint8_t q = b[2 + j];
      v[j] = float(int(q & 0xF) - 8) * d;
      v[j + 16] = float(int(q >> 4) - 8) * d;
    }
  }
};

struct Q4_1 {
  static constexpr DType kType = DType::Q4_1;
  static constexpr int kElems = 32;
  __device__ static void load(const uint8_t* row, int64_t c, float* v) {
    const uint8_t* b = row + c * 20;
    const float d = half_at(b), m = half_at(b + 2);
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      const uint8_t q = b[4 + j];
      v[j] = __fadd_rn(__fmul_rn(float(q & 0xF), d), m);
      v[j + 16] = __fadd_rn(__fmul_rn(float(q >> 4), d), m);
    }
  }
};

// Bit j of qh (little endian) is the fifth bit of element j.
__device__ __forceinline__ uint32_t qh32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

struct Q5_0 {
  static constexpr DType kType = DType::Q5_0;
  static constexpr int kElems = 32;
  __device__ static void load(const uint8_t* row, int64_t c, float* v) {
    const uint8_t* b = row + c * 22;
    const float d = half_at(b);
    const uint32_t qh = qh32(b + 2);
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      const uint8_t q = b[6 + j];
      v[j] = float(int((q & 0xF) | ((qh >> j) & 1) << 4) - 16) * d;
      v[j + 16] = float(int((q >> 4) | ((qh >> (j + 16)) & 1) << 4) - 16) * d;
    }
  }
};

struct Q5_1 {
  static constexpr DType kType = DType::Q5_1;
  static constexpr int kElems = 32;
  __device__ static void load(const uint8_t* row, int64_t c, float* v) {
    const uint8_t* b = row + c * 24;
    const float d = half_at(b), m = half_at(b + 2);
    const uint32_t qh = qh32(b + 4);
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      const uint8_t q = b[8 + j];
      v[j] = __fadd_rn(__fmul_rn(float((q & 0xF) | ((qh >> j) & 1) << 4), d), m);
      v[j + 16] = __fadd_rn(__fmul_rn(float((q >> 4) | ((qh >> (j + 16)) & 1) << 4), d), m);
    }
  }
};

struct Q8_0 {
  static constexpr DType kType = DType::Q8_0;
  static constexpr int kElems = 32;
  __device__ static void load(const uint8_t* row, int64_t c, float* v) {
    const uint8_t* b = row + c * 34;
    const float d = half_at(b);
#pragma unroll
    for (int j = 0; j < 32; ++j) v[j] = float(int8_t(b[2 + j])) * d;
  }
};

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K super-block (GGML's packing).
__device__ __forceinline__ void k4_scale_min(int j, const uint8_t* q, int* sc, int* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// K-quants: chunk j (0..7) of a 256-element super-block is sub-block j (32 elements).
// Q4_K: d@0 dmin@2 scales[12]@4 qs[128]@16; 144 bytes, so blocks stay 16-byte aligned.
struct Q4_K {
  static constexpr DType kType = DType::Q4_K;
  static constexpr int kElems = 32;
  __device__ static void load(const uint8_t* row, int64_t c, float* v) {
    const uint8_t* b = row + (c >> 3) * 144;
    const int j = int(c & 7);
    const float d = half_at(b), dmin = half_at(b + 2);
    int sc, m;
    k4_scale_min(j, b + 4, &sc, &m);
    const float d1 = __fmul_rn(d, float(sc)), m1 = __fmul_rn(dmin, float(m));
    uint8_t q[32];
    load32(b + 16 + 32 * (j >> 1), q);
    const int shift = (j & 1) * 4;
#pragma unroll
    for (int l = 0; l < 32; ++l) v[l] = __fsub_rn(__fmul_rn(d1, float((q[l] >> shift) & 0xF)), m1);
  }
};

// Q5_K: d@0 dmin@2 scales[12]@4 qh[32]@16 qs[128]@48; 176 bytes (16-byte aligned blocks).
struct Q5_K {
  static constexpr DType kType = DType::Q5_K;
  static constexpr int kElems = 32;
  __device__ static void load(const uint8_t* row, int64_t c, float* v) {
    const uint8_t* b = row + (c >> 3) * 176;
    const int j = int(c & 7);
    const float d = half_at(b), dmin = half_at(b + 2);
    int sc, m;
    k4_scale_min(j, b + 4, &sc, &m);
    const float d1 = __fmul_rn(d, float(sc)), m1 = __fmul_rn(dmin, float(m));
    uint8_t q[32], h[32];
    load32(b + 48 + 32 * (j >> 1), q);
    load32(b + 16, h);
    const int shift = (j & 1) * 4;
#pragma unroll
    for (int l = 0; l < 32; ++l) {
      const int qv = ((q[l] >> shift) & 0xF) | (((h[l] >> j) & 1) << 4);
      v[l] = __fsub_rn(__fmul_rn(d1, float(qv)), m1);
    }
  }
};

// Q6_K: ql[128]@0 qh[64]@128 scales[16] (int8)@192 d@208; 210 bytes (only 2-byte aligned).
// Chunk j: half h = j/4 (128 elements), part p = j%4 (32 elements): element 128h + 32p + l takes
// ql[64h + l + 32(p&1)] (low nibble for p<2, high for p>=2), bits 2p..2p+1 of qh[32h + l],
// scale scales[8h + 2p + l/16].
struct Q6_K {
  static constexpr DType kType = DType::Q6_K;
  static constexpr int kElems = 32;
  __device__ static void load(const uint8_t* row, int64_t c, float* v) {
    const uint8_t* b = row + (c >> 3) * 210;
    const int j = int(c & 7), h = j >> 2, p = j & 3;
    const float d = half_at(b + 208);
    const uint8_t* ql = b + 64 * h + 32 * (p & 1);
    const uint8_t* qh = b + 128 + 32 * h;
    const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192) + 8 * h + 2 * p;
    const float s0 = d * float(sc[0]), s1 = d * float(sc[1]);
    const int shift = p >= 2 ? 4 : 0;
#pragma unroll
    for (int l = 0; l < 32; ++l) {
      const int q = (((ql[l] >> shift) & 0xF) | (((qh[l] >> (2 * p)) & 3) << 4)) - 32;
      v[l] = (l < 16 ? s0 : s1) * float(q);
    }
  }
};

// Plain types: chunks of 8 elements (16- or 32-byte vector loads) when k % 8 == 0 and the
// pointer is 16-byte aligned, else single elements (any k).
template <int N>
struct F32 {
  static constexpr DType kType = DType::F32;
  static constexpr int kElems = N;
  __device__ static void load(const uint8_t* row, int64_t c, float* v) {
    const float* p = reinterpret_cast<const float*>(row) + c * N;
    if constexpr (N == 8) {
      const float4 a = __ldg(reinterpret_cast<const float4*>(p));
      const float4 b = __ldg(reinterpret_cast<const float4*>(p) + 1);
      v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w;
      v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
    } else {
#pragma unroll
      for (int i = 0; i < N; ++i) v[i] = __ldg(p + i);
    }
  }
};

template <bool kBf16, int N>
struct Half16 {
  static constexpr DType kType = kBf16 ? DType::BF16 : DType::F16;
  static constexpr int kElems = N;
  __device__ static float cvt(unsigned short b) {
    if constexpr (kBf16) return bf16_bits(b);
    else return __half2float(__ushort_as_half(b));
  }
  __device__ static void load(const uint8_t* row, int64_t c, float* v) {
    const unsigned short* p = reinterpret_cast<const unsigned short*>(row) + c * N;
    if constexpr (N == 8) {
      const uint4 a = __ldg(reinterpret_cast<const uint4*>(p));
      const uint32_t w[4] = {a.x, a.y, a.z, a.w};
#pragma unroll
      for (int i = 0; i < 8; ++i) v[i] = cvt(static_cast<unsigned short>(w[i / 2] >> (16 * (i % 2))));
    } else {
#pragma unroll
      for (int i = 0; i < N; ++i) v[i] = cvt(p[i]);
    }
  }
};
template <int N> using F16 = Half16<false, N>;
template <int N> using BF16 = Half16<true, N>;

static_assert(block_bytes(DType::Q4_0) == 18 && block_bytes(DType::Q4_1) == 20 &&
              block_bytes(DType::Q5_0) == 22 && block_bytes(DType::Q5_1) == 24 &&
              block_bytes(DType::Q8_0) == 34 && block_bytes(DType::Q4_K) == 144 &&
              block_bytes(DType::Q5_K) == 176 && block_bytes(DType::Q6_K) == 210);
static_assert(block_elems(DType::Q4_0) == 32 && block_elems(DType::Q4_K) == 256);

// Calls f(Trait{}) for the weight type; false when the type has no GPU reader. `vec` picks the
// 8-element chunks of the plain types (callers check k % 8 == 0 and 16-byte alignment).
template <class F>
bool visit_weight_type(DType t, bool vec, F&& f) {
  switch (t) {
    case DType::F32: vec ? f(F32<8>{}) : f(F32<1>{}); return true;
    case DType::F16: vec ? f(F16<8>{}) : f(F16<1>{}); return true;
    case DType::BF16: vec ? f(BF16<8>{}) : f(BF16<1>{}); return true;
    case DType::Q4_0: f(Q4_0{}); return true;
    case DType::Q4_1: f(Q4_1{}); return true;
    case DType::Q5_0: f(Q5_0{}); return true;
    case DType::Q5_1: f(Q5_1{}); return true;
    case DType::Q8_0: f(Q8_0{}); return true;
    case DType::Q4_K: f(Q4_K{}); return true;
    case DType::Q5_K: f(Q5_K{}); return true;
    case DType::Q6_K: f(Q6_K{}); return true;
    default: return false;
  }
}

}  // namespace hexe::gpu::detail
