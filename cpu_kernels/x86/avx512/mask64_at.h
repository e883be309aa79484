// A 64-bit byte mask stored little-endian in a Rows16 layout (the 5th bits of Q5_0/Q5_1/Q5_K
// nibble lines: bit n for byte lane n of the line), as a mask register.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace hexe::cpu {
// Internal linkage (as q8_block_sum.h): the AVX-512 and AMX files include this, and with the
// emulated AVX-512 tier (emulated_avx512.h) the two are compiled for different ISAs.
namespace {  // NOLINT: deliberate

inline __mmask64 mask64_at(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return _cvtu64_mask64(v);
}

}  // namespace
}  // namespace hexe::cpu
