// Tokenizer: special-token splitting, pre-tokenization, BPE and decoding.
#include "runtime/tokenizer/tokenizer.h"

#include <algorithm>

#include "memory/error.h"
#include "runtime/tokenizer/nfc.h"
#include "runtime/tokenizer/unicode.h"

namespace hexe {

namespace {

constexpr std::string_view kMetaspace = "\xE2\x96\x81";  // "▁", SentencePiece's space
constexpr size_t kMaxCachedWord = 64;          // bytes; longer words are rare and not cached
constexpr size_t kMaxCacheEntries = 1 << 16;

bool is_special_type(TokenType t) {
  return t == TokenType::Control || t == TokenType::Unknown;
}

// "<0x41>" -> 0x41, or -1.
int parse_byte_token(std::string_view t) {
  if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return -1;
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(t[3]), lo = hex(t[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size() + s.size() / 4);
  for (size_t pos = 0;;) {
    const size_t hit = s.find(from, pos);
    if (hit == std::string_view::npos) {
      out.append(s.substr(pos));
      return out;
    }
    out.append(s.substr(pos, hit - pos));
    out.append(to);
    pos = hit + from.size();
  }
}

}  // namespace

Tokenizer::Tokenizer(Vocab vocab) : vocab_(std::move(vocab)) {
  vocab_.validate();
  const int32_t n = vocab_.size();
  token_to_id_.reserve(size_t(n));
  for (int32_t i = 0; i < n; ++i) {
    if (vocab_.types[size_t(i)] == TokenType::Unused && vocab_.tokens[size_t(i)].empty()) continue;
    token_to_id_.try_emplace(vocab_.tokens[size_t(i)], i);
  }

  for (size_t rank = 0; rank < vocab_.merges.size(); ++rank) {
    const auto& [l, r] = vocab_.merges[rank];
    const int32_t li = lookup(l), ri = lookup(r), mi = lookup(l + r);
    if (li < 0 || ri < 0 || mi < 0)
      throw Error(vocab_.source + ": merge " + std::to_string(rank) + " ('" + l + "' '" + r +
                  "') names a token that is not in the vocabulary");
    merges_.add(li, ri, int32_t(rank), mi);
  }

  if (vocab_.kind == TokenizerKind::ByteLevelBpe) {
    splitter_ = std::make_unique<RegexSplitter>(vocab_.pre_regexes, vocab_.source);
  }
  byte_token_.fill(-1);
  for (int32_t i = 0; i < n; ++i) {
    const int b = parse_byte_token(vocab_.tokens[size_t(i)]);
    if (b >= 0 && byte_token_[size_t(b)] < 0 &&
        (vocab_.types[size_t(i)] == TokenType::Byte || vocab_.byte_fallback))
      byte_token_[size_t(b)] = i;
  }

  // SentencePiece words (cut before a "▁" that follows another character) merge independently
  // unless some token has "▁" after another character, e.g. "a▁b".
  spm_words_are_independent_ = true;
  for (int32_t i = 0; i < n && vocab_.kind == TokenizerKind::SpmBpe; ++i) {
    const std::string& t = vocab_.tokens[size_t(i)];
    for (size_t pos = t.find(kMetaspace, 1); pos != std::string::npos; pos = t.find(kMetaspace, pos + 1)) {
      if (pos < kMetaspace.size() || t.compare(pos - kMetaspace.size(), kMetaspace.size(), kMetaspace) != 0) {
        spm_words_are_independent_ = false;
        break;
      }
    }
  }

  // Texts matched inside input: control/unknown tokens (when parse_special) and user-defined
  // tokens (always), longest first so that leftmost-longest wins.
  for (int32_t i = 0; i < n; ++i) {
    const TokenType t = vocab_.types[size_t(i)];
    const std::string& text = vocab_.tokens[size_t(i)];
    if (text.empty() || !(is_special_type(t) || t == TokenType::UserDefined)) continue;
    specials_[uint8_t(text[0])].emplace_back(i, t == TokenType::UserDefined);
  }
  for (auto& bucket : specials_) {
    std::stable_sort(bucket.begin(), bucket.end(), [&](const auto& a, const auto& b) {
      return vocab_.tokens[size_t(a.first)].size() > vocab_.tokens[size_t(b.first)].size();
    });
  }

  // End of generation, as llama.cpp's llama_vocab::load collects it.
  eot_id_ = vocab_.eot_id;
  static const char* const kEotTexts[] = {"<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>"};
  for (const char* t : kEotTexts) {
    if (eot_id_ >= 0) break;
    if (auto id = find_token(t); id && is_special_type(vocab_.types[size_t(*id)])) eot_id_ = *id;
  }
  eog_.assign(size_t(n), false);
  for (int32_t id : {vocab_.eos_id, eot_id_})
    if (id >= 0) eog_[size_t(id)] = true;
  static const char* const kEogTexts[] = {"<|im_end|>",  "<|endoftext|>", "<|eot_id|>",
                                          "<|eom_id|>",  "<end_of_turn>", "<|end|>",
                                          "<|end_of_text|>", "</s>"};
  for (const char* t : kEogTexts)
    if (auto id = find_token(t); id && is_special_type(vocab_.types[size_t(*id)]))
      eog_[size_t(*id)] = true;
}

Tokenizer::~Tokenizer() = default;

int32_t Tokenizer::lookup(std::string_view text) const {
  auto it = token_to_id_.find(text);
  return it == token_to_id_.end() ? -1 : it->second;
}

std::optional<int32_t> Tokenizer::find_token(std::string_view text) const {
  const int32_t id = lookup(text);
  return id < 0 ? std::nullopt : std::optional<int32_t>(id);
}

bool Tokenizer::is_eog(int32_t id) const {
  return id >= 0 && id < n_vocab() && eog_[size_t(id)];
}

std::vector<int32_t> Tokenizer::encode(std::string_view input, bool add_special,
                                       bool parse_special) const {
  std::string repaired;
  if (!unicode::is_valid_utf8(input)) {
    repaired = unicode::utf8_lossy(input);
    input = repaired;
  }
  std::vector<int32_t> out;
  out.reserve(input.size() / 3 + 4);
  if (add_special && vocab_.add_bos) out.push_back(vocab_.bos_id);

  size_t seg_start = 0;
  for (size_t pos = 0; pos < input.size();) {
    int32_t hit = -1;
    for (const auto& [id, always] : specials_[uint8_t(input[pos])]) {
      if (!always && !parse_special) continue;
      const std::string& t = vocab_.tokens[size_t(id)];
      if (input.compare(pos, t.size(), t) == 0) {
        hit = id;
        break;
      }
    }
    if (hit < 0) {
      ++pos;
      continue;
    }
    encode_segment(input.substr(seg_start, pos - seg_start), seg_start == 0, out);
    out.push_back(hit);
    pos += vocab_.tokens[size_t(hit)].size();
    seg_start = pos;
  }
  encode_segment(input.substr(seg_start), seg_start == 0, out);

  if (add_special && vocab_.add_eos) out.push_back(vocab_.eos_id);
  return out;
}

void Tokenizer::encode_segment(std::string_view text, bool at_text_start,
                               std::vector<int32_t>& out) const {
  if (text.empty()) return;
  std::string normalized;
  if (vocab_.nfc) {
    normalized = unicode::nfc(text);
    text = normalized;
  }
  if (vocab_.kind == TokenizerKind::ByteLevelBpe) {
    encode_byte_level(text, out);
  } else {
    encode_spm(text, at_text_start, out);
  }
}

void Tokenizer::encode_byte_level(std::string_view text, std::vector<int32_t>& out) const {
  std::vector<std::string_view> words;
  splitter_->split(text, words);
  for (std::string_view w : words) encode_word(w, out);
}

void Tokenizer::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  const bool cacheable = word.size() <= kMaxCachedWord;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(word);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  if (vocab_.ignore_merges) {
    std::string mapped;
    for (char c : word) mapped += unicode::byte_to_unicode(uint8_t(c));
    if (const int32_t id = lookup(mapped); id >= 0) ids.push_back(id);
  }
  if (ids.empty()) {
    ids.reserve(word.size());
    for (char c : word) {
      const int32_t id = lookup(unicode::byte_to_unicode(uint8_t(c)));
      if (id >= 0) {
        ids.push_back(id);
      } else if (vocab_.unk_id >= 0) {
        ids.push_back(vocab_.unk_id);
      }  // else: HF drops a symbol that is neither a token nor mapped to unk
    }
    merge_ranked(ids, merges_);
  }
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() >= kMaxCacheEntries) cache_.clear();
    cache_.emplace(std::string(word), std::move(ids));
  }
}

