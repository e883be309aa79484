// Integer decode GEMV building blocks ("mmvq" style): the activation quantisers (Q8_K for the
// K-quants, Q8_0 for Q4_0/Q8_0) and the per-lane dp4a dot products of one weight block with the
// quantised activations, mirroring cpu_kernels/ref/quantize.cpp and vec_dot_ref.cpp.
//
// Everything here is __host__ __device__ and also compiles as plain C++ (no CUDA compiler): the
// host unit test (tests/gpu/gemv_q_host_test.cpp) runs the same functions on the CPU, with a
// portable dp4a/funnel-shift emulation, against the CPU reference. gemv.cu adds the warp-level
// plumbing (shuffles, loops over rows and steps).
//
// Lane mapping (one warp per group of weight rows; a "unit" is the block a lane group reads):
//   Q4_K/Q5_K: 4 lanes per 256-element super-block; lane part p reads sub-blocks 2p and 2p+1
//              (32 qs bytes as two 16-byte loads, plus the 16-byte d/dmin/scales header and, for
//              Q5_K, the 32 qh bytes).
//   Q6_K:      4 lanes per super-block; part (h, lh) reads 16 elements of each quarter of half h
//              (ql/ql/qh 16-byte runs through aligned 4-byte words + funnel shifts: the 210-byte
//              blocks are only 2-byte aligned).
//   Q8_0/Q4_0: 1 lane per 32-element block, aligned 4-byte words + 2-byte loads (2-byte aligned
//              34/18-byte blocks).
// Activations live in shared memory, one region per token (ActLayout): quantised bytes in a
// padded order chosen so each lane's 16-byte reads are bank-conflict free, then per-block sums
// and scales.
#pragma once

#include <cstdint>
#include <cstring>

#include <cuda_fp16.h>

#if defined(__CUDACC__)
#define HEXE_HD __host__ __device__ __forceinline__
#else
#define HEXE_HD inline
#endif

namespace hexe::gpu::q {

// ---------------------------------------------------------------------------------------------
// Portable primitives: intrinsics on the device, exact emulations on the host.

// sum of the four signed byte products of a and b, plus c.
HEXE_HD int dp4a(uint32_t a, uint32_t b, int c) {
#if defined(__CUDA_ARCH__)
  return __dp4a(int(a), int(b), c);
#else
  for (int i = 0; i < 4; ++i) c += int(int8_t(uint8_t(a >> (8 * i)))) * int(int8_t(uint8_t(b >> (8 * i))));
  return c;
#endif
}

// The 32 bits of (hi:lo) >> s, s in 0..31.
HEXE_HD uint32_t funnel_r(uint32_t lo, uint32_t hi, uint32_t s) {
#if defined(__CUDA_ARCH__)
  return __funnelshift_r(lo, hi, s);
#else
  return uint32_t(((uint64_t(hi) << 32) | lo) >> (s & 31));
#endif
}

// IEEE single-precision operations without contraction into FMA (the reference rounds each one).
HEXE_HD float fmul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
HEXE_HD float fadd(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
HEXE_HD float fdiv(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}
HEXE_HD float fabs_(float a) { return a < 0.f ? -a : (a == 0.f ? 0.f : a); }  // NaN: NaN
HEXE_HD float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}
HEXE_HD uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}

// GGML's nearest_int (cpu_kernels/ref/quantize_helpers.h): round half to even through the float
// adder, bit for bit the same for every input (including out-of-range ones).
HEXE_HD int nearest_int(float v) {
  const float t = fadd(v, 12582912.f);
  return int(float_bits(t) & 0x007fffff) - 0x00400000;
}

// std::round (half away from zero) to int, for |v| < 2^31.
HEXE_HD int round_away(float v) {
  const float a = fabs_(v);
  int i = int(a);                 // truncation
  if (a - float(i) >= 0.5f) ++i;  // exact: a - trunc(a) is representable
  return v < 0.f ? -i : i;
}

