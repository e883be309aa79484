// Block formats: scalar reference (de)quantisers. The single truth for every other kernel.
#pragma once

#include <cstdint>

#include "cpu_kernels/format.h"

namespace hexe::cpu {

// dst[0..n) = dequantised src; n must be a multiple of the type's block size. Types: every type
// with DTypeInfo::computable (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K).
void dequantize_row(DType type, const void* src, float* dst, int64_t n);

// Reference quantisers (round-to-nearest, GGML's reference algorithms), n a multiple of the
// block size. Types: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K, and Q8_K.
void quantize_row(DType type, const float* src, void* dst, int64_t n);

// IEEE half and bfloat16 conversions (round to nearest even).
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);

}  // namespace hexe::cpu
