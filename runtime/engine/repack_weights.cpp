// Model::repack_for_cpu: the load-time copy of weights into the CPU decode layout (Rows16), so
// matmul and the MoE layer read 16 rows per 64-byte line (cpu_kernels/repack.h), and of the
// matrices no Rows16 tile serves as they are, into huge-page memory: the F32 ones (the routers)
// everywhere, whose decode matmul took 67 us a layer there instead of 112 on the mapped file's
// 4 KiB pages (Qwen3-30B-A3B shape, 128 x 2048, 2 threads), and below AVX-512 VNNI every other
// matrix: on the Zen 3 VM (AVX2, a VM's two-level page walks) decode of the 12-layer
// Qwen3-30B-A3B-shaped Q4_K_M file read 0.69 of the DRAM bandwidth from the mapping and 0.80 from
// the copy (21.8 -> 23.7 t/s, 4 rounds alternating). AVX-512 VNNI has Rows16 tiles for every
// Rows16 format, AVX2 for Q4_K, Q8_0, Q4_0 and Q4_1 (cpu::rows16_pays says which).
#include <atomic>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include "cpu_kernels/dispatch.h"
#include "cpu_kernels/isa.h"
#include "cpu_kernels/repack.h"
#include "memory/mapped_file.h"
#include "memory/node_buffer.h"
#include "runtime/engine/model.h"

