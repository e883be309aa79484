#!/usr/bin/env python3
# Writes the tokenizer test fixtures: vocab-only GGUFs and HF encodings/decodings/chat renders.
"""Make the tokenizer fixtures under tests/reference/fixtures/tokenizers/<name>/.

For each tokenizer made by make_tokenizers.py:
  vocab.gguf     a vocab-only GGUF (no tensors, like llama.cpp's ggml-vocab-*.gguf) holding the
                 tokenizer.ggml.* keys as llama.cpp's convert_hf_to_gguf.py writes them:
                 qwen2-bpe -> model "gpt2", pre "qwen2", tokens, token_type, merges;
                 llama-spm -> model "llama", tokens, scores (-rank), token_type (sentencepiece
                 path, as for a model that ships tokenizer.model).
  encodings.json HF `tokenizers` encodings and decodings of a fixed set of texts, with and
                 without special tokens added and with special-token parsing on and off.
Also tests/reference/fixtures/tokenizers/chat_templates.json: transformers' apply_chat_template
renders of a few conversations with each tokenizer's tokenizer_config.json template.

Usage: ${HEXE_PY:-.venv-tools/bin/python} tools/reference/make_tokenizer_fixtures.py
"""
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import gguf  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "reference" / "fixtures" / "tokenizers"
NAMES = ("qwen2-bpe", "llama-spm")

TEXTS = [
    "",
    " ",
    "  ",
    "\n",
    "\t",
    "Hello world",
    " Hello world",
    "   leading spaces and trailing   ",
    "Hello, world! How are you today?",
    "I'm sure they're here; you've seen it, she'd say, and he'll agree. ISN'T IT? WE'RE DONE.",
    "don't DON'T Don't 's 't 're 've 'm 'll 'd",
    "Numbers: 0 1 12 123 1234 12345 123456789 3.14159 -42 1e-5 0x1F 1,000,000",
    "31415926535897932384626433832795028841971693993751",
    "tabs\tbetween\t\twords\t",
    "line one\nline two\n\nline four\r\nwindows\r\n",
    "many     spaces      between    words",
    "trailing newline\n\n\n",
    " \n \n\t x",
    "Café naïve résumé façade Zürich São Paulo Ångström Łódź Straße",
    "Cafe\u0301 decomposed e\u0301 and A\u030a",
    "Grüße aus München! ¿Qué tal? ¡Muy bien!",
    "Русский текст: привет, мир. Ελληνικά: γειά σου κόσμε.",
    "中文：你好，世界。我们正在测试分词器。",
    "日本語：こんにちは世界、カタカナ。한국어: 안녕하세요",
    "Emoji: 😀 🎉 👍🏽 🚀 ❤️ 👨‍👩‍👧 🇩🇪 ✨",
    "symbols ← → ≤ ≥ ≠ ∞ ∑ √ π µ ° ± × ÷ … “quoted” ‘single’",
    "def route(logits, k=8):\n    return sorted(logits)[:k]\n",
    "for (int i = 0; i < n; ++i) { sum += x[i] * w[i]; }",
    '{"name": "hexe", "tags": ["moe", "cpu"], "ok": true}',
    "<html><body class=\"main\">Hello &amp; welcome</body></html>",
    "<|im_start|>user\nhi<|im_end|>",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
    "<|im_start|>assistant\n",
    "text<|endoftext|>more text",
    "<|im_end|><|im_end|>",
    "<s>[INST] hello [/INST] world</s>",
    "<s> leading bos",
    "almost special <|im_start and <s without close </s",
    "The runtime loads a mixture-of-experts model and keeps the hot experts in fast memory.",
    "Apache License Version 2.0, January 2004 http://www.apache.org/licenses/",
    "\u00a0non-breaking\u2009thin\u3000ideographic space",
    "zero\u200bwidth\u200djoiner",
    "x" * 300,
    "ab" * 50 + " " + "ab" * 50,
]


