// AVX-512 probe loops: a 64-byte streaming read, vpdpbusd and vdpbf16ps peak rates.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace hexe::cpu::detail {

// Four 64-byte loads per 256 bytes (bytes a multiple of 256) into four accumulators.
uint64_t stream_read_avx512(const void* p, size_t bytes) {
  const auto* q = static_cast<const __m512i*>(p);
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i < bytes / 64; i += 4) {
    a0 = _mm512_xor_si512(a0, _mm512_load_si512(q + i));
    a1 = _mm512_xor_si512(a1, _mm512_load_si512(q + i + 1));
    a2 = _mm512_xor_si512(a2, _mm512_load_si512(q + i + 2));
    a3 = _mm512_xor_si512(a3, _mm512_load_si512(q + i + 3));
  }
  a0 = _mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3));
  return uint64_t(_mm512_reduce_add_epi64(a0));
}

// 16 independent accumulators hide vpdpbusd's latency (4-5 cycles, 1-2 per cycle).
double int8_dot_ops_vnni512(int64_t iters) {
  __m512i acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_epi32(i);
  const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
    __asm__ volatile("" : "+v"(acc[0]), "+v"(acc[1]), "+v"(acc[2]), "+v"(acc[3]), "+v"(acc[4]),
                     "+v"(acc[5]), "+v"(acc[6]), "+v"(acc[7]));
  }
  __m512i s = acc[0];
  for (int i = 1; i < 16; ++i) s = _mm512_add_epi32(s, acc[i]);
  volatile int sink = _mm512_reduce_add_epi32(s);
  (void)sink;
  return double(iters) * 16.0 * 64.0 * 2.0;  // 64 int8 multiply-adds per instruction
}

double bf16_dot_flops_avx512(int64_t iters) {
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_ps(float(i));
  const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3c00);
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
    __asm__ volatile("" : "+v"(acc[0]), "+v"(acc[1]), "+v"(acc[2]), "+v"(acc[3]), "+v"(acc[4]),
                     "+v"(acc[5]), "+v"(acc[6]), "+v"(acc[7]));
  }
  __m512 s = acc[0];
  for (int i = 1; i < 16; ++i) s = _mm512_add_ps(s, acc[i]);
  volatile float sink = _mm512_reduce_add_ps(s);
  (void)sink;
  return double(iters) * 16.0 * 32.0 * 2.0;  // 32 bf16 multiply-adds per instruction
}

}  // namespace hexe::cpu::detail
