// CUDA errors turned into hexe::Error at the runtime's boundary, naming the call and the error.
#pragma once

#include <cuda_runtime_api.h>

#include <string>

#include "gpu_kernels/status.h"
#include "memory/error.h"

namespace hexe {

// Throws hexe::Error("<what>: cudaErrorX (text)") unless e is cudaSuccess; clears the error so
// the next launch does not report it again.
inline void cuda_check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  cudaGetLastError();
  throw Error(gpu::cuda_error_message(e, what));
}

inline void gpu_check(const gpu::Status& s) {
  if (!s.ok()) throw Error(gpu::to_string(s));
}

}  // namespace hexe
