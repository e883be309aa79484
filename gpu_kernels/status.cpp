// Host-side messages for Status, CUDA and cuBLAS errors (the error's name plus its description).
#include "gpu_kernels/status.h"

#include <cublas_v2.h>

namespace hexe::gpu {

std::string cuda_error_message(cudaError_t e, std::string_view what) {
  std::string s(what);
  s += ": ";
  s += cudaGetErrorName(e);
  s += " (";
  s += cudaGetErrorString(e);
  s += ")";
  return s;
}

std::string to_string(const Status& s) {
  switch (s.code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInvalidArgument:
      return std::string(s.op) + ": invalid argument: " + s.detail;
    case StatusCode::kCuda: return cuda_error_message(cudaError_t(s.error), s.op);
    case StatusCode::kCublas: {
      const auto e = cublasStatus_t(s.error);
      return std::string(s.op) + ": " + cublasGetStatusName(e) + " (" + cublasGetStatusString(e) + ")";
    }
  }
  return std::string(s.op) + ": unknown status";
}

Status last_launch_status(const char* op) { return Status::cuda(op, cudaGetLastError()); }

}  // namespace hexe::gpu
