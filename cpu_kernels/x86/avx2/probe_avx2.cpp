// AVX2 probe loops: 32-byte streaming reads (two patterns), maddubs+madd int8 and f32 FMA peak-rate loops.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace hexe::cpu::detail {

// Two access patterns over the same bytes (a multiple of 128): `lines` reads each 64-byte line
// with two 32-byte loads into two accumulators, `quads` four lines' halves into four.
uint64_t stream_read_avx2(const void* p, size_t bytes, bool quads) {
  const auto* q = static_cast<const __m256i*>(p);
  const size_t n = bytes / 32;
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  if (quads) {
    for (size_t i = 0; i < n; i += 4) {
      a0 = _mm256_xor_si256(a0, _mm256_load_si256(q + i));
      a1 = _mm256_xor_si256(a1, _mm256_load_si256(q + i + 1));
      a2 = _mm256_xor_si256(a2, _mm256_load_si256(q + i + 2));
      a3 = _mm256_xor_si256(a3, _mm256_load_si256(q + i + 3));
    }
  } else {
    for (size_t i = 0; i < n; i += 2) {
      a0 = _mm256_xor_si256(a0, _mm256_load_si256(q + i));
      a1 = _mm256_xor_si256(a1, _mm256_load_si256(q + i + 1));
    }
  }
  a0 = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
  alignas(32) uint64_t v[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(v), a0);
  return v[0] ^ v[1] ^ v[2] ^ v[3];
}

// 10 chains of maddubs + madd + add in named variables tied to registers by the asm barrier.
// maddubs takes its signed operand from the chain's own accumulator: with two constant operands
// the compiler hoisted maddubs and madd out of the loop (one product for every chain), and until
// session 30 this loop timed eight vpaddd through the stack while counting 1024 ops an iteration.
// The pair is 2 multiply uops for 32 products; Zen 3 and Intel cores issue 2 a cycle.
double int8_dot_ops_avx2(int64_t iters) {
  const __m256i a = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
  auto op = [&](__m256i acc) { return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(a, acc), ones)); };
  __m256i c0 = _mm256_set1_epi32(0), c1 = _mm256_set1_epi32(1), c2 = _mm256_set1_epi32(2), c3 = _mm256_set1_epi32(3);
  __m256i c4 = _mm256_set1_epi32(4), c5 = _mm256_set1_epi32(5), c6 = _mm256_set1_epi32(6), c7 = _mm256_set1_epi32(7);
  __m256i c8 = _mm256_set1_epi32(8), c9 = _mm256_set1_epi32(9);
  for (int64_t it = 0; it < iters; ++it) {
    c0 = op(c0); c1 = op(c1); c2 = op(c2); c3 = op(c3); c4 = op(c4);
    c5 = op(c5); c6 = op(c6); c7 = op(c7); c8 = op(c8); c9 = op(c9);
    __asm__ volatile("" : "+x"(c0), "+x"(c1), "+x"(c2), "+x"(c3), "+x"(c4), "+x"(c5), "+x"(c6), "+x"(c7), "+x"(c8),
                     "+x"(c9));
  }
  const __m256i s = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(c0, c1), _mm256_add_epi32(c2, c3)),
                                     _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(c4, c5), _mm256_add_epi32(c6, c7)),
                                                      _mm256_add_epi32(c8, c9)));
  volatile int sink = _mm256_extract_epi32(s, 0);
  (void)sink;
  return double(iters) * 10.0 * 32.0 * 2.0;  // 32 int8 multiply-adds per pair
}

// 10 float FMA chains in named variables tied to registers by the asm barrier (an array of 16
// does not fit the 16 ymm registers with the two constants: it lived on the stack, and the loop
// measured store forwarding). 4 cycles latency x 2 per cycle needs 8.
double fma_flops_avx2(int64_t iters) {
  __m256 a0 = _mm256_set1_ps(0.f), a1 = _mm256_set1_ps(1.f), a2 = _mm256_set1_ps(2.f), a3 = _mm256_set1_ps(3.f);
  __m256 a4 = _mm256_set1_ps(4.f), a5 = _mm256_set1_ps(5.f), a6 = _mm256_set1_ps(6.f), a7 = _mm256_set1_ps(7.f);
  __m256 a8 = _mm256_set1_ps(8.f), a9 = _mm256_set1_ps(9.f);
  const __m256 m = _mm256_set1_ps(0.9999f), c = _mm256_set1_ps(1e-4f);  // converges to 1: no inf
  for (int64_t it = 0; it < iters; ++it) {
    a0 = _mm256_fmadd_ps(a0, m, c); a1 = _mm256_fmadd_ps(a1, m, c); a2 = _mm256_fmadd_ps(a2, m, c);
    a3 = _mm256_fmadd_ps(a3, m, c); a4 = _mm256_fmadd_ps(a4, m, c); a5 = _mm256_fmadd_ps(a5, m, c);
    a6 = _mm256_fmadd_ps(a6, m, c); a7 = _mm256_fmadd_ps(a7, m, c); a8 = _mm256_fmadd_ps(a8, m, c);
    a9 = _mm256_fmadd_ps(a9, m, c);
    __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5), "+x"(a6), "+x"(a7),
                     "+x"(a8), "+x"(a9));
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                           _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
  s = _mm256_add_ps(s, _mm256_add_ps(a8, a9));
  volatile float sink = _mm256_cvtss_f32(s);
  (void)sink;
  return double(iters) * 10.0 * 8.0 * 2.0;  // 8 float multiply-adds per instruction
}

}  // namespace hexe::cpu::detail
