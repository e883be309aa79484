// `hexe run`: generate text from a prompt, streamed as it is produced, then speed figures.
#include <cstdio>
#include <string>

#include "memory/error.h"
#include "runtime/cli/commands.h"
#include "runtime/cli/routing_stats_file.h"
#include "runtime/cli/options.h"
#include "runtime/engine/generate.h"
#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/utf8_stream.h"

namespace hexe::cli {

namespace {

struct RunOptions {
  ModelOptions model;
  SamplingParams sampling;
  std::string prompt;
  std::string prompt_file;
  int n_predict = 128;
  bool no_display_prompt = false;
  std::string routing_stats;  // --routing-stats FILE.json
};

void run(const RunOptions& o) {
  auto model = load_model(o.model);
  const Tokenizer& tok = model->tokenizer();
  std::string text = o.prompt_file.empty() ? o.prompt : read_text_file(o.prompt_file);
  std::vector<int32_t> prompt = tok.encode(text, /*add_special=*/true, /*parse_special=*/true);
  if (prompt.empty()) throw Error("the prompt is empty after tokenisation; give -p TEXT or -f FILE");
  const EngineSetup setup = engine_setup(o.model, *model, int64_t(prompt.size()));
  Engine engine(*model, setup.config);
  if (!o.routing_stats.empty()) engine.enable_routing_counts(true);
  if (int64_t(prompt.size()) >= engine.config().n_ctx)
    throw Error("the prompt has " + std::to_string(prompt.size()) + " tokens, more than the context size " +
                std::to_string(engine.config().n_ctx) + " (-c)");

  if (!o.no_display_prompt) {
    std::fputs(text.c_str(), stdout);
    std::fflush(stdout);
  }
  Sampler sampler(o.sampling);
  Utf8StreamDecoder stream;
  std::vector<int32_t> history;
  const int seq = engine.new_sequence();
  GenerationStats st = generate(engine, seq, prompt, {.n_predict = o.n_predict}, sampler, history, [&](int32_t id) {
    std::string out = stream.push(tok.token_to_piece(id));
    std::fputs(out.c_str(), stdout);
    std::fflush(stdout);
    return true;
  });
  std::fputs(stream.flush().c_str(), stdout);
  std::fputs("\n", stdout);
  std::fflush(stdout);
  std::fprintf(stderr, "\nprompt: %lld tokens, %.2f tokens/s | generation: %lld tokens, %.2f tokens/s%s\n",
               (long long)st.n_prompt, st.prompt_tps(), (long long)st.n_generated, st.generation_tps(),
               st.stopped_at_eog ? " (end of generation)" : "");
  if (setup.plan && setup.plan->decode.tokens_per_s > 0)
    std::fprintf(stderr, "plan '%s' predicted: prompt %.2f tokens/s, generation %.2f tokens/s\n",
                 setup.plan->strategy.c_str(), setup.plan->prefill.tokens_per_s, setup.plan->decode.tokens_per_s);
  if (!o.routing_stats.empty())
    write_routing_stats(engine, *model, uint64_t(st.n_prompt + st.n_generated), o.routing_stats);
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto opts = std::make_shared<RunOptions>();
  auto* cmd = app.add_subcommand("run", "generate text from a prompt");
  add_model_options(*cmd, opts->model);
  add_sampling_options(*cmd, opts->sampling);
  auto* p = cmd->add_option("-p,--prompt", opts->prompt, "prompt text");
  auto* f = cmd->add_option("-f,--file", opts->prompt_file, "read the prompt from a file")->check(CLI::ExistingFile);
  p->excludes(f);
  cmd->add_option("-n,--n-predict", opts->n_predict, "tokens to generate (-1: until end of generation)")
      ->check(CLI::Range(-1, 1 << 24));
  cmd->add_flag("--no-display-prompt", opts->no_display_prompt, "do not echo the prompt");
  cmd->add_option("--routing-stats", opts->routing_stats,
                  "write per-layer expert activation counts (JSON) to this file");
  cmd->callback([opts] {
    if (opts->prompt.empty() && opts->prompt_file.empty()) opts->prompt = "Once upon a time";
    run(*opts);
  });
}

}  // namespace hexe::cli
