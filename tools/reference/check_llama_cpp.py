#!/usr/bin/env python3
# Runs llama.cpp itself (via llama-cpp-python) on the fixture GGUFs and compares with the references.
"""Independent check of the model fixtures: llama.cpp loads each GGUF, tokenizes every prompt
(and the perplexity text), computes the logits of the kept positions, the greedy continuations
and, for the perplexity model, llama-perplexity's PPL; the script prints the differences from
reference.json. Expected: f32 <= ~1e-6, f16 <= ~1e-3, q8_0 <= ~3e-2 relative logit error;
qwen3moe-b off by ~7e-2 (llama.cpp's qwen3moe graph ignores norm_topk_prob = false); the
per-expert layout file refused (current llama.cpp dropped that layout). Nothing is written.

Not part of requirements.txt: needs `pip install llama-cpp-python` (builds llama.cpp from source,
about half an hour on two cores) in the tools venv. Weight repacking ("extra buffer types") is
turned off because llama.cpp's AMX Q8_0 path crashed on these tiny shapes on a machine with AMX.

Usage: ${HEXE_PY:-.venv-tools/bin/python} tools/reference/check_llama_cpp.py
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

import llama_cpp
import llama_cpp.llama

MODELS = Path(__file__).resolve().parents[2] / "tests" / "reference" / "fixtures" / "models"
_default_params = llama_cpp.llama_model_default_params


def _params_without_repack():
    p = _default_params()
    p.use_extra_bufts = False
    return p


llama_cpp.llama.llama_cpp.llama_model_default_params = _params_without_repack


def load(path: Path, n_ctx: int) -> llama_cpp.Llama:
    # F32 KV cache (type 0) so that the f32 comparison is not limited by f16 K/V.
    return llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_batch=n_ctx, logits_all=True,
                           n_threads=1, verbose=False, type_k=0, type_v=0, flash_attn=False)


def logits(llm: llama_cpp.Llama, tokens: list[int]) -> np.ndarray:
    llm.reset()
    llm.eval(tokens)
    return np.array(llm.scores[:len(tokens)], dtype=np.float64)


def check_variant(mdir: Path, ref: dict, v: dict, gguf_name: str) -> None:
    try:
        llm = load(mdir / gguf_name, 256)
    except Exception as e:  # llama.cpp refuses the file
        print(f"{gguf_name:34s} not loaded by llama.cpp: {e}")
        return
    prompts = {p["name"]: p for p in ref["prompts"]}
    worst, tok_ok, greedy_ok = 0.0, True, 0
    for lg in v["logits"]:
        p = prompts[lg["prompt"]]
        tok_ok &= llm.tokenize(p["text"].encode(), add_bos=True, special=False) == p["tokens"]
        got = logits(llm, p["tokens"])[lg["positions"]]
        want = np.fromfile(mdir / lg["file"], dtype="<f4").reshape(lg["shape"])
        worst = max(worst, float((np.abs(got - want).max(axis=1) / np.abs(want).max(axis=1)).max()))
    for g in v["greedy"]:
        seq = list(prompts[g["prompt"]]["tokens"])
        for _ in g["new_tokens"]:
            seq.append(int(np.argmax(logits(llm, seq)[-1])))
        greedy_ok += seq[-len(g["new_tokens"]):] == g["new_tokens"]
    print(f"{gguf_name:34s} max relative logit error {worst:.2e}, tokenizer "
          f"{'matches' if tok_ok else 'DIFFERS'}, greedy {greedy_ok}/{len(v['greedy'])} equal")


def check_perplexity(mdir: Path, ref: dict) -> None:
    pp = ref["perplexity"]
    llm = load(mdir / f"{ref['model']}-{pp['variant']}.gguf", pp["n_ctx"])
    text = (mdir / pp["text_file"]).read_text(encoding="utf-8")
    same_tokens = llm.tokenize(text.encode(), add_bos=True, special=False) == pp["tokens"]
    n_ctx, first = pp["n_ctx"], pp["first"]
    nll, count = 0.0, 0
    for c in range(pp["n_chunk"]):
        chunk = list(pp["tokens"][c * n_ctx:(c + 1) * n_ctx])
        if pp["adds_bos"]:
            chunk[0] = pp["bos_id"]
        lg = logits(llm, chunk)
        for pos in range(first, n_ctx - 1):
            row = lg[pos] - lg[pos].max()
            nll -= row[chunk[pos + 1]] - math.log(np.exp(row).sum())
            count += 1
    ppl = math.exp(nll / count)
    print(f"{ref['model']} perplexity: llama.cpp {ppl:.6f}, fixture {pp['ppl']:.6f} "
          f"(relative difference {abs(ppl - pp['ppl']) / pp['ppl']:.1e}), tokenizer "
          f"{'matches' if same_tokens else 'DIFFERS'}")


def main() -> int:
    for ref_path in sorted(MODELS.glob("*/reference.json")):
        ref = json.loads(ref_path.read_text())
        for v in ref["variants"]:
            for name in v["gguf"]:
                check_variant(ref_path.parent, ref, v, name)
        if "perplexity" in ref:
            check_perplexity(ref_path.parent, ref)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
