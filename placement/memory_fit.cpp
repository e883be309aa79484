// Per-device memory accounting and the fit check.
#include "placement/memory_fit.h"

#include <algorithm>

namespace hexe::place {

namespace {
constexpr uint64_t kMiB = 1024ull * 1024ull;
constexpr uint64_t kGiB = 1024ull * kMiB;
}  // namespace

uint64_t activation_bytes(const PlanModel& m, const Workload& w, bool runs_experts) {
  const auto& s = m.spec;
  const uint64_t ub = uint64_t(std::max<int64_t>(1, std::min(w.ubatch, std::max(w.prompt, w.batch))));
  const uint64_t ff = uint64_t(std::max(s.n_ff, s.n_ff_exp * std::max(1, s.n_expert_shared)));
  // Per token: residual, normed input, attention output and q (6 x n_embd), FFN gate/up/act
  // (3 x n_ff), attention tiles (n_head x 256): floats.
  uint64_t per_tok = 6ull * uint64_t(s.n_embd) + 3ull * ff + uint64_t(m.attn.n_head) * 256ull;
  if (m.attn.mla) per_tok += uint64_t(m.attn.n_head) * uint64_t(m.attn.head_dim_k + m.attn.head_dim_v);
  uint64_t bytes = ub * per_tok * 4ull;
  if (runs_experts) bytes += ub * uint64_t(s.n_expert_used) * uint64_t(s.n_ff_exp) * 3ull * 4ull;
  bytes += uint64_t(std::max<int64_t>(1, w.batch)) * uint64_t(s.n_vocab) * 4ull;  // logits
  return bytes;
}

uint64_t graph_bytes(const PlanModel& m) { return 64 * kMiB + uint64_t(std::max(0, m.spec.n_layers)) * kMiB; }
uint64_t gpu_margin(uint64_t capacity) { return 256 * kMiB + capacity / 33; }
uint64_t host_margin(uint64_t capacity) { return capacity / 33; }
uint64_t host_reserved() { return 2 * kGiB; }

void account_memory(Plan& plan, const PlanModel& m, const ModelDigest& d, const HardwareProfile& hw) {
  MemoryUse g, h;
  for (const auto& t : plan.tensors) {
    if (t.device == Device::Gpu) g.weights += t.bytes;
    else h.weights += t.bytes;
    if (t.device == Device::Cpu && t.gpu_experts > 0) {
      // Hot experts: copies in VRAM; the host keeps the full tensor.
      g.weights += t.bytes / uint64_t(std::max(1, m.spec.n_expert)) * uint64_t(t.gpu_experts);
    }
  }
  int gpu_attn = 0, cpu_attn = 0;
  bool gpu_compute = false, cpu_experts = false, gpu_experts = false, stream = false;
  uint64_t stream_staging = 0;
  for (const auto& l : plan.layers) {
    (l.attn == Device::Gpu ? gpu_attn : cpu_attn) += 1;
    gpu_compute |= l.attn == Device::Gpu || l.ffn == Device::Gpu;
    if (!l.moe) continue;
    const double be = d.layers[size_t(l.layer)].expert_bytes();
    for (ExpertExec e : {l.experts_decode, l.experts_prefill}) {
      cpu_experts |= e == ExpertExec::Cpu;
      gpu_experts |= e != ExpertExec::Cpu;
      stream |= e == ExpertExec::Stream;
    }
    if (l.experts_decode == ExpertExec::Cache || l.experts_prefill == ExpertExec::Cache)
      g.weights += uint64_t(double(l.cache_slots) * be);
  }
  for (const auto& l : plan.layers) {
    if (l.moe && (l.experts_decode == ExpertExec::Stream || l.experts_prefill == ExpertExec::Stream))
      stream_staging = std::max<uint64_t>(stream_staging, uint64_t(l.stream_chunk) * uint64_t(d.layers[size_t(l.layer)].expert_bytes()));
  }
  const auto& w = plan.workload;
  const uint64_t seqs = uint64_t(std::max<int64_t>(1, w.batch));
  g.kv = m.attn.kv_bytes(w.context, gpu_attn, w.kv_elem_bytes) * seqs;
  h.kv = m.attn.kv_bytes(w.context, cpu_attn, kCpuKvElemBytes) * seqs;
  const bool gpu_used = plan.has_gpu && (gpu_compute || gpu_experts || plan.head == Device::Gpu);
  if (gpu_used) {
    const auto& gp = hw.gpus.front();
    g.activations = activation_bytes(m, w, gpu_experts);
    g.staging = stream ? 2 * stream_staging : 0;  // double buffer of `stream_chunk` experts
    g.graphs = graph_bytes(m);
    g.reserved = gp.reserved_bytes;
    g.capacity = gp.memory_bytes;
    g.margin = gpu_margin(g.capacity);
  } else if (plan.has_gpu) {
    g.capacity = hw.gpus.front().memory_bytes;
  }
  h.activations = activation_bytes(m, w, cpu_experts);
  // Pinned hand-off buffers (hidden states both ways, double-buffered) or upload bounce buffers.
  h.staging = gpu_used ? 4ull * uint64_t(std::max<int64_t>(w.ubatch, w.batch)) * uint64_t(m.spec.n_embd) * 4ull : 0;
  if (stream) h.staging += 2 * stream_staging;
  h.reserved = host_reserved();
  h.capacity = hw.host_memory_bytes;
  h.margin = host_margin(h.capacity);
  plan.gpu = g;
  plan.host = h;
}

namespace {
std::string refusal(const char* dev, const MemoryUse& m) {
  return std::string(dev) + " needs " + format_bytes(m.total()) + " (weights " + format_bytes(m.weights) +
         ", KV " + format_bytes(m.kv) + ", activations " + format_bytes(m.activations) + ", staging " +
         format_bytes(m.staging) + ", graphs " + format_bytes(m.graphs) + ", reserved " + format_bytes(m.reserved) +
         ", margin " + format_bytes(m.margin) + ") but has " + format_bytes(m.capacity) + ": " +
         format_bytes(m.total() - m.capacity) + " missing";
}
}  // namespace

void check_fit(Plan& plan) {
  plan.fits = true;
  if (plan.has_gpu && plan.gpu.total() > plan.gpu.capacity) {
    plan.fits = false;
    plan.refusals.push_back(refusal("GPU", plan.gpu));
  }
  if (!plan.has_gpu && plan.gpu.total() > 0) {
    plan.fits = false;
    plan.refusals.push_back("the plan puts " + format_bytes(plan.gpu.total()) + " on a GPU, and the profile has none");
  }
  if (plan.host.total() > plan.host.capacity) {
    plan.fits = false;
    plan.refusals.push_back(refusal("host", plan.host));
  }
}

int64_t gpu_spare_bytes(const Plan& plan) {
  return int64_t(plan.gpu.capacity) - int64_t(plan.gpu.total());
}

}  // namespace hexe::place
