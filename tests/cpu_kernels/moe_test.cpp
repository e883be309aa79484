// moe_experts at every tier against moe_experts_ref (float weights: tight; quantised weights:
// within the activation-quantisation error) and against the scalar tier; top-k 1, 2 and 8,
// decode and prefill token counts, experts left unused.
#include <cmath>

#include "cpu_kernels/dispatch.h"
#include "cpu_kernels/moe.h"
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