// IEEE binary16 round trip (round to nearest even) and decoding; cuda_fp16.h's host paths.
HEXE_HD float f16_round(float f) { return __half2float(__float2half_rn(f)); }
HEXE_HD float f16_bits_to_float(uint32_t h) {
  __half_raw r;
  r.x = static_cast<unsigned short>(h);
  return __half2float(__half(r));
}

// Global (weight) loads: read-only path on the device, memcpy on the host.
HEXE_HD uint32_t ldg16(const uint8_t* p) {  // 2-byte aligned
#if defined(__CUDA_ARCH__)
  return __ldg(reinterpret_cast<const unsigned short*>(p));
#else
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
#endif
}
HEXE_HD uint32_t ldg32(const uint8_t* p) {  // 4-byte aligned
#if defined(__CUDA_ARCH__)
  return __ldg(reinterpret_cast<const unsigned int*>(p));
#else
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
#endif
}
HEXE_HD void ldg128(const uint8_t* p, uint32_t* o) {  // 16-byte aligned
#if defined(__CUDA_ARCH__)
  const uint4 v = __ldg(reinterpret_cast<const uint4*>(p));
  o[0] = v.x; o[1] = v.y; o[2] = v.z; o[3] = v.w;
#else
  std::memcpy(o, p, 16);
#endif
}

// Shared-memory (activation) loads and stores.
HEXE_HD void lds128(const uint8_t* p, uint32_t* o) {
#if defined(__CUDA_ARCH__)
  const uint4 v = *reinterpret_cast<const uint4*>(p);
  o[0] = v.x; o[1] = v.y; o[2] = v.z; o[3] = v.w;
#else
  std::memcpy(o, p, 16);
#endif
}
HEXE_HD void lds64(const uint8_t* p, uint32_t* o) {
#if defined(__CUDA_ARCH__)
  const uint2 v = *reinterpret_cast<const uint2*>(p);
  o[0] = v.x; o[1] = v.y;
#else
  std::memcpy(o, p, 8);
#endif
}
HEXE_HD float ldsf(const uint8_t* p) {
#if defined(__CUDA_ARCH__)
  return *reinterpret_cast<const float*>(p);
#else
  float v;
  std::memcpy(&v, p, 4);
  return v;
#endif
}
HEXE_HD void sts128(uint8_t* p, const uint32_t* v) {
#if defined(__CUDA_ARCH__)
  *reinterpret_cast<uint4*>(p) = make_uint4(v[0], v[1], v[2], v[3]);
#else
  std::memcpy(p, v, 16);
#endif
}
HEXE_HD void sts64(uint8_t* p, uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
  *reinterpret_cast<uint2*>(p) = make_uint2(a, b);
#else
  std::memcpy(p, &a, 4);
  std::memcpy(p + 4, &b, 4);
#endif
}
HEXE_HD void sts32(uint8_t* p, uint32_t v) {
#if defined(__CUDA_ARCH__)
  *reinterpret_cast<uint32_t*>(p) = v;
#else
  std::memcpy(p, &v, 4);
#endif
}
HEXE_HD void sts16(uint8_t* p, uint32_t v) {
#if defined(__CUDA_ARCH__)
  *reinterpret_cast<unsigned short*>(p) = static_cast<unsigned short>(v);
#else
  const uint16_t h = uint16_t(v);
  std::memcpy(p, &h, 2);
#endif
}

// Packs 4 ints (each in -128..127) into the bytes of a word.
HEXE_HD uint32_t pack4(int a, int b, int c, int d) {
  return uint32_t(uint8_t(a)) | uint32_t(uint8_t(b)) << 8 | uint32_t(uint8_t(c)) << 16 | uint32_t(uint8_t(d)) << 24;
}

// ---------------------------------------------------------------------------------------------
// Activation layouts (one region per token, 16-byte aligned; sizes depend on k only).

enum class Act { Q8_K, Q8_0 };

