// hexe against HF transformers: logits, greedy continuations and perplexity on the fixture models,
// from every GGUF type and from the HF safetensors directory.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>

#include "cpu_kernels/dispatch.h"
#include "cpu_kernels/isa.h"
#include "fixtures.h"
#include "memory/expert_homes.h"
#include "memory/numa_topology.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/generate.h"
#include "runtime/engine/perplexity.h"
#include "runtime/tokenizer/tokenizer.h"

namespace hexe::testing {
namespace {

struct Case {
  std::string model, variant, path, source;  // source: file name, or "hf" for the HF directory
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.model << "/" << c.source; }

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  std::string s = info.param.model + "_" + info.param.source;
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (const auto& name : fixture_model_names()) {
    ModelRef m = load_model_ref(name);
    for (const auto& v : m.variants)
      for (const auto& f : v.files) cases.push_back({name, v.name, f, f.substr(f.rfind('/') + 1)});
    cases.push_back({name, "f32", m.hf_dir, "hf"});
  }
  return cases;
}

// Max |hexe - HF| over a row, relative to the row's largest |HF| logit. The bound per weight
// type: F32 and F16 compute in float on the same weights as HF (only summation order differs:
// observed <= 1e-6). Q8_0 additionally quantises the activations to int8 per 32-block, as
// llama.cpp does (step = block max / 127, so up to 0.4% per element); about ten such matmuls sit
// between the embedding and the logits, and a perturbed router input can move a token to another
// expert, so rows reach a few percent. Positions where HF's router was within kMinRouterGap of
// choosing another expert are skipped on this path (an expert swap there moves logits by ~10%,
// and either choice is right). The same Q8_0 files run with the reference kernels (float
// activations) are held to 1e-4 at every position, which proves the weights are read exactly;
// the looser bound covers only the activations.
constexpr double kMinRouterGap = 0.05;
double tolerance(const std::string& variant) {
  if (variant == "q8_0") return 5e-2;
  return 1e-4;
}

// sqrt(mean (hexe - HF)^2) / sqrt(mean HF^2) over a row.
double rms_rel_error(const float* got, const float* want, int n) {
  double se = 0, sr = 0;
  for (int i = 0; i < n; ++i) {
    const double d = double(got[i]) - double(want[i]);
    se += d * d;
    sr += double(want[i]) * double(want[i]);
  }
  return std::sqrt(se / std::max(sr, 1e-30));
}

double max_rel_error(const float* got, const float* want, int n) {
  double max_ref = 0, max_diff = 0;
  for (int i = 0; i < n; ++i) {
    max_ref = std::max(max_ref, std::fabs(double(want[i])));
    max_diff = std::max(max_diff, std::fabs(double(got[i]) - double(want[i])));
  }
  return max_diff / std::max(max_ref, 1e-30);
}

std::unique_ptr<Engine> make_engine(const Model& model, bool split = false, bool reference_kernels = false) {
  EngineConfig cfg;
  cfg.reference_kernels = reference_kernels;
  cfg.n_threads = 2;
  cfg.n_ctx = 2560;  // deepseek2-lite-a's long2k prompt (2050 tokens) + its greedy continuation
  cfg.n_batch = 16;  // the 40+-token prompt runs in several passes, as long prompts do
  cfg.split_experts = split;
  if (split) {
    cfg.attn_cores = {0};
    cfg.expert_cores = {1};
  }
  return std::make_unique<Engine>(model, cfg);
}

// Logits of every position of `tokens` in a fresh sequence.
std::vector<float> all_logits(Engine& engine, const std::vector<int32_t>& tokens) {
  const int seq = engine.new_sequence();
  std::vector<BatchItem> items;
  for (int32_t t : tokens) items.push_back({seq, t, true});
  auto logits = engine.eval(items);
  engine.free_sequence(seq);
  return {logits.begin(), logits.end()};
}

class Reference : public ::testing::TestWithParam<Case> {};

// Compares every fixture position; returns the worst max- and RMS-relative errors.
// repack: the production kernels read the AVX-512 copy of the quantised weights
// (Model::repack_for_cpu) instead of the mapped blocks, whose experts' pages are handed back as
// they are copied, as a run without room for both does.
void check_logits(const Case& c, bool reference_kernels, bool repack = false) {
  const ModelRef ref = load_model_ref(c.model);
  const VariantRef& v = ref.variant(c.variant);
  auto model = Model::load(c.path, false);
  if (repack) {
    cpu::ThreadPool pool(2);
    if (model->repack_for_cpu(pool, nullptr, [](int) { return true; }) == 0)
      GTEST_SKIP() << "no faster CPU layout for these weights on this machine";
  }
  auto engine = make_engine(*model, false, reference_kernels);
  ASSERT_EQ(engine->n_vocab(), ref.n_vocab);
  const double tol = reference_kernels ? 1e-4 : tolerance(c.variant);
  const char* mode = reference_kernels ? " (reference kernels)" : repack ? " (repacked weights)" : "";
  double worst = 0, worst_rms = 0;
  int checked = 0, skipped = 0;
  for (const auto& l : v.logits) {
    const auto& p = ref.prompt(l.prompt);
    EXPECT_EQ(model->tokenizer().encode(p.text, true, true), p.tokens) << "tokenizer, prompt " << p.name;
    const std::vector<float> got = all_logits(*engine, p.tokens);
    for (size_t r = 0; r < l.positions.size(); ++r) {
      if (!reference_kernels && c.variant == "q8_0" && l.router_gap.at(r) < kMinRouterGap) {
        ++skipped;
        continue;
      }
      ++checked;
      const float* g = got.data() + l.positions[r] * ref.n_vocab;
      const float* w = l.values.data() + r * ref.n_vocab;
      const double err = max_rel_error(g, w, ref.n_vocab), rms = rms_rel_error(g, w, ref.n_vocab);
      worst = std::max(worst, err);
      worst_rms = std::max(worst_rms, rms);
      EXPECT_LE(err, tol) << c.model << "/" << c.source << mode << " prompt " << l.prompt << " position "
                          << l.positions[r];
      EXPECT_LE(rms, tol) << c.model << "/" << c.source << mode << " prompt " << l.prompt << " position "
                          << l.positions[r] << " (RMS)";
    }
  }
  EXPECT_GT(checked, skipped) << "most positions must be checked";
  std::printf("[ref] %s/%s%s relative logit error: max %.3g, RMS %.3g (tolerance %.1g) over %d positions (%d "
              "skipped: router gap < %.2g)\n",
              c.model.c_str(), c.source.c_str(), mode, worst, worst_rms, tol, checked, skipped, kMinRouterGap);
}

TEST_P(Reference, LogitsMatchHf) {
  check_logits(GetParam(), false);
  // Quantised files: the same weights through the float-activation reference kernels.
  if (GetParam().variant == "q8_0") check_logits(GetParam(), true);
}


TEST_P(Reference, GreedyContinuationMatchesHf) {
  const Case& c = GetParam();
  const ModelRef ref = load_model_ref(c.model);
  const VariantRef& v = ref.variant(c.variant);
  auto model = Model::load(c.path, false);
  auto engine = make_engine(*model);
  // Where HF's top two logits are closer than the error we allow, either choice is right; the
  // comparison stops at the first such step (none in the F32 fixtures).
  const double margin_floor = 2 * tolerance(c.variant) * v.max_abs_logit;
  for (const auto& g : v.greedy) {
    const auto& p = ref.prompt(g.prompt);
    SamplingParams sp;
    sp.temperature = 0;
    Sampler sampler(sp);
    std::vector<int32_t> history, got;
    const int seq = engine->new_sequence();
    generate(*engine, seq, p.tokens, {.n_predict = int(g.new_tokens.size()), .ignore_eog = true}, sampler, history, [&](int32_t id) {
      got.push_back(id);
      return true;
    });
    engine->free_sequence(seq);
    size_t n_check = 0;
    while (n_check < g.new_tokens.size() && g.top2_margin[n_check] > margin_floor) ++n_check;
    if (c.variant != "q8_0") {
      EXPECT_EQ(n_check, g.new_tokens.size()) << "fixture margins too small";
    }
    ASSERT_GE(got.size(), n_check);
    for (size_t i = 0; i < n_check; ++i)
      ASSERT_EQ(got[i], g.new_tokens[i]) << c.model << "/" << c.source << " prompt " << g.prompt << " token " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Reference, ::testing::ValuesIn(all_cases()), case_name);

// The q8_0 fixtures again with the production kernels reading the AVX-512 copy of the weights
// (q8_0, q4_0/q4_1/q5_0/q5_1, q4_K, q5_K and q6_K have that layout; the fixtures' rows are too short for K-quants).
class ReferenceRepacked : public ::testing::TestWithParam<Case> {};

TEST_P(ReferenceRepacked, LogitsMatchHfWithRepackedWeights) { check_logits(GetParam(), false, /*repack=*/true); }

std::vector<Case> q8_0_cases() {
  std::vector<Case> out;
  for (const Case& c : all_cases())
    if (c.variant == "q8_0") out.push_back(c);
  return out;
}
INSTANTIATE_TEST_SUITE_P(Fixtures, ReferenceRepacked, ::testing::ValuesIn(q8_0_cases()), case_name);

TEST(ReferencePerplexity, MatchesHfWithinATenthOfAPercent) {
  int checked = 0;
  for (const auto& name : fixture_model_names()) {
    const ModelRef ref = load_model_ref(name);
    if (ref.perplexity.is_null()) continue;
    const auto& pj = ref.perplexity;
    const VariantRef& v = ref.variant(pj.at("variant").get<std::string>());
    auto model = Model::load(v.files.at(0), false);
    const auto text_tokens = pj.at("tokens").get<std::vector<int32_t>>();
    const std::string text = [&] {
      std::ifstream f(ref.dir + "/" + pj.at("text_file").get<std::string>(), std::ios::binary);
      return std::string(std::istreambuf_iterator<char>(f), {});
    }();
    const auto tokens = model->tokenizer().encode(text, true, false);
    ASSERT_EQ(tokens, text_tokens) << name << ": tokenisation of the perplexity text";
    EngineConfig cfg;
    cfg.n_threads = 2;
    cfg.n_ctx = pj.at("n_ctx");
    cfg.n_batch = cfg.n_ctx;
    Engine engine(*model, cfg);
    const PerplexityResult r = perplexity(engine, tokens, pj.at("n_ctx"), pj.at("adds_bos"),
                                          pj.at("bos_id"), -1, nullptr);
    EXPECT_EQ(r.n_chunks, pj.at("n_chunk").get<int>());
    EXPECT_EQ(r.n_scored, pj.at("count").get<int64_t>());
    const double want = pj.at("ppl");
    std::printf("[ref] %s perplexity hexe %.6f HF %.6f (rel diff %.2g)\n", name.c_str(), r.ppl, want,
                std::fabs(r.ppl - want) / want);
    EXPECT_LE(std::fabs(r.ppl - want) / want, 1e-3);
    EXPECT_NEAR(r.ppl_error, pj.at("ppl_error").get<double>(), 1e-3 * pj.at("ppl_error").get<double>());
    ++checked;
  }
  EXPECT_GT(checked, 0) << "no perplexity fixture found";
}

// The routed experts on a second CPU device with disjoint cores give the logits of one device.
TEST(ReferenceSplit, ExpertsOnASecondCpuDeviceGiveTheSameLogits) {
  for (const auto& name : fixture_model_names()) {
    const ModelRef ref = load_model_ref(name);
    auto model = Model::load(ref.variant("f32").files.at(0), false);
    auto one = make_engine(*model, false);
    auto two = make_engine(*model, true);
    const auto& p = ref.prompts.back();
    const auto a = all_logits(*one, p.tokens), b = all_logits(*two, p.tokens);
    ASSERT_EQ(a.size(), b.size());
    for (size_t r = 0; r < p.tokens.size(); ++r)
      EXPECT_LE(max_rel_error(b.data() + r * ref.n_vocab, a.data() + r * ref.n_vocab, ref.n_vocab), 1e-6)
          << name << " position " << r;
  }
}

// One device's threads: by default one per physical core, thread i pinned to the i-th core in
// hwloc's order; fewer threads take the first cores; more threads than cores, or pin_threads
// off, leave them to the scheduler; an affinity mask (taskset) limits the cores to its own.
TEST(EngineThreads, OnePerPhysicalCorePinnedByDefault) {
  const ModelRef ref = load_model_ref("qwen3moe-a");
  auto model = Model::load(ref.variant("f32").files.at(0), false);
  cpu_set_t saved;
  ASSERT_EQ(sched_getaffinity(0, sizeof saved, &saved), 0);
  std::vector<int> cores;
  for (int c : mem::NumaTopology::detect().all_cores())
    if (CPU_ISSET(c, &saved)) cores.push_back(c);
  ASSERT_FALSE(cores.empty());
  EXPECT_EQ(default_thread_count(), int(cores.size()));
  EngineConfig cfg;
  EXPECT_EQ(Engine(*model, cfg).cpu_cores(), cores);
  cfg.n_threads = 1;
  EXPECT_EQ(Engine(*model, cfg).cpu_cores(), std::vector<int>{cores[0]});
  cfg.pin_threads = false;
  EXPECT_TRUE(Engine(*model, cfg).cpu_cores().empty());
  cfg.pin_threads = true;
  cfg.n_threads = int(cores.size()) + 1;
  EXPECT_TRUE(Engine(*model, cfg).cpu_cores().empty());
  // As under `taskset -c <last core>`: one thread, on that core.
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cores.back(), &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
  const EngineConfig def;
  const std::vector<int> got = Engine(*model, def).cpu_cores();
  const int n_default = default_thread_count();
  sched_setaffinity(0, sizeof saved, &saved);
  EXPECT_EQ(got, std::vector<int>{cores.back()});
  EXPECT_EQ(n_default, 1);
}

// NUMA homes on a synthetic two-node machine (one core each, cores that exist here): experts
// copied per home and computed by their home's thread give the logits of the plain copy.
TEST(ReferenceNuma, ExpertHomesGiveTheSameLogits) {
  const ModelRef ref = load_model_ref("qwen3moe-a");
  const std::string path = ref.variant("q8_0").files.at(0);
  auto plain = Model::load(path, false), numa = Model::load(path, false);
  cpu::ThreadPool pool(2);
  if (plain->repack_for_cpu(pool) == 0) GTEST_SKIP() << "no faster CPU layout on this machine";
  auto homes = std::make_shared<mem::ExpertHomes>(mem::home_experts(
      mem::NumaTopology::synthetic("pack:2 numa:1 core:1 pu:1"), numa->spec().n_expert, 2));
  ASSERT_EQ(homes->n_homes(), 2);
  ASSERT_GT(numa->repack_for_cpu(pool, homes.get()), 0u);
  auto a = make_engine(*plain);
  EngineConfig cfg = a->config();
  cfg.expert_homes = homes;
  Engine b(*numa, cfg);
  const auto& p = ref.prompts.back();
  EXPECT_EQ(all_logits(*a, p.tokens), all_logits(b, p.tokens));
}

// The shipped model, repacked: handing its experts' mapped pages back as they are copied (as a run
// without room for both does) leaves the logits exactly as they were; its experts span whole
// pages, so some go; only the layers asked for.
TEST(ReferenceRelease, PagedOutExpertBlocksLeaveTheLogitsAsTheyWere) {
  const std::string path = std::string(HEXE_SOURCE_DIR) + "/models/fortune-moe-q8_0.gguf";
  auto kept = Model::load(path, false), released = Model::load(path, false), none = Model::load(path, false);
  cpu::ThreadPool pool(2);
  const uint64_t sources = kept->repackable_bytes().expert_sources;
  if (sources == 0) GTEST_SKIP() << "no faster CPU layout for the experts at this tier";
  ASSERT_GT(kept->repack_for_cpu(pool), 0u);
  EXPECT_EQ(kept->released_expert_bytes(), 0u);
  ASSERT_GT(released->repack_for_cpu(pool, nullptr, [](int) { return true; }), 0u);
  EXPECT_LE(released->released_expert_bytes(), sources);
#ifdef MADV_PAGEOUT
  EXPECT_GT(released->released_expert_bytes(), sources / 2) << "of " << sources;
#endif
  ASSERT_GT(none->repack_for_cpu(pool, nullptr, [](int) { return false; }), 0u);
  EXPECT_EQ(none->released_expert_bytes(), 0u);
  const std::vector<int32_t> tokens = kept->tokenizer().encode("The meaning of life is", true, true);
  auto a = make_engine(*kept), b = make_engine(*released);
  EXPECT_EQ(all_logits(*a, tokens), all_logits(*b, tokens));
}

// Below AVX-512 VNNI, a format without a Rows16 tile at the active tier (every format on the
// scalar tier; all but Q4_K and Q8_0 on AVX2) is read from a byte-identical copy in huge-page
// memory instead of the mapped file's 4 KiB pages: the routed experts through experts_cpu (the
// GPU paths keep uploading `experts`), the other matrices through Linear::packed in the GGUF layout.
TEST(ReferenceCopy, WithoutARows16TileEveryMatrixIsReadFromAByteIdenticalCopy) {
  if (int(cpu::active_isa()) >= int(cpu::Isa::Avx512) && cpu::cpu_features().avx512_vnni)
    GTEST_SKIP() << "Rows16 tiles at this tier (HEXE_CPU_ISA=scalar runs this)";
  if (cpu::rows16_pays(DType::Q8_0, 64, cpu::active_isa()))
    GTEST_SKIP() << "this tier has a Q8_0 Rows16 tile, and the fixture is Q8_0 (HEXE_CPU_ISA=scalar runs this)";
  const std::string path = std::string(HEXE_SOURCE_DIR) + "/models/fortune-moe-q8_0.gguf";
  auto copied = Model::load(path, false), mapped = Model::load(path, false);
  cpu::ThreadPool pool(2);
  ASSERT_GT(copied->repack_for_cpu(pool), 0u);
  const auto& s = copied->spec();
  int experts = 0;
  for (const auto& lw : copied->layers) {
    for (const Linear* l : {&lw.wq, &lw.wk, &lw.wv, &lw.wo}) {
      ASSERT_NE(l->packed, nullptr);
      EXPECT_EQ(l->packed_layout, cpu::WeightLayout::Gguf);
      EXPECT_NE(l->packed, l->data);
      EXPECT_EQ(std::memcmp(l->packed, l->data, row_bytes(l->type, uint64_t(l->n_in)) * size_t(l->n_out)), 0);
    }
    if (lw.experts.empty()) continue;
    ASSERT_EQ(lw.experts_cpu.size(), lw.experts.size());
    EXPECT_TRUE(lw.experts_packed.empty());
    const size_t gate = row_bytes(lw.gate_type, uint64_t(s.n_embd)) * size_t(lw.n_ff_exp);
    const size_t down = row_bytes(lw.down_type, uint64_t(lw.n_ff_exp)) * size_t(s.n_embd);
    for (size_t e = 0; e < lw.experts.size(); ++e, ++experts) {
      const auto &from = lw.experts[e], &to = lw.experts_cpu[e];
      EXPECT_NE(to.gate, from.gate);
      EXPECT_EQ(std::memcmp(to.gate, from.gate, gate), 0);
      EXPECT_EQ(std::memcmp(to.up, from.up, gate), 0);
      EXPECT_EQ(std::memcmp(to.down, from.down, down), 0);
    }
  }
  EXPECT_GT(experts, 0);
  const std::vector<int32_t> tokens = copied->tokenizer().encode("The meaning of life is", true, true);
  auto a = make_engine(*copied), b = make_engine(*mapped);
  EXPECT_EQ(all_logits(*a, tokens), all_logits(*b, tokens));
}

}  // namespace
}  // namespace hexe::testing
