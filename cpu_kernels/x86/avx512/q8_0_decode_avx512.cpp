// AVX-512 VNNI Q8_0 x Q8_0 tiles for few activation rows (decode): one weight row at a time, two
// accumulator sets hiding the FMA latency. With 4+ activation rows the shared 256-bit tile
// (weights unpacked once for 4 activation rows) is used.
//
// One row at a time, not four sharing each activation load: four rows read side by side are four
// interleaved streams, which the Zen 4 VM's prefetchers followed at a third of the speed of one
// (bench_tile --layout gguf --kib 131072, one thread: 8.4 GB/s with four, 22-24 with one; the
// cache-resident rate fell 15%, from 33.5 to 28.7 GB/s, which decode from DRAM never reaches).
#include <immintrin.h>

#include <cstdint>

#include "cpu_kernels/kernels.h"
#include "cpu_kernels/x86/avx512/decode_rows.h"

namespace hexe::cpu {
namespace {

// dot(weight row w, activation row a).
float q8_row(int64_t nb, const BlockQ8_0* w, const BlockQ8_0* a) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  auto step = [&](int64_t b, __m256& acc) {
    const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[b].qs));
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs));
    // |q| (u8) . sign(a, q) (s8) == q . a, the form vpdpbusd takes.
    const __m256i p = DotVnni256::dot(_mm256_abs_epi8(q), _mm256_sign_epi8(av, q));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(f16(a[b].d) * f16(w[b].d)), acc);
  };
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    step(b, acc0);
    step(b + 1, acc1);
  }
  if (b < nb) step(b, acc0);
  return hsum_ps(_mm256_add_ps(acc0, acc1));
}

}  // namespace

void gemm_tile_q8_0_avx512(int64_t k, const void* w, size_t wrb, int64_t nr, const void* act,
                           size_t arb, int64_t mr, float* y, int64_t ys) {
  const int64_t nb = k / kQK;
  decode_rows<LegacyRows, LQ8_0, kQK>(k, w, wrb, nr, act, arb, mr, y, ys,
                                      [nb](const uint8_t* wr, const uint8_t* ar, int64_t) {
                                        return q8_row(nb, reinterpret_cast<const BlockQ8_0*>(wr),
                                                      reinterpret_cast<const BlockQ8_0*>(ar));
                                      });
}

}  // namespace hexe::cpu
