// Vocab from HF tokenizer.json (BPE model, byte-level or byte-fallback layout) + tokenizer_config.json.
#include <fstream>
#include <optional>
#include <sstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "memory/error.h"
#include "runtime/tokenizer/vocab.h"

namespace hexe {

namespace {

using nlohmann::json;

const char* const kMetaspace = "\xE2\x96\x81";  // "▁"
// tokenizers' ByteLevel(use_regex=true) pattern (GPT-2).
const char* const kByteLevelRegex =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

json read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return json::parse(ss.str());
  } catch (const json::exception& e) {
    throw Error(path + ": not valid JSON: " + e.what());
  }
}

// Reports a field with an unsupported value.
[[noreturn]] void unsupported(const std::string& path, const std::string& field,
                              const json& value, const std::string& expected) {
  std::string shown = value.is_string() ? value.get<std::string>() : value.dump();
  if (shown.size() > 120) shown = shown.substr(0, 120) + "...";
  throw Error(path + ": field '" + field + "' is '" + shown + "', expected " + expected);
}

std::string type_of(const json& node) {
  return node.is_object() && node.contains("type") && node["type"].is_string()
             ? node["type"].get<std::string>()
             : std::string();
}

// Flattens a Sequence node into its parts (`key` = "normalizers" / "pretokenizers" /
// "decoders" / "processors").
std::vector<json> flatten(const json& node, const char* key) {
  if (node.is_null()) return {};
  if (type_of(node) == "Sequence" && node.contains(key)) return node[key].get<std::vector<json>>();
  return {node};
}

// Token name from a config entry: "<s>" or {"content": "<s>", ...}.
std::string config_token(const json& config, const char* key) {
  if (!config.contains(key)) return {};
  const json& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  return {};
}

struct Loader {
  const std::string& path;
  Vocab& v;
  std::unordered_map<std::string, int32_t> ids;

  int32_t id_of(const std::string& token) const {
    auto it = ids.find(token);
    return it == ids.end() ? -1 : it->second;
  }

  void set_token(int64_t id, const std::string& text, TokenType type, const char* field) {
    if (id < 0 || id > 16'000'000) unsupported(path, field, json(id), "a token id in 0..16M");
    if (size_t(id) >= v.tokens.size()) {
      v.tokens.resize(size_t(id) + 1);
      v.types.resize(size_t(id) + 1, TokenType::Unused);
    }
    v.tokens[size_t(id)] = text;
    v.types[size_t(id)] = type;
    ids[text] = int32_t(id);
  }

  void model(const json& m) {
    const std::string type = type_of(m);
    if (!type.empty() && type != "BPE")
      unsupported(path, "model.type", json(type), "'BPE' (WordPiece, WordLevel and Unigram are "
                                                  "not supported)");
    if (!m.contains("vocab") || !m["vocab"].is_object())
      throw Error(path + ": field 'model.vocab' is missing or not an object");
    for (const auto& [text, id] : m["vocab"].items()) {
      if (!id.is_number_integer()) unsupported(path, "model.vocab[" + text + "]", id, "an integer");
      set_token(id.get<int64_t>(), text, TokenType::Normal, "model.vocab");
    }
    if (m.contains("merges") && m["merges"].is_array()) {
      for (const json& mg : m["merges"]) {
        if (mg.is_string()) {
          const std::string s = mg.get<std::string>();
          const size_t sp = s.find(' ', 1);
          if (sp == std::string::npos) unsupported(path, "model.merges[]", mg, "'left right'");
          v.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
        } else if (mg.is_array() && mg.size() == 2 && mg[0].is_string() && mg[1].is_string()) {
          v.merges.emplace_back(mg[0].get<std::string>(), mg[1].get<std::string>());
        } else {
          unsupported(path, "model.merges[]", mg, "a string or a pair of strings");
        }
      }
    }
    v.byte_fallback = m.value("byte_fallback", false);
    v.ignore_merges = m.value("ignore_merges", false);
    if (m.contains("unk_token") && m["unk_token"].is_string())
      v.unk_id = id_of(m["unk_token"].get<std::string>());
    if (m.contains("continuing_subword_prefix") && m["continuing_subword_prefix"].is_string() &&
        !m["continuing_subword_prefix"].get<std::string>().empty())
      unsupported(path, "model.continuing_subword_prefix", m["continuing_subword_prefix"], "none");
    if (m.contains("end_of_word_suffix") && m["end_of_word_suffix"].is_string() &&
        !m["end_of_word_suffix"].get<std::string>().empty())
      unsupported(path, "model.end_of_word_suffix", m["end_of_word_suffix"], "none");
  }

