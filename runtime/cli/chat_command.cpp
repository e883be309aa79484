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
#include "runtime/tokenizer/reasoning_filter.h"
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
  std::string reasoning = "show";  // show | hide the <think> blocks of reasoning templates
};

void chat(const ChatCliOptions& o) {
  auto model = load_model(o.model);
  Engine engine(*model, engine_setup(o.model, *model, 512).config);  // 512: a typical first turn for predictions
  const Tokenizer& tok = model->tokenizer();
  const ChatTemplate tmpl = ChatTemplate::for_tokenizer(tok, o.chat_template);
  ChatOptions copts;
  if (o.no_think) copts.enable_thinking = false;
  const bool hide_reasoning = o.reasoning == "hide";
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
    const std::string prompt = tmpl.render(messages, copts);
    const std::vector<int32_t> conv = tok.encode(prompt, false, true);

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
    // Only the display is filtered: `reply` keeps the reasoning, and the template decides
    // what of it the next turn's prompt keeps (R1 and Qwen3 drop it from old turns).
    ReasoningFilter filter(hide_reasoning && tmpl.has_reasoning(),
                           tmpl.has_reasoning() && ReasoningFilter::prompt_opens_reasoning(prompt));
    const auto show = [&](const ReasoningFilter::Chunk& c) {
      if (c.reasoning_began > 0 && hide_reasoning) std::fputs("[thinking...]\n", stderr);
      std::fputs(c.text.c_str(), stdout);
      std::fflush(stdout);
    };
    std::string reply;
    std::vector<int32_t> history = in_cache;
    GenerationStats st = generate(engine, seq, todo, {.n_predict = o.n_predict}, sampler, history, [&](int32_t id) {
      std::string out = stream.push(tok.token_to_piece(id));
      reply += out;
      show(filter.push(out));
      return true;
    });
    const std::string tail = stream.flush();
    reply += tail;
    show(filter.push(tail));
    std::fputs((filter.flush() + "\n").c_str(), stdout);
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
  cmd->add_flag("--no-think", opts->no_think, "Qwen3, GLM-4.5: answer without a reasoning block");
  cmd->add_option("--reasoning", opts->reasoning,
                  "show or hide the <think> reasoning of qwen3, deepseek-r1 and glm-4.5 answers "
                  "(hide prints [thinking...] to stderr instead)")
      ->check(CLI::IsMember({"show", "hide"}))
      ->capture_default_str();
  cmd->callback([opts] { chat(*opts); });
}

}  // namespace hexe::cli
