// The tokenizer's vocabulary and pipeline settings, loaded from GGUF metadata or HF tokenizer.json.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace hexe {

class Metadata;

// GGUF token types (llama.cpp's llama_token_type / gguf.TokenType).
enum class TokenType : int32_t {
  Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6,
};

enum class TokenizerKind {
  ByteLevelBpe,  // GPT-2 style: regex pre-split, bytes mapped to printable code points, ranked merges
  SpmBpe,        // SentencePiece style: "▁" for spaces, character symbols, byte fallback <0xXX>
};

struct Vocab {
  TokenizerKind kind = TokenizerKind::ByteLevelBpe;
  std::vector<std::string> tokens;  // token text as stored ("Ġhello", "▁hello", "<0x0A>", "<s>")
  std::vector<TokenType> types;     // same size as tokens
  // SpmBpe merges either by piece score (GGUF "llama": merge the highest-scoring adjacent pair
  // whose concatenation is a token) or, like every ByteLevelBpe, by ranked merges (tokenizer.json).
  bool merge_by_score = false;
  std::vector<float> scores;                                // merge_by_score only
  std::vector<std::pair<std::string, std::string>> merges;  // rank order (rank = index)
  bool ignore_merges = false;  // ByteLevelBpe: a word that is itself a token skips the merges (Llama 3)

  // Pipeline.
  bool nfc = false;                     // NFC-normalize each text segment first
  std::vector<std::string> pre_regexes; // ByteLevelBpe: PCRE2 patterns applied one after another
  std::string pre_name;                 // name for messages ("qwen2", "tokenizer.json Split")
  bool add_space_prefix = false;        // SpmBpe: prepend "▁" to a text segment
  bool space_prefix_first_only = false; // ... only to the segment at the start of the text
  bool byte_fallback = false;           // SpmBpe: unknown characters become <0xXX> tokens
  bool decode_strip_leading_space = false;  // SpmBpe decode: drop one leading space

  int32_t bos_id = -1, eos_id = -1, eot_id = -1, unk_id = -1, pad_id = -1;
  bool add_bos = false, add_eos = false;
  std::string chat_template;  // Jinja text as shipped, empty if none
  std::string source;         // file it came from, for error messages

  int32_t size() const { return int32_t(tokens.size()); }
  // Checks sizes and ids; throws hexe::Error naming the source and the field.
  void validate() const;
};

// GGUF keys tokenizer.ggml.* (as llama.cpp's convert_hf_to_gguf.py writes them) and
// tokenizer.chat_template. Throws hexe::Error naming the key and value on anything unsupported.
Vocab vocab_from_gguf_metadata(const Metadata& meta);

// HF tokenizer.json (BPE model: byte-level or byte-fallback layouts), plus tokenizer_config.json
// for the chat template (and bos/eos when the post-processor does not name them); the config path
// may be empty.
Vocab vocab_from_hf_files(const std::string& tokenizer_json_path, const std::string& config_path);

// The GPT-2 style regexes for a GGUF tokenizer.ggml.pre value, as llama.cpp defines them;
// throws hexe::Error listing the known names.
std::vector<std::string> pre_regexes_for(const std::string& pre, const std::string& source);

}  // namespace hexe
