// Weight layouts the CPU kernels read, and the load-time repack into the decode layout (Rows16).
// Gguf: the mapped GGUF rows, untouched. Rows16: 16 weight rows interleaved per group so that one
// 64-byte load feeds vpdpbusd for 16 rows at once (one output lane per row). The repacked copy is
// an addition: the GGUF view stays the source of truth (GPU path, prefill, other formats).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "cpu_kernels/format.h"

namespace hexe::cpu {

enum class WeightLayout : uint8_t { Gguf = 0, Rows16 = 1 };
inline constexpr int kLayoutCount = 2;
inline constexpr int64_t kRows16 = 16;  // rows per group

const char* layout_name(WeightLayout l);  // "gguf", "rows16"

// Rows16 geometry (formats: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K). All offsets are
// multiples of 64 bytes.
//
// Q8_0, per group, per pair of 32-blocks (1088 bytes; an odd last block is padded with zeros):
//   [h*512 + c*64 + r*4 + i]  u8  q[row r][col 32*(2P+h) + 4c + i] XOR 0x80   (h 0..1, c 0..7, i 0..3)
//   [1024 + h*32 + r*2]       f16 d[row r][block 2P+h]
// Q4_0, per group, per pair of 32-blocks (576 bytes, the GGUF's 16 x 2 x 18; an odd last block
// is padded with zeros):
//   [h*256 + c*64 + r*4 + i]  u8  the GGUF byte qs[4c + i] of row r, block 2P+h (c 0..3, i 0..3):
//                             low nibble = column 32(2P+h) + 4c + i, high = the same + 16
//   [512 + h*32 + r*2]        f16 d[row r][block 2P+h]
// Q4_1, Q5_0, Q5_1 (the other 32-blocks of nibbles), per pair (Rows16Legacy below; each pair
// exactly the GGUF's 16 x 2 blocks): Q4_0's nibble lines of block h at line(h, c) (Q4_1: as Q4_0;
// Q5_0/Q5_1: 64 + h*320 + c*64, after the line of block h's masks, so the tile reads the pair
// front to back), then
//   [mask(h, c, u)]           Q5_0/Q5_1: at h*320 + (2c+u)*8, a u64 whose bit r*4 + i is the 5th
//                             bit of column 32(2P+h) + 16u + 4c + i of row r: a byte mask over
//                             nibble line c (u 0: its low nibbles, 1: its high ones)
//   [d + h*32 + r*2]          f16 d[row r][block 2P+h]
//   [m + h*32 + r*2]          Q4_1/Q5_1: f16 m[row r][block 2P+h]
// Q4_K, per group, per super-block (2304 bytes: the GGUF's 16 x 144, not a byte more; the kernels
// read fewer bytes than with the scales unpacked to a byte each, 2368, which cost 2.8% of the
// decode stream):
//   [0 + r*2]                 f16 d[r]          [32 + r*2]  f16 dmin[r]
//   [64, 256)                 the 6-bit scales S[v] (v = j*16 + r: sub-block j, row r) and mins
//                             M[v] (v = p*32 + r*2 + h: sub-block 2p+h, row r), 128 of each:
//                             [64 + u]  low nibbles  S[u] | S[u+64] << 4   (u 0..63)
//                             [128 + u] low nibbles  M[u] | M[u+64] << 4
//                             [192 + u] top 2 bits   S[u] | S[u+32] << 2 | S[u+64] << 4 | S[u+96] << 6  (u 0..31)
//                             [224 + u] top 2 bits   of M, the same way
//                             so one 64-byte and one 32-byte load give all 128 values in two
//                             vectors (x86/avx512/rows16_q4k_scales.h unpacks them)
//   [256 + p*512 + c*64 + r*4 + i]  the GGUF byte qs[32p + 4c + i] of row r: low nibble =
//                             column 64p + 4c + i (sub-block 2p), high = the same + 32 (2p+1)
// Q5_K, per group, per super-block (2816 bytes: the GGUF's 16 x 176): Q4_K's head [0, 256), then
// per sub-block pair p (0..3) 640 bytes, in the order the decode tile reads them: for each half
// q of the pair's nibble lines (c = 4q .. 4q+3), a line of their 5th bits as byte masks and then
// the four nibble lines (Q4_K's bytes):
//   [q5k_rows16_mask(p, c, h)]  a 64-bit mask (little-endian) for line c's nibbles of sub-block
//                               2p+h: bit r*4 + i = the 5th bit of row r, column 32(2p+h) + 4c + i
//                               (GGUF: bit 2p+h of qh[4c + i]), i.e. of byte lane r*4 + i of line c
//   [k4_rows16_line(true, p, c)]  nibble line c of pair p, as Q4_K's
// Q6_K, per group, per super-block (3392 bytes: 6.625 bits a weight against the GGUF's 6.5625;
// the 6-bit levels stay split in nibble and 2-bit planes, as in the GGUF block, so the stream
// is not widened to a byte a weight), in the order the decode tile reads it: four chunks, for
// (h, s) = (0, 0), (0, 1), (1, 0), (1, 1) at q6k_rows16_chunk(h, s), each
//   [+ cc*192 + r*4 + i]        the GGUF byte ql[64h + 4c + i] of row r, c = 4s + cc (cc 0..3)
//   [+ cc*192 + 64 + r*4 + i]   the GGUF byte ql[64h + 32 + 4c + i]
//   [+ cc*192 + 128 + r*4 + i]  the GGUF byte qh[32h + 4c + i]
//                               so the three loads of one (h, c) hold the 6-bit levels of columns
//                               128h + 32t + 4c + i, t 0..3 (t = 0/1: low nibbles of the first/
//                               second load, 2/3: their high nibbles; bits 2t..2t+1 of the third)
//   [+ 768 + t*16 + r]          i8  scale of sub-block j = 8h + 2t + s (the chunk's columns of
//                               set t), row r
// then [3328 + r*2] f16 d[r], [3360, 3392) zero.
inline constexpr size_t kQ6KRows16Triple = 192;                     // the three lines of one (h, c)
inline constexpr size_t kQ6KRows16Chunk = 4 * kQ6KRows16Triple + 64;  // four triples and their scales
inline constexpr size_t kQ6KRows16D = 4 * kQ6KRows16Chunk;            // 3328
inline constexpr size_t kQ6KRows16Bytes = kQ6KRows16D + 64;           // 3392
inline constexpr size_t q6k_rows16_chunk(int h, int s) { return size_t(2 * h + s) * kQ6KRows16Chunk; }
// Offset of the (h, c) triple, and of sub-block j's 16 scales.
inline constexpr size_t q6k_rows16_triple(int h, int c) {
  return q6k_rows16_chunk(h, c / 4) + size_t(c % 4) * kQ6KRows16Triple;
}
inline constexpr size_t q6k_rows16_scales(int j) {
  return q6k_rows16_chunk(j / 8, j % 2) + 4 * kQ6KRows16Triple + size_t(j % 8 / 2) * 16;
}
inline constexpr size_t kQ4KRows16Qs = 256;   // offset of the nibbles in a Q4_K/Q5_K super-block
inline constexpr size_t kQ4KRows16Bytes = kQ4KRows16Qs + 16 * 128;   // one Q4_K super-block: 2304
inline constexpr size_t kQ5KRows16Half = 64 + 4 * 64;                 // a mask line and four nibble lines
inline constexpr size_t kQ5KRows16Bytes = kQ4KRows16Qs + 8 * kQ5KRows16Half;  // one Q5_K super-block: 2816
// Offset of nibble line c (0..7) of sub-block pair p in a Q4_K (five: Q5_K) Rows16 super-block.
inline constexpr size_t k4_rows16_line(bool five, int p, int c) {
  return five ? kQ4KRows16Qs + size_t(2 * p + c / 4) * kQ5KRows16Half + 64 + size_t(c % 4) * 64
              : kQ4KRows16Qs + size_t(p) * 512 + size_t(c) * 64;
}
// Offset of the Q5_K byte mask of line c of pair p, sub-block 2p+h.
inline constexpr size_t q5k_rows16_mask(int p, int c, int h) {
  return kQ4KRows16Qs + size_t(2 * p + c / 4) * kQ5KRows16Half + size_t(c % 4) * 16 + size_t(h) * 8;
}
// Where a 32-block pair of Q4_0/Q4_1/Q5_0/Q5_1 keeps its fields (m 0: none).
struct Rows16Legacy {
  bool five = false;  // Q5_0/Q5_1: a line of 5th-bit masks before each block's nibble lines
  size_t nib = 0, half = 256;  // block h's nibble lines at nib + h * half (its masks at h * half)
  size_t d = 512, m = 0, pair_bytes = 576;
  int offset = 8;  // the levels' offset: w = d (q - offset) (+ m)
  constexpr size_t line(int h, int c) const { return nib + size_t(h) * half + size_t(c) * 64; }
  // The mask over nibble line c of block h (u 0: its low nibbles, 1: its high ones).
  constexpr size_t mask(int h, int c, int u) const { return size_t(h) * half + size_t(2 * c + u) * 8; }
};
constexpr Rows16Legacy rows16_legacy(DType t) {
  switch (t) {
    case DType::Q4_1: return {false, 0, 256, 512, 576, 640, 0};
    case DType::Q5_0: return {true, 64, 320, 640, 0, 704, 16};
    case DType::Q5_1: return {true, 64, 320, 640, 704, 768, 0};
    default: return {false, 0, 256, 512, 0, 576, 8};  // Q4_0
  }
}
// The scale and min of sub-block j (0..7), row r of the Q4_K/Q5_K super-block at sb (scalar tier, tests).
uint8_t rows16_q4k_scale(const uint8_t* sb, int j, int r);
uint8_t rows16_q4k_min(const uint8_t* sb, int j, int r);
bool rows16_supported(DType t);
// Bytes of one 16-row group holding k columns.
size_t rows16_group_bytes(DType t, int64_t k);
// Column slices start at multiples of this (64 for Q8_0 and the 32-block nibble formats, 256 for the K-quants); a slice [c0, c1) of a
// group starts rows16_col_offset(t, c0) bytes in and is read with the same group stride.
int64_t rows16_col_align(DType t);
size_t rows16_col_offset(DType t, int64_t c0);

// A weight matrix as the kernels see it: rows x k of dtype in `layout`; stride = bytes between
// rows (Gguf) or between 16-row groups (Rows16).
struct WeightView {
  DType dtype = DType::F32;
  WeightLayout layout = WeightLayout::Gguf;
  const void* data = nullptr;
  size_t stride = 0;
  int64_t rows = 0, k = 0;
};

// An owning, 64-byte aligned Rows16 copy of a matrix.
class PackedWeights {
 public:
  PackedWeights() = default;
  WeightView view() const { return view_; }
  const uint8_t* data() const { return buf_.get(); }
  size_t bytes() const { return bytes_; }

 private:
  friend PackedWeights repack_for_decode(DType, int64_t, int64_t, const void*, size_t);
  struct Free { void operator()(uint8_t* p) const; };
  std::unique_ptr<uint8_t, Free> buf_;
  size_t bytes_ = 0;
  WeightView view_;
};

// Repacks `rows` GGUF rows of k elements (src_row_bytes apart) into Rows16; rows are padded to a
// multiple of 16 with zero rows. Throws std::invalid_argument naming the format or k when the
// format has no Rows16 layout or k is not a multiple of its block size.
PackedWeights repack_for_decode(DType t, int64_t rows, int64_t k, const void* src, size_t src_row_bytes);
// The same into caller memory (rows16_group_bytes(t, k) * ceil(rows/16) bytes, 64-byte aligned
// for full speed); no checks beyond the caller's. For weight sets packed in place of a copy.
void repack_rows16_into(DType t, int64_t rows, int64_t k, const void* src, size_t src_row_bytes, uint8_t* dst);

}  // namespace hexe::cpu
