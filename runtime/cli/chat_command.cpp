// `hexe chat`: interactive chat with the model's chat template; the KV cache keeps the
// conversation, so each turn only evaluates what the template added since the last one.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "memory/error.h"
#include "runtime/cli/commands.h"
#include "runtime/cli/options.h"
#include "runtime/engine/generate.h"
#include "runtime/tokenizer/chat_template.h"
#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/utf8_stream.h"

namespace hexe::cli {

namespace {

struct ChatCliOptions {
  ModelOptions model;
  SamplingParams sampling;
  std::string chat_template;  // empty: from the model's tokenizer.chat_template
  std::string system;
  int n_predict = -1;
  bool no_think = false;
};

void chat(const ChatCliOptions& o) {
  auto model = load_model(o.model);
  Engine engine(*model, engine_config(o.model));
  const Tokenizer& tok = model->tokenizer();
  const ChatTemplate tmpl = ChatTemplate::for_tokenizer(tok, o.chat_template);
  ChatOptions copts;
  if (o.no_think) copts.enable_thinking = false;
  Sampler sampler(o.sampling);
  const bool interactive = isatty(STDIN_FILENO);

  std::vector<ChatMessage> messages;
  if (!o.system.empty()) messages.push_back({"system", o.system});
  const int seq = engine.new_sequence();
  std::vector<int32_t> in_cache;  // tokens the sequence holds, in order
  std::fprintf(stderr, "hexe chat: template %s; empty line or Ctrl-D ends\n", tmpl.name());
  for (;;) {
    if (interactive) std::fputs("\n> ", stdout), std::fflush(stdout);
    std::string line;
    if (!std::getline(std::cin, line) || line.empty() || line == "/exit") break;
    messages.push_back({"user", line});
    const std::vector<int32_t> conv = tok.encode(tmpl.render(messages, copts), false, true);

    // Reuse the cached prefix: drop what differs, evaluate the rest.
    size_t common = 0;
    while (common < in_cache.size() && common < conv.size() && in_cache[common] == conv[common]) ++common;
    if (common == conv.size()) --common;  // the last token must be evaluated to get logits
    engine.truncate(seq, int64_t(common));
    in_cache.resize(common);
    std::vector<int32_t> todo(conv.begin() + int64_t(common), conv.end());
    if (int64_t(conv.size()) >= engine.config().n_ctx)
      throw Error("the conversation has " + std::to_string(conv.size()) + " tokens, more than the context size " +
                  std::to_string(engine.config().n_ctx) + " (-c)");

    Utf8StreamDecoder stream;
    std::string reply;
    std::vector<int32_t> history = in_cache;
    GenerationStats st = generate(engine, seq, todo, {.n_predict = o.n_predict}, sampler, history, [&](int32_t id) {
      std::string out = stream.push(tok.token_to_piece(id));
      reply += out;
      std::fputs(out.c_str(), stdout);
      std::fflush(stdout);
      return true;
    });
    const std::string tail = stream.flush();
    reply += tail;
    std::fputs((tail + "\n").c_str(), stdout);
    std::fflush(stdout);
    in_cache = history;
    messages.push_back({"assistant", reply});
    std::fprintf(stderr, "[%lld new prompt tokens, %.1f tok/s | %lld generated, %.1f tok/s]\n",
                 (long long)st.n_prompt, st.prompt_tps(), (long long)st.n_generated, st.generation_tps());
  }
}

}  // namespace

void add_chat_command(CLI::App& app) {
  auto opts = std::make_shared<ChatCliOptions>();
  auto* cmd = app.add_subcommand("chat", "interactive chat using the model's chat template");
  add_model_options(*cmd, opts->model);
  add_sampling_options(*cmd, opts->sampling);
  cmd->add_option("--chat-template", opts->chat_template,
                  std::string("template family (") + ChatTemplate::known_names() + "); default: from the model");
  cmd->add_option("--system", opts->system, "system message");
  cmd->add_option("-n,--n-predict", opts->n_predict, "most tokens per reply (-1: until end of turn)");
  cmd->add_flag("--no-think", opts->no_think, "Qwen3: answer without a reasoning block");
  cmd->callback([opts] { chat(*opts); });
}

}  // namespace hexe::cli