  void added_tokens(const json& list) {
    for (const json& t : list) {
      if (!t.contains("id") || !t.contains("content"))
        throw Error(path + ": an entry of 'added_tokens' lacks 'id' or 'content'");
      const bool special = t.value("special", false);
      set_token(t["id"].get<int64_t>(), t["content"].get<std::string>(),
                special ? TokenType::Control : TokenType::UserDefined, "added_tokens[].id");
    }
  }

  // Returns true when the normalizer escapes spaces as "▁" (SentencePiece layout).
  bool normalizer(const json& node) {
    bool escapes_spaces = false;
    for (const json& n : flatten(node, "normalizers")) {
      const std::string t = type_of(n);
      if (t == "NFC") {
        v.nfc = true;
      } else if (t == "Prepend" && n.value("prepend", "") == kMetaspace) {
        v.add_space_prefix = true;
      } else if (t == "Replace" && n.contains("pattern") && n["pattern"].contains("String") &&
                 n["pattern"]["String"] == " " && n.value("content", "") == kMetaspace) {
        escapes_spaces = true;
      } else {
        unsupported(path, "normalizer", n, "NFC, Prepend(\"\u2581\") or Replace(\" \", \"\u2581\")");
      }
    }
    return escapes_spaces;
  }

  // Returns the kind the pre-tokenizer implies (ByteLevel or Metaspace), if any.
  std::optional<TokenizerKind> pre_tokenizer(const json& node) {
    std::optional<TokenizerKind> kind;
    for (const json& p : flatten(node, "pretokenizers")) {
      const std::string t = type_of(p);
      if (t == "Split") {
        const json& pat = p.value("pattern", json());
        if (p.value("behavior", "") != "Isolated" || p.value("invert", false))
          unsupported(path, "pre_tokenizer.Split.behavior", p.value("behavior", json()),
                      "'Isolated' with invert=false");
        if (pat.contains("Regex")) {
          v.pre_regexes.push_back(pat["Regex"].get<std::string>());
        } else if (pat.contains("String")) {
          v.pre_regexes.push_back("\\Q" + pat["String"].get<std::string>() + "\\E");
        } else {
          unsupported(path, "pre_tokenizer.Split.pattern", pat, "{\"Regex\": ...}");
        }
      } else if (t == "ByteLevel") {
        if (p.value("add_prefix_space", false))
          unsupported(path, "pre_tokenizer.ByteLevel.add_prefix_space", json(true), "false");
        if (p.value("use_regex", true)) v.pre_regexes.push_back(kByteLevelRegex);
        kind = TokenizerKind::ByteLevelBpe;
      } else if (t == "Metaspace") {
        if (p.value("replacement", kMetaspace) != std::string(kMetaspace))
          unsupported(path, "pre_tokenizer.Metaspace.replacement", p["replacement"], "'\u2581'");
        if (p.value("split", false))
          unsupported(path, "pre_tokenizer.Metaspace.split", json(true), "false");
        const std::string scheme = p.value("prepend_scheme", "always");
        if (scheme == "always" || scheme == "first") {
          v.add_space_prefix = true;
          v.space_prefix_first_only = scheme == "first";
        } else if (scheme != "never") {
          unsupported(path, "pre_tokenizer.Metaspace.prepend_scheme", json(scheme),
                      "always, first or never");
        }
        kind = TokenizerKind::SpmBpe;
      } else {
        unsupported(path, "pre_tokenizer.type", json(t), "Split, ByteLevel or Metaspace");
      }
    }
    if (!v.pre_regexes.empty()) v.pre_name = "tokenizer.json pre_tokenizer";
    return kind;
  }

  void decoder(const json& node) {
    for (const json& d : flatten(node, "decoders")) {
      const std::string t = type_of(d);
      if (t == "Strip") {
        if (d.value("start", 0) > 1 || d.value("stop", 0) != 0 || d.value("content", " ") != " ")
          unsupported(path, "decoder.Strip", d, "Strip(' ', start <= 1, stop 0)");
        v.decode_strip_leading_space = d.value("start", 0) == 1;
      } else if (t == "Metaspace") {
        v.decode_strip_leading_space = d.value("prepend_scheme", "always") != "never";
      } else if (t != "ByteLevel" && t != "Replace" && t != "ByteFallback" && t != "Fuse") {
        unsupported(path, "decoder.type", json(t),
                    "ByteLevel, Replace, ByteFallback, Fuse, Strip or Metaspace");
      }
    }
  }

