// AMX-BF16 tiles for BF16 weights x float activations in prefill (m >= 16 activation rows).
// Below 16 rows (decode) the AVX-512 tile runs: a 16-row tile would be mostly padding there.
//
// The weights are the A operand, read straight from the GGUF rows: 16 weight rows x 32 bf16
// (64 bytes) per tile, row stride = the weight row bytes; no weight repack. The activations are
// the B operand ("VNNI" pairs: B row j holds (x[m][2j], x[m][2j+1]) for 16 activation rows m),
// built once per call for every 32-wide k chunk by converting 16 rows and transposing 16 x 16
// dwords. C = 16 weight rows x 16 activation rows of f32, accumulated over all of k in the tile
// and transposed into y at the end.
//
// Exactness: the float activations are split into kParts bf16 parts (x = hi + mid + lo, each
// the bf16 rounding of what the previous parts left), so the products with the exact bf16
// weights carry the activation's full 24-bit significand (the leftover is below 2^-26 |x|), and
// the sums are f32 as in the AVX-512 tile: the same numerics up to summation order, at up to
// 1024 bf16 multiply-adds per cycle in the TMUL unit instead of 32 f32 FMAs.
//
// Tiles (palette 1): A tmm0/tmm1 (two 16-row weight groups), B tmm2/tmm3 (two 16-row activation
// tiles), C tmm4..tmm7 (the 2 x 2 products). Ragged edges: m not a multiple of 16: the last
// activation tile is the last 16 rows (overlapping the previous one; only its new rows are
// stored). n not a multiple of 16: the last weight group is copied into a zero-padded scratch
// and the padding outputs are not stored.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "cpu_kernels/isa.h"
#include "cpu_kernels/kernels.h"
#include "cpu_kernels/x86/amx/amx_tiles.h"

namespace hexe::cpu {
namespace {

constexpr int kParts = 3;            // bf16 parts per activation (see above)
constexpr int64_t kChunk = 32;       // k per tile step (16 bf16 pairs)
constexpr size_t kTileBytes = 1024;  // 16 rows x 64 bytes

bool amx_bf16_usable() {
  static const bool ok = cpu_features().amx_bf16 && cpu_features().avx512_bf16 && amx_usable();
  return ok;
}

void load_config() {
  amx::TileConfig c;
  for (int t = 0; t < 8; ++t) {
    c.rows[t] = 16;
    c.colsb[t] = 64;
  }
  _tile_loadconfig(&c);
}

// r[i] (16 dwords each) -> r[j][i] = old r[i][j].
inline void transpose16x16(__m512i r[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  // Per 128-bit lane L, u[4i + c] holds rows 4i..4i+3 of column 4L + c.
  for (int i = 0; i < 4; ++i) {
    u[4 * i + 0] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    const __m512i v0 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x88), v1 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xDD);
    const __m512i w0 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x88), w1 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xDD);
    r[c] = _mm512_shuffle_i32x4(v0, w0, 0x88);
    r[8 + c] = _mm512_shuffle_i32x4(v0, w0, 0xDD);
    r[4 + c] = _mm512_shuffle_i32x4(v1, w1, 0x88);
    r[12 + c] = _mm512_shuffle_i32x4(v1, w1, 0xDD);
  }
}

// 16 activation rows (x, xs floats apart) -> the B tiles of every k chunk and part:
// dst + ((c * kParts + part) * kTileBytes).
void pack_activations(const float* x, size_t xs, int64_t k, uint8_t* dst) {
  for (int64_t c = 0; c < k / kChunk; ++c) {
    __m512i parts[kParts][16];
    for (int m = 0; m < 16; ++m) {
      __m512 lo = _mm512_loadu_ps(x + size_t(m) * xs + c * kChunk);
      __m512 hi = _mm512_loadu_ps(x + size_t(m) * xs + c * kChunk + 16);
      for (int p = 0; p < kParts; ++p) {
        const __m512bh b = _mm512_cvtne2ps_pbh(hi, lo);  // elements 0..15 from lo, 16..31 from hi
        parts[p][m] = (__m512i)b;
        if (p + 1 < kParts) {  // what this part left: exact in f32
          const __m512i bi = (__m512i)b;
          const __m512 blo = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(bi)), 16));
          const __m512 bhi =
              _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(bi, 1)), 16));
          lo = _mm512_sub_ps(lo, blo);
          hi = _mm512_sub_ps(hi, bhi);
        }
      }
    }
    for (int p = 0; p < kParts; ++p) {
      transpose16x16(parts[p]);
      uint8_t* d = dst + size_t(c * kParts + p) * kTileBytes;
      for (int j = 0; j < 16; ++j) _mm512_store_si512(d + 64 * j, parts[p][j]);
    }
  }
}

