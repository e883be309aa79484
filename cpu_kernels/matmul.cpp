// matmul front: quantises the activation rows once to the paired format, then splits
// (weight-row block x activation-row block) tiles over the threads and runs the chosen kernel.
#include "cpu_kernels/matmul.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu_kernels/dispatch.h"
#include "cpu_kernels/kernels.h"
#include "cpu_kernels/onednn_matmul.h"
#include "cpu_kernels/quant.h"
#include "cpu_kernels/quant_act.h"

namespace hexe::cpu {
namespace {

constexpr int64_t kRowsN = 16;  // weight rows per work item (a few KB..100 KB: stays in L2)
// Rows16: whole groups, several per item, so the tile's per-call activation preparation
// (block sums) is spread over more rows.
constexpr int64_t kRowsN16 = 64;
constexpr int64_t kRowsAmx = 256;  // weight rows per work item for AMX tiles in prefill
// One activation row (decode; the tiles then read each weight byte once, so an item need not
// stay in cache): items of up to this many weight rows, at least kItemsPerThread per thread.
// Each item ends in a gap in the weight stream (the tile's last stores, the next call's
// activation preparation) that costs far more from DRAM than in cache: on the Zen 4 VM (2
// threads, Rows16, 1 GiB of weights, item sizes alternating in one process, medians of 7-80
// passes) 64-row items streamed q8_0 at 0.88 of the read bandwidth and 512- or 1024-row ones at
// 0.94 (q6_K 0.94 -> 0.97-0.98, q4_K 0.98 -> 0.99-1.00); when its read bandwidth was twice as
// high, 0.68 -> 0.80 (q6_K 0.70 -> 0.80-0.82, q4_K 0.88 -> 0.88-0.94).
constexpr int64_t kRowsDecodeMax = 1024;
constexpr int64_t kItemsPerThread = 8;  // a late thread's tail is then at most an eighth of its share

// Weight bytes a decode matmul reads.
size_t weight_bytes(const MatmulParams& p) { return size_t(p.n) * size_t(row_bytes(p.w_type, uint64_t(p.k))); }

struct Act {
  const void* ptr;
  size_t row_bytes;
};

uint8_t* align64(std::vector<uint8_t>& buf, size_t bytes) {
  buf.resize(bytes + 64);
  const auto addr = reinterpret_cast<uintptr_t>(buf.data());
  return buf.data() + ((64 - addr % 64) % 64);
}

// Float activations pass through; quantised formats get their rows quantised once per call, into buf.
Act prepare_activations(const MatmulParams& p, DType act_type, ThreadPool* pool, std::vector<uint8_t>& buf) {
  if (act_type == DType::F32) return {p.x, size_t(p.x_stride) * sizeof(float)};
  const size_t rb = row_bytes(act_type, uint64_t(p.k));
  uint8_t* base = align64(buf, rb * size_t(p.m));
  auto quantize = [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) quantize_activation_row(act_type, p.x + r * p.x_stride, base + r * rb, p.k);
  };
  if (pool && p.m >= 2 * pool->size()) pool->parallel_for(p.m, 1, quantize);
  else quantize(0, p.m);
  return {base, rb};
}

// One matmul's work: (weight-row block x activation-row block) items for its kernel.
struct Job {
  const MatmulParams* p = nullptr;
  const GemmKernel* g = nullptr;
  Act a{};
  size_t wrb = 0;  // bytes per row (Gguf) or per 16-row group (Rows16)
  bool r16 = false;
  int64_t rows_n = 0, rows_m = 0, m_chunks = 0, items = 0;

