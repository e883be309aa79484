// HF tokenizer.json -> tokenizer.ggml.* keys, through the runtime's own tokenizer.json loader.
#include "runtime/model/convert_vocab.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "memory/error.h"
#include "runtime/tokenizer/vocab.h"

namespace hexe {
namespace {

MetaValue string_array(std::vector<std::string> v) {
  MetaValue m;
  m.type = GgufValueType::Array;
  m.elem_type = GgufValueType::String;
  m.strings = std::move(v);
  return m;
}

// The GGUF pre-tokenizer name whose regex list equals the vocabulary's.
// The Split regexes of the released tokenizer.json files, as transformers spells them (llama.cpp
// keeps equivalent case-folded forms, which pre_regexes_for returns).
struct HfPre {
  const char* name;
  const char* regex;
};
constexpr HfPre kHfPre[] = {
    {"qwen2", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
              "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    {"llama3", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
               "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
};

std::string pre_name(const Vocab& v, const std::string& source) {
  if (!v.pre_regexes.empty())
    for (const auto& p : kHfPre)
      if (v.pre_regexes.front() == p.regex) return p.name;
  for (const char* name : {"qwen2", "llama3", "gpt-2"})
    if (pre_regexes_for(name, source) == v.pre_regexes) return name;
  throw Error(source + ": the pre-tokenizer (" + v.pre_name +
              ") matches none of llama.cpp's named regex sets (qwen2, llama3, gpt-2)");
}

// config.json's bos/eos ids, which llama.cpp's SpecialVocab also reads when tokenizer.json's
// post-processor names none (Qwen: bos_token null in tokenizer_config.json).
int32_t config_id(const std::string& tokenizer_json, const char* key) {
  namespace fs = std::filesystem;
  fs::path cfg = fs::path(tokenizer_json).parent_path() / "config.json";
  std::ifstream f(cfg);
  if (!f) return -1;
  auto j = nlohmann::json::parse(f, nullptr, false);
  if (!j.is_object() || !j.contains(key) || !j[key].is_number_integer()) return -1;
  return j[key].get<int32_t>();
}

}  // namespace

void add_vocab_metadata(const std::string& tokenizer_json, const std::string& config_json,
                        Metadata& md) {
  Vocab v = vocab_from_hf_files(tokenizer_json, config_json);
  const bool bpe = v.kind == TokenizerKind::ByteLevelBpe;
  md.set_string("tokenizer.ggml.model", bpe ? "gpt2" : "llama");
  md.set_string("tokenizer.ggml.pre", bpe ? pre_name(v, tokenizer_json) : "default");
  md.values["tokenizer.ggml.tokens"] = string_array(v.tokens);
  if (!bpe) {
    // tokenizer.json knows no unknown/byte types; a sentencepiece model (what llama.cpp reads)
    // marks <unk> as Unknown and the <0xXX> pieces as Byte.
    for (int32_t i = 0; i < v.size(); ++i) {
      const std::string& t = v.tokens[size_t(i)];
      if (i == v.unk_id) v.types[size_t(i)] = TokenType::Unknown;
      else if (t.size() == 6 && t.rfind("<0x", 0) == 0 && t[5] == '>') v.types[size_t(i)] = TokenType::Byte;
    }
    // Scores as a sentencepiece tokenizer.model carries them: a normal piece's is minus its id
    // (its merge rank); control, unknown and byte pieces score 0.
    MetaValue s;
    s.type = GgufValueType::Array;
    s.elem_type = GgufValueType::Float32;
    for (int32_t i = 0; i < v.size(); ++i)
      s.floats.push_back(v.types[size_t(i)] == TokenType::Normal ? -double(i) : 0.0);
    md.values["tokenizer.ggml.scores"] = std::move(s);
  }
  MetaValue types;
  types.type = GgufValueType::Array;
  types.elem_type = GgufValueType::Int32;
  for (TokenType t : v.types) types.ints.push_back(int64_t(t));
  md.values["tokenizer.ggml.token_type"] = std::move(types);
  if (bpe) {
    std::vector<std::string> merges;
    merges.reserve(v.merges.size());
    for (const auto& [a, b] : v.merges) merges.push_back(a + " " + b);
    md.values["tokenizer.ggml.merges"] = string_array(std::move(merges));
  }
  int32_t bos = v.bos_id >= 0 ? v.bos_id : config_id(tokenizer_json, "bos_token_id");
  int32_t eos = v.eos_id >= 0 ? v.eos_id : config_id(tokenizer_json, "eos_token_id");
  if (bos >= 0) md.set_int("tokenizer.ggml.bos_token_id", bos);
  if (eos >= 0) md.set_int("tokenizer.ggml.eos_token_id", eos);
  if (v.unk_id >= 0) md.set_int("tokenizer.ggml.unknown_token_id", v.unk_id);
  if (v.pad_id >= 0) md.set_int("tokenizer.ggml.padding_token_id", v.pad_id);
  md.set_bool("tokenizer.ggml.add_bos_token", v.add_bos);
  if (!bpe) md.set_bool("tokenizer.ggml.add_eos_token", v.add_eos);
  if (!v.chat_template.empty()) md.set_string("tokenizer.chat_template", v.chat_template);
}

}  // namespace hexe
