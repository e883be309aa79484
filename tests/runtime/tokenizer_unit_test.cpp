// Tokenizer pieces without fixtures: UTF-8 helpers, stream hold-back, NFC, BPE loops, load errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>

#include "memory/error.h"
#include "runtime/model/metadata.h"
#include "runtime/tokenizer/bpe.h"
#include "runtime/tokenizer/nfc.h"
#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/unicode.h"
#include "runtime/tokenizer/utf8_stream.h"

namespace hexe {
namespace {

const std::string kEmoji = "\xF0\x9F\x98\x80";  // U+1F600, 4 bytes
const std::string kFffd = "\xEF\xBF\xBD";

TEST(TokenizerUtf8, StreamHoldsBackUnfinishedSequences) {
  Utf8StreamDecoder s;
  EXPECT_EQ(s.push("a" + kEmoji.substr(0, 1)), "a");
  EXPECT_EQ(s.pending(), 1u);
  EXPECT_EQ(s.push(kEmoji.substr(1, 2)), "");
  EXPECT_EQ(s.push(kEmoji.substr(3) + "b"), kEmoji + "b");
  EXPECT_EQ(s.pending(), 0u);
  // A byte that can never start a sequence is not held back.
  EXPECT_EQ(s.push("\xFF" "c"), kFffd + "c");
  // A start byte followed by a non-continuation is broken at once.
  EXPECT_EQ(s.push("\xE6" "d"), kFffd + "d");
  // An unfinished sequence at the end is repaired by flush().
  EXPECT_EQ(s.push("\xE6\x97"), "");
  EXPECT_EQ(s.flush(), kFffd);
  EXPECT_EQ(s.flush(), "");
}

TEST(TokenizerUtf8, LossyMatchesRustsMaximalSubparts) {
  EXPECT_EQ(unicode::utf8_lossy("ok"), "ok");
  EXPECT_EQ(unicode::utf8_lossy("\xE6\x97"), kFffd);              // truncated: one replacement
  EXPECT_EQ(unicode::utf8_lossy("\xE6\x97x"), kFffd + "x");
  EXPECT_EQ(unicode::utf8_lossy("\x80\x80"), kFffd + kFffd);      // lone continuations: one each
  EXPECT_EQ(unicode::utf8_lossy("\xED\xA0\x80"), kFffd + kFffd + kFffd);  // surrogate
  EXPECT_EQ(unicode::utf8_lossy("\xC0\xAF"), kFffd + kFffd);      // overlong
  EXPECT_TRUE(unicode::is_valid_utf8("h\xC3\xA9" + kEmoji));
  EXPECT_FALSE(unicode::is_valid_utf8("\xF4\x90\x80\x80"));        // above U+10FFFF
}

TEST(TokenizerUtf8, ByteLevelAlphabetIsABijection) {
  std::set<std::string> seen;
  for (int b = 0; b < 256; ++b) {
    const std::string& u = unicode::byte_to_unicode(uint8_t(b));
    size_t pos = 0;
    const uint32_t cp = unicode::next_code_point(u, pos);
    EXPECT_EQ(pos, u.size());
    EXPECT_EQ(unicode::unicode_to_byte(cp), b);
    seen.insert(u);
  }
  EXPECT_EQ(seen.size(), 256u);
  EXPECT_EQ(unicode::byte_to_unicode(' '), "\xC4\xA0");  // 'Ġ'
  EXPECT_EQ(unicode::byte_to_unicode('\n'), "\xC4\x8A");  // 'Ċ'
}

TEST(TokenizerNfc, ComposesReordersAndKeepsComposedText) {
  EXPECT_EQ(unicode::nfc("Cafe\xCC\x81"), "Caf\xC3\xA9");                 // e + U+0301 -> é
  EXPECT_EQ(unicode::nfc("A\xCC\x8A"), "\xC3\x85");                       // A + ring -> Å
  EXPECT_EQ(unicode::nfc("\xE2\x84\xAB"), "\xC3\x85");                    // Angstrom sign -> Å
  EXPECT_EQ(unicode::nfc("\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB"), "\xED\x95\x9C");  // 한 jamo
  // q + dot below (220) + dot above (230) in either order: same canonical result.
  EXPECT_EQ(unicode::nfc("q\xCC\x87\xCC\xA3"), unicode::nfc("q\xCC\xA3\xCC\x87"));
  EXPECT_EQ(unicode::nfc("q\xCC\x87\xCC\xA3"), "q\xCC\xA3\xCC\x87");
  const std::string composed = "Gr\xC3\xBC\xC3\x9F" "e \xE4\xB8\xAD\xE6\x96\x87 " + kEmoji;
  EXPECT_EQ(unicode::nfc(composed), composed);
  EXPECT_EQ(unicode::nfc("plain ascii"), "plain ascii");
}

TEST(TokenizerBpe, RankedMergesTakeLowestRankThenLeftmost) {
  // Symbols a=0 b=1 c=2; merges: (a,b)->3 rank 1, (b,c)->4 rank 0, (a,4)->5 rank 2.
  MergeTable t;
  t.add(0, 1, 1, 3);
  t.add(1, 2, 0, 4);
  t.add(0, 4, 2, 5);
  std::vector<int32_t> abc = {0, 1, 2};
  merge_ranked(abc, t);
  EXPECT_EQ(abc, (std::vector<int32_t>{5}));  // bc first, then a+bc
  std::vector<int32_t> abab = {0, 1, 0, 1};
  merge_ranked(abab, t);
  EXPECT_EQ(abab, (std::vector<int32_t>{3, 3}));
  std::vector<int32_t> long_run(5000, 0);  // nothing merges (a,a): stays, and fast
  merge_ranked(long_run, t);
  EXPECT_EQ(long_run.size(), 5000u);
}

TEST(TokenizerBpe, ScoredMergesPreferHighScoreThenLeftmost) {
  const std::map<std::string, std::pair<int32_t, float>> vocab = {
      {"ab", {0, -1.0f}}, {"bc", {1, -0.5f}}, {"aa", {3, -0.1f}}, {"aab", {4, -3.0f}}};
  auto lookup = [&](std::string_view s) {
    auto it = vocab.find(std::string(s));
    return it == vocab.end() ? -1 : it->second.first;
  };
  auto score = [&](int32_t id) {
    for (const auto& [k, v] : vocab)
      if (v.first == id) return v.second;
    return 0.0f;
  };
  auto pieces = [&](std::string_view text) {
    std::vector<std::string> out;
    for (const Piece& p : merge_scored(text, lookup, score)) out.emplace_back(text.substr(p.offset, p.len));
    return out;
  };
  EXPECT_EQ(pieces("abc"), (std::vector<std::string>{"a", "bc"}));  // bc (-0.5) beats ab (-1)
  EXPECT_EQ(pieces("aaa"), (std::vector<std::string>{"aa", "a"}));   // leftmost on a tie
  EXPECT_EQ(pieces("aab"), (std::vector<std::string>{"aab"}));       // aa, then aa+b
  EXPECT_TRUE(pieces("").empty());
}

MetaValue string_array(std::vector<std::string> s) {
  MetaValue v;
  v.type = GgufValueType::Array;
  v.elem_type = GgufValueType::String;
  v.strings = std::move(s);
  return v;
}

Metadata tiny_gpt2() {
  Metadata m;
  m.source = "tiny.gguf";
  m.set_string("tokenizer.ggml.model", "gpt2");
  m.set_string("tokenizer.ggml.pre", "qwen2");
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.push_back(unicode::byte_to_unicode(uint8_t(b)));
  tokens.push_back("hi");
  m.values["tokenizer.ggml.tokens"] = string_array(tokens);
  m.values["tokenizer.ggml.merges"] = string_array({"h i"});
  return m;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(TokenizerLoad, TinyGgufVocabWorks) {
  auto tok = Tokenizer::from_gguf_metadata(tiny_gpt2());
  EXPECT_EQ(tok->n_vocab(), 257);
  EXPECT_EQ(tok->encode("hi!"), (std::vector<int32_t>{256, '!'}));
  EXPECT_EQ(tok->decode(tok->encode("h\xC3\xA9 hi")), "h\xC3\xA9 hi");
  // Invalid UTF-8 input is repaired first, then tokenized.
  EXPECT_EQ(tok->decode(tok->encode("a\xFF")), "a" + kFffd);
}

TEST(TokenizerLoad, Llama3PreSkipsMergesForWholeWordTokens) {
  Metadata m = tiny_gpt2();
  m.values["tokenizer.ggml.merges"] = string_array({});
  EXPECT_EQ(Tokenizer::from_gguf_metadata(m)->encode("hi"), (std::vector<int32_t>{'h', 'i'}));
  m.set_string("tokenizer.ggml.pre", "llama-bpe");  // llama.cpp: ignore_merges
  EXPECT_EQ(Tokenizer::from_gguf_metadata(m)->encode("hi"), (std::vector<int32_t>{256}));
}

TEST(TokenizerLoad, GgufErrorsNameTheKeyAndValue) {
  Metadata m = tiny_gpt2();
  m.set_string("tokenizer.ggml.model", "bert");
  std::string e = error_of([&] { Tokenizer::from_gguf_metadata(m); });
  EXPECT_NE(e.find("tokenizer.ggml.model"), std::string::npos) << e;
  EXPECT_NE(e.find("bert"), std::string::npos) << e;
  EXPECT_NE(e.find("tiny.gguf"), std::string::npos) << e;

  m = tiny_gpt2();
  m.set_string("tokenizer.ggml.pre", "mystery");
  e = error_of([&] { Tokenizer::from_gguf_metadata(m); });
  EXPECT_NE(e.find("mystery"), std::string::npos) << e;
  EXPECT_NE(e.find("qwen2"), std::string::npos) << e;  // lists the known ones

  m = tiny_gpt2();
  m.values.erase("tokenizer.ggml.merges");
  e = error_of([&] { Tokenizer::from_gguf_metadata(m); });
  EXPECT_NE(e.find("tokenizer.ggml.merges"), std::string::npos) << e;

  m = tiny_gpt2();
  m.values["tokenizer.ggml.merges"] = string_array({"h zz"});
  e = error_of([&] { Tokenizer::from_gguf_metadata(m); });
  EXPECT_NE(e.find("'h' 'zz'"), std::string::npos) << e;

  m = tiny_gpt2();
  m.set_int("tokenizer.ggml.eos_token_id", 999);
  e = error_of([&] { Tokenizer::from_gguf_metadata(m); });
  EXPECT_NE(e.find("999"), std::string::npos) << e;

  m = tiny_gpt2();
  m.set_string("tokenizer.ggml.model", "llama");  // no scores
  e = error_of([&] { Tokenizer::from_gguf_metadata(m); });
  EXPECT_NE(e.find("tokenizer.ggml.scores"), std::string::npos) << e;
}

TEST(TokenizerLoad, HfErrorsNameTheField) {
  const auto dir = std::filesystem::temp_directory_path() / "hexe_tokenizer_unit_test";
  std::filesystem::create_directories(dir);
  const auto write = [&](const std::string& text) {
    std::ofstream(dir / "tokenizer.json") << text;
    return error_of([&] { Tokenizer::from_hf_dir(dir.string()); });
  };
  std::string e = write(R"({"model": {"type": "Unigram", "vocab": []}})");
  EXPECT_NE(e.find("model.type"), std::string::npos) << e;
  EXPECT_NE(e.find("Unigram"), std::string::npos) << e;
  e = write(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
               "pre_tokenizer": {"type": "Whitespace"}, "decoder": {"type": "ByteLevel"}})");
  EXPECT_NE(e.find("pre_tokenizer.type"), std::string::npos) << e;
  EXPECT_NE(e.find("Whitespace"), std::string::npos) << e;
  e = write("{not json");
  EXPECT_NE(e.find("not valid JSON"), std::string::npos) << e;
  e = write(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
               "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(unclosed"},
                                 "behavior": "Isolated", "invert": false},
               "decoder": {"type": "ByteLevel"}})");
  EXPECT_NE(e.find("(unclosed"), std::string::npos) << e;
  EXPECT_NE(e.find("does not compile"), std::string::npos) << e;
  std::filesystem::remove_all(dir);
  e = error_of([&] { Tokenizer::from_hf_dir(dir.string()); });
  EXPECT_NE(e.find("no tokenizer.json"), std::string::npos) << e;
}

}  // namespace
}  // namespace hexe
