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

// ExpertsCpu replays its decode steps from CUDA graphs; ExpertsCpuNoGraphs enqueues every kernel.
// Stream: prefill chunks copy their experts to the GPU (chunks of 3 experts, so the two staging
// buffers take turns), decode keeps them on the CPU.
enum class Placement { ExpertsCpu, ExpertsCpuNoGraphs, Stream, Layers, Gpu };
const char* placement_name(Placement p) {
  switch (p) {
    case Placement::ExpertsCpu: return "experts-cpu";
    case Placement::ExpertsCpuNoGraphs: return "experts-cpu-nographs";
    case Placement::Stream: return "stream";
    case Placement::Layers: return "layers";
    default: return "gpu";
  }
}

OffloadConfig offload_for(const Model& m, Placement p) {
  OffloadConfig c;
  const int L = m.spec().n_layers;
  c.gpu_layers = p == Placement::Layers ? std::max(1, L / 2) : L;
  const bool cpu_experts = p == Placement::ExpertsCpu || p == Placement::ExpertsCpuNoGraphs || p == Placement::Stream;
  c.experts_on_gpu.assign(c.gpu_layers, cpu_experts ? 0 : 1);
  c.experts_stream.assign(c.gpu_layers, p == Placement::Stream ? 1 : 0);
  c.stream_chunk = 3;
  c.stream_min_tokens = 2;  // every prefill pass streams, single-token decode steps do not
  c.head_on_gpu = c.gpu_layers == L;
  c.graphs = p != Placement::ExpertsCpuNoGraphs;
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
  for (const auto& lr : v.logits) {
    const auto& p = ref.prompt(lr.prompt);
    const int decode = std::min<int>(4, int(p.tokens.size()) - 1);
    const auto cpu = run(*model, nullptr, p.tokens, decode);
    OffloadStats st;
    const auto gpu = run(*model, &off, p.tokens, decode, &st);
    const int64_t graphed = st.graph_launches;
    streamed += st.h2d_bytes;
    // Decode steps are graphed unless graphs are off or a GPU layer routes to GPU experts (the
    // host picks those kernels per step).
    bool gpu_experts = false;
    for (int l = 0; l < off.gpu_layers; ++l) gpu_experts = gpu_experts || (off.experts_on_gpu[l] && model->layers[l].is_moe());
    if (c.placement == Placement::ExpertsCpuNoGraphs || gpu_experts) EXPECT_EQ(graphed, 0);
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
  if (c.placement == Placement::Stream) {
    // At least one expert's matrices crossed PCIe (beyond the activations' few KB).
    const auto& lw = model->layers.back();
    const uint64_t one = row_bytes(lw.gate_type, model->spec().n_embd) * uint64_t(lw.n_ff_exp) * 3;
    EXPECT_GT(streamed, one) << "nothing was streamed";
  }
}

std::vector<Case> cases() {
  std::vector<Case> out;
  for (const std::string& m : testing::fixture_model_names()) {
    const testing::ModelRef ref = testing::load_model_ref(m);
    for (const auto& v : ref.variants)
      for (Placement p : {Placement::ExpertsCpu, Placement::ExpertsCpuNoGraphs, Placement::Stream, Placement::Layers,
                          Placement::Gpu})
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
