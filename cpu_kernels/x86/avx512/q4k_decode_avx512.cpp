// AVX-512 Q4_K and Q5_K x Q8_K tiles for few activation rows (decode) on the GGUF blocks: 512-bit
// vectors over two sub-blocks at once (Q5_K's 5th bits joined in place), scales applied as int16
// through vpdpwssd (no 32-bit multiplies), one weight row at a time against activations arranged
// once per call in the order the tile reads them.
// With 4+ activation rows the 256-bit tile (which unpacks each weight block once for 4
// activation rows) is used instead.
//
// One row at a time, not four sharing each activation load: four rows read side by side are four
// interleaved streams, which the Zen 4 VM's prefetchers followed at half the speed of one
// (bench_tile --layout gguf --kib 131072, one thread: 7-7.5 GB/s with four, 13-14 with one).
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "cpu_kernels/kernels.h"
#include "cpu_kernels/x86/avx512/decode_rows.h"

namespace hexe::cpu {
namespace {

// Software prefetch distance where the tiles prefetch (decode_prefetch_bytes: none on AMD): four
// super-blocks ahead, as this tile always did on the Xeon VM it was written on.
constexpr int kPrefetchBytes = 4 * int(sizeof(BlockQ4_K));

// The 12 packed scale bytes -> sc[0..8) then m[0..8) (GGML's get_scale_min_k4, all 8 at once).
inline void unpack_scales(const uint8_t* q, uint32_t out[4]) {
  constexpr uint32_t kM1 = 0x3f3f3f3f, kM2 = 0x0f0f0f0f, kM3 = 0x03030303;
  uint32_t u[3];
  std::memcpy(u, q, 12);
  out[0] = u[0] & kM1;
  out[1] = (u[2] & kM2) | (((u[0] >> 6) & kM3) << 4);
  out[2] = u[1] & kM1;
  out[3] = ((u[2] >> 4) & kM2) | (((u[1] >> 6) & kM3) << 4);
}

// Lanes 0-15 take sc[a], lanes 16-31 sc[b] for the four (low|high nibble) x (first|second half)
// vectors: (0,2), (1,3), (4,6), (5,7).
inline __m512i scale_index(int a, int b) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(short(a))), _mm256_set1_epi16(short(b)), 1);
}

inline __m512i pair256(const int8_t* lo, const int8_t* hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(lo))),
                            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(hi)), 1);
}

// One activation super-block in the tile's order: the two sub-blocks each 512-bit vector pairs
// (see pair256), the sums of sub-blocks (2j, 2j+1) and the scale.
struct alignas(64) Q8KArranged {
  __m512i a[4];
  __m128i bs;
  float d;
};

void arrange(const BlockQ8_K* a, int64_t nb, Q8KArranged* out) {
  for (int64_t b = 0; b < nb; ++b) {
    const BlockQ8_K& ab = a[b];
    out[b].a[0] = pair256(ab.qs, ab.qs + 64);
    out[b].a[1] = pair256(ab.qs + 32, ab.qs + 96);
    out[b].a[2] = pair256(ab.qs + 128, ab.qs + 192);
    out[b].a[3] = pair256(ab.qs + 160, ab.qs + 224);
    out[b].bs = _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ab.bsums)),
                               _mm_loadu_si128(reinterpret_cast<const __m128i*>(ab.bsums + 8)));
    out[b].d = ab.d;
  }
}

