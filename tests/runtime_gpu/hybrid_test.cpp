// The hybrid engine (runtime/engine/offload.h) against the CPU-only engine on the reference
// fixture models: the same prompt, prefilled in chunks (GEMM and tiled attention) and then decoded
// token by token (GEMV and flash-decoding), under the strategies' placements, for every fixture
// architecture (GQA: qwen3moe, mixtral, glm4moe; MLA: deepseek2). Label gpu; skips without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "gpu_kernels/device.h"
#include "memory/error.h"
#include "runtime/engine/engine.h"
#include "tests/reference/fixtures.h"

namespace hexe {
namespace {

const gpu::DevicePresence& presence() {
  static const gpu::DevicePresence p = gpu::probe_devices();
  return p;
}

// ExpertsCpu replays its decode steps from CUDA graphs and hands over by pinned flags (the
// engine's default; as do the other placements where a decode step's experts are all on the CPU:
// Stream); ExpertsCpuEvents replays them with event waits; ExpertsCpuNoGraphs enqueues every
// kernel.
// Stream: prefill chunks copy their experts to the GPU (chunks of 3 experts, so the two staging
// buffers take turns), decode keeps them on the CPU. Hot: experts 0, 3, 6, ... of every layer in
// VRAM, the rest on the CPU. Cache: top-k + 1 slots per layer, so most passes evict.
enum class Placement { ExpertsCpu, ExpertsCpuEvents, ExpertsCpuNoGraphs, Stream, Layers, Gpu, Hot, Cache };
const char* placement_name(Placement p) {
  switch (p) {
    case Placement::ExpertsCpu: return "experts-cpu";
    case Placement::ExpertsCpuEvents: return "experts-cpu-events";
    case Placement::ExpertsCpuNoGraphs: return "experts-cpu-nographs";
    case Placement::Stream: return "stream";
    case Placement::Layers: return "layers";
    case Placement::Hot: return "experts-cpu+hot";
    case Placement::Cache: return "cache";
    default: return "gpu";
  }
}

OffloadConfig offload_for(const Model& m, Placement p) {
  OffloadConfig c;
  const int L = m.spec().n_layers;
  c.gpu_layers = p == Placement::Layers ? std::max(1, L / 2) : L;
  const bool all_gpu = p == Placement::Layers || p == Placement::Gpu;
  c.experts_on_gpu.assign(c.gpu_layers, all_gpu ? 1 : 0);
  c.experts_stream.assign(c.gpu_layers, p == Placement::Stream ? 1 : 0);
  c.stream_chunk = 3;
  c.stream_min_tokens = 2;  // every prefill pass streams, single-token decode steps do not
  c.hot_experts.assign(c.gpu_layers, {});
  c.cache_slots.assign(c.gpu_layers, 0);
  for (int l = 0; l < c.gpu_layers; ++l) {
    if (!m.layers[l].is_moe()) continue;
    if (p == Placement::Hot)
      for (int e = 0; e < m.spec().n_expert; e += 3) c.hot_experts[l].push_back(e);
    if (p == Placement::Cache) c.cache_slots[l] = m.spec().n_expert_used + 1;
  }
  c.head_on_gpu = c.gpu_layers == L;
  c.graphs = p != Placement::ExpertsCpuNoGraphs;
  c.flag_handoffs = p != Placement::ExpertsCpuEvents;
  return c;
}

// Logits of every position: all but the last `decode` tokens in passes of 16, then one by one.
// `stats` (when set) receives the GPU half's counters (graph launches, PCIe bytes).
std::vector<float> run(const Model& model, const OffloadConfig* offload, const std::vector<int32_t>& tokens,
                       int decode, OffloadStats* stats = nullptr) {
  EngineConfig cfg;
  cfg.n_threads = 2;
  cfg.n_ctx = 2560;  // deepseek2-lite-a's 2050-token prompt
  cfg.n_batch = 16;
  if (offload) cfg.offload = *offload;
  Engine engine(model, cfg);
  const int seq = engine.new_sequence();
  std::vector<float> out;
  const size_t n_prefill = tokens.size() - size_t(decode);
  std::vector<BatchItem> items;
  for (size_t i = 0; i < n_prefill; ++i) items.push_back({seq, tokens[i], true});
  auto l = engine.eval(items);
  out.assign(l.begin(), l.end());
  for (size_t i = n_prefill; i < tokens.size(); ++i) {
    const BatchItem one{seq, tokens[i], true};
    auto s = engine.eval({&one, 1});
    out.insert(out.end(), s.begin(), s.end());
  }
  if (stats && engine.offload()) *stats = engine.offload()->stats();
  return out;
}

struct Case {
  std::string model, variant;
  Placement placement;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.model << "/" << c.variant << "/" << placement_name(c.placement); }

class Hybrid : public ::testing::TestWithParam<Case> {};

// GPU matmuls round activations to F16 and the GPU KV cache is F16, where the CPU path keeps
// floats (f32/f16 files) or quantises activations to int8 (q8_0): rows differ by ~1e-3 of the
// largest logit for float weights, more for q8_0. Positions where HF's router nearly chose
// another expert are skipped: either choice is right there and a swap moves logits by ~10%.
TEST_P(Hybrid, LogitsMatchTheCpuEngine) {
  if (presence().count == 0) GTEST_SKIP() << "needs a CUDA device: " << presence().reason;
  const Case c = GetParam();
  const testing::ModelRef ref = testing::load_model_ref(c.model);
  const testing::VariantRef& v = ref.variant(c.variant);
  auto model = Model::load(v.files.at(0), false);
  const double tol = c.variant == "q8_0" ? 5e-2 : 1e-2;
  const OffloadConfig off = offload_for(*model, c.placement);
  int checked = 0;
  uint64_t streamed = 0;
  OffloadStats total;
  std::vector<float> flagged_logits, evented_logits;  // of the first prompt (ExpertsCpu only)
  std::vector<float> fused_logits, unfused_logits;   // of the first prompt (ExpertsCpuEvents, Gpu)
  for (const auto& lr : v.logits) {
    const auto& p = ref.prompt(lr.prompt);
    const int decode = std::min<int>(4, int(p.tokens.size()) - 1);
    const auto cpu = run(*model, nullptr, p.tokens, decode);
    OffloadStats st;
    const auto gpu = run(*model, &off, p.tokens, decode, &st);
    const int64_t graphed = st.graph_launches;
    streamed += st.h2d_bytes;
    total.routed_pairs += st.routed_pairs;
    total.vram_pairs += st.vram_pairs;
    total.expert_uploads += st.expert_uploads;
    total.flag_handoffs += st.flag_handoffs;
    if (c.placement == Placement::ExpertsCpu && flagged_logits.empty()) {
      flagged_logits = gpu;
      OffloadConfig events = off;
      events.flag_handoffs = false;
      evented_logits = run(*model, &events, p.tokens, decode);
    }
    const bool fusion_case = c.placement == Placement::ExpertsCpuEvents || c.placement == Placement::Gpu;
    if (fusion_case && fused_logits.empty()) {
      fused_logits = gpu;
      OffloadConfig unfused = off;
      unfused.fused_decode = false;
      unfused_logits = run(*model, &unfused, p.tokens, decode);
    }
    // Decode steps replay their segments from CUDA graphs unless graphs are off (routed experts
    // computed on the GPU are enqueued directly between the graphed segments).
    if (c.placement == Placement::ExpertsCpuNoGraphs) EXPECT_EQ(graphed, 0);
    else EXPECT_GT(graphed, 0);
    ASSERT_EQ(cpu.size(), gpu.size());
    for (size_t r = 0; r < lr.positions.size(); ++r) {
      if (lr.router_gap.at(r) < 0.05) continue;
      const int64_t pos = lr.positions[r];
      const float* a = cpu.data() + pos * ref.n_vocab;
      const float* b = gpu.data() + pos * ref.n_vocab;
      double max_ref = 0, max_diff = 0;
      for (int i = 0; i < ref.n_vocab; ++i) {
        max_ref = std::max(max_ref, std::fabs(double(a[i])));
        max_diff = std::max(max_diff, std::fabs(double(a[i]) - double(b[i])));
      }
      ++checked;
      EXPECT_LE(max_diff / max_ref, tol) << "prompt " << lr.prompt << " position " << pos
                                         << (pos >= int64_t(p.tokens.size()) - decode ? " (decode)" : " (prefill)");
    }
  }
  EXPECT_GT(checked, 0);
  // Graphed decode steps with every routed expert on the CPU (experts-cpu; stream, whose decode
  // keeps the experts on the CPU) hand over by flags, and the fused await (add + next norm) gives
  // the bits of the add and rms_norm kernels it replaces: the same logits as with events.
  if (c.placement == Placement::ExpertsCpu || c.placement == Placement::Stream) {
    EXPECT_GT(total.flag_handoffs, 0);
  } else {
    EXPECT_EQ(total.flag_handoffs, 0);
  }
  if (c.placement == Placement::ExpertsCpu) {
    EXPECT_EQ(flagged_logits, evented_logits);
  }
  // The fused decode chain (batched q/k/v, Wo into the residual, mapped hand-offs) gives the
  // unfused chain's bits.
  if (c.placement == Placement::ExpertsCpuEvents || c.placement == Placement::Gpu) {
    EXPECT_EQ(fused_logits, unfused_logits);
  }
  if (c.placement == Placement::Stream) {
    // At least one expert's matrices crossed PCIe (beyond the activations' few KB).
    const auto& lw = model->layers.back();
    const uint64_t one = row_bytes(lw.gate_type, model->spec().n_embd) * uint64_t(lw.n_ff_exp) * 3;
    EXPECT_GT(streamed, one) << "nothing was streamed";
  }
  if (c.placement == Placement::Hot || c.placement == Placement::Cache) {
    // Both sides did work: some pairs were served from VRAM, and not all of them.
    EXPECT_GT(total.vram_pairs, 0);
    EXPECT_LT(total.vram_pairs, total.routed_pairs);
  }
  if (c.placement == Placement::Cache) {
    EXPECT_GT(total.expert_uploads, 0);
  } else if (c.placement != Placement::Stream) {
    EXPECT_EQ(total.expert_uploads, 0);
  }
}

std::vector<Case> cases() {
  std::vector<Case> out;
  for (const std::string& m : testing::fixture_model_names()) {
    const testing::ModelRef ref = testing::load_model_ref(m);
    for (const auto& v : ref.variants)
      for (Placement p : {Placement::ExpertsCpu, Placement::ExpertsCpuEvents, Placement::ExpertsCpuNoGraphs,
                          Placement::Stream, Placement::Layers, Placement::Gpu, Placement::Hot, Placement::Cache})
        out.push_back({m, v.name, p});
  }
  return out;
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  std::string s = info.param.model + "_" + info.param.variant + "_" + placement_name(info.param.placement);
  for (char& ch : s)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return s;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Hybrid, ::testing::ValuesIn(cases()), case_name);

}  // namespace
}  // namespace hexe
