#!/usr/bin/env python3
# Regenerates the reference fixture models (HF dirs, GGUFs) and their HF transformers outputs.
"""Make tests/reference/fixtures/models/: small random Qwen3-MoE and Mixtral models, saved as HF
directories and as GGUF files written the way llama.cpp's convert_hf_to_gguf.py writes them,
with reference logits, greedy continuations and one perplexity figure computed by transformers
in float32. The file formats are described in tests/reference/fixtures/README.md.

Deterministic: every weight comes from a seeded torch.Generator, computation runs on one thread.
Needs the fixture tokenizers (tools/reference/make_tokenizers.py) and the packages pinned in
tools/reference/requirements.txt (tools/venv.sh creates .venv-tools with them).

Usage: ${HEXE_PY:-.venv-tools/bin/python} tools/reference/make_models.py [--only NAME ...]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

import gguf_export  # noqa: E402
import hf_models  # noqa: E402
from model_specs import MODELS, PERPLEXITY, PROMPTS  # noqa: E402
from selfcheck import check_gguf  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "reference" / "fixtures"
TOKENIZERS = FIXTURES / "tokenizers"
OUT = FIXTURES / "models"
N_NEW = 16          # greedy continuation length
LONG_TAIL = 8       # logits kept for the last LONG_TAIL positions of prompts longer than 16
FORMAT_VERSION = 1


def rel(p: Path, base: Path) -> str:
    return p.relative_to(base).as_posix()


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def tokenize_prompts(tok_dir: Path, texts: dict[str, str]) -> list[dict]:
    tok = AutoTokenizer.from_pretrained(tok_dir)
    out = []
    for name, text in texts.items():
        ids = tok(text).input_ids  # with the special tokens the tokenizer adds (BOS for llama)
        out.append({"name": name, "text": text, "tokens": ids})
    return out


def positions_kept(n: int) -> list[int]:
    return list(range(n)) if n <= 16 else list(range(n - LONG_TAIL, n))


def reference_outputs(model, prompts: list[dict], out_dir: Path, variant: str, base: Path) -> dict:
    """Logits (selected positions), greedy continuations and router statistics for one set of
    weights. Logits files: float32 little-endian, [len(positions), n_vocab] row-major."""
    probe = hf_models.RouterProbe(model)
    logits_meta, greedy_meta = [], []
    max_abs = 0.0
    for p in prompts:
        toks = p["tokens"]
        full = hf_models.logits_all(model, toks)
        gaps = probe.take_token_gaps()
        pos = positions_kept(len(toks))
        kept = np.ascontiguousarray(full[pos], dtype="<f4")
        f = out_dir / f"{variant}-{p['name']}.logits.bin"
        f.write_bytes(kept.tobytes())
        max_abs = max(max_abs, float(np.abs(kept).max()))
        top2 = np.sort(kept, axis=1)[:, -2:]
        logits_meta.append({"prompt": p["name"], "file": rel(f, base), "positions": pos,
                            "shape": list(kept.shape), "dtype": "float32", "byte_order": "little",
                            "argmax": [int(i) for i in kept.argmax(axis=1)],
                            "top2_margin": [round(float(b - a), 6) for a, b in top2],
                            "router_min_logit_gap": [round(float(g), 6) for g in gaps]})
    usage_prompt_tokens = {i: u.tolist() for i, u in probe.usage.items()}
    probe.close()
    for p in prompts:
        new, margins = hf_models.greedy(model, p["tokens"], N_NEW)
        greedy_meta.append({"prompt": p["name"], "new_tokens": new,
                            "top2_margin": [round(m, 6) for m in margins],
                            "min_top2_margin": round(min(margins), 6)})
    n_exp = model.config.num_local_experts
    for i, u in usage_prompt_tokens.items():
        used = sum(1 for c in u if c > 0)
        if used < max(min(n_exp, 3), n_exp // 2):
            raise RuntimeError(f"layer {i}: router used only {used} of {n_exp} experts")
    return {"logits": logits_meta, "greedy": greedy_meta, "max_abs_logit": max_abs,
            "router_expert_use_count": {str(i): u for i, u in usage_prompt_tokens.items()}}


def make_model(spec: dict) -> dict:
    name = spec["name"]
    mdir = OUT / name
    if mdir.exists():
        shutil.rmtree(mdir)
    (mdir / "logits").mkdir(parents=True)
    tok_dir = TOKENIZERS / spec["tokenizer"]
    vocab_size = len(AutoTokenizer.from_pretrained(tok_dir))
    params = dict(spec["config"], vocab_size=vocab_size)
    model = hf_models.build_model(spec["model_type"], params, spec["seed"],
                                  round_bf16=spec["hf_dtype"] == "bfloat16")
    hf_dir = mdir / "hf"
    hf_files = hf_models.save_hf(model, hf_dir, tok_dir, getattr(torch, spec["hf_dtype"]),
                                 spec.get("hf_shards", 1))
    cfg = json.loads((hf_dir / "config.json").read_text())
    state = hf_models.read_checkpoint(hf_dir)

    # The saved directory must reproduce the in-memory model exactly.
    reloaded = hf_models.load_hf(hf_dir)
    prompts = tokenize_prompts(tok_dir, PROMPTS[spec["tokenizer"]])
    for p in prompts:
        a = hf_models.logits_all(model, p["tokens"])
        b = hf_models.logits_all(reloaded, p["tokens"])
        if not np.array_equal(a, b):
            raise RuntimeError(f"{name}: reloaded HF dir gives different logits")

    variants = []
    for vt in spec["gguf_types"]:
        files = [f"{name}-{vt}.gguf"]
        types = gguf_export.write_gguf(mdir / files[0], hf_dir, cfg, state, vt, name)
        if vt in spec.get("per_expert_types", ()):
            files.append(f"{name}-{vt}-per-expert.gguf")
            gguf_export.write_gguf(mdir / files[1], hf_dir, cfg, state, vt, name, per_expert=True)
        gstates = [check_gguf(mdir / f, cfg, state, vt, tok_dir / "vocab.gguf") for f in files]
        for other in gstates[1:]:
            assert all(np.array_equal(gstates[0][k], other[k]) for k in gstates[0])
        vmodel = reloaded if vt == "f32" else hf_models.model_from_checkpoint(hf_dir, gstates[0])
        ref = reference_outputs(vmodel, prompts, mdir / "logits", vt, mdir)
        type_counts: dict[str, int] = {}
        for t in types.values():
            type_counts[t] = type_counts.get(t, 0) + 1
        variants.append({"name": vt, "gguf": files,
                         "weights": "hf" if vt == "f32" else f"hf weights as stored in {files[0]}, dequantised to float32",
                         "tensor_types": types, "tensor_type_counts": type_counts, **ref})

    result = {
        "format_version": FORMAT_VERSION,
        "model": name,
        "description": spec["description"],
        "hf_architecture": cfg["architectures"][0],
        "gguf_architecture": gguf_export.GGUF_ARCH[cfg["model_type"]],
        "tokenizer": spec["tokenizer"],
        "seed": spec["seed"],
        "hf_dir": "hf",
        "hf_files": hf_files,
        "hf_dtype": spec["hf_dtype"],
        "n_vocab": vocab_size,
        "prompts": prompts,
        "variants": variants,
    }
    if PERPLEXITY["model"] == name:
        result["perplexity"] = make_perplexity(reloaded, tok_dir, mdir)
    write_json(mdir / "reference.json", result)
    return result


def make_perplexity(model, tok_dir: Path, mdir: Path) -> dict:
    tok = AutoTokenizer.from_pretrained(tok_dir)
    text_path = Path(__file__).resolve().parent / PERPLEXITY["text_file"]
    text = text_path.read_text(encoding="utf-8")
    shutil.copyfile(text_path, mdir / "perplexity.txt")
    tokens = tok(text).input_ids
    # llama-perplexity tokenizes with special tokens: BOS first when the vocabulary adds it.
    bos = tok.bos_token_id if tokens and tokens[0] == tok.bos_token_id else None
    res = hf_models.perplexity_llama_cpp(model, tokens, PERPLEXITY["n_ctx"], bos)
    return {"text_file": "perplexity.txt", "variant": "f32", "n_chars": len(text),
            "n_tokens": len(tokens), "tokens": tokens, "adds_bos": bos is not None,
            "bos_id": bos, **res}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="model names to regenerate (default: all)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("gguf").setLevel(logging.ERROR)  # SpecialVocab's template-parsing notes
    OUT.mkdir(parents=True, exist_ok=True)
    for spec in MODELS:
        if args.only and spec["name"] not in args.only:
            continue
        res = make_model(spec)
        mdir = OUT / spec["name"]
        size = sum(f.stat().st_size for f in mdir.rglob("*") if f.is_file())
        margins = [g["min_top2_margin"] for v in res["variants"] for g in v["greedy"]]
        print(f"{spec['name']}: {size / 1e6:.2f} MB, variants {[v['name'] for v in res['variants']]}, "
              f"min greedy margin {min(margins):.4f}"
              + (f", PPL {res['perplexity']['ppl']:.4f}" if "perplexity" in res else ""))
    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"total {total / 1e6:.2f} MB in {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