// dot(weight row w, the arranged activation row a); pf: software prefetch distance in bytes (0: none).
// Block: BlockQ4_K, or BlockQ5_K, whose 5th bits (bit j of qh[l]: weight l of sub-block j) join
// each nibble as 0x10 before vpmaddubsw.
template <class Block>
float k4_row(int64_t nb, const Block* w, const Q8KArranged* a, int pf) {
  constexpr bool kFive = std::is_same_v<Block, BlockQ5_K>;
  const __m512i idx0 = scale_index(0, 2), idx1 = scale_index(1, 3), idx2 = scale_index(4, 6),
                idx3 = scale_index(5, 7);
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  __m512 acc = _mm512_setzero_ps();
  __m128 accm = _mm_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const Q8KArranged& ab = a[b];
    const Block& blk = w[b];
    if (pf) _mm_prefetch(reinterpret_cast<const char*>(&blk) + pf, _MM_HINT_T0);  // never faults
    uint32_t sm[4];
    unpack_scales(blk.scales, sm);
    const __m128i sc8 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(int64_t(sm[0]) | int64_t(sm[1]) << 32));
    const __m128i mn8 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(int64_t(sm[2]) | int64_t(sm[3]) << 32));
    const __m512i sc = _mm512_castsi128_si512(sc8);
    const __m512i q0 = _mm512_loadu_si512(blk.qs), q1 = _mm512_loadu_si512(blk.qs + 64);
    // The four 64-weight vectors: sub-blocks (0|2), (1|3), (4|6), (5|7), matching ab.a[0..3].
    __m512i v[4] = {_mm512_and_si512(q0, m4), _mm512_and_si512(_mm512_srli_epi16(q0, 4), m4),
                    _mm512_and_si512(q1, m4), _mm512_and_si512(_mm512_srli_epi16(q1, 4), m4)};
    if constexpr (kFive) {
      // Per 64-bit lane (low half | high half of a vector) the shift that brings sub-block j's bit
      // to bit 4 of each byte: j = 0|2 left 4|2, 1|3 left 3|1, 4|6 right 0|2, 5|7 right 1|3. Bits
      // shifted in from a neighbouring byte land below or above bit 4. (Loop-invariant: hoisted.)
      const __m512i m10 = _mm512_set1_epi8(0x10);
      const __m512i sh0 = _mm512_set_epi64(2, 2, 2, 2, 4, 4, 4, 4), sh1 = _mm512_set_epi64(1, 1, 1, 1, 3, 3, 3, 3),
                    sh2 = _mm512_set_epi64(2, 2, 2, 2, 0, 0, 0, 0), sh3 = _mm512_set_epi64(3, 3, 3, 3, 1, 1, 1, 1);
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.qh));
      const __m512i h = _mm512_inserti64x4(_mm512_castsi256_si512(qh), qh, 1);
      v[0] = _mm512_or_si512(v[0], _mm512_and_si512(_mm512_sllv_epi64(h, sh0), m10));
      v[1] = _mm512_or_si512(v[1], _mm512_and_si512(_mm512_sllv_epi64(h, sh1), m10));
      v[2] = _mm512_or_si512(v[2], _mm512_and_si512(_mm512_srlv_epi64(h, sh2), m10));
      v[3] = _mm512_or_si512(v[3], _mm512_and_si512(_mm512_srlv_epi64(h, sh3), m10));
    }
    __m512i isum = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_maddubs_epi16(v[0], ab.a[0]),
                                       _mm512_permutexvar_epi16(idx0, sc));
    isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(v[1], ab.a[1]), _mm512_permutexvar_epi16(idx1, sc));
    isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(v[2], ab.a[2]), _mm512_permutexvar_epi16(idx2, sc));
    isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(v[3], ab.a[3]), _mm512_permutexvar_epi16(idx3, sc));
    const float da = ab.d * f16(blk.d);
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(da), acc);
    accm = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_madd_epi16(mn8, ab.bs)), _mm_set1_ps(ab.d * f16(blk.dmin)), accm);
  }
  __m128 m = accm;
  m = _mm_add_ps(m, _mm_movehl_ps(m, m));
  m = _mm_add_ss(m, _mm_movehdup_ps(m));
  return _mm512_reduce_add_ps(acc) - _mm_cvtss_f32(m);
}

template <class Block, class Fmt>
void decode_tile(int64_t k, const void* w, size_t wrb, int64_t nr, const void* act, size_t arb, int64_t mr, float* y,
                 int64_t ys) {
  const int64_t nb = k / kQKK;
  const int pf = decode_prefetch_bytes(kPrefetchBytes);
  thread_local std::vector<Q8KArranged> arranged;
  if (mr < 4) {  // each activation row arranged once per call, in the order k4_row reads it
    if (arranged.size() < size_t(mr * nb)) arranged.resize(size_t(mr * nb));
    for (int64_t i = 0; i < mr; ++i)
      arrange(reinterpret_cast<const BlockQ8_K*>(static_cast<const uint8_t*>(act) + size_t(i) * arb), nb,
              arranged.data() + i * nb);
  }
  decode_rows<K4Rows, Fmt, kQKK>(k, w, wrb, nr, act, arb, mr, y, ys, [&](const uint8_t* wr, const uint8_t*, int64_t i) {
    return k4_row(nb, reinterpret_cast<const Block*>(wr), arranged.data() + i * nb, pf);
  });
}

}  // namespace

void gemm_tile_q4_K_avx512(int64_t k, const void* w, size_t wrb, int64_t nr, const void* act,
                           size_t arb, int64_t mr, float* y, int64_t ys) {
  decode_tile<BlockQ4_K, KQ4>(k, w, wrb, nr, act, arb, mr, y, ys);
}

void gemm_tile_q5_K_avx512(int64_t k, const void* w, size_t wrb, int64_t nr, const void* act,
                           size_t arb, int64_t mr, float* y, int64_t ys) {
  decode_tile<BlockQ5_K, KQ5>(k, w, wrb, nr, act, arb, mr, y, ys);
}

}  // namespace hexe::cpu