struct ActLayout {
  int qs_bytes = 0;    // quantised bytes, padded order (see qs_offset)
  int meta_off = 0;    // Q8_K: int16 bsums[k/16] then float d[k/256]; Q8_0: {float d, int sum}[k/32]
  int d_off = 0;       // Q8_K: offset of d[]
  int token_bytes = 0;
};

HEXE_HD int round16(int v) { return (v + 15) & ~15; }

// Q8_K: 80 bytes per 64 elements (16 pad); Q8_0: 144 bytes per 128 (16 pad). With these paddings
// the 8 lanes of each quarter-warp read 8 distinct bank quads in every 16-byte load below.
template <Act A>
HEXE_HD int qs_offset(int e) {
  if constexpr (A == Act::Q8_K) return (e >> 6) * 80 + (e & 63);
  else return (e >> 7) * 144 + (e & 127);
}

template <Act A>
HEXE_HD ActLayout act_layout(int k) {
  ActLayout l;
  if constexpr (A == Act::Q8_K) {
    l.qs_bytes = round16(qs_offset<A>(k));
    l.meta_off = l.qs_bytes;                  // bsums: k/16 int16 (multiple of 32 bytes)
    l.d_off = l.meta_off + k / 8;             // d: k/256 floats
    l.token_bytes = round16(l.d_off + k / 64);
  } else {
    l.qs_bytes = round16(qs_offset<A>(k - 1) + 1);
    l.meta_off = l.qs_bytes;                  // {d, sum}: k/32 x 8 bytes
    l.d_off = l.meta_off;
    l.token_bytes = round16(l.meta_off + k / 4);
  }
  return l;
}

// ---------------------------------------------------------------------------------------------
// Activation quantisers, split per lane: every lane owns 16 consecutive elements (Q8_K: 16 lanes
// per 256-element super-block; Q8_0: 2 lanes per 32-element block). The lane-crossing steps
// (absmax combine) are the caller's: shuffles on the device, loops in the host test.

// Q8_K: |largest| and the first value reaching it among the lane's 16 (strict >, as GGML).
HEXE_HD void q8k_lane_absmax(const float* v, float* amax, float* vmax) {
  float a = 0.f, m = 0.f;
  for (int j = 0; j < 16; ++j) {
    const float f = fabs_(v[j]);
    if (a < f) {
      a = f;
      m = v[j];
    }
  }
  *amax = a;
  *vmax = m;
}

// Q8_K lane levels given the super-block's signed max (nonzero): 16 bytes packed little endian
// into q[4], their sum (the lane's bsum), and the block scale d.
HEXE_HD void q8k_lane_quantize(const float* v, float vmax, uint32_t* q, int* bsum) {
  const float iscale = fdiv(-127.f, vmax);
  int s = 0;
  for (int i = 0; i < 4; ++i) {
    int b[4];
    for (int j = 0; j < 4; ++j) {
      const int r = nearest_int(fmul(iscale, v[4 * i + j]));
      b[j] = int(int8_t(uint8_t(r < 127 ? r : 127)));
      s += b[j];
    }
    q[i] = pack4(b[0], b[1], b[2], b[3]);
  }
  *bsum = s;
}
HEXE_HD float q8k_scale(float vmax) { return fdiv(1.f, fdiv(-127.f, vmax)); }

// Q8_0: the lane's absmax (the block's is the max of the two lanes').
HEXE_HD float q80_lane_absmax(const float* v) {
  float a = 0.f;
  for (int j = 0; j < 16; ++j) {
    const float f = fabs_(v[j]);
    a = a < f ? f : a;  // std::max(a, f)
  }
  return a;
}
// Q8_0 lane levels from the block's absmax; *d16 = the block scale as stored (F16, read back).
HEXE_HD void q80_lane_quantize(const float* v, float amax, uint32_t* q, int* sum, float* d16) {
  const float d = fdiv(amax, 127.f);
  const float id = d != 0.f ? fdiv(1.f, d) : 0.f;
  int s = 0;
  for (int i = 0; i < 4; ++i) {
    int b[4];
    for (int j = 0; j < 4; ++j) {
      b[j] = int(int8_t(uint8_t(round_away(fmul(v[4 * i + j], id)))));
      s += b[j];
    }
    q[i] = pack4(b[0], b[1], b[2], b[3]);
  }
  *sum = s;
  *d16 = f16_round(d);
}

