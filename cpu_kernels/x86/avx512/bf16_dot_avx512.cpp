// AVX-512 BF16 decode tile for BF16 weights (1-3 activation rows): vdpbf16ps straight on the
// GGUF rows, one weight row at a time (one stream), against the activations split once per call.
//
// Why: the tile that widens each bf16 weight to f32 and FMAs it (gemm_float_avx512.cpp) spends
// eight instructions a 64-byte weight line (two loads, two widenings, two shifts, two FMAs) and
// streamed BF16 experts at 0.73 of the DRAM read bandwidth on the Zen 4 VM where the integer
// formats reach 0.96. Here a line costs one load and one vdpbf16ps per activation part, its
// operand read from the split activations in L1. `hexe bench moe-layer --quant bf16` (2 threads,
// builds alternating, the VM's low bandwidth level): qwen3-30b-a3b 0.73 -> 0.95 (10 runs each),
// qwen3-235b-a22b 0.77 -> 0.87; deepseek-v3 0.71 -> 0.68 (its 7168-wide rows split into 43 KB
// of activation parts, more than L1). Its cache-resident rate is lower (bench_tile: 34 against
// 51 GB/s a core; vdpbf16ps issues about every other cycle here): it is a decode tile.
// Dispatched on AMD only (dispatch.cpp): on the lent H200 machine's 16-core Xeon host the same
// benchmark read 0.48-0.49 with it against 0.77-0.80 with the widening tile (16 threads; the
// cause was not found in the device time there was).
//
// Exactness, as in the AMX-BF16 tile (x86/amx/gemm_bf16_amx.cpp): each float activation is
// split into kParts bf16 parts (x = hi + mid + lo, each the bf16 rounding of what the previous
// parts left, the leftover below 2^-26 |x|), so the products with the exact bf16 weights carry
// the activation's full significand and the sums are f32: the widening tile's numerics up to
// summation order. (vdpbf16ps treats bf16 denormals as zero: parts below 2^-126, i.e. of
// activations under about 2^-110, are dropped.)
#include <immintrin.h>

#include <cstdint>
#include <vector>

#include "cpu_kernels/kernels.h"

