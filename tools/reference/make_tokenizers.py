#!/usr/bin/env python3
# Trains the two small fixture tokenizers (qwen2-bpe, llama-spm) and writes them as HF files.
"""Make the fixture tokenizers under tests/reference/fixtures/tokenizers/.

  qwen2-bpe  byte-level BPE laid out exactly like Qwen2/Qwen3's tokenizer.json (Split regex
             + ByteLevel pre-tokenizer, NFC, ByteLevel decoder, ChatML specials, Qwen3 chat
             template).
  llama-spm  SentencePiece-style BPE with byte fallback laid out like Mixtral's tokenizer.json
             (Prepend/Replace normalizer, <0xXX> byte tokens, <unk>/<s>/</s> = 0/1/2, BOS added,
             Mixtral [INST] template). Its merges are derived from the vocabulary ranks the way
             transformers' SentencePieceExtractor converts a real tokenizer.model, so the GGUF
             "llama" form (scores = -rank) tokenizes identically.

Deterministic: the training text is built in (our own text plus the license texts Debian ships
under /usr/share/common-licenses when present; the hash of the corpus is printed). No network.

Usage: ${HEXE_PY:-.venv-tools/bin/python} tools/reference/make_tokenizers.py [--out DIR]
(create .venv-tools with tools/venv.sh).
"""
import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers  # noqa: E402
from tokenizers import processors, trainers  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "tests" / "reference" / "fixtures" / "tokenizers"

QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")

# Our own text: a little of everything the fixtures test (code, numbers, accents, CJK, emoji).
OWN_TEXT = """\
The runtime loads a mixture-of-experts model and keeps the hot experts in fast memory.
Each token is routed to a few experts; the router's weights decide which ones. We don't copy
weights we can't use, and we'll measure what we've changed. It's the bandwidth that matters.
def route(logits, k=8):
    top = sorted(range(len(logits)), key=lambda i: -logits[i])[:k]
    return {i: logits[i] for i in top}
for (int i = 0; i < n; ++i) { sum += x[i] * w[i]; }
Numbers: 0 1 2 3 4 5 6 7 8 9 10 42 100 1000 2026 31415926535 2.71828 -17 +3 1e-5 0x1F 12,345.67
Prices: $19.99, €5, £3; 50% off; 3/4 cup; 10:30 a.m.; 2026-11-25T21:52:27Z.
Café, naïve, résumé, façade, coöperate, Zürich, São Paulo, Ångström, Ærø, Łódź, Straße.
Grüße aus München! ¿Qué tal? ¡Muy bien! Ça va? Où est la gare? Eñe, jalapeño, piñata.
Русский текст: привет, мир. Ελληνικά: γειά σου κόσμε. עברית: שלום. العربية: مرحبا.
中文：你好，世界。我们正在测试分词器。日本語：こんにちは世界、カタカナ。한국어: 안녕하세요 세계.
Emoji: 😀 🎉 👍🏽 🚀 ❤️ 👨‍👩‍👧 🇩🇪 ✨ — and symbols: ← → ≤ ≥ ≠ ∞ ∑ √ π µ ° ± × ÷ … “quoted” ‘single’.
Tabs\tand\t\tmore tabs; multiple   spaces    here; trailing spaces   
Line one
Line two

Paragraph after a blank line.\r\nWindows line end.
<html><body class="main">Hello &amp; welcome</body></html>
{"name": "hexe", "version": 1, "tags": ["moe", "cpu"], "ok": true}
SELECT id, name FROM experts WHERE layer = 3 AND hits > 1000 ORDER BY hits DESC;
I'm sure they're here; you've seen it, she'd say, and he'll agree. ISN'T IT? WE'RE DONE.
"""


def corpus_text() -> str:
    parts = [OWN_TEXT] * 4
    lic = Path("/usr/share/common-licenses")
    for name in ("Apache-2.0", "GPL-3", "LGPL-2.1", "MPL-2.0", "BSD", "Artistic"):
        p = lic / name
        if p.is_file():
            parts.append(p.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(parts)


def corpus_lines(text: str) -> list[str]:
    # Keep line ends so newline handling is learnt; chunk into paragraphs of a few lines.
    lines = text.splitlines(keepends=True)
    return ["".join(lines[i:i + 4]) for i in range(0, len(lines), 4)]


# Chat templates (Jinja, as the upstream tokenizer_config.json files carry them).
QWEN3_TEMPLATE = DEFAULT_OUT / "templates" / "qwen3.jinja"
MIXTRAL_TEMPLATE = DEFAULT_OUT / "templates" / "mixtral.jinja"


def added_token(content: str, id_: int) -> dict:
    return {"id": id_, "content": content, "single_word": False, "lstrip": False,
            "rstrip": False, "normalized": False, "special": True}


def make_qwen2(out: Path, lines: list[str], vocab_size: int) -> None:
    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False,
                                              use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=[])
    tok.train_from_iterator(lines, trainer=trainer)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok.add_special_tokens(specials)

    data = json.loads(tok.to_str())
    # Qwen's file has these model fields spelled out; keep the layout byte-for-byte familiar.
    data["model"].update({"dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                          "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
                          "ignore_merges": False})
    base = tok.get_vocab_size(with_added_tokens=False)
    data["added_tokens"] = [added_token(s, base + i) for i, s in enumerate(specials)]
    write_json(out / "tokenizer.json", data)

    config = {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": {str(base + i): {k: v for k, v in added_token(s, base + i).items()
                                                 if k != "id"} for i, s in enumerate(specials)},
        "bos_token": None,
        "chat_template": QWEN3_TEMPLATE.read_text(encoding="utf-8"),
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 4096,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": None,
    }
    write_json(out / "tokenizer_config.json", config)