// Where lane task j (elements 16j .. 16j+16 of one token) stores its results.
HEXE_HD void store_q8k_lane(uint8_t* tok, const ActLayout& l, int j, const uint32_t* q, int bsum) {
  sts128(tok + qs_offset<Act::Q8_K>(16 * j), q);
  sts16(tok + l.meta_off + 2 * j, uint32_t(bsum));
}
HEXE_HD void store_q8k_scale(uint8_t* tok, const ActLayout& l, int sb, float d) {
  sts32(tok + l.d_off + 4 * sb, float_bits(d));
}
HEXE_HD void store_q80_lane(uint8_t* tok, const ActLayout& l, int j, const uint32_t* q) {
  sts128(tok + qs_offset<Act::Q8_0>(16 * j), q);
}
HEXE_HD void store_q80_meta(uint8_t* tok, const ActLayout& l, int blk, float d16, int sum) {
  sts64(tok + l.meta_off + 8 * blk, float_bits(d16), uint32_t(sum));
}

// ---------------------------------------------------------------------------------------------
// Weight types. Each trait: kAct, kUnitElems (elements per unit), kLanes (lanes per unit),
// kPipeMaxTokens (gemv.cu's choice of software pipelining),
// Frag (raw loaded words: no arithmetic on them until prep, so the loads stay in flight),
// load(row, unit, part, Frag&), prep(Frag, part, Unpacked&), ActFrag + load_act(tok, layout,
// unit, part), ints(Unpacked, ActFrag) -> the lane's integer sums (exactly the reference's
// partial sums over the lane's elements), and dot(...) -> the lane's float contribution.

struct Ints {
  int sumi = 0;  // sum of scale x (weight level . activation) as in vec_dot_ref
  int summ = 0;  // Q4_K/Q5_K: sum of min x bsum (else 0)
};

// The 6-bit scale and min of sub-block j of a Q4_K/Q5_K super-block from its 3 scale words.
HEXE_HD void k4_scale_min(int j, uint32_t s0, uint32_t s1, uint32_t s2, int* sc, int* m) {
  const int sh = 8 * (j & 3);
  const int b0 = int((s0 >> sh) & 0xFF), b1 = int((s1 >> sh) & 0xFF), b2 = int((s2 >> sh) & 0xFF);
  if (j < 4) {
    *sc = b0 & 63;
    *m = b1 & 63;
  } else {
    *sc = (b2 & 0xF) | ((b0 >> 6) << 4);
    *m = (b2 >> 4) | ((b1 >> 6) << 4);
  }
}

// K-quant activation fragment of one 64-element pair of sub-blocks (Q4_K/Q5_K lanes).
struct ActK4 {
  uint32_t a[8], b[8];  // sub-block 2p (a) and 2p+1 (b) levels
  int s0, s1;           // their sums (bsum pairs)
  float d;
};
HEXE_HD void load_act_k4(const uint8_t* tok, const ActLayout& l, int sb, int p, ActK4& o) {
  const uint8_t* q = tok + (4 * sb + p) * 80;  // qs_offset(256 sb + 64 p)
  lds128(q, o.a);
  lds128(q + 16, o.a + 4);
  lds128(q + 32, o.b);
  lds128(q + 48, o.b + 4);
  uint32_t bs[2];
  lds64(tok + l.meta_off + 32 * sb + 8 * p, bs);
  o.s0 = int(int16_t(bs[0] & 0xFFFF)) + int(int16_t(bs[0] >> 16));
  o.s1 = int(int16_t(bs[1] & 0xFFFF)) + int(int16_t(bs[1] >> 16));
  o.d = ldsf(tok + l.d_off + 4 * sb);
}