def mixed_text(n_chars: int) -> str:
    """A seeded jumble of license prose and the hard cases (CJK, emoji, CRLF, specials, NFD)."""
    import random
    rng = random.Random(1234)
    lic = Path("/usr/share/common-licenses/Apache-2.0")
    prose = lic.read_text(encoding="utf-8") if lic.is_file() else TEXTS[37] * 50
    pieces = ["我们正在测试", "😀👍🏽", " \t\n  ", "x" * 40, "<|im_start|>", "<s>", "</s>",
              "Ünïcödé", "e\u0301", "1234567890", "\r\n", "  ", "'s'LL", "\u00a0"]
    out = []
    while sum(map(len, out)) < n_chars:
        i = rng.randrange(0, len(prose) - 80)
        out.append(prose[i:i + rng.randint(1, 80)])
        out.append(rng.choice(pieces))
    return "".join(out)


TEXTS.append(mixed_text(6000))


def token_types(tok: Tokenizer, specials: set[int], n_vocab: int, byte_fallback: bool):
    types = []
    for i in range(n_vocab):
        piece = tok.id_to_token(i)
        if i in specials:
            types.append(gguf.TokenType.CONTROL)
        elif byte_fallback and len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            types.append(gguf.TokenType.BYTE)
        else:
            types.append(gguf.TokenType.NORMAL)
    return types


