// The activation side of the Rows16 AVX-512 decode tiles: vpdpbusd of 16 weight rows (u8 lanes)
// against 4 signed activation bytes broadcast to every lane, in two forms.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace hexe::cpu {

// The 4 bytes at p in every lane: a vpbroadcastd of its own, for _mm512_dpbusd_epi32.
inline __m512i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// acc += (u8 lanes of w) . (the 4 s8 bytes at p, in every lane), with the broadcast folded into
// the instruction's memory operand ({1to16}): one instruction where _mm512_set1_epi32 of a load
// gives two (GCC never folds it; hence the asm). Which form streams faster from DRAM depends on
// the tile, and is measured per tile on the Zen 4 VM: 1 GiB m = 1 matmuls with both forms in one
// process, alternating (high bandwidth level: Q5_K +14%, Q5_0 +6%, Q4_K +3%, Q4_0 -3% within its
// noise; low level 0-3%), and `moe-layer` decode against the other form's build. The Q4_K, Q5_K
// and nibble-format tiles use it; Q8_0 and Q6_K keep bcast4, which read faster in the MoE layer
// (see their files). Cache-resident rates are the same either way (bench_tile).
inline __m512i dpbusd_bcast(__m512i acc, __m512i w, const int8_t* p) {
#ifdef HEXE_AVX512_EMULATED  // emulated_avx512.h: the intrinsic, no operand to fold
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_dpbusd_epi32(acc, w, _mm512_set1_epi32(v));
#else
  asm("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*reinterpret_cast<const int8_t(*)[4]>(p)));
  return acc;
#endif
}

}  // namespace hexe::cpu
