// Kimi-K2-Instruct chat prompts, as its chat template renders them
// (tests/reference/fixtures/chat_templates/kimi-k2.jinja); no tool declarations.
#include "runtime/tokenizer/chat_template.h"
#include "runtime/tokenizer/chat_template_text.h"

namespace hexe {

std::string ChatTemplate::render_kimi_k2(std::span<const ChatMessage> messages,
                                         const ChatOptions& o) const {
  chat_text::require_messages(name(), messages.size());
  std::string out;
  if (messages[0].role != "system")
    out += "<|im_system|>system<|im_middle|>You are a helpful assistant<|im_end|>";
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "system") {
      out += "<|im_system|>system<|im_middle|>";
    } else if (m.role == "user") {
      out += "<|im_user|>user<|im_middle|>";
    } else if (m.role == "assistant") {
      out += "<|im_assistant|>assistant<|im_middle|>";
    } else if (m.role == "tool") {
      out += "<|im_system|>tool<|im_middle|>";
    } else {
      // The Jinja template would emit the text with no role header at all.
      chat_text::bad_role(name(), i, m.role, "system, user, assistant or tool");
    }
    out += m.content + "<|im_end|>";
  }
  if (o.add_generation_prompt) out += "<|im_assistant|>assistant<|im_middle|>";
  return out;
}

}  // namespace hexe