// C tile `buf` (16 weight rows x 16 activation rows) into y rows [row_from, 16) x columns [0, cols).
void store_transposed(const float* buf, float* y, int64_t ys, int row_from, int cols) {
  __m512i r[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_load_si512(buf + 16 * i);
  transpose16x16(r);
  const __mmask16 mask = cols >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << cols) - 1);
  for (int m = row_from; m < 16; ++m) _mm512_mask_storeu_ps(y + m * ys, mask, _mm512_castsi512_ps(r[m]));
}

}  // namespace

void gemm_tile_bf16_amx(int64_t k, const void* w, size_t wrb, int64_t nr, const void* act, size_t arb, int64_t mr,
                        float* y, int64_t ys) {
  if (mr < 16 || k % kChunk != 0 || !amx_bf16_usable())
    return gemm_tile_bf16_avx512(k, w, wrb, nr, act, arb, mr, y, ys);
  const int64_t nc = k / kChunk;
  const int64_t n_mt = (mr + 15) / 16, n_g = (nr + 15) / 16;
  const size_t per_mt = size_t(nc) * kParts * kTileBytes;
  thread_local std::vector<uint8_t> bbuf, tail;
  if (bbuf.size() < size_t(n_mt) * per_mt + 64) bbuf.resize(size_t(n_mt) * per_mt + 64);
  uint8_t* b = bbuf.data() + (64 - reinterpret_cast<uintptr_t>(bbuf.data()) % 64) % 64;
  auto m0_of = [&](int64_t t) { return std::min(16 * t, mr - 16); };
  const auto* x = static_cast<const float*>(act);
  const size_t xs = arb / sizeof(float);
  for (int64_t t = 0; t < n_mt; ++t) pack_activations(x + size_t(m0_of(t)) * xs, xs, k, b + size_t(t) * per_mt);

  // The weight group g: its rows in place, or the ragged last group zero-padded in `tail`.
  const auto* base = static_cast<const uint8_t*>(w);
  const int64_t full = nr / 16;
  const size_t tail_stride = size_t(k) * 2;
  if (full < n_g) {
    tail.assign(16 * tail_stride, 0);
    for (int64_t r = 0; r < nr - 16 * full; ++r)
      std::memcpy(tail.data() + size_t(r) * tail_stride, base + size_t(16 * full + r) * wrb, tail_stride);
  }
  auto group = [&](int64_t g, size_t& stride) -> const uint8_t* {
    if (g < full) return stride = wrb, base + size_t(16 * g) * wrb;
    return stride = tail_stride, tail.data();
  };

  alignas(64) float buf[256];
  load_config();
  for (int64_t g = 0; g < n_g; g += 2) {
    const bool g2 = g + 1 < n_g;
    size_t s0 = 0, s1 = 0;
    const uint8_t* w0 = group(g, s0);
    const uint8_t* w1 = g2 ? group(g + 1, s1) : w0;
    for (int64_t t = 0; t < n_mt; t += 2) {
      const bool t2 = t + 1 < n_mt;
      const uint8_t* b0 = b + size_t(t) * per_mt;
      const uint8_t* b1 = t2 ? b0 + per_mt : b0;
      _tile_zero(4); _tile_zero(5); _tile_zero(6); _tile_zero(7);
      for (int64_t c = 0; c < nc; ++c) {
        _tile_loadd(0, w0 + c * 64, long(s0));
        if (g2) _tile_loadd(1, w1 + c * 64, long(s1));
        for (int p = 0; p < kParts; ++p) {
          const size_t off = size_t(c * kParts + p) * kTileBytes;
          _tile_loadd(2, b0 + off, 64);
          _tile_dpbf16ps(4, 0, 2);
          if (g2) _tile_dpbf16ps(6, 1, 2);
          if (t2) {
            _tile_loadd(3, b1 + off, 64);
            _tile_dpbf16ps(5, 0, 3);
            if (g2) _tile_dpbf16ps(7, 1, 3);
          }
        }
      }
      for (int dt = 0; dt < (t2 ? 2 : 1); ++dt) {
        const int64_t m0 = m0_of(t + dt);
        const int row_from = int(16 * (t + dt) - m0);
        for (int dg = 0; dg < (g2 ? 2 : 1); ++dg) {
          // Tile numbers must be constants: C(g + dg, t + dt) is tmm 4 + 2 dg + dt.
          switch (2 * dg + dt) {
            case 0: _tile_stored(4, buf, 64); break;
            case 1: _tile_stored(5, buf, 64); break;
            case 2: _tile_stored(6, buf, 64); break;
            default: _tile_stored(7, buf, 64); break;
          }
          const int64_t n0 = 16 * (g + dg);
          store_transposed(buf, y + m0 * ys + n0, ys, row_from, int(std::min<int64_t>(16, nr - n0)));
        }
      }
    }
  }
  _tile_release();
}

}  // namespace hexe::cpu
