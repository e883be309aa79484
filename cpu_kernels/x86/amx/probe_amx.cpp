// AMX peak-rate loops: four independent C tiles fed by one A and two B tiles (all 16 rows x 64
// bytes), so the tile unit, not a dependency chain, sets the rate. The denominators of the
// prefill benchmarks' "over the AMX peak" figures.
#include <immintrin.h>

#include <cstdint>

#include "cpu_kernels/x86/amx/amx_tiles.h"

namespace hexe::cpu::detail {
namespace {

// C tiles 0-3, A tile 4, B tiles 5 and 6: every tile 16 rows x 64 bytes, loaded from zeros.
void load_peak_tiles() {
  amx::TileConfig c;
  for (int t = 0; t < 7; ++t) c.rows[t] = 16, c.colsb[t] = 64;
  // GCC 12 does not see ldtilecfg read the rows and widths and drops their stores.
  __asm__ volatile("" : : "m"(c));
  _tile_loadconfig(&c);
  alignas(64) static const uint8_t zeros[16 * 64] = {};
  _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
  _tile_loadd(4, zeros, 64);
  _tile_loadd(5, zeros, 64);
  _tile_loadd(6, zeros, 64);
}

}  // namespace

// The tile intrinsics take tile numbers as immediates (macros), hence a macro, not a template.
#define HEXE_AMX_PEAK_ROUNDS(dot, iters)       \
  load_peak_tiles();                           \
  for (int64_t it = 0; it < (iters); ++it) {   \
    dot(0, 4, 5);                              \
    dot(1, 4, 6);                              \
    dot(2, 4, 5);                              \
    dot(3, 4, 6);                              \
  }                                            \
  _tile_release()

double int8_dot_ops_amx(int64_t iters) {
  HEXE_AMX_PEAK_ROUNDS(_tile_dpbusd, iters);
  return double(iters) * 4.0 * (16.0 * 16.0 * 64.0) * 2.0;  // 16x16 outputs x 64 int8 products
}

double bf16_dot_flops_amx(int64_t iters) {
  HEXE_AMX_PEAK_ROUNDS(_tile_dpbf16ps, iters);
  return double(iters) * 4.0 * (16.0 * 16.0 * 32.0) * 2.0;  // 16x16 outputs x 32 bf16 products
}

#undef HEXE_AMX_PEAK_ROUNDS

}  // namespace hexe::cpu::detail
