// Pre-tokenizer: splits text with a list of PCRE2 patterns (UTF + Unicode properties, JIT).
#include "runtime/tokenizer/regex_splitter.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "memory/error.h"

namespace hexe {

struct RegexSplitter::Code {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Code() { pcre2_code_free(code); }
};

RegexSplitter::RegexSplitter(const std::vector<std::string>& patterns, const std::string& what) {
  for (const std::string& p : patterns) {
    int err = 0;
    PCRE2_SIZE offset = 0;
    // UCP: \s, \w, \d and case-insensitivity follow Unicode, as in HF's Oniguruma patterns.
    // NO_UTF_CHECK is not set at compile time: patterns come from files and are checked.
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.data()), p.size(),
                                     PCRE2_UTF | PCRE2_UCP, &err, &offset, nullptr);
    if (code == nullptr) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof(msg));
      throw Error(what + ": pre-tokenizer regex '" + p + "' does not compile at offset " +
                  std::to_string(offset) + ": " + reinterpret_cast<const char*>(msg));
    }
    auto c = std::make_unique<Code>();
    c->code = code;
    c->jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    codes_.push_back(std::move(c));
  }
}

RegexSplitter::~RegexSplitter() = default;

void RegexSplitter::split_one(const Code& c, std::string_view text,
                              std::vector<std::string_view>& out) const {
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(c.code, nullptr);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;  // search position
  size_t emitted = 0;  // end of the last piece given out
  while (start <= text.size()) {
    // The text is valid UTF-8 (the tokenizer repairs input first), so skip PCRE2's check.
    const int rc = c.jit ? pcre2_jit_match(c.code, subject, text.size(), start,
                                           PCRE2_NO_UTF_CHECK, md, nullptr)
                         : pcre2_match(c.code, subject, text.size(), start, PCRE2_NO_UTF_CHECK,
                                       md, nullptr);
    if (rc < 0) break;  // PCRE2_ERROR_NOMATCH, or a match-limit error: keep the rest whole
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const size_t ms = ov[0], me = ov[1];
    if (me == ms) {
      // Empty matches split nothing; step over one code point.
      if (ms >= text.size()) break;
      start = ms + 1;
      while (start < text.size() && (uint8_t(text[start]) & 0xC0) == 0x80) ++start;
      continue;
    }
    if (ms > emitted) out.push_back(text.substr(emitted, ms - emitted));
    out.push_back(text.substr(ms, me - ms));
    emitted = start = me;
  }
  if (emitted < text.size()) out.push_back(text.substr(emitted));
  pcre2_match_data_free(md);
}

void RegexSplitter::split(std::string_view text, std::vector<std::string_view>& out) const {
  if (codes_.empty()) {
    if (!text.empty()) out.push_back(text);
    return;
  }
  std::vector<std::string_view> cur{text}, next;
  for (const auto& c : codes_) {
    next.clear();
    for (std::string_view piece : cur)
      if (!piece.empty()) split_one(*c, piece, next);
    cur.swap(next);
  }
  out.insert(out.end(), cur.begin(), cur.end());
}

}  // namespace hexe