def write_gguf(name: str, tok: Tokenizer, tj: dict, config: dict) -> None:
    path = OUT / name / "vocab.gguf"
    vocab = tok.get_vocab(with_added_tokens=True)
    n_vocab = max(vocab.values()) + 1
    tokens = [tok.id_to_token(i) for i in range(n_vocab)]
    specials = {t["id"] for t in tj["added_tokens"] if t["special"]}
    arch = "qwen3moe" if name == "qwen2-bpe" else "llama"
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(f"hexe fixture tokenizer {name}")
    if name == "qwen2-bpe":
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("qwen2")
        w.add_token_list(tokens)
        w.add_token_types(token_types(tok, specials, n_vocab, byte_fallback=False))
        w.add_token_merges([" ".join(m) if isinstance(m, list) else m
                            for m in tj["model"]["merges"]])
        # Qwen's config.json names <|endoftext|> as bos although add_bos_token is false.
        w.add_bos_token_id(vocab["<|endoftext|>"])
        w.add_eos_token_id(vocab[config["eos_token"]])
        w.add_pad_token_id(vocab[config["pad_token"]])
        w.add_add_bos_token(False)
    else:
        w.add_tokenizer_model("llama")
        w.add_tokenizer_pre("default")
        w.add_token_list(tokens)
        # sentencepiece BPE: a piece's score is minus its rank; controls and bytes score 0.
        types = token_types(tok, specials, n_vocab, byte_fallback=True)
        scores = [0.0 if t != gguf.TokenType.NORMAL else -float(i) for i, t in enumerate(types)]
        types[0] = gguf.TokenType.UNKNOWN
        w.add_token_scores(scores)
        w.add_token_types(types)
        w.add_unk_token_id(0)
        w.add_bos_token_id(vocab[config["bos_token"]])
        w.add_eos_token_id(vocab[config["eos_token"]])
        w.add_add_bos_token(bool(config.get("add_bos_token", True)))
        w.add_add_eos_token(bool(config.get("add_eos_token", False)))
    w.add_chat_template(config["chat_template"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def encodings(tok: Tokenizer) -> list[dict]:
    cases = []
    for text in TEXTS:
        tok.encode_special_tokens = False
        ids = tok.encode(text, add_special_tokens=True).ids
        ids_plain = tok.encode(text, add_special_tokens=False).ids
        tok.encode_special_tokens = True  # special-token text is ordinary text
        ids_unparsed = tok.encode(text, add_special_tokens=False).ids
        tok.encode_special_tokens = False
        cases.append({
            "text": text,
            "ids": ids,                      # add_special=true, parse_special=true
            "ids_no_add": ids_plain,         # add_special=false, parse_special=true
            "ids_no_parse": ids_unparsed,    # add_special=false, parse_special=false
            "decoded": tok.decode(ids, skip_special_tokens=False),
            "decoded_skip": tok.decode(ids, skip_special_tokens=True),
            "decoded_no_parse": tok.decode(ids_unparsed, skip_special_tokens=False),
        })
    return cases


CONVERSATIONS = [
    {"messages": [{"role": "user", "content": "Hi"}]},
    {"messages": [{"role": "system", "content": "Be brief."},
                  {"role": "user", "content": "What is 2+2?"}]},
    {"messages": [{"role": "system", "content": "You are a helpful assistant."},
                  {"role": "user", "content": "Hello"},
                  {"role": "assistant", "content": "Hi! How can I help?"},
                  {"role": "user", "content": "Tell me a joke.\nA short one."}]},
    {"messages": [{"role": "user", "content": "Q1"},
                  {"role": "assistant", "content": "<think>\nreasoning\n</think>\n\nA1"},
                  {"role": "user", "content": "Q2"}]},
    {"messages": [{"role": "user", "content": "Q1"},
                  {"role": "assistant", "content": "<think>\nfirst thought\n</think>\n\nA1"}]},
    {"messages": [{"role": "user", "content": "Q1"},
                  {"role": "assistant", "content": "<think>\nr1\n</think>\n\nA1"},
                  {"role": "user", "content": "Q2"},
                  {"role": "assistant", "content": "<think>\n\nr2 line\n\n</think>\n\n\nA2"}]},
    {"messages": [{"role": "user", "content": "Q1"},
                  {"role": "assistant", "content": "<think>x</think>A1"},
                  {"role": "assistant", "content": "plain A2"}]},
    {"messages": [{"role": "user", "content": "Q1"},
                  {"role": "assistant", "content": "plain A1"},
                  {"role": "assistant", "content": "<think>y</think>A2"}]},
    {"messages": [{"role": "user", "content": "Q1"},
                  {"role": "system", "content": "late system"},
                  {"role": "user", "content": "Q2"}]},
    {"messages": [{"role": "user", "content": " spaced  content "},
                  {"role": "assistant", "content": ""},
                  {"role": "user", "content": "日本語 😀"}]},
]


def chat_renders() -> list[dict]:
    import jinja2
    from transformers import AutoTokenizer
    out = []
    for name in NAMES:
        hf = AutoTokenizer.from_pretrained(str(OUT / name))
        for conv in CONVERSATIONS:
            for gen in (True, False):
                for thinking in ((None, False, True) if name == "qwen2-bpe" else (None,)):
                    kwargs = {} if thinking is None else {"enable_thinking": thinking}
                    entry = {"tokenizer": name, "messages": conv["messages"],
                             "add_generation_prompt": gen, "enable_thinking": thinking}
                    try:
                        entry["rendered"] = hf.apply_chat_template(
                            conv["messages"], tokenize=False, add_generation_prompt=gen, **kwargs)
                    except jinja2.exceptions.TemplateError as e:
                        entry["error"] = str(e)  # the template rejects this conversation
                    out.append(entry)
    return out


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def main() -> int:
    for name in NAMES:
        d = OUT / name
        tj = json.loads((d / "tokenizer.json").read_text(encoding="utf-8"))
        config = json.loads((d / "tokenizer_config.json").read_text(encoding="utf-8"))
        tok = Tokenizer.from_file(str(d / "tokenizer.json"))
        write_gguf(name, tok, tj, config)
        cases = encodings(tok)
        # One case per line: compact, and a regenerated file diffs case by case.
        lines = ",\n".join(json.dumps(c, ensure_ascii=False) for c in cases)
        (d / "encodings.json").write_text(
            f'{{"tokenizer": "{name}", "cases": [\n{lines}\n]}}\n', encoding="utf-8")
        print(f"{name}: {len(cases)} texts, vocab.gguf {(d / 'vocab.gguf').stat().st_size} bytes")
    renders = chat_renders()
    write_json(OUT / "chat_templates.json", {"renders": renders})
    print(f"chat templates: {len(renders)} renders")
    return 0


if __name__ == "__main__":
    sys.exit(main())