// A character that is not a token: its bytes as <0xXX> tokens, else unk.
void Tokenizer::push_char_or_bytes(std::string_view ch, std::vector<int32_t>& out) const {
  if (vocab_.byte_fallback) {
    bool all = true;
    for (char c : ch) all = all && byte_token_[uint8_t(c)] >= 0;
    if (all) {
      for (char c : ch) out.push_back(byte_token_[uint8_t(c)]);
      return;
    }
  }
  // HF fuses runs of unknown characters into one <unk> (fuse_unk); llama.cpp's resegment does too.
  if (vocab_.unk_id >= 0 && (out.empty() || out.back() != vocab_.unk_id))
    out.push_back(vocab_.unk_id);
}

void Tokenizer::encode_spm(std::string_view text, bool at_text_start,
                           std::vector<int32_t>& out) const {
  std::string s;
  if (vocab_.add_space_prefix && (at_text_start || !vocab_.space_prefix_first_only)) s = kMetaspace;
  s += replace_all(text, " ", kMetaspace);
  if (!spm_words_are_independent_) {
    encode_spm_word(s, out);
    return;
  }
  // Cut before each "▁" that follows another character: no token spans such a cut, so the
  // words merge independently (and repeated words hit the cache). One heap over a whole
  // megabyte would be far slower (cache misses).
  const std::string_view sv = s;
  size_t start = 0;
  for (size_t pos = 1; pos + kMetaspace.size() <= sv.size(); ++pos) {
    if (sv.compare(pos, kMetaspace.size(), kMetaspace) != 0) continue;
    const bool after_space = pos >= kMetaspace.size() &&
                             sv.compare(pos - kMetaspace.size(), kMetaspace.size(), kMetaspace) == 0;
    if (!after_space && pos > start) {
      encode_spm_word(sv.substr(start, pos - start), out);
      start = pos;
    }
    pos += kMetaspace.size() - 1;
  }
  encode_spm_word(sv.substr(start), out);
}

