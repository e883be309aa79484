// Status returned by every gpu_kernels entry point, and the host-side CUDA/cuBLAS error messages.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <cublas_api.h>
#include <cuda_runtime_api.h>

namespace hexe::gpu {

enum class StatusCode : uint8_t {
  kOk,
  kInvalidArgument,  // a shape, type or pointer the kernel does not accept; `detail` says which
  kCuda,             // a CUDA runtime error (launch or API); `error` holds the cudaError_t
  kCublas,           // a cuBLAS error; `error` holds the cublasStatus_t
};

// Kernels never throw: they return this, and the host boundary (device layer, runtime) turns a
// failure into a hexe::Error with to_string(). `op` and `detail` point at string literals.
struct [[nodiscard]] Status {
  StatusCode code = StatusCode::kOk;
  int error = 0;             // cudaError_t or cublasStatus_t value
  const char* op = "";       // the entry point that failed: "gemv", "rms_norm"
  const char* detail = "";   // for kInvalidArgument: the violated constraint

  bool ok() const { return code == StatusCode::kOk; }
  static Status success() { return {}; }
  static Status invalid(const char* op, const char* detail) {
    return {StatusCode::kInvalidArgument, 0, op, detail};
  }
  static Status cuda(const char* op, cudaError_t e) {
    return e == cudaSuccess ? Status{} : Status{StatusCode::kCuda, int(e), op, ""};
  }
  static Status cublas(const char* op, cublasStatus_t e) {
    return e == CUBLAS_STATUS_SUCCESS ? Status{} : Status{StatusCode::kCublas, int(e), op, ""};
  }
};

// "gemv: cudaErrorInvalidDeviceFunction (invalid device function)", "gemm: invalid argument:
// workspace smaller than gemm_workspace_bytes()", "ok".
std::string to_string(const Status& s);

// "<what>: cudaErrorNoDevice (no CUDA-capable device is detected)": the error's name and text.
std::string cuda_error_message(cudaError_t e, std::string_view what);

// Status of the last launch on this thread (cudaGetLastError), attributed to `op`.
Status last_launch_status(const char* op);

}  // namespace hexe::gpu
