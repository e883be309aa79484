// The engine: runs batches of tokens from many sequences through the model, each sequence with
// its own KV-cache pages. A single prompt is the batch of one.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "memory/expert_homes.h"
#include "memory/kv_cache.h"
#include "runtime/engine/device.h"
#include "runtime/engine/forward.h"
#include "runtime/engine/model.h"
#include "runtime/engine/offload.h"

namespace hexe {

struct EngineConfig {
  int n_threads = 0;         // threads in all (0: one per physical core, default_thread_count())
  int64_t n_ctx = 4096;      // KV-cache capacity in tokens over all sequences
  int n_batch = 512;         // tokens per forward pass (prompts longer than this run in chunks)
  // Routed experts on a second CPU device with its own cores (the attention device gets the
  // rest). Used to test the split that the CUDA device will use; same logits as one device.
  bool split_experts = false;
  std::vector<int> attn_cores, expert_cores;  // empty: derived from n_threads
  // One device (no split, no NUMA homes) and no attn_cores: its n_threads threads pinned one per
  // physical core (the first hardware thread of each, hwloc's order, those in the process's
  // affinity mask) when there are that many cores; more threads than cores run unpinned.
  bool pin_threads = true;
  // Run every matmul and MoE layer with the scalar reference kernels: float activations, no
  // int8 quantisation of activations. For verification against HF on dequantised weights; slow.
  bool reference_kernels = false;
  // NUMA (memory/expert_homes.h): the pool runs one thread per homes->thread_cores entry, and
  // each thread computes the routed experts held on its node. Ignored with split_experts.
  std::shared_ptr<const mem::ExpertHomes> expert_homes;
  // GPU layers (runtime/engine/offload.h): gpu_layers > 0 runs the first layers on a CUDA device.
  OffloadConfig offload;
};

struct BatchItem {
  int seq = 0;
  int32_t token = 0;
  bool want_logits = false;
};

// Threads an engine runs by default: one per physical core it may run on (hwloc, within the
// process's affinity mask), else one per allowed logical CPU.
int default_thread_count();

class Engine {
 public:
  Engine(const Model& model, const EngineConfig& cfg);
  ~Engine();

  const Model& model() const { return model_; }
  const EngineConfig& config() const { return cfg_; }
  int n_vocab() const { return model_.spec().n_vocab; }

  int new_sequence();
  void free_sequence(int seq);
  int64_t seq_length(int seq) const;
  void truncate(int seq, int64_t n_tokens);  // forget tokens at positions >= n_tokens

  // Appends each item's token to its sequence (at the sequence's next position) and runs the
  // model; returns the logits of the items with want_logits, in item order ([rows][n_vocab]).
  // Items of one sequence must be in order; the batch is split into passes of n_batch tokens.
  std::span<const float> eval(std::span<const BatchItem> items);

  // When set, every routed expert choice is counted (for --routing-stats).
  void enable_routing_counts(bool on);
  const RoutingCounts& routing_counts() const { return routing_; }

  // The cores the (attention) CPU device's threads are pinned to, thread i on entry i; empty when
  // they are left to the scheduler.
  const std::vector<int>& cpu_cores() const;

  // The GPU half when the config offloads layers (null otherwise): its stats feed bench's timeline.
  GpuOffload* offload() const { return offload_.get(); }

 private:
  void run_pass(std::span<const BatchItem> items, std::vector<float>& logits_out);

  const Model& model_;
  EngineConfig cfg_;
  std::unique_ptr<CpuDevice> attn_dev_, expert_dev_;
  std::unique_ptr<GpuOffload> offload_;
  mem::KvCache kv_;
  std::vector<int64_t> lengths_;  // per sequence id; -1 when free
  Workspace ws_;
  std::vector<float> logits_;
  RoutingCounts routing_;
  bool count_routing_ = false;
};

}  // namespace hexe
