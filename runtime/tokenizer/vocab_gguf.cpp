// Vocab from GGUF metadata: the tokenizer.ggml.* keys written by llama.cpp's convert_hf_to_gguf.py.
#include <cmath>

#include "memory/error.h"
#include "runtime/model/metadata.h"
#include "runtime/tokenizer/vocab.h"

namespace hexe {

namespace {

std::string src_of(const Metadata& m) { return m.source.empty() ? "GGUF metadata" : m.source; }

const MetaValue& require_array(const Metadata& m, const char* key, GgufValueType want,
                               const char* want_name) {
  const MetaValue* v = m.find(key);
  if (v == nullptr) throw Error(src_of(m) + ": key '" + key + "' is missing");
  const bool ok = v->is_array() && (want == GgufValueType::String
                                        ? v->elem_type == GgufValueType::String
                                        : want == GgufValueType::Float32
                                              ? (v->elem_type == GgufValueType::Float32 ||
                                                 v->elem_type == GgufValueType::Float64)
                                              : (v->elem_type != GgufValueType::String &&
                                                 v->elem_type != GgufValueType::Array &&
                                                 v->elem_type != GgufValueType::Float32 &&
                                                 v->elem_type != GgufValueType::Float64));
  if (!ok)
    throw Error(src_of(m) + ": key '" + key + "' is a " + gguf_value_type_name(v->type) +
                (v->is_array() ? std::string(" of ") + gguf_value_type_name(v->elem_type) : "") +
                ", expected an array of " + want_name);
  return *v;
}

int32_t optional_id(const Metadata& m, const char* key) {
  const auto v = m.get_int(key);
  if (!v) return -1;
  // Some converters write -1 or UINT32_MAX for "none".
  if (*v < 0 || *v >= int64_t(INT32_MAX)) return -1;
  return int32_t(*v);
}

}  // namespace

Vocab vocab_from_gguf_metadata(const Metadata& meta) {
  Vocab v;
  v.source = src_of(meta);
  const std::string model = meta.require_string("tokenizer.ggml.model");
  if (model == "gpt2") {
    v.kind = TokenizerKind::ByteLevelBpe;
  } else if (model == "llama") {
    v.kind = TokenizerKind::SpmBpe;
  } else {
    throw Error(v.source + ": key 'tokenizer.ggml.model' is '" + model +
                "', expected 'gpt2' (byte-level BPE) or 'llama' (SentencePiece BPE)");
  }

  v.tokens = require_array(meta, "tokenizer.ggml.tokens", GgufValueType::String, "strings").strings;
  const size_t n = v.tokens.size();
  if (const MetaValue* t = meta.find("tokenizer.ggml.token_type")) {
    const MetaValue& tt =
        require_array(meta, "tokenizer.ggml.token_type", GgufValueType::Int32, "integers");
    if (tt.ints.size() != n)
      throw Error(v.source + ": key 'tokenizer.ggml.token_type' has " +
                  std::to_string(t->array_size()) + " entries, expected " + std::to_string(n) +
                  " (one per token)");
    v.types.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      const int64_t ty = tt.ints[i];
      if (ty < 0 || ty > int64_t(TokenType::Byte))
        throw Error(v.source + ": key 'tokenizer.ggml.token_type'[" + std::to_string(i) +
                    "] is " + std::to_string(ty) + ", expected 0..6");
      v.types.push_back(TokenType(ty));
    }
  } else {
    v.types.assign(n, TokenType::Normal);
  }

  if (v.kind == TokenizerKind::ByteLevelBpe) {
    const MetaValue& merges =
        require_array(meta, "tokenizer.ggml.merges", GgufValueType::String, "strings");
    v.merges.reserve(merges.strings.size());
    for (size_t i = 0; i < merges.strings.size(); ++i) {
      const std::string& m = merges.strings[i];
      // Byte-level tokens never contain a plain space, so the first space separates the pair.
      const size_t sp = m.find(' ', 1);
      if (sp == std::string::npos)
        throw Error(v.source + ": key 'tokenizer.ggml.merges'[" + std::to_string(i) + "] is '" +
                    m + "', expected two tokens separated by a space");
      v.merges.emplace_back(m.substr(0, sp), m.substr(sp + 1));
    }
    const std::string pre = meta.get_string("tokenizer.ggml.pre").value_or("default");
    v.pre_regexes = pre_regexes_for(pre, v.source);
    v.pre_name = pre;
    v.ignore_merges = pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3";  // as llama.cpp
    // HF's Qwen2 tokenizer.json normalizes with NFC; llama.cpp skips it. We follow HF so that
    // both sources of the same tokenizer agree (identical for text that is already NFC).
    v.nfc = pre == "qwen2" || pre == "deepseek-r1-qwen";
    v.add_bos = meta.get_bool("tokenizer.ggml.add_bos_token").value_or(false);
  } else {
    v.merge_by_score = true;
    const MetaValue& scores =
        require_array(meta, "tokenizer.ggml.scores", GgufValueType::Float32, "floats");
    if (scores.floats.size() != n)
      throw Error(v.source + ": key 'tokenizer.ggml.scores' has " +
                  std::to_string(scores.floats.size()) + " entries, expected " +
                  std::to_string(n) + " (one per token)");
    v.scores.reserve(n);
    for (double s : scores.floats) v.scores.push_back(float(s));
    v.byte_fallback = true;
    v.add_space_prefix = meta.get_bool("tokenizer.ggml.add_space_prefix").value_or(true);
    v.decode_strip_leading_space = v.add_space_prefix;
    v.pre_name = "sentencepiece";
    v.add_bos = meta.get_bool("tokenizer.ggml.add_bos_token").value_or(true);
  }
  v.add_eos = meta.get_bool("tokenizer.ggml.add_eos_token").value_or(false);
  v.bos_id = optional_id(meta, "tokenizer.ggml.bos_token_id");
  v.eos_id = optional_id(meta, "tokenizer.ggml.eos_token_id");
  v.eot_id = optional_id(meta, "tokenizer.ggml.eot_token_id");
  v.unk_id = optional_id(meta, "tokenizer.ggml.unknown_token_id");
  v.pad_id = optional_id(meta, "tokenizer.ggml.padding_token_id");
  v.chat_template = meta.get_string("tokenizer.chat_template").value_or("");
  v.validate();
  return v;
}

}  // namespace hexe
