#!/usr/bin/env python3
# Writes tests/reference/fixtures/pretok/{deepseek-v3,glm4,kimi-k2}.json: reference pre-tokenizer splits.
"""Reference splits for hexe's named pre-tokenizers (runtime/tokenizer/vocab.cpp pre_regexes_for),
stored per fixture text as the pieces before any byte mapping, so test_runtime can compare hexe's
PCRE2 passes without Python.

- deepseek-v3: the DeepSeek-V3/R1 tokenizer.json pre-tokenizer, a Sequence of three
  Split(Regex, Isolated) steps then a ByteLevel(use_regex=false) that only maps bytes; split here
  with HF `tokenizers`.
- glm4: the GLM-4.x/GLM-4.5 tokenizer.json pre-tokenizer, one Split(Regex, Isolated) with the
  cl100k-style pattern then ByteLevel(use_regex=false); split with HF `tokenizers`.
- kimi-k2: Kimi-K2's tiktoken pat_str (tokenization_kimi.py), verbatim, with its
  [...&&[^\\p{Han}]] class intersections; split with Python's `regex` module in VERSION1 mode
  (which reads && as tiktoken's fancy-regex does). tiktoken keeps only the matches, so the
  generator checks that they cover every text.

Usage: ${HEXE_PY:-.venv-tools/bin/python} tools/reference/make_pretok_fixtures.py
(needs `tokenizers` and `regex`; both are in /opt/hexe-tools-venv)"""
import json
from pathlib import Path

import regex
from tokenizers import Regex, pre_tokenizers

OUT_DIR = Path(__file__).resolve().parents[2] / "tests/reference/fixtures/pretok"

DEEPSEEK_V3_REGEXES = [
    r"\p{N}{1,3}",
    "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
    r"""[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
]
# GLM-4.5's tokenizer.json Split pattern (as in GLM-4-0414; llama.cpp's CHATGLM4 case-folds the
# contractions instead of (?i:...)).
GLM4_REGEXES = [
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+",
]
# TikTokenTokenizer.pat_str in moonshotai/Kimi-K2-Instruct tokenization_kimi.py, "|".join'ed.
KIMI_K2_PAT_STR = "|".join([
    r"[\p{Han}]+",
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+"
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*"
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"\p{N}{1,3}",
    r" ?[^\s\p{L}\p{N}]+[\r\n]*",
    r"\s*[\r\n]+",
    r"\s+(?!\S)",
    r"\s+",
])

TEXTS = [
    "Hello world, this is DeepSeek-V3!",
    "The year 2024 had 366 days; pi is 3.14159265.",
    "  leading spaces\tand\ttabs\n\nnew lines\r\n",
    "中文测试：深度求索的模型。日本語のテキスト、カタカナ。",
    "mixed中文and English123456789 tokens",
    "def f(x):\n    return x**2 + 1  # comment",
    "emoji 😀 and accents: café, naïve, Ωmega",
    "don't won't I'm we'll they've",
    "a.b,c;d:e!f?g(h)[i]{j}<k>",
    "   ",
    "$100 + 50% = ???",
]
# Han next to Latin words, case changes inside words, contractions in any case, non-ASCII digits,
# Han-script characters outside \p{L} (〇 is Nl) and CJK punctuation whose Script is not Han.
EXTRA_TEXTS = [
    "我爱Kimi's模型",
    "HELLO世界World",
    "don't STOP 123456 ١٢٣",
    "CamelCaseWords, HTTPServer's XMLHttpRequest and iPhone",
    "IT'S THEY'LL We'VE it'ſ",
    "二〇二四年，々〃「引用」。〇〇七",
    "Ωmega ÉCOLE straße naïve 한국어 текст",
    "x  \n\n\t y\r\n  z   ",
]


def hf_split(regexes, texts):
    pt = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(r), behavior="isolated", invert=False)
                                  for r in regexes])
    return [{"text": t, "pieces": [p for p, _ in pt.pre_tokenize_str(t)]} for t in texts]


def tiktoken_split(pat_str, texts):
    pat = regex.compile(pat_str, regex.VERSION1)
    cases = []
    for t in texts:
        pieces = pat.findall(t)
        assert "".join(pieces) == t, f"the pattern leaves part of {t!r} unmatched"
        cases.append({"text": t, "pieces": pieces})
    return cases


def write(pre, reference, regexes, cases):
    out = OUT_DIR / f"{pre}.json"
    doc = {"pre": pre}
    if reference:
        doc["reference"] = reference
    doc["regexes"] = regexes
    doc["cases"] = cases
    out.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{out}: {len(cases)} texts")


def main():
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    write("deepseek-v3", None, DEEPSEEK_V3_REGEXES, hf_split(DEEPSEEK_V3_REGEXES, TEXTS))
    write("glm4", "HF tokenizers Split(Regex, Isolated)", GLM4_REGEXES,
          hf_split(GLM4_REGEXES, TEXTS + EXTRA_TEXTS))
    write("kimi-k2", "Python regex, VERSION1, findall", [KIMI_K2_PAT_STR],
          tiktoken_split(KIMI_K2_PAT_STR, TEXTS + EXTRA_TEXTS))


if __name__ == "__main__":
    main()
