// `hexe perplexity`: perplexity of a text, computed as llama.cpp's llama-perplexity does.
#include <cstdio>
#include <string>

#include "runtime/cli/commands.h"
#include "runtime/cli/routing_stats_file.h"
#include "runtime/cli/options.h"
#include "runtime/engine/perplexity.h"
#include "runtime/tokenizer/tokenizer.h"

namespace hexe::cli {

namespace {

struct PerplexityOptions {
  ModelOptions model;
  std::string file;
  int chunk = 512;
  int chunks = -1;
  std::string routing_stats;  // --routing-stats FILE.json
};

void run(PerplexityOptions o) {
  o.model.ctx = o.chunk;
  o.model.batch = std::max(o.model.batch, o.chunk);
  o.model.ctx_given = o.model.batch_given = true;  // the chunk size decides both, whatever a plan says
  auto model = load_model(o.model);
  Engine engine(*model, engine_setup(o.model, *model, o.chunk).config);
  if (!o.routing_stats.empty()) engine.enable_routing_counts(true);
  const Tokenizer& tok = model->tokenizer();
  const std::string text = read_text_file(o.file);
  const std::vector<int32_t> tokens = tok.encode(text, /*add_special=*/true, /*parse_special=*/false);
  std::fprintf(stderr, "perplexity: %zu tokens, chunks of %d, scoring the second half of each\n", tokens.size(),
               o.chunk);
  PerplexityResult r = perplexity(engine, tokens, o.chunk, tok.add_bos(), tok.bos_id(), o.chunks,
                                  [](int i, double ppl) {
                                    std::printf("[%d]%.4f,", i + 1, ppl);
                                    std::fflush(stdout);
                                  });
  std::printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", r.ppl, r.ppl_error);
  if (!o.routing_stats.empty())
    write_routing_stats(engine, *model, uint64_t(r.n_chunks) * uint64_t(o.chunk), o.routing_stats);
}

}  // namespace

void add_perplexity_command(CLI::App& app) {
  auto opts = std::make_shared<PerplexityOptions>();
  auto* cmd = app.add_subcommand("perplexity", "perplexity of a text (llama-perplexity's method)");
  add_model_options(*cmd, opts->model, /*with_ctx=*/false);
  cmd->add_option("-f,--file", opts->file, "text file")->required()->check(CLI::ExistingFile);
  cmd->add_option("-c,--ctx-size", opts->chunk, "tokens per chunk, as llama-perplexity's -c")->check(CLI::Range(4, 1 << 20));
  cmd->add_option("--chunks", opts->chunks, "evaluate at most this many chunks (-1: all)");
  cmd->add_option("--routing-stats", opts->routing_stats,
                  "write per-layer expert activation counts (JSON) to this file");
  cmd->callback([opts] { run(*opts); });
}

}  // namespace hexe::cli
