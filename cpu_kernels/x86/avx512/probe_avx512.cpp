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

// The peak loops: 12 independent chains of `op`, in named variables all tied to registers by an
// asm barrier each iteration. With an array the compiler keeps the accumulators on the stack, and
// the loop then measures store forwarding instead of the execution units (the vpdpbusd probe read
// a quarter of its units' rate that way until session 14). Returns the chains' sum (`add`), which
// the caller keeps alive.
template <class V, class Init, class Op, class Add>
V peak_chains(int64_t iters, Init init, Op op, Add add) {
  V a0 = init(0), a1 = init(1), a2 = init(2), a3 = init(3), a4 = init(4), a5 = init(5);
  V a6 = init(6), a7 = init(7), a8 = init(8), a9 = init(9), a10 = init(10), a11 = init(11);
  for (int64_t it = 0; it < iters; ++it) {
    a0 = op(a0); a1 = op(a1); a2 = op(a2); a3 = op(a3); a4 = op(a4); a5 = op(a5);
    a6 = op(a6); a7 = op(a7); a8 = op(a8); a9 = op(a9); a10 = op(a10); a11 = op(a11);
#ifdef HEXE_AVX512_EMULATED  // emulated_avx512.h: no registers to pin (and nothing to measure)
    __asm__ volatile("" : "+m"(a0), "+m"(a1), "+m"(a2), "+m"(a3), "+m"(a4), "+m"(a5), "+m"(a6), "+m"(a7),
                     "+m"(a8), "+m"(a9), "+m"(a10), "+m"(a11));
#else
    __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(a6), "+v"(a7),
                     "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));
#endif
  }
  return add(add(add(add(a0, a1), add(a2, a3)), add(add(a4, a5), add(a6, a7))),
             add(add(a8, a9), add(a10, a11)));
}
constexpr double kChains = 12;

// vpdpbusd: 4-5 cycles latency, 1-2 per cycle.
double int8_dot_ops_vnni512(int64_t iters) {
  const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
  const __m512i s = peak_chains<__m512i>(
      iters, [](int i) { return _mm512_set1_epi32(i); },
      [&](__m512i acc) { return _mm512_dpbusd_epi32(acc, a, b); },
      [](__m512i x, __m512i y) { return _mm512_add_epi32(x, y); });
  volatile int sink = _mm512_reduce_add_epi32(s);
  (void)sink;
  return double(iters) * kChains * 64.0 * 2.0;  // 64 int8 multiply-adds per instruction
}

auto add_ps = [](__m512 x, __m512 y) { return _mm512_add_ps(x, y); };
auto set1_ps = [](int i) { return _mm512_set1_ps(float(i)); };

double bf16_dot_flops_avx512(int64_t iters) {
  const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3c00);
  const __m512 s = peak_chains<__m512>(iters, set1_ps, [&](__m512 acc) { return _mm512_dpbf16_ps(acc, a, b); }, add_ps);
  volatile float sink = _mm512_reduce_add_ps(s);
  (void)sink;
  return double(iters) * kChains * 32.0 * 2.0;  // 32 bf16 multiply-adds per instruction
}

// Float FMA: 4 cycles latency, 2 per cycle on two-FMA-unit cores.
double fma_flops_avx512(int64_t iters) {
  const __m512 m = _mm512_set1_ps(0.9999f), c = _mm512_set1_ps(1e-4f);  // converges to 1: no inf
  const __m512 s = peak_chains<__m512>(iters, set1_ps, [&](__m512 acc) { return _mm512_fmadd_ps(acc, m, c); }, add_ps);
  volatile float sink = _mm512_reduce_add_ps(s);
  (void)sink;
  return double(iters) * kChains * 16.0 * 2.0;  // 16 float multiply-adds per instruction
}

}  // namespace hexe::cpu::detail
