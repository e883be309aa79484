// Token sampling: repetition penalty, top-k, top-p, min-p, temperature, seeded draw (llama.cpp order).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace hexe {

// Defaults as llama.cpp's common_params_sampling.
struct SamplingParams {
  float temperature = 0.8f;     // 0 (or below): greedy argmax
  int top_k = 40;               // 0: off
  float top_p = 0.95f;          // 1: off
  float min_p = 0.05f;          // 0: off; keep p >= min_p * p_max
  float repeat_penalty = 1.0f;  // 1: off; >1 lowers tokens seen in the last repeat_last_n
  int repeat_last_n = 64;       // 0: off, -1: the whole history
  int64_t seed = -1;            // -1: a random seed (Sampler::seed() tells which)
};

// One candidate during sampling: token id and its logit.
struct TokenLogit {
  int32_t id;
  float logit;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);

  // Picks the next token from `logits` [n_vocab]. `history` is the sequence so far (prompt and
  // generated tokens); only its last repeat_last_n entries matter. Chain: penalties -> top-k ->
  // top-p -> min-p -> temperature -> draw, each filter keeping at least one token.
  int32_t sample(const float* logits, int n_vocab, std::span<const int32_t> history);

  const SamplingParams& params() const { return params_; }
  uint64_t seed() const { return seed_; }

  // The chain's steps, exposed for tests. Each works on `cands` in place.
  static void apply_repeat_penalty(std::vector<TokenLogit>& cands, std::span<const int32_t> recent,
                                   float penalty);
  static void apply_top_k(std::vector<TokenLogit>& cands, int k);      // leaves cands sorted
  static void apply_top_p(std::vector<TokenLogit>& cands, float p);    // sorts cands
  static void apply_min_p(std::vector<TokenLogit>& cands, float min_p);

 private:
  SamplingParams params_;
  uint64_t seed_;
  std::mt19937_64 rng_;
  std::vector<TokenLogit> cands_;  // reused between calls
};

}  // namespace hexe