struct UnpK4 {
  uint32_t lo[8], hi[8];  // levels of sub-blocks 2p and 2p+1 (0..15 or 0..31 per byte)
  int sc0, sc1, m0, m1;
  float d, dmin;
};

HEXE_HD Ints ints_k4(const UnpK4& u, const ActK4& a) {
  int slo = 0, shi = 0;
  for (int i = 0; i < 8; ++i) {
    slo = dp4a(u.lo[i], a.a[i], slo);
    shi = dp4a(u.hi[i], a.b[i], shi);
  }
  return {u.sc0 * slo + u.sc1 * shi, u.m0 * a.s0 + u.m1 * a.s1};
}
// vec_dot_ref's dot_k4 per super-block: a.d * d * sumi - a.d * dmin * summ.
HEXE_HD float scale_k4(const Ints& s, float d, float dmin, float da) {
  return da * d * float(s.sumi) - da * dmin * float(s.summ);
}

struct Q4K {
  // gemv.cu pipelines weight loads for m <= kPipeMaxTokens (H200: it helped Q6_K at m <= 4 and
  // Q4_0, cost Q4_K/Q5_K, did nothing for Q8_0).
  static constexpr int kPipeMaxTokens = 0;
  static constexpr Act kAct = Act::Q8_K;
  static constexpr int kUnitElems = 256, kUnitBytes = 144, kLanes = 4;
  struct Frag { uint32_t hdr[4], qs[8]; };
  using Unpacked = UnpK4;
  using ActFrag = ActK4;
  HEXE_HD static void load(const uint8_t* row, int unit, int p, Frag& f) {
    const uint8_t* b = row + unit * kUnitBytes;
    ldg128(b, f.hdr);
    ldg128(b + 16 + 32 * p, f.qs);
    ldg128(b + 32 + 32 * p, f.qs + 4);
  }
  HEXE_HD static void prep(const Frag& f, int p, Unpacked& u) {
    u.d = f16_bits_to_float(f.hdr[0] & 0xFFFF);
    u.dmin = f16_bits_to_float(f.hdr[0] >> 16);
    k4_scale_min(2 * p, f.hdr[1], f.hdr[2], f.hdr[3], &u.sc0, &u.m0);
    k4_scale_min(2 * p + 1, f.hdr[1], f.hdr[2], f.hdr[3], &u.sc1, &u.m1);
    for (int i = 0; i < 8; ++i) {
      u.lo[i] = f.qs[i] & 0x0F0F0F0Fu;
      u.hi[i] = (f.qs[i] >> 4) & 0x0F0F0F0Fu;
    }
  }
  HEXE_HD static void load_act(const uint8_t* tok, const ActLayout& l, int unit, int p, ActFrag& a) {
    load_act_k4(tok, l, unit, p, a);
  }
  HEXE_HD static Ints ints(const Unpacked& u, const ActFrag& a) { return ints_k4(u, a); }
  HEXE_HD static float dot(const Unpacked& u, const ActFrag& a) { return scale_k4(ints(u, a), u.d, u.dmin, a.d); }
};

