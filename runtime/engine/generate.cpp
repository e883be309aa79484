// The generation loop: prefill, then one decode pass per sampled token.
#include "runtime/engine/generate.h"

#include <algorithm>
#include <chrono>

#include "runtime/tokenizer/tokenizer.h"

namespace hexe {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

GenerationStats generate(Engine& engine, int seq, std::span<const int32_t> prompt, const GenerateOptions& opt,
                         Sampler& sampler, std::vector<int32_t>& history,
                         const std::function<bool(int32_t)>& on_token) {
  GenerationStats st;
  const Tokenizer& tok = engine.model().tokenizer();
  const int n_vocab = engine.n_vocab();
  if (prompt.empty()) return st;

  auto t0 = std::chrono::steady_clock::now();
  std::vector<BatchItem> items(prompt.size());
  for (size_t i = 0; i < prompt.size(); ++i) items[i] = {seq, prompt[i], i + 1 == prompt.size()};
  std::span<const float> logits = engine.eval(items);
  history.insert(history.end(), prompt.begin(), prompt.end());
  st.n_prompt = int64_t(prompt.size());
  st.prompt_seconds = seconds_since(t0);

  auto t1 = std::chrono::steady_clock::now();
  const int64_t room = engine.config().n_ctx - engine.seq_length(seq);
  const int64_t limit = opt.n_predict < 0 ? room : std::min<int64_t>(opt.n_predict, room);
  for (int64_t i = 0; i < limit; ++i) {
    const int32_t id = sampler.sample(logits.data(), n_vocab, history);
    if (!opt.ignore_eog && tok.is_eog(id)) {
      st.stopped_at_eog = true;
      break;
    }
    history.push_back(id);
    ++st.n_generated;
    if (!on_token(id)) break;
    if (i + 1 == limit) break;  // no need to evaluate a token nobody samples after
    BatchItem next{seq, id, true};
    logits = engine.eval(std::span<const BatchItem>(&next, 1));
  }
  st.generation_seconds = seconds_since(t1);
  return st;
}

}  // namespace hexe
