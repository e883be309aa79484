// moe_experts at every tier against moe_experts_ref (float weights: tight; quantised weights:
// within the activation-quantisation error) and against the scalar tier; top-k 1, 2 and 8,
// decode and prefill token counts, experts left unused.
#include <algorithm>
#include <cmath>
#include <functional>
#include <set>
#include <thread>

#include "cpu_kernels/dispatch.h"
#include "cpu_kernels/moe.h"
#include "cpu_kernels/repack.h"
#include "cpu_kernels/thread_pool.h"
#include "tests/cpu_kernels/test_util.h"

namespace hexe::cpu {
namespace {

using Param = std::tuple<Isa, DType>;
class Moe : public ::testing::TestWithParam<Param> {};

double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

TEST_P(Moe, MatchesReference) {
  const auto [tier, type] = GetParam();
  HEXE_SKIP_IF_TIER_ABSENT(tier);
  std::mt19937 rng(11 + int(type));
  const int n_experts = 8;
  const int64_t hidden = 256, n_ff = 512;
  std::vector<std::vector<uint8_t>> gate, up, down;
  std::vector<ExpertWeights> experts;
  for (int e = 0; e < n_experts; ++e) {
    gate.push_back(test::random_weights(rng, type, n_ff, hidden));
    up.push_back(test::random_weights(rng, type, n_ff, hidden));
    down.push_back(test::random_weights(rng, type, hidden, n_ff));
  }
  for (int e = 0; e < n_experts; ++e) experts.push_back({gate[size_t(e)].data(), up[size_t(e)].data(), down[size_t(e)].data()});
  ThreadPool pool(2);
  for (auto [n_tokens, top_k] : {std::pair<int64_t, int>{1, 1}, {1, 2}, {3, 2}, {17, 2}, {5, 8}}) {
    const auto x = test::random_floats(rng, static_cast<size_t>(n_tokens * hidden), 0.1f);
    std::vector<int32_t> ids(static_cast<size_t>(n_tokens * top_k));
    std::vector<float> wts(ids.size());
    for (int64_t t = 0; t < n_tokens; ++t)
      for (int k = 0; k < top_k; ++k) {  // distinct experts per token; expert 7 never used unless top_k = 8
        ids[size_t(t * top_k + k)] = top_k == 8 ? k : int32_t((t * 3 + k * 5) % 7);
        wts[size_t(t * top_k + k)] = 0.1f + 0.2f * float(k);
      }
    std::vector<float> y(static_cast<size_t>(n_tokens * hidden), 1e9f), y_ref(y), y_scalar(y);
    MoeParams p;
    p.experts = experts.data(); p.n_experts = n_experts;
    p.gate_type = p.up_type = p.down_type = type;
    p.hidden = hidden; p.n_ff = n_ff; p.x = x.data(); p.n_tokens = n_tokens; p.top_k = top_k;
    p.ids = ids.data(); p.weights = wts.data(); p.y = y.data();
    moe_experts_at(p, tier, n_tokens % 2 ? &pool : nullptr);
    p.y = y_ref.data();
    moe_experts_ref(p);
    p.y = y_scalar.data();
    moe_experts_at(p, Isa::Scalar, nullptr);
    // Float weights see float activations: only summation order differs. Quantised weights see
    // 8-bit activations twice (x and the swiglu output): ~2 x 1/254 relative per element, far
    // less after summing independent errors.
    const double tol_ref = is_quantized(type) ? 2e-2 : 1e-5;
    const std::string name = "moe/" + std::string(isa_name(tier)) + "/" + std::string(dtype_name(type)) +
                             " tokens=" + std::to_string(n_tokens) + " top_k=" + std::to_string(top_k);
    EXPECT_LT(rel_err(y, y_ref), tol_ref) << name << " vs moe_experts_ref";
    EXPECT_LT(rel_err(y, y_scalar), 1e-4) << name << " vs scalar tier";
  }
}

// Slots with a negative id are empty: splitting each token's slots into two complementary sets
// (as experts-cpu+hot does between the CPU and the GPU) and adding the two results gives the
// full result, up to summation order; all slots empty gives zeros.
TEST(MoeEmptySlots, ComplementarySplitsAddUpToTheWhole) {
  std::mt19937 rng(5);
  const int n_experts = 8, top_k = 4;
  const int64_t hidden = 256, n_ff = 512;
  for (DType type : {DType::F32, DType::Q4_K}) {
    std::vector<std::vector<uint8_t>> mats;
    std::vector<ExpertWeights> experts;
    for (int e = 0; e < 3 * n_experts; ++e)
      mats.push_back(test::random_weights(rng, type, e % 3 == 2 ? hidden : n_ff, e % 3 == 2 ? n_ff : hidden));
    for (int e = 0; e < n_experts; ++e)
      experts.push_back({mats[size_t(3 * e)].data(), mats[size_t(3 * e + 1)].data(), mats[size_t(3 * e + 2)].data()});
    ThreadPool pool(2);
    for (int64_t n_tokens : {1, 3, 20}) {
      const auto x = test::random_floats(rng, size_t(n_tokens * hidden), 0.1f);
      std::vector<int32_t> ids(size_t(n_tokens * top_k)), cold(ids.size()), hot(ids.size()), none(ids.size(), -1);
      std::vector<float> wts(ids.size());
      for (size_t i = 0; i < ids.size(); ++i) {
        ids[i] = int32_t((i * 3 + i / top_k) % n_experts);
        wts[i] = 0.1f + 0.05f * float(i % top_k);
        const bool is_hot = ids[i] % 3 == 0;  // experts 0, 3, 6 "on the GPU"
        cold[i] = is_hot ? -1 : ids[i];
        hot[i] = is_hot ? ids[i] : -1;
      }
      const size_t ny = size_t(n_tokens * hidden);
      std::vector<float> y_all(ny, 1e9f), y_cold(ny, 1e9f), y_hot(ny, 1e9f), y_none(ny, 1e9f), y_ref_cold(ny, 1e9f);
      MoeParams p;
      p.experts = experts.data(); p.n_experts = n_experts;
      p.gate_type = p.up_type = p.down_type = type;
      p.hidden = hidden; p.n_ff = n_ff; p.x = x.data(); p.n_tokens = n_tokens; p.top_k = top_k;
      p.weights = wts.data();
      auto run = [&](const std::vector<int32_t>& id, std::vector<float>& y) {
        p.ids = id.data();
        p.y = y.data();
        moe_experts(p, pool);
      };
      run(ids, y_all);
      run(cold, y_cold);
      run(hot, y_hot);
      run(none, y_none);
      p.ids = cold.data();
      p.y = y_ref_cold.data();
      moe_experts_ref(p);
      std::vector<float> sum(ny);
      for (size_t i = 0; i < ny; ++i) sum[i] = y_cold[i] + y_hot[i];
      const std::string name = std::string(dtype_name(type)) + " tokens=" + std::to_string(n_tokens);
      EXPECT_LT(rel_err(sum, y_all), 1e-5) << name;
      EXPECT_LT(rel_err(y_cold, y_ref_cold), is_quantized(type) ? 2e-2 : 1e-5) << name << " vs reference";
      for (float v : y_none) ASSERT_EQ(v, 0.f) << name;
    }
  }
}

// n_experts random experts (gate, up: n_ff x hidden; down: hidden x n_ff) and, where the format has
// one, their Rows16 copies (packed empty otherwise).
struct ExpertSet {
  std::vector<std::vector<uint8_t>> mats;
  std::vector<PackedWeights> copies;
  std::vector<ExpertWeights> experts, packed;
  ExpertSet(std::mt19937& rng, DType type, int n_experts, int64_t hidden, int64_t n_ff) {
    for (int e = 0; e < 3 * n_experts; ++e)
      mats.push_back(test::random_weights(rng, type, e % 3 == 2 ? hidden : n_ff, e % 3 == 2 ? n_ff : hidden));
    for (int e = 0; e < n_experts; ++e) {
      experts.push_back({mats[size_t(3 * e)].data(), mats[size_t(3 * e + 1)].data(), mats[size_t(3 * e + 2)].data()});
      if (!rows16_supported(type)) continue;
      for (int j = 0; j < 3; ++j) {
        const int64_t rows = j == 2 ? hidden : n_ff, k = j == 2 ? n_ff : hidden;
        copies.push_back(repack_for_decode(type, rows, k, mats[size_t(3 * e + j)].data(), row_bytes(type, uint64_t(k))));
      }
      const size_t c = copies.size();
      packed.push_back({copies[c - 3].data(), copies[c - 2].data(), copies[c - 1].data()});
    }
  }
};

// Decode on many threads takes the two-phase schedule (gate/up row groups, join, down row
// groups), on 2-3 threads the chain (each expert's gate, up and down as items, the last downs
// cut into pieces); both must give what one thread gives, with the GGUF blocks and with Rows16
// copies.
TEST(MoeTwoPhase, ManyThreadsMatchOneThread) {
  std::mt19937 rng(9);
  const int n_experts = 8;
  const int64_t hidden = 256, n_ff = 512;
  // Oversubscribed here; the schedule, not the speed, is under test. Both pool backends.
  ThreadPool pool(8), tbb_pool(8, {}, PoolKind::Tbb), pool2(2), pool3(3);
  for (DType type : {DType::F32, DType::Q8_0, DType::Q4_K, DType::Q6_K}) {
    const ExpertSet set(rng, type, n_experts, hidden, n_ff);
    const std::vector<ExpertWeights>& experts = set.experts;
    const std::vector<ExpertWeights>& packed = set.packed;
    for (bool use_packed : {false, true}) {
      if (use_packed && packed.empty()) continue;
      for (auto [n_tokens, top_k] : {std::pair<int64_t, int>{1, 2}, {1, 8}, {3, 2}, {8, 4}}) {
        const auto x = test::random_floats(rng, size_t(n_tokens * hidden), 0.1f);
        std::vector<int32_t> ids(size_t(n_tokens * top_k));
        std::vector<float> wts(ids.size());
        for (size_t i = 0; i < ids.size(); ++i) {
          ids[i] = int32_t((i % size_t(top_k)) * 3 + i / size_t(top_k)) % n_experts;
          wts[i] = 0.2f + 0.1f * float(i % size_t(top_k));
        }
        const size_t ny = size_t(n_tokens * hidden);
        std::vector<float> y8(ny, 1e9f), y1(ny, 1e9f);
        MoeParams p;
        p.experts = experts.data(); p.n_experts = n_experts;
        p.packed = use_packed ? packed.data() : nullptr;
        p.gate_type = p.up_type = p.down_type = type;
        p.hidden = hidden; p.n_ff = n_ff; p.x = x.data(); p.n_tokens = n_tokens; p.top_k = top_k;
        p.ids = ids.data(); p.weights = wts.data();
        std::vector<std::pair<int, int>> trace;
        p.trace = &trace;
        p.y = y8.data();
        moe_experts(p, pool);
        p.trace = nullptr;
        std::vector<float> y_tbb(ny, 1e9f), y2(ny, 1e9f), y3(ny, 1e9f);
        p.y = y_tbb.data();
        moe_experts(p, tbb_pool);
        std::vector<std::pair<int, int>> trace2;  // 2 threads: the chain
        p.trace = &trace2;
        p.y = y2.data();
        moe_experts(p, pool2);
        p.trace = nullptr;
        p.y = y3.data();
        moe_experts(p, pool3);
        p.y = y1.data();
        moe_experts_at(p, active_isa(), nullptr);
        const std::string name = std::string(dtype_name(type)) + (use_packed ? "+rows16" : "") +
                                 " tokens=" + std::to_string(n_tokens) + " top_k=" + std::to_string(top_k);
        EXPECT_LT(rel_err(y8, y1), 1e-5) << name;
        EXPECT_LT(rel_err(y_tbb, y1), 1e-5) << name << " (tbb pool)";
        EXPECT_LT(rel_err(y2, y1), 1e-5) << name << " (2 threads, chain)";
        EXPECT_LT(rel_err(y3, y1), 1e-5) << name << " (3 threads, chain)";
        // 2 threads: a gate, an up and a down item per used expert, the downs of the last two
        // (or all, when fewer) in 4 pieces each.
        const size_t used = std::set<int>(ids.begin(), ids.end()).size();
        const size_t split = std::min<size_t>(used, 2);
        EXPECT_EQ(trace2.size(), 3 * used + 3 * split) << name;
        // Both phases ran units of every used expert (two-phase: more units than experts).
        EXPECT_GT(trace.size(), 2 * std::set<int>(ids.begin(), ids.end()).size()) << name;
      }
    }
  }
}

// Prefill with skewed routing on many threads: the expert that holds most of the tokens is cut
// into token chunks (128 rows here), units the threads share, instead of one unit that the other
// threads wait for; the result is what one thread gives (GGUF blocks and Rows16 copies).
TEST(MoePrefill, SkewedExpertIsCutIntoTokenChunks) {
  std::mt19937 rng(21);
  const int n_experts = 6;
  const int64_t hidden = 256, n_ff = 256, n_tokens = 300;
  const int top_k = 2;
  ThreadPool pool8(8), pool2(2);
  for (DType type : {DType::F32, DType::Q4_K}) {
    const ExpertSet set(rng, type, n_experts, hidden, n_ff);
    const std::vector<ExpertWeights>& experts = set.experts;
    const std::vector<ExpertWeights>& packed = set.packed;
    // Slot 0 of every token picks expert 2 (300 rows), slot 1 one of the others (60 rows each).
    std::vector<int32_t> ids(size_t(n_tokens * top_k));
    std::vector<float> wts(ids.size());
    for (int64_t t = 0; t < n_tokens; ++t) {
      ids[size_t(2 * t)] = 2;
      ids[size_t(2 * t + 1)] = int32_t(t % 5 < 2 ? t % 5 : t % 5 + 1);
      wts[size_t(2 * t)] = 0.7f;
      wts[size_t(2 * t + 1)] = 0.3f;
    }
    const auto x = test::random_floats(rng, size_t(n_tokens * hidden), 0.1f);
    for (bool use_packed : {false, true}) {
      if (use_packed && packed.empty()) continue;
      const size_t ny = size_t(n_tokens * hidden);
      std::vector<float> y8(ny, 1e9f), y2(ny, 1e9f), y1(ny, 1e9f);
      MoeParams p;
      p.experts = experts.data(); p.n_experts = n_experts;
      p.packed = use_packed ? packed.data() : nullptr;
      p.gate_type = p.up_type = p.down_type = type;
      p.hidden = hidden; p.n_ff = n_ff; p.x = x.data(); p.n_tokens = n_tokens; p.top_k = top_k;
      p.ids = ids.data(); p.weights = wts.data();
      std::vector<std::pair<int, int>> trace8, trace2;
      p.trace = &trace8;
      p.y = y8.data();
      moe_experts(p, pool8);
      p.trace = &trace2;
      p.y = y2.data();
      moe_experts(p, pool2);
      p.trace = nullptr;
      p.y = y1.data();
      moe_experts_at(p, active_isa(), nullptr);
      const std::string name = std::string(dtype_name(type)) + (use_packed ? "+rows16" : "");
      EXPECT_LT(rel_err(y8, y1), 1e-5) << name;
      EXPECT_LT(rel_err(y2, y1), 1e-5) << name << " (2 threads)";
      auto units_of = [](const std::vector<std::pair<int, int>>& tr, int e) {
        return std::count_if(tr.begin(), tr.end(), [e](const auto& u) { return u.first == e; });
      };
      // 8 threads: 600 rows, half a thread's share 38, so chunks of at most 128 rows: expert 2's
      // 300 rows in 3 chunks, each other expert whole (times the n_ff slices every expert gets:
      // 2 for F32 with 6 experts on 8 threads, 1 for Q4_K, whose 256 columns are one block).
      const auto slices = units_of(trace8, 0);
      EXPECT_EQ(slices, type == DType::F32 ? 2 : 1) << name;
      EXPECT_EQ(units_of(trace8, 2), 3 * slices) << name;
      for (int e : {1, 3, 4, 5}) EXPECT_EQ(units_of(trace8, e), slices) << name << " expert " << e;
      // 2 threads: half a share is 150 rows (over 128): expert 2 in 2 chunks of 150.
      EXPECT_EQ(units_of(trace2, 2), 2) << name << " (2 threads)";
      EXPECT_EQ(units_of(trace2, 0), 1) << name << " (2 threads)";
    }
  }
}

// on_caller runs once, on the calling thread, under every schedule (one thread, the one-phase
// and two-phase pool dispatches, a layer whose slots are all empty, and a Tbb pool).
TEST(MoeOnCaller, RunsOnceOnTheCallingThread) {
  std::mt19937 rng(2);
  const int64_t hidden = 256, n_ff = 256;
  std::vector<std::vector<uint8_t>> mats;
  std::vector<ExpertWeights> experts;
  for (int e = 0; e < 12; ++e)
    mats.push_back(test::random_weights(rng, DType::Q8_0, e % 3 == 2 ? hidden : n_ff, e % 3 == 2 ? n_ff : hidden));
  for (int e = 0; e < 4; ++e) experts.push_back({mats[size_t(3 * e)].data(), mats[size_t(3 * e + 1)].data(), mats[size_t(3 * e + 2)].data()});
  const auto x = test::random_floats(rng, size_t(hidden), 0.1f);
  ThreadPool pool2(2), pool8(8), tbb8(8, {}, PoolKind::Tbb);
  for (int mode = 0; mode < 5; ++mode) {
    std::vector<int32_t> ids = mode == 3 ? std::vector<int32_t>{-1, -1} : std::vector<int32_t>{1, 3};
    std::vector<float> w{0.5f, 0.5f};
    std::vector<float> y(static_cast<size_t>(hidden));
    int calls = 0;
    std::thread::id who;
    const std::function<void()> cb = [&] { ++calls; who = std::this_thread::get_id(); };
    MoeParams p;
    p.experts = experts.data(); p.n_experts = 4;
    p.gate_type = p.up_type = p.down_type = DType::Q8_0;
    p.hidden = hidden; p.n_ff = n_ff; p.x = x.data(); p.n_tokens = 1; p.top_k = 2;
    p.ids = ids.data(); p.weights = w.data(); p.y = y.data(); p.on_caller = &cb;
    if (mode == 0) moe_experts_at(p, active_isa(), nullptr);
    else moe_experts(p, mode == 4 ? tbb8 : mode == 2 ? pool8 : pool2);
    EXPECT_EQ(calls, 1) << "mode " << mode;
    EXPECT_EQ(who, std::this_thread::get_id()) << "mode " << mode;
  }
}

INSTANTIATE_TEST_SUITE_P(TiersXFormats, Moe,
                         ::testing::Combine(::testing::ValuesIn(test::all_tiers()),
                                            ::testing::Values(DType::F32, DType::BF16, DType::Q8_0,
                                                              DType::Q4_0, DType::Q4_K, DType::Q6_K)),
                         [](const auto& i) {
                           return std::string(isa_name(std::get<0>(i.param))) + "_" +
                                  std::string(dtype_name(std::get<1>(i.param)));
                         });

}  // namespace
}  // namespace hexe::cpu