struct Q5K {
  static constexpr int kPipeMaxTokens = 0;
  static constexpr Act kAct = Act::Q8_K;
  static constexpr int kUnitElems = 256, kUnitBytes = 176, kLanes = 4;
  struct Frag { uint32_t hdr[4], qh[8], qs[8]; };
  using Unpacked = UnpK4;
  using ActFrag = ActK4;
  HEXE_HD static void load(const uint8_t* row, int unit, int p, Frag& f) {
    const uint8_t* b = row + unit * kUnitBytes;
    ldg128(b, f.hdr);
    ldg128(b + 16, f.qh);
    ldg128(b + 32, f.qh + 4);
    ldg128(b + 48 + 32 * p, f.qs);
    ldg128(b + 64 + 32 * p, f.qs + 4);
  }
  HEXE_HD static void prep(const Frag& f, int p, Unpacked& u) {
    u.d = f16_bits_to_float(f.hdr[0] & 0xFFFF);
    u.dmin = f16_bits_to_float(f.hdr[0] >> 16);
    k4_scale_min(2 * p, f.hdr[1], f.hdr[2], f.hdr[3], &u.sc0, &u.m0);
    k4_scale_min(2 * p + 1, f.hdr[1], f.hdr[2], f.hdr[3], &u.sc1, &u.m1);
    for (int i = 0; i < 8; ++i) {
      u.lo[i] = (f.qs[i] & 0x0F0F0F0Fu) | (((f.qh[i] >> (2 * p)) & 0x01010101u) << 4);
      u.hi[i] = ((f.qs[i] >> 4) & 0x0F0F0F0Fu) | (((f.qh[i] >> (2 * p + 1)) & 0x01010101u) << 4);
    }
  }
  HEXE_HD static void load_act(const uint8_t* tok, const ActLayout& l, int unit, int p, ActFrag& a) {
    load_act_k4(tok, l, unit, p, a);
  }
  HEXE_HD static Ints ints(const Unpacked& u, const ActFrag& a) { return ints_k4(u, a); }
  HEXE_HD static float dot(const Unpacked& u, const ActFrag& a) { return scale_k4(ints(u, a), u.d, u.dmin, a.d); }
};

// 16 bytes at a 2-byte aligned p from 5 aligned words (reads [p-2, p+18) when p is 2 mod 4):
// raw words here, the funnel shift by 8*(p & 3) in unalign16.
HEXE_HD void ldg_a2_16(const uint8_t* p, uint32_t* raw) {
  const uint8_t* a = p - (reinterpret_cast<uintptr_t>(p) & 2);
  for (int i = 0; i < 5; ++i) raw[i] = ldg32(a + 4 * i);
}
HEXE_HD void unalign16(const uint32_t* raw, uint32_t sh, uint32_t* o) {
  for (int i = 0; i < 4; ++i) o[i] = funnel_r(raw[i], raw[i + 1], sh);
}

