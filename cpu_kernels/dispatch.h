// Which kernel variant matmul uses for a weight format, and why the better tiers declined.
#pragma once

#include <string>

#include "cpu_kernels/format.h"
#include "cpu_kernels/isa.h"
#include "cpu_kernels/matmul.h"
#include "cpu_kernels/moe.h"
#include "cpu_kernels/repack.h"

namespace hexe::cpu {

struct KernelChoice {
  Isa tier = Isa::Scalar;  // tier of the chosen variant
  std::string name;        // "avx512_vnni/q4_K"; empty when the format is not computable
  std::string reasons;     // why each better tier declined ("avx512: needs AVX512_VNNI; ...")
};

// The variant matmul would run for (w_type, k) in `layout` with tiers up to `max_tier` (capped at
// the hardware's best). Pure: no logging.
KernelChoice matmul_choice(DType w_type, int64_t k, Isa max_tier, WeightLayout layout = WeightLayout::Gguf);

// Whether a Rows16 copy of (w_type, k) weights is worth making here: the format has the layout
// and its best Rows16 kernel (tiers up to max_tier) is not scalar and of at least the GGUF
// kernel's tier. AVX-512 VNNI has Rows16 tiles for every Rows16 format, AVX2 for Q4_K, Q8_0,
// Q4_0 and Q4_1; elsewhere (or with HEXE_CPU_ISA capping the tiers) a copy would run the scalar
// Rows16 code, slower than the GGUF layout's tier.
bool rows16_pays(DType w_type, int64_t k, Isa max_tier);

// Whether a CPU with the given features has a SIMD Rows16 tile for w_type, whatever this CPU has
// (the planner asks it of a hardware profile made elsewhere): AVX-512 VNNI for every Rows16
// format, AVX2 (without AVX-512 VNNI) for those its table lists.
bool rows16_tile_for(DType w_type, bool avx2, bool avx512_vnni);

// matmul with tiers capped at `max_tier` (tests and benchmarks compare tiers in one process);
// pool may be null (calling thread only). matmul() is matmul_at(p, active_isa(), &pool).
void matmul_at(const MatmulParams& p, Isa max_tier, ThreadPool* pool);
// moe_experts likewise (moe_experts() is moe_experts_at(p, active_isa(), &pool)).
void moe_experts_at(const MoeParams& p, Isa max_tier, ThreadPool* pool);

}  // namespace hexe::cpu