  // Items weight-block-major, so a thread walks all activation blocks of a weight block while
  // that block is hot in cache.
  void run_item(int64_t it) const {
    const int64_t ni = it / m_chunks, mi = it % m_chunks;
    const int64_t n0 = ni * rows_n, m0 = mi * rows_m;
    const int64_t nr = std::min(rows_n, p->n - n0), mr = std::min(rows_m, p->m - m0);
    const auto* w = static_cast<const uint8_t*>(p->w) + size_t(r16 ? n0 / kRows16 : n0) * wrb;
    g->fn(p->k, w, wrb, nr, static_cast<const uint8_t*>(a.ptr) + m0 * a.row_bytes, a.row_bytes, mr,
          p->y + m0 * p->y_stride + n0, p->y_stride);
  }
};

// The job of p, its activations quantised into buf; false when there is nothing left to run
// (no rows, no kernel: y zeroed, or oneDNN did it). Decode items hold about `decode_item_bytes`
// of weights each (whole 16-row groups, up to kRowsDecodeMax rows).
bool plan_job(const MatmulParams& p, Isa max_tier, ThreadPool* pool, std::vector<uint8_t>& buf, size_t decode_item_bytes,
              Job& j) {
  if (p.m <= 0 || p.n <= 0) return false;
  const GemmKernel* g = select_gemm(p.w_type, p.k, max_tier, p.w_layout);
  if (!g) {  // no kernel for this format: the loader rejects such weights; never leave y stale
    for (int64_t i = 0; i < p.m; ++i) std::fill_n(p.y + i * p.y_stride, p.n, 0.f);
    return false;
  }
  // Prefill-sized float matmuls: oneDNN's blocked GEMM (on its own threads, as many as ours).
  if (pool && onednn_wanted(p, max_tier) && onednn_matmul(p, *pool)) return false;
  j.p = &p;
  j.g = g;
  j.a = prepare_activations(p, paired_activation(p.w_type), pool, buf);
  j.r16 = p.w_layout == WeightLayout::Rows16;
  j.wrb = j.r16 ? rows16_group_bytes(p.w_type, p.k) : row_bytes(p.w_type, uint64_t(p.k));
  int64_t rows_n = j.r16 ? kRowsN16 : kRowsN;
  // AMX tiles (m >= 16) build their activation tiles once per call: more weight rows per call
  // spread that (up to 256 rows, keeping two items per thread where n allows).
  if (g->tier == Isa::Amx && p.m >= 16) {
    const int64_t nth = pool ? pool->size() : 1;
    const int64_t even = ((p.n + 2 * nth - 1) / (2 * nth) + 15) / 16 * 16;
    rows_n = std::max(rows_n, std::min<int64_t>(kRowsAmx, even));
  }
  if (p.m == 1) {
    const int64_t rows = int64_t(decode_item_bytes / std::max<uint64_t>(1, row_bytes(p.w_type, uint64_t(p.k))));
    rows_n = std::max(rows_n, std::min(kRowsDecodeMax, rows / kRows16 * kRows16));
  }
  j.rows_n = rows_n;
  j.rows_m = std::max<int64_t>(1, g->rows_per_call);  // activation rows per item
  j.m_chunks = (p.m + j.rows_m - 1) / j.rows_m;
  j.items = (p.n + rows_n - 1) / rows_n * j.m_chunks;
  return true;
}

// The jobs' items as one list over the pool. Balanced: with cores of different speeds (P and E
// cores, a VM's busy vCPU) a static split leaves the fast ones idle through the slow ones' tail.
// On the 2-vCPU VM the two measured the same (bench_matmul --layout rows16, 2 threads:
// 21.0-21.6 GB/s either way).
void run_jobs(const Job* jobs, size_t n_jobs, ThreadPool* pool) {
  int64_t items = 0;
  for (size_t i = 0; i < n_jobs; ++i) items += jobs[i].items;
  auto body = [&](int64_t begin, int64_t end) {
    size_t j = 0;
    int64_t first = 0;  // global index of job j's item 0
    for (int64_t it = begin; it < end; ++it) {
      while (it >= first + jobs[j].items) first += jobs[j++].items;
      jobs[j].run_item(it - first);
    }
  };
  if (pool && pool->size() > 1 && items > 1) pool->parallel_for_balanced(items, 1, body);
  else body(0, items);
}

// Decode items' weight bytes: kItemsPerThread items per thread over `bytes`.
size_t decode_item_bytes(size_t bytes, ThreadPool* pool) {
  return bytes / size_t(kItemsPerThread * (pool ? pool->size() : 1));
}

void run(const MatmulParams& p, Isa max_tier, ThreadPool* pool) {
  thread_local std::vector<uint8_t> buf;
  Job j;
  if (plan_job(p, max_tier, pool, buf, decode_item_bytes(weight_bytes(p), pool), j)) run_jobs(&j, 1, pool);
}

}  // namespace

void matmul_at(const MatmulParams& p, Isa max_tier, ThreadPool* pool) { run(p, max_tier, pool); }
void matmul(const MatmulParams& p, ThreadPool& pool) { run(p, active_isa(), &pool); }
void matmul_serial(const MatmulParams& p) { run(p, active_isa(), nullptr); }

void matmul_many(std::span<const MatmulParams> ps, ThreadPool& pool) {
  thread_local std::vector<std::vector<uint8_t>> bufs;  // one activation buffer per job
  thread_local std::vector<Job> jobs;
  if (bufs.size() < ps.size()) bufs.resize(ps.size());
  jobs.clear();
  // Decode items of every job hold about the same weight bytes, so the pool's first split (by
  // item count) gives each thread its share of the bytes. Sized per job, Qwen3-30B's q, k and v
  // (4.7, 0.6 and 0.9 MB, 16 items each) gave one of 2 threads all of q and half of k (5.0 MB)
  // and the other 1.2 MB, which then took every other q item from the first: that q/k/v dispatch
  // took 5-10% longer at the Zen 4 VM's high bandwidth level and 2-3% at its low one (the two
  // sizings alternating layer by layer in one `hexe bench -m` process, 768 calls each).
  size_t bytes = 0;
  for (const MatmulParams& p : ps) bytes += p.m == 1 ? weight_bytes(p) : 0;
  for (size_t i = 0; i < ps.size(); ++i) {
    Job j;
    if (plan_job(ps[i], active_isa(), &pool, bufs[i], decode_item_bytes(bytes, &pool), j)) jobs.push_back(j);
  }
  run_jobs(jobs.data(), jobs.size(), &pool);
}

}  // namespace hexe::cpu