// Q6_K: ql[128]@0 qh[64]@128 scales[16]@192 d@208. Lane part = 2h + lh: elements
// 128h + 32q + 16lh + (0..16) for q = 0..3 (ql[64h + 16lh..] low/high nibbles for q = 0/2,
// ql[64h + 32 + 16lh..] for q = 1/3, qh[32h + 16lh..] bits 2q..2q+1), scales[8h + 2q + lh].
struct Q6K {
  static constexpr int kPipeMaxTokens = 4;
  static constexpr Act kAct = Act::Q8_K;
  static constexpr int kUnitElems = 256, kUnitBytes = 210, kLanes = 4;
  struct Frag {
    uint32_t ql0[5], ql1[5], qh[5], sc[3];
    uint32_t d, sh;
  };
  struct Unpacked {
    uint32_t l[4][4];  // levels 0..63 of quarter q, 16 elements
    int sc[4];
    float d;
  };
  struct ActFrag {
    uint32_t a[4][4];
    int bs[4];  // bsums of the four 16-element runs
    float d;
  };
  HEXE_HD static void load(const uint8_t* row, int unit, int part, Frag& f) {
    const uint8_t* b = row + unit * kUnitBytes;
    const int h = part >> 1, lh = part & 1;
    const uint32_t mis = uint32_t(reinterpret_cast<uintptr_t>(b) & 2);
    f.sh = 8 * mis;
    ldg_a2_16(b + 64 * h + 16 * lh, f.ql0);
    ldg_a2_16(b + 64 * h + 32 + 16 * lh, f.ql1);
    ldg_a2_16(b + 128 + 32 * h + 16 * lh, f.qh);
    // scales[8h .. 8h+8): 2 words, 3 when misaligned (never past byte 208 of the block).
    const uint8_t* s = b + 192 + 8 * h - mis;
    f.sc[0] = ldg32(s);
    f.sc[1] = ldg32(s + 4);
    f.sc[2] = mis ? ldg32(s + 8) : 0u;
    f.d = ldg16(b + 208);
  }
  HEXE_HD static void prep(const Frag& f, int part, Unpacked& u) {
    const int lh = part & 1;
    uint32_t ql0[4], ql1[4], qh[4];
    unalign16(f.ql0, f.sh, ql0);
    unalign16(f.ql1, f.sh, ql1);
    unalign16(f.qh, f.sh, qh);
    for (int i = 0; i < 4; ++i) {
      u.l[0][i] = (ql0[i] & 0x0F0F0F0Fu) | ((qh[i] << 4) & 0x30303030u);
      u.l[1][i] = (ql1[i] & 0x0F0F0F0Fu) | ((qh[i] << 2) & 0x30303030u);
      u.l[2][i] = ((ql0[i] >> 4) & 0x0F0F0F0Fu) | (qh[i] & 0x30303030u);
      u.l[3][i] = ((ql1[i] >> 4) & 0x0F0F0F0Fu) | ((qh[i] >> 2) & 0x30303030u);
    }
    const uint32_t s0 = funnel_r(f.sc[0], f.sc[1], f.sh), s1 = funnel_r(f.sc[1], f.sc[2], f.sh);
    // scales[8h + 2q + lh]: byte 2q + lh of (s0, s1).
    u.sc[0] = int(int8_t(uint8_t(s0 >> (8 * lh))));
    u.sc[1] = int(int8_t(uint8_t(s0 >> (8 * lh + 16))));
    u.sc[2] = int(int8_t(uint8_t(s1 >> (8 * lh))));
    u.sc[3] = int(int8_t(uint8_t(s1 >> (8 * lh + 16))));
    u.d = f16_bits_to_float(f.d);
  }
  HEXE_HD static void load_act(const uint8_t* tok, const ActLayout& l, int unit, int part, ActFrag& a) {
    const int h = part >> 1, lh = part & 1;
    for (int q = 0; q < 4; ++q) lds128(tok + qs_offset<Act::Q8_K>(256 * unit + 128 * h + 32 * q + 16 * lh), a.a[q]);
    uint32_t bs[4];  // bsums[16 unit + 8h .. +8): run 2q + lh is half lh of word q
    lds128(tok + l.meta_off + 32 * unit + 16 * h, bs);
    for (int q = 0; q < 4; ++q) a.bs[q] = int(int16_t(uint16_t(bs[q] >> (16 * lh))));
    a.d = ldsf(tok + l.d_off + 4 * unit);
  }
  HEXE_HD static Ints ints(const Unpacked& u, const ActFrag& a) {
    int sumi = 0;
    for (int q = 0; q < 4; ++q) {
      int s = 0;
      for (int i = 0; i < 4; ++i) s = dp4a(u.l[q][i], a.a[q][i], s);
      sumi += u.sc[q] * (s - 32 * a.bs[q]);  // sum((level - 32) * a)
    }
    return {sumi, 0};
  }
  // dot_q6_k: a.d * d * sumi.
  HEXE_HD static float dot(const Unpacked& u, const ActFrag& a) { return a.d * u.d * float(ints(u, a).sumi); }
};

// Legacy 32-element blocks d@0 qs@2 (2-byte aligned): N qs words read as aligned words plus one
// 2-byte load, no byte loads and nothing read outside the block.
template <int N>
struct LegacyFrag {
  uint32_t w[N], h16, mis;
};
template <int N>
HEXE_HD void load_legacy(const uint8_t* b, LegacyFrag<N>& f) {
  f.mis = uint32_t(reinterpret_cast<uintptr_t>(b) & 2);
  // 2 mod 4: d = 2-byte load at b, qs = aligned words at b + 2. 0 mod 4: words at b cover d and
  // qs[0 .. 4N-2), the 2-byte load at b + 4N the last two qs bytes.
  for (int i = 0; i < N; ++i) f.w[i] = ldg32(b + f.mis + 4 * i);
  f.h16 = ldg16(f.mis ? b : b + 4 * N);
}
template <int N>
HEXE_HD void unpack_legacy(const LegacyFrag<N>& f, uint32_t* qs, float* d) {
  if (f.mis) {
    for (int i = 0; i < N; ++i) qs[i] = f.w[i];
    *d = f16_bits_to_float(f.h16);
  } else {
    for (int i = 0; i < N; ++i) qs[i] = funnel_r(f.w[i], i + 1 < N ? f.w[i + 1] : f.h16, 16);
    *d = f16_bits_to_float(f.w[0] & 0xFFFF);
  }
}

