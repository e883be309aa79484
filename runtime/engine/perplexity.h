// Perplexity computed exactly as llama.cpp's llama-perplexity does, so figures compare.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "runtime/engine/engine.h"

namespace hexe {

struct PerplexityResult {
  double ppl = 0, ppl_error = 0;  // exp(mean NLL), and its standard error as llama.cpp prints it
  int64_t n_scored = 0;           // tokens scored
  int n_chunks = 0;
  std::vector<double> chunk_ppl;  // running estimate after each chunk
};

// tokens: the whole text tokenised with the model's special tokens (BOS when it adds one).
// Non-overlapping chunks of n_ctx tokens; each chunk is a fresh sequence whose first token is
// replaced by BOS when add_bos; only the second half of each chunk is scored. Needs at least
// 2 * n_ctx tokens. n_chunks_max < 0: all chunks. on_chunk(i, running_ppl) reports progress.
PerplexityResult perplexity(Engine& engine, const std::vector<int32_t>& tokens, int n_ctx, bool add_bos,
                            int32_t bos_id, int n_chunks_max,
                            const std::function<void(int, double)>& on_chunk);

}  // namespace hexe
