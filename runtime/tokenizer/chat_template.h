// Chat prompt rendering for the template families we know (no Jinja): ChatML, Qwen3, Mistral,
// DeepSeek-V3/R1, Kimi-K2, GLM-4.5.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace hexe {

class Tokenizer;

struct ChatMessage {
  std::string role;  // system | user | assistant | tool (qwen3, deepseek, kimi-k2, glm-4.5)
  std::string content;
};

struct ChatOptions {
  bool add_generation_prompt = true;
  // Qwen3: false adds the empty "<think>\n\n</think>\n\n" block after the generation prompt;
  // GLM-4.5: false appends "/nothink" to user turns and "\n<think></think>" to the prompt.
  // unset = the template's default (thinking on). Ignored by the other families.
  std::optional<bool> enable_thinking;
};

enum class ChatTemplateKind {
  ChatMl,   // <|im_start|>role\ncontent<|im_end|>\n (llama.cpp's "chatml")
  Qwen3,    // Qwen3's ChatML variant: <think> blocks, reasoning stripped from old turns
  Mistral,  // Mixtral-8x7B-Instruct: <s> [INST] user [/INST] answer</s>, system folded into turn 1
  DeepSeekV3,  // <｜begin▁of▁sentence｜>system<｜User｜>q<｜Assistant｜>a<｜end▁of▁sentence｜>
  DeepSeekR1,  // DeepSeek-V3's form; reasoning cut from old turns, prompt ends "<think>\n"
  KimiK2,      // <|im_user|>user<|im_middle|>q<|im_end|>, default system message
  Glm45,       // [gMASK]<sop><|user|>\nq<|assistant|>\n<think></think>\na, /nothink switch
};

class ChatTemplate {
 public:
  // By name (known_names()). Throws hexe::Error listing the known names.
  static ChatTemplate from_name(std::string_view name);
  // Recognises the family from a tokenizer.chat_template (Jinja) text; throws hexe::Error
  // listing the known names when it is none of them (pass a name to override).
  static ChatTemplate detect(std::string_view jinja);
  // `name` if given, else detected from the tokenizer's template; bos/eos texts from its vocab.
  static ChatTemplate for_tokenizer(const Tokenizer& tok, std::string_view name = {});

  static const char* known_names() {
    return "chatml, qwen3, mistral, deepseek-v3, deepseek-r1, kimi-k2, glm-4.5";
  }

  // Renders exactly as HF's apply_chat_template(tokenize=False) does with the family's
  // template. The result carries its own special tokens (and BOS for mistral and deepseek):
  // tokenize it with add_special=false, parse_special=true. Throws hexe::Error on a role the
  // template rejects (the Jinja template raises or drops it) and, for the families added with
  // DeepSeek, on an empty conversation (transformers refuses one).
  std::string render(std::span<const ChatMessage> messages, const ChatOptions& options) const;

  ChatTemplateKind kind() const { return kind_; }
  const char* name() const;
  // Whether the family's answers carry <think>...</think> reasoning blocks (qwen3,
  // deepseek-r1, glm-4.5); `hexe chat --reasoning hide` filters those.
  bool has_reasoning() const;
  void set_special_texts(std::string bos, std::string eos) {
    bos_ = std::move(bos);
    eos_ = std::move(eos);
  }

 private:
  explicit ChatTemplate(ChatTemplateKind kind);
  std::string render_chatml(std::span<const ChatMessage> messages, const ChatOptions& o) const;
  std::string render_qwen3(std::span<const ChatMessage> messages, const ChatOptions& o) const;
  std::string render_mistral(std::span<const ChatMessage> messages) const;
  // In chat_template_deepseek.cpp / chat_template_kimi.cpp / chat_template_glm.cpp.
  std::string render_deepseek(std::span<const ChatMessage> messages, const ChatOptions& o) const;
  std::string render_kimi_k2(std::span<const ChatMessage> messages, const ChatOptions& o) const;
  std::string render_glm45(std::span<const ChatMessage> messages, const ChatOptions& o) const;

  ChatTemplateKind kind_;
  std::string bos_ = "<s>", eos_ = "</s>";  // mistral and deepseek (its own default bos)
};

}  // namespace hexe