void Tokenizer::encode_spm_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  const bool cacheable = word.size() <= kMaxCachedWord;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(word);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  if (vocab_.merge_by_score) {
    // Only ordinary pieces take part in merges; control and byte tokens are never formed from text.
    auto piece_id = [&](std::string_view p) {
      const int32_t id = lookup(p);
      if (id < 0) return -1;
      const TokenType t = vocab_.types[size_t(id)];
      return t == TokenType::Normal || t == TokenType::UserDefined ? id : -1;
    };
    auto score = [&](int32_t id) { return vocab_.scores[size_t(id)]; };
    for (const Piece& p : merge_scored(word, piece_id, score)) {
      const std::string_view piece = word.substr(p.offset, p.len);
      const int32_t id = piece_id(piece);
      if (id >= 0) {
        ids.push_back(id);
      } else {
        push_char_or_bytes(piece, ids);  // single characters only: merged pieces are tokens
      }
    }
  } else {
    // Ranked merges (tokenizer.json): characters that are not tokens become byte tokens up front.
    ids.reserve(word.size());
    for (size_t pos = 0; pos < word.size();) {
      const size_t n = std::min<size_t>(unicode::utf8_seq_len(uint8_t(word[pos])), word.size() - pos);
      const std::string_view ch(word.data() + pos, n);
      const int32_t id = lookup(ch);
      if (id >= 0) {
        ids.push_back(id);
      } else {
        push_char_or_bytes(ch, ids);
      }
      pos += n;
    }
    merge_ranked(ids, merges_);
  }
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() >= kMaxCacheEntries) cache_.clear();
    cache_.emplace(std::string(word), std::move(ids));
  }
}

std::string Tokenizer::token_to_piece(int32_t id, bool render_special) const {
  if (id < 0 || id >= n_vocab())
    throw Error("token id " + std::to_string(id) + " is outside the vocabulary of " +
                std::to_string(n_vocab()) + " tokens");
  const TokenType t = vocab_.types[size_t(id)];
  const std::string& text = vocab_.tokens[size_t(id)];
  if (is_special_type(t)) return render_special ? text : std::string();
  if (t == TokenType::UserDefined) return text;
  if (vocab_.kind == TokenizerKind::ByteLevelBpe) {
    std::string bytes;
    for (size_t pos = 0; pos < text.size();) {
      const int b = unicode::unicode_to_byte(unicode::next_code_point(text, pos));
      if (b < 0) return text;  // not byte-level text: HF's ByteLevel decoder keeps it verbatim
      bytes += char(b);
    }
    return bytes;
  }
  if (const int b = parse_byte_token(text); b >= 0 && (t == TokenType::Byte || vocab_.byte_fallback))
    return std::string(1, char(b));
  return replace_all(text, kMetaspace, " ");
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string bytes;
  std::string pending;  // SpmBpe: a run of byte tokens, checked as a whole (HF ByteFallback)
  size_t pending_tokens = 0;
  auto flush = [&] {
    if (pending_tokens == 0) return;
    if (unicode::is_valid_utf8(pending)) {
      bytes += pending;
    } else {
      for (size_t i = 0; i < pending_tokens; ++i) bytes += "\xEF\xBF\xBD";
    }
    pending.clear();
    pending_tokens = 0;
  };
  const bool spm = vocab_.kind == TokenizerKind::SpmBpe;
  for (int32_t id : ids) {
    if (id < 0 || id >= n_vocab())
      throw Error("decode: token id " + std::to_string(id) + " is outside the vocabulary of " +
                  std::to_string(n_vocab()) + " tokens");
    const TokenType t = vocab_.types[size_t(id)];
    if (skip_special && is_special_type(t)) continue;
    const std::string& text = vocab_.tokens[size_t(id)];
    if (spm) {
      if (const int b = parse_byte_token(text); b >= 0) {
        pending += char(b);
        ++pending_tokens;
        continue;
      }
      flush();
      bytes += replace_all(text, kMetaspace, " ");
    } else {
      bytes += token_to_piece(id, /*render_special=*/true);
    }
  }
  flush();
  std::string out = spm ? std::move(bytes) : unicode::utf8_lossy(bytes);
  if (spm && vocab_.decode_strip_leading_space && !out.empty() && out[0] == ' ') out.erase(0, 1);
  return out;
}

}  // namespace hexe
