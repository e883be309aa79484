// The GPU half of a hybrid engine (DESIGN.md "One decode step, hybrid"): the first gpu_layers
// layers run their norms, attention (with a paged F16 KV cache on the GPU), router, shared experts
// and dense FFNs on a CUDA device; each MoE layer's routed experts run on the CPU (strategy
// experts-cpu) or on the GPU too (layers, gpu). This header has no CUDA in it: a build without
// CUDA links the same engine and make_gpu_offload() says why it cannot.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cpu_kernels/thread_pool.h"
#include "memory/expert_homes.h"
#include "runtime/engine/forward.h"
#include "runtime/engine/model.h"

namespace hexe {

struct OffloadConfig {
  int device = 0;                     // CUDA device index
  int gpu_layers = 0;                 // layers [0, gpu_layers) run on the GPU; 0: no GPU at all
  std::vector<char> experts_on_gpu;   // per GPU layer: its routed experts run on the GPU too
  // Per GPU layer: in passes of at least stream_min_tokens tokens (prefill chunks), the routed
  // experts the pass uses are copied to the GPU and computed there (strategy `stream`), in chunks
  // of stream_chunk experts through two staging buffers, the next chunk's copy under this one's
  // compute. Smaller passes (decode) keep them where experts_on_gpu says.
  std::vector<char> experts_stream;
  int stream_chunk = 16;
  int64_t stream_min_tokens = 64;
  // Strategy experts-cpu+hot, per GPU layer: routed experts held in VRAM and computed there in
  // every pass; the layer's other experts run on the CPU meanwhile, and the two sums are added.
  std::vector<std::vector<int>> hot_experts;
  // Strategy cache, per GPU layer: slots of an LRU expert cache in VRAM (0: no cache). Every
  // routed expert of the layer then runs on the GPU; one not in the cache is first copied from
  // host memory into the least recently used slot (at least top-k slots).
  std::vector<int> cache_slots;
  bool head_on_gpu = false;           // output norm + head; needs gpu_layers == n_layers
  bool timeline = false;              // time each GPU segment with CUDA events (bench)
  bool graphs = true;                 // replay decode passes (<= 8 tokens) from CUDA graphs
  // Graphed decode passes whose routed experts all run on the CPU hand over by pinned flags (no
  // event wait, copy or launch per layer) instead of events: on an H100 the host waited 5 us less
  // per layer (see cuda_offload_handoff.cpp). HEXE_HANDOFF=flags|event overrides.
  bool flag_handoffs = true;
  // Decode passes run the fused GPU chain: q/k/v in batched GEMV launches, Wo (and a dense FFN's
  // down) accumulating into the residual, and event hand-offs through mapped pinned memory (the
  // norm and router write to the host, one launch adds the CPU's sum and normalises for the next
  // layer). Bit for bit the unfused chain's results. HEXE_GPU_FUSE=0|1 overrides.
  bool fused_decode = true;
};

// Where the time of the passes went since reset_stats(), for `hexe bench`'s per-device timeline.
struct OffloadStats {
  int64_t tokens = 0;
  int64_t graph_launches = 0;  // GPU segments replayed from CUDA graphs
  double wall_s = 0;          // inside forward() and head()
  double cpu_experts_s = 0;   // CPU busy: routing + routed experts on the host
  double gpu_busy_s = 0;      // sum of GPU segment times (timeline only)
  double wait_gpu_s = 0;      // host waiting for the GPU's hand-off (hidden GPU work shows here)
  int64_t flag_handoffs = 0;  // hand-offs answered through pinned flags (flagged decode passes)
  uint64_t h2d_bytes = 0, d2h_bytes = 0;  // PCIe traffic: activations, tables, uploaded experts
  // Layers with hot or cached experts: routed (token, expert) pairs, those served by an expert
  // that was in VRAM when the pass routed, and the experts copied in (cache misses).
  int64_t routed_pairs = 0, vram_pairs = 0, expert_uploads = 0;
  uint64_t expert_upload_bytes = 0;
};

class GpuOffload {
 public:
  virtual ~GpuOffload() = default;
  // Runs layers [0, gpu_layers) on the batch (tokens of one sequence contiguous, positions
  // increasing). x: [T][n_embd] on the host, in; out too unless the head runs on the GPU, in
  // which case head() follows. `pool` runs the routed experts placed on the CPU.
  virtual void forward(const BatchView& batch, float* x, cpu::ThreadPool& pool, RoutingCounts* routing) = 0;
  // Logits of batch rows `rows` of the last forward() ([n_rows][n_vocab], appended to `out`).
  virtual void head(const std::vector<int64_t>& rows, std::vector<float>& out) = 0;
  virtual void free_sequence(int seq) = 0;
  virtual void truncate(int seq, int64_t n_tokens) = 0;
  virtual const OffloadStats& stats() const = 0;
  virtual void reset_stats() = 0;
  virtual std::string device_name() const = 0;
};

// Empty when CUDA device `device` can run GPU layers; otherwise why not ("built without CUDA",
// "no CUDA device: cudaErrorNoDevice (...)").
std::string gpu_unavailable_reason(int device = 0);

// Uploads the GPU layers' weights and sizes the GPU KV cache for kv_tokens tokens and batches of
// up to max_batch tokens. Throws hexe::Error when the build has no CUDA, the device is missing,
// a weight type has no GPU kernel, or the GPU memory runs out (naming what was being placed).
std::unique_ptr<GpuOffload> make_gpu_offload(const Model& model, const OffloadConfig& cfg, int64_t kv_tokens,
                                             int max_batch, const mem::ExpertHomes* homes);

}  // namespace hexe
