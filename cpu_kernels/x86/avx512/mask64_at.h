// A 64-bit byte mask stored little-endian in a Rows16 layout (the 5th bits of Q5_0/Q5_1/Q5_K
// nibble lines: bit n for byte lane n of the line), as a mask register.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace hexe::cpu {

inline __mmask64 mask64_at(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return _cvtu64_mask64(v);
}

}  // namespace hexe::cpu
