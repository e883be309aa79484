// Engine: the batched forward pass over the layers, the final norm and the output head.
#include "runtime/engine/engine.h"

#include <sched.h>

#include <algorithm>
#include <optional>
#include <string>
#include <thread>

#include "cpu_kernels/ops.h"
#include "cpu_kernels/quant.h"
#include "memory/error.h"
#include "memory/numa_topology.h"
#include "runtime/arch/architecture.h"
#include "runtime/engine/blocks.h"
#include "runtime/engine/phase_times.h"

namespace hexe {

namespace {

mem::KvCacheConfig kv_config(const place::ModelSpec& s, int64_t n_ctx) {
  mem::KvCacheConfig c;
  c.n_layers = s.n_layers;
  c.k_row_floats = int64_t(s.n_head_kv) * s.head_dim;
  c.v_row_floats = int64_t(s.n_head_kv) * s.head_dim;
  if (s.kv_lora_rank > 0) {  // MLA: the normed latent + the roped shared key part, no V
    c.k_row_floats = int64_t(s.kv_lora_rank) + s.qk_rope_dim;
    c.v_row_floats = 0;
  }
  c.page_tokens = 64;
  // Whole pages: a sequence of n_ctx tokens must fit even when n_ctx is not a page multiple.
  c.max_tokens = (std::max<int64_t>(n_ctx, 1) + c.page_tokens - 1) / c.page_tokens * c.page_tokens;
  return c;
}

// The physical cores the calling thread may run on (NumaTopology::allowed_cores), the
// topology read once per process: engines are made often in the tests. Empty without one.
std::vector<int> physical_cores() {
  static const std::optional<mem::NumaTopology> topo = []() -> std::optional<mem::NumaTopology> {
    try {
      return mem::NumaTopology::detect();
    } catch (const Error&) {
      return std::nullopt;
    }
  }();
  return topo ? topo->allowed_cores() : std::vector<int>{};
}

// Threads by default: one per physical core in `physical`, else one per allowed logical CPU
// (hardware_concurrency() ignores the affinity mask).
int default_count(const std::vector<int>& physical) {
  if (!physical.empty()) return int(physical.size());
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof allowed, &allowed) == 0 && CPU_COUNT(&allowed) > 0) return CPU_COUNT(&allowed);
  return int(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace

int default_thread_count() { return default_count(physical_cores()); }

Engine::Engine(const Model& model, const EngineConfig& cfg)
    : model_(model), cfg_(cfg), kv_(kv_config(model.spec(), cfg.n_ctx)) {
  const std::vector<int> physical = physical_cores();
  const int n = cfg.n_threads > 0 ? cfg.n_threads : default_count(physical);
  if (cfg.split_experts) {
    std::vector<int> a = cfg.attn_cores, e = cfg.expert_cores;
    if (a.empty() && e.empty()) {
      // Split the cores in two halves: attention gets the first, experts the rest.
      const int na = std::max(1, n / 2);
      for (int i = 0; i < na; ++i) a.push_back(i);
      for (int i = na; i < std::max(n, na + 1); ++i) e.push_back(i);
    }
    if (a.empty() || e.empty()) throw Error("split_experts needs cores for both devices");
    attn_dev_ = std::make_unique<CpuDevice>("cpu-attn", int(a.size()), a);
    expert_dev_ = std::make_unique<CpuDevice>("cpu-experts", int(e.size()), e);
  } else if (cfg.expert_homes && cfg.expert_homes->n_homes() > 1) {
    const auto& cores = cfg.expert_homes->thread_cores;
    attn_dev_ = std::make_unique<CpuDevice>("cpu", int(cores.size()), cores);
  } else {
    // Pinned, each thread keeps its core's caches and the OS never stacks two on one core's
    // hardware threads while another core idles.
    std::vector<int> cores = cfg.attn_cores;
    if (cores.empty() && cfg.pin_threads && size_t(n) <= physical.size())
      cores.assign(physical.begin(), physical.begin() + n);
    attn_dev_ = std::make_unique<CpuDevice>("cpu", n, cores);
  }
  ws_.reserve(model.spec(), cfg_.n_batch);
  if (cfg.offload.gpu_layers > 0) {
    if (cfg.split_experts || cfg.reference_kernels)
      throw Error("engine: GPU layers cannot be combined with split_experts or reference kernels");
    offload_ = make_gpu_offload(model, cfg.offload, kv_.config().max_tokens, cfg_.n_batch,
                                cfg.expert_homes.get());
    // The CPU's routed-expert jobs come one per MoE layer with a GPU segment (~0.1 ms) between:
    // keep the workers spinning across it instead of waking them from sleep every layer.
    attn_dev_->cpu_pool()->set_spin_us(2000);
  }
}

Engine::~Engine() = default;

int Engine::new_sequence() {
  int id = kv_.create_sequence();
  if (size_t(id) >= lengths_.size()) lengths_.resize(id + 1, -1);
  lengths_[id] = 0;
  return id;
}

void Engine::free_sequence(int seq) {
  kv_.free_sequence(seq);
  if (offload_) offload_->free_sequence(seq);
  lengths_[seq] = -1;
}

int64_t Engine::seq_length(int seq) const {
  if (seq < 0 || size_t(seq) >= lengths_.size() || lengths_[seq] < 0)
    throw Error("engine: no sequence " + std::to_string(seq));
  return lengths_[seq];
}

void Engine::truncate(int seq, int64_t n_tokens) {
  if (n_tokens < seq_length(seq)) {
    kv_.truncate(seq, n_tokens);
    if (offload_) offload_->truncate(seq, n_tokens);
    lengths_[seq] = n_tokens;
  }
}

void Engine::enable_routing_counts(bool on) {
  count_routing_ = on;
  const auto& s = model_.spec();
  if (on && routing_.per_layer.empty())
    routing_.per_layer.assign(s.n_layers, std::vector<uint64_t>(std::max(1, s.n_expert), 0));
}

std::span<const float> Engine::eval(std::span<const BatchItem> items) {
  for (const auto& it : items) {
    seq_length(it.seq);  // validates the id
    if (it.token < 0 || it.token >= n_vocab())
      throw Error("engine: token id " + std::to_string(it.token) + " is outside the vocabulary [0, " +
                  std::to_string(n_vocab()) + ")");
  }
  logits_.clear();
  for (size_t i = 0; i < items.size(); i += cfg_.n_batch) {
    const size_t n = std::min<size_t>(cfg_.n_batch, items.size() - i);
    run_pass(items.subspan(i, n), logits_);
  }
  return logits_;
}

const std::vector<int>& Engine::cpu_cores() const { return attn_dev_->cpu_pool()->cores(); }

void Engine::run_pass(std::span<const BatchItem> items, std::vector<float>& logits_out) {
  const auto& s = model_.spec();
  const int64_t T = int64_t(items.size()), E = s.n_embd;

  const int first_cpu_layer = offload_ ? cfg_.offload.gpu_layers : 0;

  // Group tokens by sequence (stable), assign positions, make room in the KV cache.
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return items[a].seq < items[b].seq; });
  std::vector<int32_t> tokens(T);
  std::vector<int64_t> pos(T);
  std::vector<int> seq(T);
  for (int64_t t = 0; t < T; ++t) {
    const BatchItem& it = items[order[t]];
    tokens[t] = it.token;
    seq[t] = it.seq;
    pos[t] = lengths_[it.seq]++;
    if (first_cpu_layer < s.n_layers) kv_.reserve(it.seq, pos[t] + 1);  // the GPU keeps its own
  }

