// Activation quantisers of the int8 matmul paths (rows of Q8_0 for q4_0..q8_0 weights, Q8_K for
// K-quant weights), byte-identical to quantize_row's reference; AVX-512 where the CPU has it.
// Decode quantises one row per matmul on one thread, so the scalar loop (~9 us for 2048 floats)
// sat on every layer's critical path.
#pragma once

#include <cstdint>

#include "cpu_kernels/format.h"
#include "cpu_kernels/isa.h"

namespace hexe::cpu {

// quantize_row(type, src, dst, n) for every type; Q8_0 and Q8_K at the active ISA's speed.
void quantize_activation_row(DType type, const float* src, void* dst, int64_t n);
// The same at a given tier (tests compare the tiers; a tier above the hardware's is refused by
// running the reference).
void quantize_activation_row_at(Isa isa, DType type, const float* src, void* dst, int64_t n);

}  // namespace hexe::cpu
