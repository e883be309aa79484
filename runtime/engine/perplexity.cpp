// Perplexity over non-overlapping chunks, second half of each scored (llama-perplexity's method).
#include "runtime/engine/perplexity.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "memory/error.h"

namespace hexe {

namespace {
// log p(tok) from a row of logits: max-shifted, the sum of exponentials in double.
double log_prob(const float* logits, int n_vocab, int32_t tok) {
  float max_logit = logits[0];
  for (int i = 1; i < n_vocab; ++i) max_logit = std::max(max_logit, logits[i]);
  double sum_exp = 0.0;
  for (int i = 0; i < n_vocab; ++i) sum_exp += std::exp(double(logits[i] - max_logit));
  return double(logits[tok] - max_logit) - std::log(sum_exp);
}
}  // namespace

PerplexityResult perplexity(Engine& engine, const std::vector<int32_t>& tokens, int n_ctx, bool add_bos,
                            int32_t bos_id, int n_chunks_max,
                            const std::function<void(int, double)>& on_chunk) {
  if (n_ctx < 4) throw Error("perplexity: context size must be at least 4, got " + std::to_string(n_ctx));
  if (int64_t(tokens.size()) < 2 * int64_t(n_ctx))
    throw Error("perplexity: you need at least " + std::to_string(2 * n_ctx) +
                " tokens to evaluate perplexity with a context of " + std::to_string(n_ctx) + ", the text has " +
                std::to_string(tokens.size()));
  if (n_ctx > engine.config().n_ctx)
    throw Error("perplexity: chunk size " + std::to_string(n_ctx) + " exceeds the engine's context " +
                std::to_string(engine.config().n_ctx));
  const int n_vocab = engine.n_vocab();
  int n_chunks = int(tokens.size() / n_ctx);
  if (n_chunks_max >= 0) n_chunks = std::min(n_chunks, n_chunks_max);
  const int first = n_ctx / 2;

  PerplexityResult r;
  double nll = 0.0, nll2 = 0.0;
  std::vector<BatchItem> items(n_ctx);
  for (int c = 0; c < n_chunks; ++c) {
    const int64_t start = int64_t(c) * n_ctx;
    const int seq = engine.new_sequence();
    for (int j = 0; j < n_ctx; ++j) items[j] = {seq, tokens[start + j], j >= first && j < n_ctx - 1};
    if (add_bos) items[0].token = bos_id;
    std::span<const float> logits = engine.eval(items);
    engine.free_sequence(seq);
    for (int j = first; j < n_ctx - 1; ++j) {
      const double lp = log_prob(logits.data() + size_t(j - first) * n_vocab, n_vocab, tokens[start + j + 1]);
      nll += -lp;
      nll2 += lp * lp;
      ++r.n_scored;
    }
    r.chunk_ppl.push_back(std::exp(nll / double(r.n_scored)));
    if (on_chunk) on_chunk(c, r.chunk_ppl.back());
  }
  r.n_chunks = n_chunks;
  const double mean = nll / double(r.n_scored);
  double var = nll2 / double(r.n_scored) - mean * mean;
  r.ppl = std::exp(mean);
  r.ppl_error = var > 0 && r.n_scored > 1 ? std::sqrt(var / double(r.n_scored - 1)) * r.ppl : 0.0;
  return r;
}

}  // namespace hexe