namespace hexe::cpu {
namespace {

constexpr int kParts = 3;
constexpr int64_t kChunk = 32;  // bf16 elements per 64-byte weight line
// Weight lines per step with one activation row (two with 2-3 rows, whose chains are already
// many): moe-layer bf16 streamed best with 4 (against 8, alternating: 0.90 against 0.73 at the
// low level); the cache-resident rate is about the same from 2 to 8.
constexpr int kU1 = 4;

inline __mmask16 mask16(int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}

inline __m512 widen_bf16(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }

// One float row of k elements -> for each 32-element chunk c, kParts vectors at out[c * kParts + p]
// holding the chunk's part p in element order (elements past k are zero).
void split_row(const float* x, int64_t k, __m512i* out) {
  for (int64_t c = 0, i = 0; i < k; ++c, i += kChunk) {
    __m512 lo = _mm512_maskz_loadu_ps(mask16(k - i), x + i);
    __m512 hi = _mm512_maskz_loadu_ps(mask16(k - i - 16), x + i + 16);
    for (int p = 0; p < kParts; ++p) {
      const __m512i b = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);  // elements 0..15 from lo, 16..31 from hi
      out[c * kParts + p] = b;
      if (p + 1 < kParts) {  // what this part left: exact in f32
        lo = _mm512_sub_ps(lo, widen_bf16(_mm512_castsi512_si256(b)));
        hi = _mm512_sub_ps(hi, widen_bf16(_mm512_extracti64x4_epi64(b, 1)));
      }
    }
  }
}

// 32 bf16 elements (a std::vector of __m512i would drop its alignment attribute).
struct alignas(64) Line {
  __m512i v;
};

// acc += pairwise bf16 products of the weight line w (in a register) and the activation part at
// a, read as the instruction's memory operand. Through the intrinsic GCC 12 loaded both operands
// into registers and reloaded the weight line for every part: six loads a line, and the tile ran
// at half the widening tile's cache-resident rate.
inline __m512 dp(__m512 acc, __m512i w, const __m512i& a) {
#ifdef HEXE_AVX512_EMULATED  // emulated_avx512.h: no registers to pin
  return hexe_emu512::dpbf16_ps(acc, w, a);
#else
  asm("vdpbf16ps %2, %1, %0" : "+v"(acc) : "v"(w), "m"(a));
  return acc;
#endif
}

// y[r * ys] = dot(weight row w, activation row r) for r < R; a: the split rows, a_stride vectors
// apart. U weight lines per step into separate accumulators: U x kParts x R independent
// vdpbf16ps chains.
template <int R, int U>
void dot_rows(int64_t k, const uint8_t* w, const __m512i* a, int64_t a_stride, float* y, int64_t ys) {
  const int64_t lines = (k + kChunk - 1) / kChunk, full = k / kChunk;
  __m512 s[U][R][kParts];
  for (int u = 0; u < U; ++u)
    for (int r = 0; r < R; ++r)
      for (int p = 0; p < kParts; ++p) s[u][r][p] = _mm512_setzero_ps();
  int64_t c = 0;
  for (; c + U <= full; c += U)
    for (int u = 0; u < U; ++u) {
      const __m512i wl = _mm512_loadu_si512(w + (c + u) * 64);
      for (int r = 0; r < R; ++r)
        for (int p = 0; p < kParts; ++p) s[u][r][p] = dp(s[u][r][p], wl, a[r * a_stride + (c + u) * kParts + p]);
    }
  // The last lines, the final one masked to k, into the first accumulators (indexing them by a
  // run-time line number would put every accumulator on the stack, the main loop's too).
  for (; c < lines; ++c) {
    const int64_t left = k - c * kChunk;
    const __mmask32 m = left >= 32 ? __mmask32(~0u) : __mmask32((1u << left) - 1);
    const __m512i wl = _mm512_maskz_loadu_epi16(m, w + c * 64);
    for (int r = 0; r < R; ++r)
      for (int p = 0; p < kParts; ++p) s[0][r][p] = dp(s[0][r][p], wl, a[r * a_stride + c * kParts + p]);
  }
  for (int r = 0; r < R; ++r) {
    __m512 t = _mm512_setzero_ps();
    for (int p = kParts - 1; p >= 0; --p)  // smallest parts first
      for (int u = 0; u < U; ++u) t = _mm512_add_ps(t, s[u][r][p]);
    y[r * ys] = _mm512_reduce_add_ps(t);
  }
}

}  // namespace

void gemm_tile_bf16_dp_avx512(int64_t k, const void* w, size_t wrb, int64_t nr, const void* act, size_t arb,
                              int64_t mr, float* y, int64_t ys) {
  if (mr >= 4) {  // prefill-sized: the widening tile, which reuses each weight line for 4 rows
    gemm_tile_bf16_avx512(k, w, wrb, nr, act, arb, mr, y, ys);
    return;
  }
  const int64_t chunks = (k + kChunk - 1) / kChunk, a_stride = chunks * kParts;
  thread_local std::vector<Line> lines;
  if (lines.size() < size_t(mr * a_stride)) lines.resize(size_t(mr * a_stride));
  __m512i* split = &lines.data()->v;
  const auto* x = static_cast<const uint8_t*>(act);
  for (int64_t i = 0; i < mr; ++i)
    split_row(reinterpret_cast<const float*>(x + size_t(i) * arb), k, split + i * a_stride);
  const auto* w8 = static_cast<const uint8_t*>(w);
  for (int64_t j = 0; j < nr; ++j) {  // weight rows outer: one stream, each row read once
    const uint8_t* wj = w8 + size_t(j) * wrb;
    switch (mr) {
      case 1: dot_rows<1, kU1>(k, wj, split, a_stride, y + j, ys); break;
      case 2: dot_rows<2, 2>(k, wj, split, a_stride, y + j, ys); break;
      default: dot_rows<3, 2>(k, wj, split, a_stride, y + j, ys); break;
    }
  }
}

}  // namespace hexe::cpu
