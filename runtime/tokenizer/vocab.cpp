// Vocab checks and the GGUF pre-tokenizer regex table (llama.cpp's llama-vocab.cpp names).
#include "runtime/tokenizer/vocab.h"

#include "memory/error.h"

namespace hexe {

namespace {

// llama.cpp: LLAMA_VOCAB_PRE_TYPE_QWEN2.
const char* const kQwen2Regex =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// LLAMA_VOCAB_PRE_TYPE_LLAMA3: as qwen2 but digits in runs of up to three.
const char* const kLlama3Regex =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// Kimi-K2's tiktoken pat_str (tokenization_kimi.py), one alternation as tiktoken applies it. The
// original writes its letter classes as intersections, [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]
// (fancy-regex syntax), which PCRE2 10.42 lacks; a negative lookahead before the class says the
// same. \p{sc:Han}, not \p{Han}: PCRE2 reads a bare script name as Script_Extensions (which takes
// in CJK punctuation such as U+3002), while Rust's regex crate and Python's regex read Script.
// The contractions keep (?i:...): PCRE2 with UCP folds case as they do (so 'ſ matches too).
const char* const kKimiK2Regex =
    "\\p{sc:Han}+|"
    "[^\\r\\n\\p{L}\\p{N}]?(?:(?!\\p{sc:Han})[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}])*"
    "(?:(?!\\p{sc:Han})[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}])+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
    "[^\\r\\n\\p{L}\\p{N}]?(?:(?!\\p{sc:Han})[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}])+"
    "(?:(?!\\p{sc:Han})[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}])*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// LLAMA_VOCAB_PRE_TYPE_GPT2.
const char* const kGpt2Regex =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";

std::string where(const Vocab& v) { return v.source.empty() ? "tokenizer" : v.source; }

}  // namespace

std::vector<std::string> pre_regexes_for(const std::string& pre, const std::string& source) {
  if (pre == "qwen2" || pre == "deepseek-r1-qwen") return {kQwen2Regex};
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") return {kLlama3Regex};
  if (pre == "gpt-2" || pre == "gpt2") return {kGpt2Regex};
  // GLM-4.x / GLM-4.5 (and ChatGLM4): llama.cpp maps both names to LLAMA_VOCAB_PRE_TYPE_CHATGLM4,
  // whose pattern is llama3's (tokenizer.json's Split regex with the contractions case-folded).
  if (pre == "glm4" || pre == "chatglm-bpe") return {kLlama3Regex};
  if (pre == "kimi-k2") return {kKimiK2Regex};
  if (pre == "deepseek-v3") {
    // LLAMA_VOCAB_PRE_TYPE_DEEPSEEK3_LLM (DeepSeek-V3/R1 tokenizer.json's three Split steps, in
    // order): digit runs of 1-3, CJK runs, then the word/punctuation pattern.
    return {"\\p{N}{1,3}", "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
            "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
            " ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"};
  }
  if (pre == "default" || pre.empty()) {
    // LLAMA_VOCAB_PRE_TYPE_DEFAULT: four passes, each splitting the pieces of the previous one.
    return {"[\\p{P}\\$\\+<=>\\^~\\|]+", kGpt2Regex, "\\p{N}+", "[0-9][0-9][0-9]"};
  }
  throw Error(source + ": key 'tokenizer.ggml.pre' is '" + pre +
              "', expected one of: qwen2, deepseek-r1-qwen, deepseek-v3, llama-bpe, llama3, llama-v3, "
              "gpt-2, glm4, chatglm-bpe, kimi-k2, default");
}

void Vocab::validate() const {
  const std::string src = where(*this);
  if (tokens.empty()) throw Error(src + ": the vocabulary is empty");
  if (types.size() != tokens.size())
    throw Error(src + ": " + std::to_string(types.size()) + " token types for " +
                std::to_string(tokens.size()) + " tokens");
  if (merge_by_score && scores.size() != tokens.size())
    throw Error(src + ": " + std::to_string(scores.size()) + " token scores for " +
                std::to_string(tokens.size()) + " tokens");
  const std::pair<const char*, int32_t> ids[] = {
      {"bos", bos_id}, {"eos", eos_id}, {"eot", eot_id}, {"unk", unk_id}, {"pad", pad_id}};
  for (const auto& [name, id] : ids) {
    if (id < -1 || id >= size())
      throw Error(src + ": " + name + " token id " + std::to_string(id) +
                  " is outside the vocabulary of " + std::to_string(size()) + " tokens");
  }
  if (add_bos && bos_id < 0) throw Error(src + ": adds a BOS token but names no bos token id");
  if (add_eos && eos_id < 0) throw Error(src + ": adds an EOS token but names no eos token id");
}

}  // namespace hexe
