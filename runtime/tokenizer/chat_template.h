// Chat prompt rendering for the template families we know (no Jinja): ChatML, Qwen3, Mistral.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace hexe {

class Tokenizer;

struct ChatMessage {
  std::string role;  // system | user | assistant | tool (qwen3)
  std::string content;
};

struct ChatOptions {
  bool add_generation_prompt = true;
  // Qwen3: false adds the empty "<think>\n\n</think>\n\n" block after the generation prompt;
  // unset = the template's default (thinking on). Ignored by the other families.
  std::optional<bool> enable_thinking;
};

enum class ChatTemplateKind {
  ChatMl,   // <|im_start|>role\ncontent<|im_end|>\n (llama.cpp's "chatml")
  Qwen3,    // Qwen3's ChatML variant: <think> blocks, reasoning stripped from old turns
  Mistral,  // Mixtral-8x7B-Instruct: <s> [INST] user [/INST] answer</s>, system folded into turn 1
};

class ChatTemplate {
 public:
  // By name: chatml | qwen3 | mistral. Throws hexe::Error listing the known names.
  static ChatTemplate from_name(std::string_view name);
  // Recognises the family from a tokenizer.chat_template (Jinja) text; throws hexe::Error
  // listing the known names when it is none of them (pass a name to override).
  static ChatTemplate detect(std::string_view jinja);
  // `name` if given, else detected from the tokenizer's template; bos/eos texts from its vocab.
  static ChatTemplate for_tokenizer(const Tokenizer& tok, std::string_view name = {});

  static const char* known_names() { return "chatml, qwen3, mistral"; }

  // Renders exactly as HF's apply_chat_template(tokenize=False) does with the family's
  // template. The result carries its own special tokens (and BOS for mistral): tokenize it
  // with add_special=false, parse_special=true. Throws hexe::Error on a role the template
  // rejects (the Jinja template raises or drops it).
  std::string render(std::span<const ChatMessage> messages, const ChatOptions& options) const;

  ChatTemplateKind kind() const { return kind_; }
  const char* name() const;
  void set_special_texts(std::string bos, std::string eos) {
    bos_ = std::move(bos);
    eos_ = std::move(eos);
  }

 private:
  explicit ChatTemplate(ChatTemplateKind kind) : kind_(kind) {}
  std::string render_chatml(std::span<const ChatMessage> messages, const ChatOptions& o) const;
  std::string render_qwen3(std::span<const ChatMessage> messages, const ChatOptions& o) const;
  std::string render_mistral(std::span<const ChatMessage> messages) const;

  ChatTemplateKind kind_;
  std::string bos_ = "<s>", eos_ = "</s>";  // mistral only
};

}  // namespace hexe
