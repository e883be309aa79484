// The AMX tile configuration the int8 tiles share (palette 1): tile t gets `rows` rows of
// `colsb` bytes. Both tiles use A tiles 0/4 (16 activation rows x one 32-byte block), B tiles
// 1/5 (one block of a 16-row group: 8 rows x 64 bytes) and C tiles 3/6 (16 x 16 int32); the
// Q8_0 tile also loads a constant B tile 2.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace hexe::cpu::amx {

// Software prefetch of the next weight group, spread over the current group's tile steps. Without
// it each group reaches the tiles as a burst of DRAM misses with no TMUL work beside it (a prefill
// MoE layer has about 32 tokens per expert, so little work per group): the Q4_K moe-layer prefill
// went from 365 to 430 GFLOP/s with it (2 threads). The lines go to L2 (T1): the next group's
// preparation reads them.
class GroupPrefetch {
 public:
  // The bytes [p, p + bytes) over `steps` calls of step(); p null: nothing to prefetch.
  void reset(const void* p, size_t bytes, int64_t steps) {
    next_ = static_cast<const char*>(p);
    end_ = next_ ? next_ + bytes : next_;
    const int64_t lines = int64_t((bytes + 63) / 64);
    per_step_ = steps > 0 ? int((lines + steps - 1) / steps) : int(lines);
  }
  void step() {
    for (int i = 0; i < per_step_ && next_ < end_; ++i, next_ += 64) _mm_prefetch(next_, _MM_HINT_T1);
  }

 private:
  const char* next_ = nullptr;
  const char* end_ = nullptr;
  int per_step_ = 0;
};

struct alignas(64) TileConfig {
  uint8_t palette_id = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Loads the shared layout; with_constant_b: tile 2 as a B tile too.
inline void load_tile_config(bool with_constant_b) {
  TileConfig c;
  auto set = [&](int t, int rows, int colsb) {
    c.rows[t] = uint8_t(rows);
    c.colsb[t] = uint16_t(colsb);
  };
  set(0, 16, 32); set(4, 16, 32);  // A
  set(1, 8, 64); set(5, 8, 64);    // B
  if (with_constant_b) set(2, 8, 64);
  set(3, 16, 64); set(6, 16, 64);  // C
  _tile_loadconfig(&c);
}

}  // namespace hexe::cpu::amx
