// AVX-512 probe loops: a 64-byte streaming read, vpdpbusd, vdpbf16ps and f32 FMA peak rates.
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

// The peak loops below keep 12 independent chains in named variables, all tied to registers by
// an asm barrier each iteration: with an array the compiler keeps the accumulators on the stack,
// and the loop then measures store forwarding instead of the execution units (the vpdpbusd and
// vdpbf16ps probes read half their units' rate that way until session 14).
#define HEXE_PEAK_CHAINS(OP)                                                                        \
  a0 = OP(a0); a1 = OP(a1); a2 = OP(a2); a3 = OP(a3); a4 = OP(a4); a5 = OP(a5);                   \
  a6 = OP(a6); a7 = OP(a7); a8 = OP(a8); a9 = OP(a9); a10 = OP(a10); a11 = OP(a11);               \
  __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(a6), "+v"(a7), \
                   "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11))

// vpdpbusd: 4-5 cycles latency, 1-2 per cycle.
double int8_dot_ops_vnni512(int64_t iters) {
  __m512i a0 = _mm512_set1_epi32(0), a1 = _mm512_set1_epi32(1), a2 = _mm512_set1_epi32(2), a3 = _mm512_set1_epi32(3);
  __m512i a4 = _mm512_set1_epi32(4), a5 = _mm512_set1_epi32(5), a6 = _mm512_set1_epi32(6), a7 = _mm512_set1_epi32(7);
  __m512i a8 = _mm512_set1_epi32(8), a9 = _mm512_set1_epi32(9), a10 = _mm512_set1_epi32(10), a11 = _mm512_set1_epi32(11);
  const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
  auto op = [&](__m512i acc) { return _mm512_dpbusd_epi32(acc, a, b); };
  for (int64_t it = 0; it < iters; ++it) {
    HEXE_PEAK_CHAINS(op);
  }
  __m512i s = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3)),
                               _mm512_add_epi32(_mm512_add_epi32(a4, a5), _mm512_add_epi32(a6, a7)));
  s = _mm512_add_epi32(s, _mm512_add_epi32(_mm512_add_epi32(a8, a9), _mm512_add_epi32(a10, a11)));
  volatile int sink = _mm512_reduce_add_epi32(s);
  (void)sink;
  return double(iters) * 12.0 * 64.0 * 2.0;  // 64 int8 multiply-adds per instruction
}

double bf16_dot_flops_avx512(int64_t iters) {
  __m512 a0 = _mm512_set1_ps(0.f), a1 = _mm512_set1_ps(1.f), a2 = _mm512_set1_ps(2.f), a3 = _mm512_set1_ps(3.f);
  __m512 a4 = _mm512_set1_ps(4.f), a5 = _mm512_set1_ps(5.f), a6 = _mm512_set1_ps(6.f), a7 = _mm512_set1_ps(7.f);
  __m512 a8 = _mm512_set1_ps(8.f), a9 = _mm512_set1_ps(9.f), a10 = _mm512_set1_ps(10.f), a11 = _mm512_set1_ps(11.f);
  const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3c00);
  auto op = [&](__m512 acc) { return _mm512_dpbf16_ps(acc, a, b); };
  for (int64_t it = 0; it < iters; ++it) {
    HEXE_PEAK_CHAINS(op);
  }
  __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                           _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
  s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
  volatile float sink = _mm512_reduce_add_ps(s);
  (void)sink;
  return double(iters) * 12.0 * 32.0 * 2.0;  // 32 bf16 multiply-adds per instruction
}

// Float FMA: 4 cycles latency, 2 per cycle on two-FMA-unit cores.
double fma_flops_avx512(int64_t iters) {
  __m512 a0 = _mm512_set1_ps(0.f), a1 = _mm512_set1_ps(1.f), a2 = _mm512_set1_ps(2.f), a3 = _mm512_set1_ps(3.f);
  __m512 a4 = _mm512_set1_ps(4.f), a5 = _mm512_set1_ps(5.f), a6 = _mm512_set1_ps(6.f), a7 = _mm512_set1_ps(7.f);
  __m512 a8 = _mm512_set1_ps(8.f), a9 = _mm512_set1_ps(9.f), a10 = _mm512_set1_ps(10.f), a11 = _mm512_set1_ps(11.f);
  const __m512 m = _mm512_set1_ps(0.9999f), c = _mm512_set1_ps(1e-4f);  // converges to 1: no inf
  auto op = [&](__m512 acc) { return _mm512_fmadd_ps(acc, m, c); };
  for (int64_t it = 0; it < iters; ++it) {
    HEXE_PEAK_CHAINS(op);
  }
  __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                           _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
  s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
  volatile float sink = _mm512_reduce_add_ps(s);
  (void)sink;
  return double(iters) * 12.0 * 16.0 * 2.0;  // 16 float multiply-adds per instruction
}

#undef HEXE_PEAK_CHAINS

}  // namespace hexe::cpu::detail
