// Internal: shared argument checks of the matmul/dequantise entry points.
#pragma once

#include <cstdint>

#include "gpu_kernels/matmul.h"

namespace hexe::gpu::detail {

inline bool aligned(const void* p, uintptr_t a) { return reinterpret_cast<uintptr_t>(p) % a == 0; }

// The weight-side constraints every matmul path shares; null when they hold, else the reason.
inline const char* check_weights(DType t, const void* w, int64_t n, int64_t k) {
  if (!supports_weight_type(t)) return "weight type has no GPU kernel";
  if (n < 0 || k <= 0) return "n must be >= 0 and k > 0";
  if (k % info(t).block_elems != 0) return "k must be a multiple of the weight type's block size";
  if (n > 0 && w == nullptr) return "w is null";
  if (is_quantized(t) ? !aligned(w, 16) : !aligned(w, info(t).block_bytes))
    return "w must be 16-byte aligned (quantised) or element aligned (F32/F16/BF16)";
  return nullptr;
}

// Plain types take 8-element vector chunks when every row start stays 16-byte aligned.
inline bool plain_vec(DType t, const void* w, int64_t k) {
  return !is_quantized(t) && k % 8 == 0 && aligned(w, 16);
}

}  // namespace hexe::gpu::detail