def keep_common_chars(lines: list[str], n_keep: int) -> list[str]:
    """Blank out all but the n_keep most frequent characters, so rarer ones (CJK, emoji) reach
    the byte fallback as in a real SentencePiece vocabulary. (The trainer's own limit_alphabet
    breaks count ties in hash order, which made the output differ from run to run.)"""
    counts: dict[str, int] = {}
    for line in lines:
        for ch in line:
            counts[ch] = counts.get(ch, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = {ch for ch, _ in ranked[:n_keep]}
    return ["".join(ch if ch in kept else " " for ch in line) for line in lines]


def make_llama(out: Path, lines: list[str], vocab_size: int) -> None:
    # Train pieces with a Metaspace split (SentencePiece splits on whitespace, "▁" leads a word).
    trainer_tok = Tokenizer(models.BPE())
    trainer_tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"),
                                                   normalizers.Replace(" ", "▁")])
    trainer_tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never",
                                                         split=True)
    n_fixed = 3 + 256
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - n_fixed, min_frequency=2,
                                  show_progress=False, special_tokens=[])
    trainer_tok.train_from_iterator(keep_common_chars(lines, 150), trainer=trainer)
    trained = json.loads(trainer_tok.to_str())["model"]
    trained_vocab = sorted(trained["vocab"].items(), key=lambda kv: kv[1])
    merged_pieces = [p for p, _ in trained_vocab if len(p) > 1]
    chars = [p for p, _ in trained_vocab if len(p) == 1]

    # SentencePiece BPE layout: controls, bytes, merged pieces by creation order, then chars.
    pieces = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    pieces += merged_pieces + chars
    vocab = {p: i for i, p in enumerate(pieces)}
    assert len(vocab) == len(pieces), "duplicate piece"

    # transformers' SentencePieceExtractor: every split of a normal piece into two known pieces,
    # ordered by the merged piece's score (higher first = lower id here), then left, right id.
    merges = []
    for piece in merged_pieces:
        local = [(piece[:k], piece[k:]) for k in range(1, len(piece))
                 if piece[:k] in vocab and piece[k:] in vocab]
        local.sort(key=lambda lr: (vocab[lr[0]], vocab[lr[1]]))
        merges.extend(local)

    data = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [added_token(s, i) for i, s in enumerate(["<unk>", "<s>", "</s>"])],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
        "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>",
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab, "merges": [[l, r] for l, r in merges]},
    }
    # Round-trip through the library so a malformed layout fails here, not in a test.
    Tokenizer.from_str(json.dumps(data))
    write_json(out / "tokenizer.json", data)

    config = {
        "add_bos_token": True,
        "add_eos_token": False,
        "added_tokens_decoder": {str(i): {k: v for k, v in added_token(s, i).items() if k != "id"}
                                 for i, s in enumerate(["<unk>", "<s>", "</s>"])},
        "bos_token": "<s>",
        "chat_template": MIXTRAL_TEMPLATE.read_text(encoding="utf-8"),
        "clean_up_tokenization_spaces": False,
        "eos_token": "</s>",
        "legacy": True,
        "model_max_length": 4096,
        "pad_token": None,
        "sp_model_kwargs": {},
        "spaces_between_special_tokens": False,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": "<unk>",
        "use_default_system_prompt": False,
    }
    write_json(out / "tokenizer_config.json", config)


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--qwen2-vocab", type=int, default=1200)
    ap.add_argument("--llama-vocab", type=int, default=1200)
    args = ap.parse_args()
    text = corpus_text()
    print(f"corpus: {len(text)} chars, sha256 {hashlib.sha256(text.encode()).hexdigest()[:16]}")
    lines = corpus_lines(text)
    make_qwen2(args.out / "qwen2-bpe", lines, args.qwen2_vocab)
    make_llama(args.out / "llama-spm", lines, args.llama_vocab)
    for name in ("qwen2-bpe", "llama-spm"):
        tok = Tokenizer.from_file(str(args.out / name / "tokenizer.json"))
        print(f"{name}: vocab {tok.get_vocab_size()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
