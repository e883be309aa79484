// Activation quantisers: the one dispatch point between the reference and the AVX2 / AVX-512 rows.
#include "cpu_kernels/quant_act.h"

#include "cpu_kernels/quant.h"

namespace hexe::cpu {

namespace avx512 {
void quantize_q8_0_row(const float* src, void* dst, int64_t n);
void quantize_q8_k_row(const float* src, void* dst, int64_t n);
}  // namespace avx512
namespace avx2 {
void quantize_q8_0_row(const float* src, void* dst, int64_t n);
void quantize_q8_k_row(const float* src, void* dst, int64_t n);
}  // namespace avx2

void quantize_activation_row_at(Isa isa, DType type, const float* src, void* dst, int64_t n) {
  if (int(isa) >= int(Isa::Avx512) && int(hardware_isa()) >= int(Isa::Avx512)) {
    if (type == DType::Q8_0) return avx512::quantize_q8_0_row(src, dst, n);
    if (type == DType::Q8_K) return avx512::quantize_q8_k_row(src, dst, n);
  }
  if (int(isa) >= int(Isa::Avx2) && int(hardware_isa()) >= int(Isa::Avx2)) {
    if (type == DType::Q8_0) return avx2::quantize_q8_0_row(src, dst, n);
    if (type == DType::Q8_K) return avx2::quantize_q8_k_row(src, dst, n);
  }
  quantize_row(type, src, dst, n);
}

void quantize_activation_row(DType type, const float* src, void* dst, int64_t n) {
  quantize_activation_row_at(active_isa(), type, src, dst, n);
}

}  // namespace hexe::cpu
