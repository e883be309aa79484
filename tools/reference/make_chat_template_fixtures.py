#!/usr/bin/env python3
# Writes transformers' renders of the DeepSeek-V3/R1, Kimi-K2 and GLM-4.5 chat templates.
"""Make tests/reference/fixtures/chat_templates/renders.json.

The templates are the published Jinja texts stored beside the fixture (see README.md there).
Each is rendered by transformers' own apply_chat_template(tokenize=False) on a tokenizer built
from the qwen2-bpe fixture tokenizer.json (no hub download): the vocabulary is irrelevant to a
text render, only the template and the bos/eos texts matter, and those are set to each model's.
Conversations the template raises on are recorded with "error".

Usage: ${HEXE_PY:-.venv-tools/bin/python} tools/reference/make_chat_template_fixtures.py
"""
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import jinja2  # noqa: E402
from transformers import PreTrainedTokenizerFast  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DIR = REPO / "tests" / "reference" / "fixtures" / "chat_templates"
TOKENIZER_JSON = REPO / "tests" / "reference" / "fixtures" / "tokenizers" / "qwen2-bpe" / "tokenizer.json"

# family name (as `hexe chat --chat-template` takes it) -> template file, bos, eos,
# whether the template reads enable_thinking.
FAMILIES = {
    "deepseek-v3": ("deepseek-v3.jinja", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", False),
    "deepseek-r1": ("deepseek-r1.jinja", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", False),
    "kimi-k2": ("kimi-k2.jinja", "[BOS]", "[EOS]", False),
    "glm-4.5": ("glm-4.5.jinja", "<sop>", "<|endoftext|>", True),
}


def msg(role: str, content: str) -> dict:
    return {"role": role, "content": content}


CONVERSATIONS = [
    [msg("user", "Hi")],
    [msg("system", "Be brief."), msg("user", "What is 2+2?")],
    [msg("system", "You are a helpful assistant."), msg("user", "Hello"),
     msg("assistant", "Hi! How can I help?"), msg("user", "Tell me a joke.\nA short one.")],
    [msg("user", "Q1"), msg("assistant", "<think>\nreasoning\n</think>\n\nA1"), msg("user", "Q2")],
    [msg("user", "Q1"), msg("assistant", "<think>\nfirst thought\n</think>\n\nA1")],
    [msg("user", "Q1"), msg("assistant", "<think>\nr1\n</think>\n\nA1"), msg("user", "Q2"),
     msg("assistant", "<think>\n\nr2 line\n\n</think>\n\n\nA2")],
    # R1-style reply: the prompt opened <think>, so the stored reply has only the closing tag.
    [msg("user", "Q1"), msg("assistant", "reasoning without opener\n</think>\n\nA1"), msg("user", "Q2")],
    [msg("user", "Q1"), msg("assistant", "<think>x</think>A1"), msg("assistant", "plain A2")],
    [msg("user", "Q1"), msg("assistant", "plain A1"), msg("assistant", "<think>y</think>A2")],
    [msg("user", "Q1"), msg("assistant", "<think>a</think>mid</think>end")],
    [msg("user", "Q1"), msg("assistant", "<think>   </think>  \n  ")],
    [msg("user", "Q1"), msg("system", "late system"), msg("user", "Q2")],
    [msg("system", "S1"), msg("system", "S2"), msg("user", "Q")],
    [msg("user", " spaced  content "), msg("assistant", ""), msg("user", "日本語 😀")],
    [msg("user", "quiet please /nothink")],
    [msg("user", "weather?"), msg("assistant", "calling"), msg("tool", "sunny"),
     msg("tool", "22C"), msg("assistant", "It is sunny, 22C."), msg("user", "thanks")],
    [msg("user", "weather?"), msg("assistant", "calling"), msg("tool", "sunny")],
    [msg("user", "a"), msg("tool", "r1"), msg("user", "b"), msg("tool", "r2"),
     msg("assistant", "<think>t</think>done")],
    [],
]


def renders() -> list[dict]:
    out = []
    for family, (file, bos, eos, thinking_switch) in FAMILIES.items():
        template = (DIR / file).read_text(encoding="utf-8")
        tok = PreTrainedTokenizerFast(tokenizer_file=str(TOKENIZER_JSON), bos_token=bos, eos_token=eos)
        for messages in CONVERSATIONS:
            for gen in (True, False):
                for thinking in ((None, False, True) if thinking_switch else (None,)):
                    kwargs = {} if thinking is None else {"enable_thinking": thinking}
                    entry = {"template": family, "messages": messages, "add_generation_prompt": gen,
                             "enable_thinking": thinking, "bos": bos, "eos": eos}
                    try:
                        entry["rendered"] = tok.apply_chat_template(
                            messages, chat_template=template, tokenize=False,
                            add_generation_prompt=gen, **kwargs)
                    except (jinja2.exceptions.TemplateError, ValueError, IndexError) as e:
                        entry["error"] = f"{type(e).__name__}: {e}"
                    out.append(entry)
    return out


def main() -> int:
    data = renders()
    lines = ",\n".join(json.dumps(e, ensure_ascii=False) for e in data)
    (DIR / "renders.json").write_text(f'{{"renders": [\n{lines}\n]}}\n', encoding="utf-8")
    errors = sum("error" in e for e in data)
    print(f"{len(data)} renders ({errors} rejected) -> {DIR / 'renders.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
