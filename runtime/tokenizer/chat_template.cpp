// Chat prompt rendering for the template families we know (no Jinja): ChatML, Qwen3, Mistral;
// the dispatch, detection and names for all families.
#include "runtime/tokenizer/chat_template.h"

#include "memory/error.h"
#include "runtime/tokenizer/chat_template_text.h"
#include "runtime/tokenizer/tokenizer.h"

namespace hexe {

using chat_text::bad_role;
using chat_text::ends_with;
using chat_text::lstrip_newlines;
using chat_text::rstrip_newlines;
using chat_text::starts_with;

ChatTemplate::ChatTemplate(ChatTemplateKind kind) : kind_(kind) {
  if (kind == ChatTemplateKind::DeepSeekV3 || kind == ChatTemplateKind::DeepSeekR1) {
    bos_ = "<｜begin▁of▁sentence｜>";
    eos_ = "<｜end▁of▁sentence｜>";
  }
}

ChatTemplate ChatTemplate::from_name(std::string_view name) {
  if (name == "chatml") return ChatTemplate(ChatTemplateKind::ChatMl);
  if (name == "qwen3") return ChatTemplate(ChatTemplateKind::Qwen3);
  if (name == "mistral" || name == "mixtral") return ChatTemplate(ChatTemplateKind::Mistral);
  if (name == "deepseek-v3" || name == "deepseek3") return ChatTemplate(ChatTemplateKind::DeepSeekV3);
  if (name == "deepseek-r1") return ChatTemplate(ChatTemplateKind::DeepSeekR1);
  if (name == "kimi-k2") return ChatTemplate(ChatTemplateKind::KimiK2);
  if (name == "glm-4.5" || name == "glm4.5" || name == "glm45") return ChatTemplate(ChatTemplateKind::Glm45);
  throw Error("unknown chat template '" + std::string(name) + "', expected one of: " +
              known_names());
}

ChatTemplate ChatTemplate::detect(std::string_view jinja) {
  const auto has = [&](std::string_view s) { return jinja.find(s) != std::string_view::npos; };
  // DeepSeek-R1 is DeepSeek-V3's template plus the <think> handling.
  if (has("<｜User｜>") && has("<｜Assistant｜>"))
    return ChatTemplate(has("<think>") ? ChatTemplateKind::DeepSeekR1 : ChatTemplateKind::DeepSeekV3);
  if (has("<|im_middle|>") && has("<|im_assistant|>")) return ChatTemplate(ChatTemplateKind::KimiK2);
  if (has("[gMASK]<sop>") && has("<|user|>") && has("<|assistant|>"))
    return ChatTemplate(ChatTemplateKind::Glm45);
  if (jinja.find("<|im_start|>") != std::string_view::npos) {
    const bool thinking = jinja.find("<think>") != std::string_view::npos ||
                          jinja.find("enable_thinking") != std::string_view::npos;
    return ChatTemplate(thinking ? ChatTemplateKind::Qwen3 : ChatTemplateKind::ChatMl);
  }
  // Mistral's v3+/Tekken templates use "[INST]" too but with [SYSTEM_PROMPT] and no spaces.
  if (jinja.find("[INST]") != std::string_view::npos &&
      jinja.find("[SYSTEM_PROMPT]") == std::string_view::npos &&
      jinja.find("<<SYS>>") == std::string_view::npos)
    return ChatTemplate(ChatTemplateKind::Mistral);
  if (jinja.empty())
    throw Error(std::string("the model has no chat template; pass one of: ") + known_names());
  throw Error("unrecognised chat template (" + std::to_string(jinja.size()) +
              " bytes starting '" + std::string(jinja.substr(0, 60)) +
              "'); pass one of: " + known_names());
}

ChatTemplate ChatTemplate::for_tokenizer(const Tokenizer& tok, std::string_view name) {
  ChatTemplate t = name.empty() ? detect(tok.chat_template()) : from_name(name);
  // Without a bos/eos in the vocabulary the family's own text stays.
  t.set_special_texts(tok.bos_id() >= 0 ? tok.token_text(tok.bos_id()) : t.bos_,
                      tok.eos_id() >= 0 ? tok.token_text(tok.eos_id()) : t.eos_);
  return t;
}

const char* ChatTemplate::name() const {
  switch (kind_) {
    case ChatTemplateKind::ChatMl: return "chatml";
    case ChatTemplateKind::Qwen3: return "qwen3";
    case ChatTemplateKind::Mistral: return "mistral";
    case ChatTemplateKind::DeepSeekV3: return "deepseek-v3";
    case ChatTemplateKind::DeepSeekR1: return "deepseek-r1";
    case ChatTemplateKind::KimiK2: return "kimi-k2";
    case ChatTemplateKind::Glm45: return "glm-4.5";
  }
  return "?";
}

bool ChatTemplate::has_reasoning() const {
  return kind_ == ChatTemplateKind::Qwen3 || kind_ == ChatTemplateKind::DeepSeekR1 ||
         kind_ == ChatTemplateKind::Glm45;
}

std::string ChatTemplate::render(std::span<const ChatMessage> messages,
                                 const ChatOptions& options) const {
  switch (kind_) {
    case ChatTemplateKind::ChatMl: return render_chatml(messages, options);
    case ChatTemplateKind::Qwen3: return render_qwen3(messages, options);
    case ChatTemplateKind::Mistral: return render_mistral(messages);
    case ChatTemplateKind::DeepSeekV3:
    case ChatTemplateKind::DeepSeekR1: return render_deepseek(messages, options);
    case ChatTemplateKind::KimiK2: return render_kimi_k2(messages, options);
    case ChatTemplateKind::Glm45: return render_glm45(messages, options);
  }
  return {};
}

std::string ChatTemplate::render_chatml(std::span<const ChatMessage> messages,
                                        const ChatOptions& o) const {
  std::string out;
  for (const ChatMessage& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  if (o.add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

// Mirrors Qwen3's tokenizer_config.json template (tools left out: no tool definitions).
std::string ChatTemplate::render_qwen3(std::span<const ChatMessage> messages,
                                       const ChatOptions& o) const {
  const size_t n = messages.size();
  std::string out;
  if (n > 0 && messages[0].role == "system")
    out += "<|im_start|>system\n" + messages[0].content + "<|im_end|>\n";

  // The last user turn that is not a tool response; assistant turns after it keep <think>.
  size_t last_query = n == 0 ? 0 : n - 1;
  for (size_t k = n; k-- > 0;) {
    const ChatMessage& m = messages[k];
    if (m.role == "user" &&
        !(starts_with(m.content, "<tool_response>") && ends_with(m.content, "</tool_response>"))) {
      last_query = k;
      break;
    }
  }

  for (size_t i = 0; i < n; ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "user" || (m.role == "system" && i != 0)) {
      out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
    } else if (m.role == "assistant") {
      std::string_view content = m.content;
      std::string_view reasoning;
      const size_t close = content.find("</think>");
      if (close != std::string_view::npos) {
        // content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n')
        std::string_view before = rstrip_newlines(content.substr(0, close));
        const size_t open = before.rfind("<think>");
        if (open != std::string_view::npos) before = before.substr(open + 7);
        reasoning = lstrip_newlines(before);
        // content.split('</think>')[-1].lstrip('\n')
        content = lstrip_newlines(content.substr(content.rfind("</think>") + 8));
      }
      const bool last = i + 1 == n;
      if (i > last_query && (last || !reasoning.empty())) {
        out += "<|im_start|>assistant\n<think>\n";
        out += rstrip_newlines(lstrip_newlines(reasoning));
        out += "\n</think>\n\n";
        out += lstrip_newlines(content);
      } else {
        out += "<|im_start|>assistant\n";
        out += content;
      }
      out += "<|im_end|>\n";
    } else if (m.role == "tool") {
      if (i == 0 || messages[i - 1].role != "tool") out += "<|im_start|>user";
      out += "\n<tool_response>\n" + m.content + "\n</tool_response>";
      if (i + 1 == n || messages[i + 1].role != "tool") out += "<|im_end|>\n";
    } else if (m.role != "system") {
      bad_role("qwen3", i, m.role, "system, user, assistant or tool");
    }
  }
  if (o.add_generation_prompt) {
    out += "<|im_start|>assistant\n";
    if (o.enable_thinking == false) out += "<think>\n\n</think>\n\n";
  }
  return out;
}

// Mixtral-8x7B-Instruct-v0.1's template with the optional leading system message.
std::string ChatTemplate::render_mistral(std::span<const ChatMessage> messages) const {
  std::span<const ChatMessage> turns = messages;
  const std::string* system = nullptr;
  if (!messages.empty() && messages[0].role == "system") {
    system = &messages[0].content;
    turns = messages.subspan(1);
  }
  std::string out = bos_;
  for (size_t j = 0; j < turns.size(); ++j) {
    const ChatMessage& m = turns[j];
    const size_t index = j + (system ? 1 : 0);
    if ((m.role == "user") != (j % 2 == 0))
      throw Error("chat template mistral: after the optional system message, roles must "
                  "alternate user/assistant/user/...; message " + std::to_string(index) +
                  " has role '" + m.role + "'");
    if (m.role == "user") {
      if (j == 0 && system) {
        out += " [INST] " + *system + "\n\n" + m.content + " [/INST]";
      } else {
        out += " [INST] " + m.content + " [/INST]";
      }
    } else if (m.role == "assistant") {
      out += " " + m.content + eos_;
    } else {
      bad_role("mistral", index, m.role, "user or assistant (system only first)");
    }
  }
  return out;
}

}  // namespace hexe
