// The activation side of the Rows16 AVX-512 decode tiles: vpdpbusd of 16 weight rows (u8 lanes)
// against 4 signed activation bytes broadcast to every lane.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace hexe::cpu {

// acc += (u8 lanes of w) . (the 4 s8 bytes at p, in every lane), with the broadcast folded into
// the instruction's memory operand ({1to16}): one instruction where _mm512_set1_epi32 of a load
// gives two (GCC never folds it; hence the asm). From DRAM the tiles stream faster for it on the
// Zen 4 VM: 1 GiB m = 1 matmuls, the two forms alternating in one process, 2 threads, at the
// high bandwidth level: Q6_K +10%, Q5_K +14%, Q5_0 +6%, Q4_K +3%, Q4_0 -3% (within its noise);
// at the low level 0-3%. Cache-resident rates are unchanged (bench_tile). The Q8_0 tile keeps
// the separate broadcast (see there).
inline __m512i dpbusd_bcast(__m512i acc, __m512i w, const int8_t* p) {
  asm("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*reinterpret_cast<const int8_t(*)[4]>(p)));
  return acc;
}

}  // namespace hexe::cpu
