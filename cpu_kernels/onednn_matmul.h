// Large-batch matmul of float weights (F32, F16, BF16) through oneDNN's f32 matmul primitive.
#pragma once

#include "cpu_kernels/isa.h"
#include "cpu_kernels/matmul.h"

namespace hexe::cpu {

// Fewest activation rows for oneDNN (bench_matmul --k 2048, 2 threads): F32 from 16 rows (132
// against our 51 GFLOP/s); F16/BF16, which pay a widening pass, from 128 (93-126 against 56-57;
// at 64 rows it is a tie).
constexpr int64_t kOneDnnMinRowsF32 = 16;
constexpr int64_t kOneDnnMinRowsWidened = 128;

// Whether matmul() hands this call to oneDNN: float weights in the GGUF layout, enough activation
// rows (above), a vector tier (scalar and the reference runs stay ours), and
// not BF16 where the AMX-BF16 tile runs (it is faster). HEXE_ONEDNN=off keeps every call ours.
bool onednn_wanted(const MatmulParams& p, Isa tier);

// y = x W^T with f32 arithmetic, the output columns split over the pool's threads, each running
// oneDNN inline. F16/BF16 rows are widened to f32 a cache-sized chunk at a time. False when oneDNN
// refused the shapes: the caller then runs its own kernels, which overwrite y.
bool onednn_matmul(const MatmulParams& p, ThreadPool& pool);

}  // namespace hexe::cpu