namespace hexe {

namespace {

bool rows16_pays(DType t, int64_t k) { return cpu::rows16_pays(t, k, cpu::active_isa()); }

// Whether this tier has Rows16 tiles for every Rows16 format (AVX-512 VNNI): the formats without
// the layout stay on the mapped file there. (An AVX-512 CPU without VNNI runs its quantised
// formats through the AVX2 tiles: Rows16 for Q4_K, Q8_0, Q4_0 and Q4_1, the GGUF layout for the rest.)
bool rows16_tier() { return int(cpu::active_isa()) >= int(cpu::Isa::Avx512) && cpu::cpu_features().avx512_vnni; }

// Which copy the CPU reads a matrix of type t, rows of k, from (see the file comment).
enum class CopyAs { None, Rows16, Gguf };
CopyAs copy_as(DType t, int64_t k) {
  if (rows16_pays(t, k)) return CopyAs::Rows16;
  if (t == DType::F32 || !rows16_tier()) return CopyAs::Gguf;
  return CopyAs::None;
}

size_t packed_bytes(DType t, int64_t rows, int64_t k, bool copy) {
  const size_t b = copy ? size_t(row_bytes(t, uint64_t(k))) * size_t(rows)
                        : cpu::rows16_group_bytes(t, k) * size_t((rows + cpu::kRows16 - 1) / cpu::kRows16);
  return (b + 63) / 64 * 64;
}

// One matrix to copy: where it is, its shape, and where to point the binding.
struct Job {
  DType type;
  int64_t rows, k;
  const void* src;
  const void** dst;
  int expert = -1;  // routed expert id, -1 for other matrices
  int layer = -1;   // a routed expert's layer
  size_t offset = 0;
  int buffer = 0;   // which NodeBuffer
  bool copy = false;  // a byte-identical copy (GGUF layout) instead of a Rows16 repack
};

// Every matrix of the model the CPU reads in matmul or the MoE layer, with a faster layout here.
// dry: only list them (dst stays null, no binding is touched).
std::vector<Job> collect(Model& m, bool dry) {
  std::vector<Job> jobs;
  auto add_linear = [&](Linear& l) {
    if (!l) return;
    const CopyAs as = copy_as(l.type, l.n_in);
    if (as == CopyAs::None) return;
    const bool copy = as == CopyAs::Gguf;
    jobs.push_back({l.type, l.n_out, l.n_in, l.data, dry ? nullptr : &l.packed});
    jobs.back().copy = copy;
    if (!dry) l.packed_layout = copy ? cpu::WeightLayout::Gguf : cpu::WeightLayout::Rows16;
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
    const CopyAs g = copy_as(lw.gate_type, E), u = copy_as(lw.up_type, E), d = copy_as(lw.down_type, F);
    auto any = [&](CopyAs as) { return g == as || u == as || d == as; };
    if (!any(CopyAs::Rows16) && !any(CopyAs::Gguf)) continue;
    // Rows16 copies go to experts_packed (the MoE kernel picks them per matrix); byte-identical
    // ones to experts_cpu, which starts as the mapped views and which the CPU reads instead.
    if (!dry && any(CopyAs::Rows16)) lw.experts_packed.assign(lw.experts.size(), cpu::ExpertWeights{});
    if (!dry && any(CopyAs::Gguf)) lw.experts_cpu = lw.experts;
    for (size_t e = 0; e < lw.experts.size(); ++e) {
      const auto& src = lw.experts[e];
      const int id = int(e), l = int(&lw - m.layers.data());
      auto add = [&](CopyAs as, DType t, int64_t rows, int64_t k, const void* from, const void* cpu::ExpertWeights::*mat) {
        if (as == CopyAs::None) return;
        cpu::ExpertWeights* to = dry ? nullptr : as == CopyAs::Rows16 ? &lw.experts_packed[e] : &lw.experts_cpu[e];
        jobs.push_back({t, rows, k, from, to ? &(to->*mat) : nullptr, id, l});
        jobs.back().copy = as == CopyAs::Gguf;
      };
      add(g, lw.gate_type, F, E, src.gate, &cpu::ExpertWeights::gate);
      add(u, lw.up_type, F, E, src.up, &cpu::ExpertWeights::up);
      add(d, lw.down_type, E, F, src.down, &cpu::ExpertWeights::down);
    }
  }
  return jobs;
}

// The bytes of j's matrix where it is (the mapped GGUF blocks).
size_t source_bytes(const Job& j) { return size_t(row_bytes(j.type, uint64_t(j.k))) * size_t(j.rows); }

}  // namespace

Model::RepackBytes Model::repackable_bytes() const {
  RepackBytes r;
  for (const Job& j : collect(const_cast<Model&>(*this), /*dry=*/true)) {  // (dry: nothing is modified)
    r.copy += packed_bytes(j.type, j.rows, j.k, j.copy);
    if (j.expert >= 0) r.expert_sources += source_bytes(j);
  }
  return r;
}

uint64_t Model::repack_for_cpu(cpu::ThreadPool& pool, const mem::ExpertHomes* homes,
                               const std::function<bool(int layer)>& release_experts_of) {
  if (!packed_store_.empty()) return 0;  // done already
  std::vector<Job> jobs = collect(*this, /*dry=*/false);
  std::vector<char> release(layers.size(), 0);  // per layer, asked once (the callback need not be thread-safe)
  if (release_experts_of)
    for (size_t l = 0; l < layers.size(); ++l) release[l] = release_experts_of(int(l));
  std::atomic<uint64_t> released{0};
  // Buffer 0 holds everything but routed experts on NUMA machines; buffer 1 + h the experts of
  // home h, bound to that home's node.
  const bool numa = homes && homes->n_homes() > 1;
  const size_t n_buffers = numa ? size_t(1 + homes->n_homes()) : 1;
  std::vector<size_t> sizes(n_buffers, 0);
  for (Job& j : jobs) {
    if (numa && j.expert >= 0 && size_t(j.expert) < homes->node_of_expert.size())
      j.buffer = 1 + homes->node_of_expert[size_t(j.expert)];
    j.offset = sizes[size_t(j.buffer)];
    sizes[size_t(j.buffer)] += packed_bytes(j.type, j.rows, j.k, j.copy);
  }
  size_t total = 0;
  for (size_t b : sizes) total += b;
  if (total == 0) return 0;
  std::vector<std::shared_ptr<mem::NodeBuffer>> buffers;
  for (size_t b = 0; b < n_buffers; ++b)
    buffers.push_back(std::make_shared<mem::NodeBuffer>(sizes[b], b == 0 ? -1 : homes->node_os_index[b - 1],
                                                        mem::HugePages::Madvise));
  pool.parallel_for(int64_t(jobs.size()), 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const Job& j = jobs[size_t(i)];
      uint8_t* dst = buffers[size_t(j.buffer)]->data() + j.offset;
      if (j.copy) std::memcpy(dst, j.src, source_bytes(j));
      else cpu::repack_rows16_into(j.type, j.rows, j.k, j.src, row_bytes(j.type, uint64_t(j.k)), dst);
      // Expert by expert, whole pages inside its blocks: nothing beside them (other tensors of a
      // file that does not keep a layer's experts together) is touched.
      if (j.expert >= 0 && release[size_t(j.layer)]) released += mem::page_out(j.src, source_bytes(j));
    }
  });
  released_expert_bytes_ = released;
  for (const Job& j : jobs) *j.dst = buffers[size_t(j.buffer)]->data() + j.offset;
  for (auto& b : buffers) packed_store_.push_back(std::move(b));
  return total;
}

}  // namespace hexe
