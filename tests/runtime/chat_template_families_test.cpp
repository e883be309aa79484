// Chat templates DeepSeek-V3/R1, Kimi-K2, GLM-4.5: renders equal transformers' apply_chat_template
// with the published Jinja texts (tools/reference/make_chat_template_fixtures.py).
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "memory/error.h"
#include "runtime/tokenizer/chat_template.h"
#include "tests/runtime/tokenizer_fixture_util.h"

namespace hexe {
namespace {

using nlohmann::json;

const std::string kDir = std::string(HEXE_SOURCE_DIR) + "/tests/reference/fixtures/chat_templates/";

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << path;
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

TEST(ChatTemplateFamilies, MatchTransformersRenders) {
  const json renders = test::read_fixture_json(kDir + "renders.json")["renders"];
  ASSERT_GT(renders.size(), 200u);
  std::map<std::string, int> rendered, rejected;
  for (const json& r : renders) {
    const std::string family = r["template"];
    ChatTemplate tmpl = ChatTemplate::from_name(family);
    EXPECT_EQ(tmpl.name(), family);
    tmpl.set_special_texts(r["bos"], r["eos"]);
    ChatOptions opt;
    opt.add_generation_prompt = r["add_generation_prompt"];
    if (!r["enable_thinking"].is_null()) opt.enable_thinking = r["enable_thinking"].get<bool>();
    std::vector<ChatMessage> msgs;
    for (const json& m : r["messages"]) msgs.push_back({m["role"], m["content"]});
    if (r.contains("error")) {
      EXPECT_THROW(tmpl.render(msgs, opt), Error) << r.dump();
      ++rejected[family];
      continue;
    }
    EXPECT_EQ(json(tmpl.render(msgs, opt)), r["rendered"]) << r.dump();
    ++rendered[family];
  }
  for (const char* family : {"deepseek-v3", "deepseek-r1", "kimi-k2", "glm-4.5"}) {
    EXPECT_GT(rendered[family], 30) << family;
    EXPECT_GT(rejected[family], 0) << family;  // the empty conversation
  }
}

TEST(ChatTemplateFamilies, DetectedFromTheirJinja) {
  for (const char* family : {"deepseek-v3", "deepseek-r1", "kimi-k2", "glm-4.5"}) {
    const std::string jinja = read_text(kDir + family + ".jinja");
    ASSERT_GT(jinja.size(), 500u) << family;
    EXPECT_STREQ(ChatTemplate::detect(jinja).name(), family);
  }
  // The families known before keep their detection.
  EXPECT_EQ(ChatTemplate::detect(read_text(std::string(HEXE_SOURCE_DIR) +
                                           "/tests/reference/fixtures/tokenizers/templates/qwen3.jinja"))
                .kind(),
            ChatTemplateKind::Qwen3);
}

TEST(ChatTemplateFamilies, DeepSeekDefaultsToItsOwnBos) {
  const std::vector<ChatMessage> msgs = {{"user", "hi"}};
  EXPECT_EQ(ChatTemplate::from_name("deepseek-v3").render(msgs, {}),
            "<｜begin▁of▁sentence｜><｜User｜>hi<｜Assistant｜>");
  EXPECT_EQ(ChatTemplate::from_name("deepseek-r1").render(msgs, {}),
            "<｜begin▁of▁sentence｜><｜User｜>hi<｜Assistant｜><think>\n");
}

TEST(ChatTemplateFamilies, ReasoningFamilies) {
  EXPECT_TRUE(ChatTemplate::from_name("deepseek-r1").has_reasoning());
  EXPECT_TRUE(ChatTemplate::from_name("glm-4.5").has_reasoning());
  EXPECT_TRUE(ChatTemplate::from_name("qwen3").has_reasoning());
  EXPECT_FALSE(ChatTemplate::from_name("deepseek-v3").has_reasoning());
  EXPECT_FALSE(ChatTemplate::from_name("kimi-k2").has_reasoning());
  EXPECT_FALSE(ChatTemplate::from_name("chatml").has_reasoning());
}

TEST(ChatTemplateFamilies, UnknownRoleIsAnError) {
  const std::vector<ChatMessage> msgs = {{"user", "q"}, {"narrator", "x"}};
  for (const char* family : {"deepseek-v3", "deepseek-r1", "kimi-k2", "glm-4.5"}) {
    try {
      ChatTemplate::from_name(family).render(msgs, {});
      ADD_FAILURE() << family << ": no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("narrator"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace hexe