struct ActQ80 {
  uint32_t a[8];
  int sum;
  float d;
};
HEXE_HD void load_act_q80(const uint8_t* tok, const ActLayout& l, int blk, ActQ80& a) {
  const uint8_t* q = tok + qs_offset<Act::Q8_0>(32 * blk);
  lds128(q, a.a);
  lds128(q + 16, a.a + 4);
  uint32_t m[2];
  lds64(tok + l.meta_off + 8 * blk, m);
  a.d = bits_float(m[0]);
  a.sum = int(m[1]);
}

struct Q80 {
  static constexpr int kPipeMaxTokens = 0;
  static constexpr Act kAct = Act::Q8_0;
  static constexpr int kUnitElems = 32, kUnitBytes = 34, kLanes = 1;
  using Frag = LegacyFrag<8>;
  struct Unpacked { uint32_t q[8]; float d; };
  using ActFrag = ActQ80;
  HEXE_HD static void load(const uint8_t* row, int unit, int, Frag& f) { load_legacy(row + unit * kUnitBytes, f); }
  HEXE_HD static void prep(const Frag& f, int, Unpacked& u) { unpack_legacy(f, u.q, &u.d); }
  HEXE_HD static void load_act(const uint8_t* tok, const ActLayout& l, int unit, int, ActFrag& a) {
    load_act_q80(tok, l, unit, a);
  }
  HEXE_HD static Ints ints(const Unpacked& u, const ActFrag& a) {
    int s = 0;
    for (int i = 0; i < 8; ++i) s = dp4a(u.q[i], a.a[i], s);
    return {s, 0};
  }
  // dot_q8_0: sumi * (d_w * d_a).
  HEXE_HD static float dot(const Unpacked& u, const ActFrag& a) { return float(ints(u, a).sumi) * (u.d * a.d); }
};

struct Q40 {
  static constexpr int kPipeMaxTokens = 8;
  static constexpr Act kAct = Act::Q8_0;
  static constexpr int kUnitElems = 32, kUnitBytes = 18, kLanes = 1;
  using Frag = LegacyFrag<4>;
  struct Unpacked { uint32_t lo[4], hi[4]; float d; };
  using ActFrag = ActQ80;
  HEXE_HD static void load(const uint8_t* row, int unit, int, Frag& f) { load_legacy(row + unit * kUnitBytes, f); }
  HEXE_HD static void prep(const Frag& f, int, Unpacked& u) {
    uint32_t qs[4];
    unpack_legacy(f, qs, &u.d);
    for (int i = 0; i < 4; ++i) {
      u.lo[i] = qs[i] & 0x0F0F0F0Fu;         // elements 4i .. 4i+3
      u.hi[i] = (qs[i] >> 4) & 0x0F0F0F0Fu;  // elements 16 + 4i ..
    }
  }
  HEXE_HD static void load_act(const uint8_t* tok, const ActLayout& l, int unit, int, ActFrag& a) {
    load_act_q80(tok, l, unit, a);
  }
  HEXE_HD static Ints ints(const Unpacked& u, const ActFrag& a) {
    int s = 0;
    for (int i = 0; i < 4; ++i) {
      s = dp4a(u.lo[i], a.a[i], s);
      s = dp4a(u.hi[i], a.a[4 + i], s);
    }
    return {s - 8 * a.sum, 0};  // sum((level - 8) * a)
  }
  HEXE_HD static float dot(const Unpacked& u, const ActFrag& a) { return float(ints(u, a).sumi) * (u.d * a.d); }
};

}  // namespace hexe::gpu::q
