// dequantize_rows(): GGML-format rows to F32/F16/BF16 rows on the GPU.
#include "gpu_kernels/check.h"
#include "gpu_kernels/dequantize.cuh"
#include "gpu_kernels/matmul.h"

namespace hexe::gpu {

Status dequantize_rows(DType type, const void* src, int64_t rows, int64_t k, DType dst_type,
                       void* dst, int64_t dst_stride, cudaStream_t stream) {
  constexpr const char* kOp = "dequantize_rows";
  if (const char* why = detail::check_weights(type, src, rows, k)) return Status::invalid(kOp, why);
  if (dst_type != DType::F32 && dst_type != DType::F16 && dst_type != DType::BF16)
    return Status::invalid(kOp, "dst_type must be F32, F16 or BF16");
  if (dst_stride < k) return Status::invalid(kOp, "dst_stride < k");
  if (rows > 0 && dst == nullptr) return Status::invalid(kOp, "dst is null");
  if (rows == 0) return Status::success();
  const auto* s = static_cast<const uint8_t*>(src);
  const uint64_t rb = row_bytes(type, k);
  detail::visit_weight_type(type, detail::plain_vec(type, src, k), [&](auto trait) {
    using T = decltype(trait);
    switch (dst_type) {
      case DType::F32:
        return detail::launch_dequantize<T>(s, rb, rows, k, static_cast<float*>(dst), dst_stride, stream);
      case DType::F16:
        return detail::launch_dequantize<T>(s, rb, rows, k, static_cast<__half*>(dst), dst_stride, stream);
      default:
        return detail::launch_dequantize<T>(s, rb, rows, k, static_cast<__nv_bfloat16*>(dst), dst_stride,
                                            stream);
    }
  });
  return last_launch_status(kOp);
}

}  // namespace hexe::gpu
