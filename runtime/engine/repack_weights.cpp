// Model::repack_for_cpu: the load-time copy of weights into the CPU decode layout (Rows16), so
// matmul and the MoE layer read 16 rows per 64-byte load (cpu_kernels/repack.h).
#include <functional>
#include <memory>
#include <vector>

#include "cpu_kernels/dispatch.h"
#include "cpu_kernels/isa.h"
#include "cpu_kernels/repack.h"
#include "memory/node_buffer.h"
#include "runtime/engine/model.h"

namespace hexe {

namespace {

// Whether the best kernel for (t, k) in Rows16 is of at least the GGUF kernel's tier here (with
// HEXE_CPU_ISA capping the tiers, a Rows16 copy could otherwise fall back to scalar code).
bool rows16_pays(DType t, int64_t k) {
  if (!cpu::rows16_supported(t) || k % int64_t(info(t).block_elems) != 0) return false;
  const cpu::KernelChoice g = cpu::matmul_choice(t, k, cpu::active_isa(), cpu::WeightLayout::Gguf);
  const cpu::KernelChoice r = cpu::matmul_choice(t, k, cpu::active_isa(), cpu::WeightLayout::Rows16);
  return !r.name.empty() && int(r.tier) >= int(g.tier) && r.tier != cpu::Isa::Scalar;
}

size_t packed_bytes(DType t, int64_t rows, int64_t k) {
  const size_t b = cpu::rows16_group_bytes(t, k) * size_t((rows + cpu::kRows16 - 1) / cpu::kRows16);
  return (b + 63) / 64 * 64;
}

// One matrix to copy: where it is, its shape, and where to point the binding.
struct Job {
  DType type;
  int64_t rows, k;
  const void* src;
  const void** dst;
  size_t offset = 0;
};

// Every matrix of the model the CPU reads in matmul or the MoE layer, with a faster layout here.
// dry: only list them (dst stays null, no binding is touched).
std::vector<Job> collect(Model& m, bool dry) {
  std::vector<Job> jobs;
  auto add_linear = [&](Linear& l) {
    if (l && rows16_pays(l.type, l.n_in)) jobs.push_back({l.type, l.n_out, l.n_in, l.data, dry ? nullptr : &l.packed});
  };
  add_linear(m.output);
  for (auto& lw : m.layers) {
    for (Linear* l : {&lw.wq, &lw.wk, &lw.wv, &lw.wo, &lw.router, &lw.ffn_gate, &lw.ffn_up, &lw.ffn_down,
                      &lw.shexp_gate, &lw.shexp_up, &lw.shexp_down, &lw.wq_a, &lw.wq_b, &lw.wkv_a})
      add_linear(*l);
    for (auto& l : lw.k_b) add_linear(l);
    for (auto& l : lw.v_b) add_linear(l);
    if (lw.experts.empty()) continue;
    const int64_t E = m.spec().n_embd, F = lw.n_ff_exp;
    const bool g = rows16_pays(lw.gate_type, E), u = rows16_pays(lw.up_type, E), d = rows16_pays(lw.down_type, F);
    if (!g && !u && !d) continue;
    if (!dry) lw.experts_packed.assign(lw.experts.size(), cpu::ExpertWeights{});
    for (size_t e = 0; e < lw.experts.size(); ++e) {
      auto& src = lw.experts[e];
      cpu::ExpertWeights* dst = dry ? nullptr : &lw.experts_packed[e];
      if (g) jobs.push_back({lw.gate_type, F, E, src.gate, dst ? &dst->gate : nullptr});
      if (u) jobs.push_back({lw.up_type, F, E, src.up, dst ? &dst->up : nullptr});
      if (d) jobs.push_back({lw.down_type, E, F, src.down, dst ? &dst->down : nullptr});
    }
  }
  return jobs;
}

}  // namespace

uint64_t Model::repackable_bytes() const {
  uint64_t total = 0;
  for (const Job& j : collect(const_cast<Model&>(*this), /*dry=*/true)) total += packed_bytes(j.type, j.rows, j.k);
  return total;  // (dry: nothing was modified)
}

uint64_t Model::repack_for_cpu(cpu::ThreadPool& pool) {
  if (packed_store_) return 0;  // done already
  std::vector<Job> jobs = collect(*this, /*dry=*/false);
  size_t total = 0;
  for (Job& j : jobs) {
    j.offset = total;
    total += packed_bytes(j.type, j.rows, j.k);
  }
  if (total == 0) return 0;
  auto store = std::make_shared<mem::NodeBuffer>(total, -1, mem::HugePages::Madvise);
  uint8_t* base = store->data();
  pool.parallel_for(int64_t(jobs.size()), 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const Job& j = jobs[size_t(i)];
      cpu::repack_rows16_into(j.type, j.rows, j.k, j.src, row_bytes(j.type, uint64_t(j.k)), base + j.offset);
    }
  });
  for (const Job& j : jobs) *j.dst = base + j.offset;
  packed_store_ = std::move(store);
  return total;
}

}  // namespace hexe
