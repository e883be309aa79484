// DeepSeek-V3 and DeepSeek-R1 chat prompts, as their tokenizer_config.json templates render them
// (tests/reference/fixtures/chat_templates/deepseek-{v3,r1}.jinja). Tool calls are left out:
// ChatMessage carries no tool_calls, so assistant turns are plain text.
#include "runtime/tokenizer/chat_template.h"
#include "runtime/tokenizer/chat_template_text.h"

namespace hexe {

std::string ChatTemplate::render_deepseek(std::span<const ChatMessage> messages,
                                          const ChatOptions& o) const {
  const bool r1 = kind_ == ChatTemplateKind::DeepSeekR1;
  const char* family = name();
  chat_text::require_messages(family, messages.size());

  // Every system message, wherever it stands, joins the prefix after BOS.
  std::string out = bos_;
  bool first_system = true;
  for (const ChatMessage& m : messages) {
    if (m.role != "system") continue;
    if (!first_system) out += "\n\n";
    out += m.content;
    first_system = false;
  }

  // is_tool: the last turn was a tool output, so the next assistant text closes the outputs.
  // first_output: only the conversation's first tool output opens the outputs block (the
  // template never resets it).
  bool is_tool = false, first_output = true;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "user") {
      is_tool = false;
      out += "<｜User｜>" + m.content;
    } else if (m.role == "assistant") {
      if (is_tool) {
        out += "<｜tool▁outputs▁end｜>" + m.content + "<｜end▁of▁sentence｜>";
        is_tool = false;
      } else {
        // R1 keeps only the text after the last </think>: old reasoning leaves the history.
        const std::string_view content = r1 ? chat_text::after_last(m.content, "</think>")
                                            : std::string_view(m.content);
        out += "<｜Assistant｜>";
        out += content;
        out += "<｜end▁of▁sentence｜>";
      }
    } else if (m.role == "tool") {
      is_tool = true;
      if (first_output) {
        out += "<｜tool▁outputs▁begin｜>";
        first_output = false;
      } else if (!r1) {
        out += "\n";  // V3 separates later outputs by a newline, R1 does not
      }
      out += "<｜tool▁output▁begin｜>" + m.content + "<｜tool▁output▁end｜>";
    } else if (m.role != "system") {
      // The Jinja template silently drops other roles; we refuse rather than lose a turn.
      chat_text::bad_role(family, i, m.role, "system, user, assistant or tool");
    }
  }
  if (is_tool) out += "<｜tool▁outputs▁end｜>";
  if (o.add_generation_prompt && !is_tool) out += r1 ? "<｜Assistant｜><think>\n" : "<｜Assistant｜>";
  return out;
}

}  // namespace hexe
