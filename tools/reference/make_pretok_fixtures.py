#!/usr/bin/env python3
# Writes tests/reference/fixtures/pretok/deepseek-v3.json: HF tokenizers' pre-tokenizer splits.
"""The DeepSeek-V3/R1 tokenizer.json pre-tokenizer is a Sequence of three Split(Regex, Isolated)
steps followed by a ByteLevel(use_regex=false) that only maps bytes. This builds the three
splits with HF `tokenizers` and stores, per fixture text, the pieces (before the byte mapping),
so test_runtime can compare hexe's `deepseek-v3` pre-tokenizer without Python.

Usage: ${HEXE_PY:-.venv-tools/bin/python} tools/reference/make_pretok_fixtures.py"""
import json
from pathlib import Path

from tokenizers import Regex, pre_tokenizers

OUT = Path(__file__).resolve().parents[2] / "tests/reference/fixtures/pretok/deepseek-v3.json"
REGEXES = [
    r"\p{N}{1,3}",
    "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
    r"""[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
]
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


def main():
    pt = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(r), behavior="isolated", invert=False)
                                  for r in REGEXES])
    cases = [{"text": t, "pieces": [p for p, _ in pt.pre_tokenize_str(t)]} for t in TEXTS]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"pre": "deepseek-v3", "regexes": REGEXES, "cases": cases},
                              ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(cases)} texts")


if __name__ == "__main__":
    main()