  // Embedding rows.
  const Linear& emb = model_.token_embd;
  const uint64_t emb_row = row_bytes(emb.type, E);
  for (int64_t t = 0; t < T; ++t)
    cpu::dequantize_row(emb.type, static_cast<const uint8_t*>(emb.data) + tokens[t] * emb_row,
                        ws_.x.data() + t * E, E);

  LayerContext ctx{model_, 0, BatchView{T, tokens.data(), pos.data(), seq.data()}, ws_, kv_,
                   *attn_dev_, expert_dev_ ? *expert_dev_ : *attn_dev_, expert_dev_ != nullptr,
                   count_routing_ ? &routing_ : nullptr, cfg_.reference_kernels,
                   expert_dev_ ? nullptr : cfg_.expert_homes.get()};
  if (offload_) offload_->forward(ctx.batch, ws_.x.data(), *attn_dev_->cpu_pool(), ctx.routing);
  for (int l = first_cpu_layer; l < s.n_layers; ++l) {
    ctx.layer = l;
    model_.arch().forward_layer(ctx);
  }

  // Output head for the rows that want logits, in item order.
  std::vector<int64_t> rows;  // batch rows (sorted order) of wanted items, in item order
  std::vector<int64_t> where(items.size());
  for (int64_t t = 0; t < T; ++t) where[order[t]] = t;
  for (size_t i = 0; i < items.size(); ++i)
    if (items[i].want_logits) rows.push_back(where[i]);
  if (rows.empty()) return;
  if (offload_ && cfg_.offload.head_on_gpu) {
    offload_->head(rows, logits_out);
    return;
  }
  const PhaseTimer timer(Phase::Head);
  std::vector<float> normed(rows.size() * E);
  for (size_t r = 0; r < rows.size(); ++r)
    cpu::rms_norm(ws_.x.data() + rows[r] * E, model_.output_norm.data(), normed.data() + r * E, E, s.rms_eps);
  const size_t base = logits_out.size();
  logits_out.resize(base + rows.size() * size_t(s.n_vocab));
  linear(model_.output, normed.data(), int64_t(rows.size()), logits_out.data() + base, *attn_dev_->cpu_pool(),
         cfg_.reference_kernels);
}

}  // namespace hexe
