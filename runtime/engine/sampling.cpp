// Token sampling: repetition penalty, top-k, top-p, min-p, temperature, seeded draw (llama.cpp order).
#include "runtime/engine/sampling.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

namespace hexe {

namespace {

bool by_logit_desc(const TokenLogit& a, const TokenLogit& b) {
  return a.logit != b.logit ? a.logit > b.logit : a.id < b.id;  // ties: lower id first (stable)
}

// Softmax of the (sorted or not) candidates' logits, in doubles for the cumulative sums.
std::vector<double> softmax(const std::vector<TokenLogit>& cands) {
  float max_logit = -INFINITY;
  for (const TokenLogit& c : cands) max_logit = std::max(max_logit, c.logit);
  std::vector<double> p(cands.size());
  double sum = 0;
  for (size_t i = 0; i < cands.size(); ++i) {
    p[i] = std::exp(double(cands[i].logit) - double(max_logit));
    sum += p[i];
  }
  for (double& x : p) x /= sum;
  return p;
}

uint64_t random_seed() {
  std::random_device rd;
  return (uint64_t(rd()) << 32) | rd();
}

}  // namespace

Sampler::Sampler(const SamplingParams& params)
    : params_(params),
      seed_(params.seed >= 0 ? uint64_t(params.seed) : random_seed()),
      rng_(seed_) {}

void Sampler::apply_repeat_penalty(std::vector<TokenLogit>& cands, std::span<const int32_t> recent,
                                   float penalty) {
  if (penalty == 1.0f || recent.empty()) return;
  const std::unordered_set<int32_t> seen(recent.begin(), recent.end());
  for (TokenLogit& c : cands) {
    if (!seen.count(c.id)) continue;
    // llama.cpp: shrink positive logits and push negative ones further down.
    c.logit = c.logit > 0 ? c.logit / penalty : c.logit * penalty;
  }
}

void Sampler::apply_top_k(std::vector<TokenLogit>& cands, int k) {
  if (k <= 0 || size_t(k) >= cands.size()) {
    std::sort(cands.begin(), cands.end(), by_logit_desc);
    return;
  }
  std::partial_sort(cands.begin(), cands.begin() + k, cands.end(), by_logit_desc);
  cands.resize(size_t(k));
}

void Sampler::apply_top_p(std::vector<TokenLogit>& cands, float p) {
  if (p >= 1.0f || cands.size() <= 1) return;
  std::sort(cands.begin(), cands.end(), by_logit_desc);
  const std::vector<double> probs = softmax(cands);
  double cum = 0;
  size_t keep = cands.size();
  for (size_t i = 0; i < cands.size(); ++i) {
    cum += probs[i];
    if (cum >= double(p)) {  // smallest prefix whose mass reaches p
      keep = i + 1;
      break;
    }
  }
  cands.resize(keep);
}

void Sampler::apply_min_p(std::vector<TokenLogit>& cands, float min_p) {
  if (min_p <= 0.0f || cands.size() <= 1) return;
  float max_logit = -INFINITY;
  for (const TokenLogit& c : cands) max_logit = std::max(max_logit, c.logit);
  // p_i >= min_p * p_max  <=>  logit_i >= max_logit + log(min_p); the max always survives.
  const float threshold = max_logit + std::log(min_p);
  std::erase_if(cands, [&](const TokenLogit& c) { return c.logit < threshold; });
}

int32_t Sampler::sample(const float* logits, int n_vocab, std::span<const int32_t> history) {
  cands_.resize(size_t(n_vocab));
  for (int i = 0; i < n_vocab; ++i) cands_[size_t(i)] = {i, logits[i]};

  const size_t n_recent = params_.repeat_last_n < 0
                              ? history.size()
                              : std::min(history.size(), size_t(params_.repeat_last_n));
  apply_repeat_penalty(cands_, history.last(n_recent), params_.repeat_penalty);

  if (params_.temperature <= 0.0f) {
    return std::min_element(cands_.begin(), cands_.end(), by_logit_desc)->id;
  }
  apply_top_k(cands_, params_.top_k);
  apply_top_p(cands_, params_.top_p);
  apply_min_p(cands_, params_.min_p);
  for (TokenLogit& c : cands_) c.logit /= params_.temperature;

  const std::vector<double> probs = softmax(cands_);
  const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
  double cum = 0;
  for (size_t i = 0; i < cands_.size(); ++i) {
    cum += probs[i];
    if (u < cum) return cands_[i].id;
  }
  return cands_.back().id;  // u rounded past the last cumulative sum
}

}  // namespace hexe
