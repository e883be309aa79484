// GLM-4.5 chat prompts, as its chat_template.jinja renders them
// (tests/reference/fixtures/chat_templates/glm-4.5.jinja); no tool declarations or calls.
#include "runtime/tokenizer/chat_template.h"
#include "runtime/tokenizer/chat_template_text.h"

namespace hexe {

using chat_text::lstrip_newlines;
using chat_text::py_strip;
using chat_text::rstrip_newlines;

std::string ChatTemplate::render_glm45(std::span<const ChatMessage> messages,
                                       const ChatOptions& o) const {
  const size_t n = messages.size();
  chat_text::require_messages(name(), n);
  const bool no_think = o.enable_thinking == false;

  // Assistant turns after the last user turn keep their reasoning; older ones get <think></think>.
  ptrdiff_t last_user = -1;
  for (size_t i = 0; i < n; ++i)
    if (messages[i].role == "user") last_user = ptrdiff_t(i);

  std::string out = "[gMASK]<sop>";
  for (size_t i = 0; i < n; ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "user") {
      out += "<|user|>\n" + m.content;
      if (no_think && !chat_text::ends_with(m.content, "/nothink")) out += "/nothink";
    } else if (m.role == "assistant") {
      std::string_view content = m.content;
      std::string_view reasoning;
      const size_t close = content.find("</think>");
      if (close != std::string_view::npos) {
        // content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n')
        reasoning = lstrip_newlines(
            chat_text::after_last(rstrip_newlines(content.substr(0, close)), "<think>"));
        content = lstrip_newlines(chat_text::after_last(content, "</think>"));
      }
      out += "<|assistant|>";
      if (ptrdiff_t(i) > last_user && !reasoning.empty()) {
        out += "\n<think>";
        out += py_strip(reasoning);
        out += "</think>";
      } else {
        out += "\n<think></think>";
      }
      const std::string_view answer = py_strip(content);
      if (!answer.empty()) {
        out += "\n";
        out += answer;
      }
    } else if (m.role == "tool") {
      if (i == 0 || messages[i - 1].role != "tool") out += "<|observation|>";
      out += "\n<tool_response>\n" + m.content + "\n</tool_response>";
    } else if (m.role == "system") {
      out += "<|system|>\n" + m.content;
    } else {
      // The Jinja template silently drops other roles; we refuse rather than lose a turn.
      chat_text::bad_role(name(), i, m.role, "system, user, assistant or tool");
    }
  }
  if (o.add_generation_prompt) {
    out += "<|assistant|>";
    if (no_think) out += "\n<think></think>";
  }
  return out;
}

}  // namespace hexe
