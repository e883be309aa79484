// The scalar tier's tile kernel (integer dot per row pair) and matmul_ref, the float reference.
#include <vector>

#include "cpu_kernels/kernels.h"
#include "cpu_kernels/matmul.h"
#include "cpu_kernels/quant.h"

namespace hexe::cpu {
namespace {

template <DType W>
void tile_ref(int64_t k, const void* w, size_t wrb, int64_t nr, const void* act, size_t arb,
              int64_t mr, float* y, int64_t ys) {
  for (int64_t j = 0; j < nr; ++j)
    for (int64_t i = 0; i < mr; ++i)
      y[i * ys + j] = vec_dot_ref(W, k, static_cast<const uint8_t*>(w) + j * wrb,
                                  static_cast<const uint8_t*>(act) + i * arb);
}

template <DType W>
GemmKernel make(const char* name) {
  return {tile_ref<W>, name, nullptr, int64_t(info(W).block_elems)};
}

}  // namespace

GemmKernel gemm_kernel_ref(DType w) {
  switch (w) {
    case DType::F32: return make<DType::F32>("scalar/f32");
    case DType::F16: return make<DType::F16>("scalar/f16");
    case DType::BF16: return make<DType::BF16>("scalar/bf16");
    case DType::Q4_0: return make<DType::Q4_0>("scalar/q4_0");
    case DType::Q4_1: return make<DType::Q4_1>("scalar/q4_1");
    case DType::Q5_0: return make<DType::Q5_0>("scalar/q5_0");
    case DType::Q5_1: return make<DType::Q5_1>("scalar/q5_1");
    case DType::Q8_0: return make<DType::Q8_0>("scalar/q8_0");
    case DType::Q4_K: return make<DType::Q4_K>("scalar/q4_K");
    case DType::Q5_K: return make<DType::Q5_K>("scalar/q5_K");
    case DType::Q6_K: return make<DType::Q6_K>("scalar/q6_K");
    default: return {nullptr, nullptr, "format not computable", 1};
  }
}

void matmul_ref(const MatmulParams& p) {
  std::vector<float> w(size_t(p.k));
  const size_t wrb = row_bytes(p.w_type, uint64_t(p.k));
  for (int64_t j = 0; j < p.n; ++j) {
    dequantize_row(p.w_type, static_cast<const uint8_t*>(p.w) + j * wrb, w.data(), p.k);
    for (int64_t i = 0; i < p.m; ++i) {
      const float* x = p.x + i * p.x_stride;
      float acc = 0.f;
      for (int64_t t = 0; t < p.k; ++t) acc += w[size_t(t)] * x[t];
      p.y[i * p.y_stride + j] = acc;
    }
  }
}

}  // namespace hexe::cpu