  void post_processor(const json& node) {
    for (const json& p : flatten(node, "processors")) {
      const std::string t = type_of(p);
      if (t != "TemplateProcessing") continue;  // ByteLevel / RobertaProcessing add nothing here
      const json& single = p.value("single", json::array());
      bool seen_sequence = false;
      for (const json& piece : single) {
        if (piece.contains("Sequence")) {
          seen_sequence = true;
          continue;
        }
        if (!piece.contains("SpecialToken")) continue;
        const std::string name = piece["SpecialToken"].value("id", "");
        int32_t id = id_of(name);
        const json& st = p.value("special_tokens", json::object());
        if (st.contains(name) && st[name].contains("ids") && !st[name]["ids"].empty())
          id = st[name]["ids"][0].get<int32_t>();
        if (id < 0) unsupported(path, "post_processor.single", piece, "a known special token");
        if (seen_sequence) {
          v.add_eos = true;
          v.eos_id = id;
        } else {
          v.add_bos = true;
          v.bos_id = id;
        }
      }
    }
  }
};

}  // namespace

Vocab vocab_from_hf_files(const std::string& tokenizer_json_path, const std::string& config_path) {
  Vocab v;
  v.source = tokenizer_json_path;
  const json tj = read_json(tokenizer_json_path);
  Loader ld{tokenizer_json_path, v, {}};
  if (!tj.contains("model") || !tj["model"].is_object())
    throw Error(tokenizer_json_path + ": field 'model' is missing");
  ld.model(tj["model"]);
  if (tj.contains("added_tokens") && tj["added_tokens"].is_array()) ld.added_tokens(tj["added_tokens"]);
  const bool escapes_spaces = ld.normalizer(tj.value("normalizer", json()));
  const auto pre_kind = ld.pre_tokenizer(tj.value("pre_tokenizer", json()));
  ld.decoder(tj.value("decoder", json()));
  ld.post_processor(tj.value("post_processor", json()));

  if (escapes_spaces || pre_kind == TokenizerKind::SpmBpe) {
    v.kind = TokenizerKind::SpmBpe;
  } else if (pre_kind == TokenizerKind::ByteLevelBpe || type_of(tj.value("decoder", json())) == "ByteLevel") {
    v.kind = TokenizerKind::ByteLevelBpe;
  } else {
    throw Error(tokenizer_json_path + ": neither a byte-level layout (ByteLevel pre-tokenizer or "
                "decoder) nor a SentencePiece layout (Replace(' ', '\u2581') normalizer or "
                "Metaspace pre-tokenizer)");
  }
  if (v.kind == TokenizerKind::SpmBpe && !v.pre_regexes.empty())
    throw Error(tokenizer_json_path + ": a Split pre-tokenizer with a SentencePiece layout is not "
                "supported");
  if (v.kind == TokenizerKind::ByteLevelBpe && v.pre_regexes.empty())
    v.pre_name = "none";

  if (!config_path.empty()) {
    const json cfg = read_json(config_path);
    const json& tmpl = cfg.value("chat_template", json());
    if (tmpl.is_string()) {
      v.chat_template = tmpl.get<std::string>();
    } else if (tmpl.is_array()) {  // [{"name": "default", "template": ...}, ...]
      for (const json& t : tmpl)
        if (t.value("name", "") == "default") v.chat_template = t.value("template", "");
    }
    if (v.bos_id < 0) v.bos_id = ld.id_of(config_token(cfg, "bos_token"));
    if (v.eos_id < 0) v.eos_id = ld.id_of(config_token(cfg, "eos_token"));
    if (v.pad_id < 0) v.pad_id = ld.id_of(config_token(cfg, "pad_token"));
    if (v.unk_id < 0) v.unk_id = ld.id_of(config_token(cfg, "unk_token"));
    // A tokenizer.json without a template post-processor still adds BOS when the config says so.
    if (!v.add_bos && cfg.value("add_bos_token", false) && v.bos_id >= 0 &&
        tj.value("post_processor", json()).is_null())
      v.add_bos = true;
  }
  v.validate();
  return v;
}

}  // namespace hexe
