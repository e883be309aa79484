// Text <-> token ids for byte-level BPE (GPT-2/Qwen) and SentencePiece BPE (Llama/Mistral) vocabs.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "runtime/tokenizer/bpe.h"
#include "runtime/tokenizer/regex_splitter.h"
#include "runtime/tokenizer/vocab.h"

namespace hexe {

class Metadata;
class ModelFile;

class Tokenizer {
 public:
  explicit Tokenizer(Vocab vocab);  // validates; throws hexe::Error naming the source
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  static std::unique_ptr<Tokenizer> from_gguf_metadata(const Metadata& meta);
  // tokenizer.json plus an optional tokenizer_config.json (empty path = none).
  static std::unique_ptr<Tokenizer> from_hf_files(const std::string& tokenizer_json,
                                                  const std::string& tokenizer_config = "");
  // A directory holding tokenizer.json (and tokenizer_config.json when present).
  static std::unique_ptr<Tokenizer> from_hf_dir(const std::string& dir);
  // GGUF: the tokenizer.ggml.* keys; HF directory: the files named by "hexe.tokenizer_json".
  static std::unique_ptr<Tokenizer> from_model_file(const ModelFile& model);

  // add_special: BOS/EOS as the tokenizer adds them. parse_special: special-token text inside
  // `text` (e.g. "<|im_start|>") becomes that token (leftmost, then longest match); when off it
  // is tokenized as plain text. Added tokens that are not special are always recognised (HF).
  // Invalid UTF-8 in `text` is replaced by U+FFFD first.
  std::vector<int32_t> encode(std::string_view text, bool add_special = true,
                              bool parse_special = true) const;
  // As HF's decode(ids, skip_special_tokens): invalid UTF-8 becomes U+FFFD. Throws hexe::Error
  // on an id outside the vocabulary.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;
  // The raw bytes one token stands for (may be part of a UTF-8 sequence; see Utf8StreamDecoder).
  // Control tokens give "" unless render_special. No leading-space stripping.
  std::string token_to_piece(int32_t id, bool render_special = false) const;

  int32_t n_vocab() const { return vocab_.size(); }
  int32_t bos_id() const { return vocab_.bos_id; }
  int32_t eos_id() const { return vocab_.eos_id; }
  int32_t eot_id() const { return eot_id_; }  // end of turn (<|im_end|>, <|eot_id|>), or -1
  bool add_bos() const { return vocab_.add_bos; }
  // End of generation: eos, eot and the end-marker control tokens llama.cpp also stops at.
  bool is_eog(int32_t id) const;
  const std::string& token_text(int32_t id) const { return vocab_.tokens.at(size_t(id)); }
  std::optional<int32_t> find_token(std::string_view text) const;
  const std::string& chat_template() const { return vocab_.chat_template; }
  const Vocab& vocab() const { return vocab_; }

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

  int32_t lookup(std::string_view text) const;
  void encode_segment(std::string_view text, bool at_text_start, std::vector<int32_t>& out) const;
  void encode_byte_level(std::string_view text, std::vector<int32_t>& out) const;
  void encode_spm(std::string_view text, bool at_text_start, std::vector<int32_t>& out) const;
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;  // byte-level, cached
  void encode_spm_word(std::string_view word, std::vector<int32_t>& out) const;  // cached
  void push_char_or_bytes(std::string_view ch, std::vector<int32_t>& out) const;

  Vocab vocab_;
  TokenMap token_to_id_;
  MergeTable merges_;
  std::unique_ptr<RegexSplitter> splitter_;
  std::array<int32_t, 256> byte_token_{};  // SpmBpe: id of <0xXX>, or -1
  // Special-token texts bucketed by first byte, longest first: {id, always recognised}.
  std::array<std::vector<std::pair<int32_t, bool>>, 256> specials_;
  std::vector<bool> eog_;
  int32_t eot_id_ = -1;
  bool spm_words_are_independent_ = false;

  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace hexe
