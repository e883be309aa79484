// Chat templates: renders equal transformers' apply_chat_template on the fixture tokenizers.
#include "runtime/tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include "memory/error.h"
#include "tests/runtime/tokenizer_fixture_util.h"

namespace hexe {
namespace {

using nlohmann::json;

std::vector<ChatMessage> messages_of(const json& list) {
  std::vector<ChatMessage> out;
  for (const json& m : list) out.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  return out;
}

TEST(ChatTemplate, MatchesTransformersRenders) {
  const json renders = test::read_fixture_json(std::string(HEXE_SOURCE_DIR) +
                                               "/tests/reference/fixtures/tokenizers/"
                                               "chat_templates.json")["renders"];
  ASSERT_GT(renders.size(), 40u);
  std::map<std::string, std::unique_ptr<Tokenizer>> toks;
  int rendered = 0, rejected = 0;
  for (const json& r : renders) {
    const std::string name = r["tokenizer"];
    if (!toks.count(name)) toks[name] = Tokenizer::from_hf_dir(test::tokenizer_fixture_dir(name));
    const ChatTemplate tmpl = ChatTemplate::for_tokenizer(*toks[name]);
    EXPECT_STREQ(tmpl.name(), name == "qwen2-bpe" ? "qwen3" : "mistral");
    ChatOptions opt;
    opt.add_generation_prompt = r["add_generation_prompt"];
    if (!r["enable_thinking"].is_null()) opt.enable_thinking = r["enable_thinking"].get<bool>();
    const auto msgs = messages_of(r["messages"]);
    if (r.contains("error")) {
      EXPECT_THROW(tmpl.render(msgs, opt), Error) << r.dump();
      ++rejected;
      continue;
    }
    EXPECT_EQ(json(tmpl.render(msgs, opt)), r["rendered"]) << r.dump();
    ++rendered;
  }
  EXPECT_GT(rendered, 40);
  EXPECT_GT(rejected, 0);
}

TEST(ChatTemplate, GgufTemplateIsDetectedToo) {
  auto qwen = test::load_fixture_tokenizer("qwen2-bpe", "gguf");
  EXPECT_EQ(ChatTemplate::for_tokenizer(*qwen).kind(), ChatTemplateKind::Qwen3);
  auto llama = test::load_fixture_tokenizer("llama-spm", "gguf");
  const ChatTemplate t = ChatTemplate::for_tokenizer(*llama);
  ASSERT_EQ(t.kind(), ChatTemplateKind::Mistral);
  const std::vector<ChatMessage> msgs = {{"user", "hi"}, {"assistant", "yo"}, {"user", "?"}};
  EXPECT_EQ(t.render(msgs, {}), "<s> [INST] hi [/INST] yo</s> [INST] ? [/INST]");
}

TEST(ChatTemplate, PlainChatMlByName) {
  const ChatTemplate t = ChatTemplate::from_name("chatml");
  const std::vector<ChatMessage> msgs = {{"system", "S"}, {"user", "U"}};
  EXPECT_EQ(t.render(msgs, {}), "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n"
                                "<|im_start|>assistant\n");
  ChatOptions no_prompt;
  no_prompt.add_generation_prompt = false;
  EXPECT_EQ(t.render(msgs, no_prompt),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n");
  EXPECT_EQ(ChatTemplate::detect("{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}").kind(),
            ChatTemplateKind::ChatMl);
}

TEST(ChatTemplate, UnknownTemplateListsKnownNames) {
  try {
    ChatTemplate::from_name("zephyr");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("zephyr"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("chatml, qwen3, mistral"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ChatTemplate::detect("{{ '<|user|>' + message['content'] }}"), Error);
  EXPECT_THROW(ChatTemplate::detect(""), Error);
  EXPECT_THROW(ChatTemplate::detect("[SYSTEM_PROMPT] [INST]"), Error);
}

TEST(ChatTemplate, UnsupportedRoleIsAnError) {
  const std::vector<ChatMessage> msgs = {{"narrator", "x"}};
  EXPECT_THROW(ChatTemplate::from_name("qwen3").render(msgs, {}), Error);
}

}  // namespace
}  // namespace hexe
