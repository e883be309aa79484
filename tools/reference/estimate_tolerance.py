#!/usr/bin/env python3
# Estimates how far a llama.cpp-style runtime's logits may fall from the fixture references.
"""The F16 and Q8_0 references are HF runs on the dequantised weights with float32 activations.
A ggml-style CPU runtime also rounds the *activations* that meet those weights: to f16 for F16
weights, to Q8_0 blocks (32 values, f16 scale, round-to-nearest int8) for Q8_0 weights. This
script re-runs each fixture with that activation rounding simulated in transformers and prints
the relative logit error and argmax agreement against the stored references, which is what the
README's tolerances are based on. Nothing is written.

Usage: ${HEXE_PY:-.venv-tools/bin/python} tools/reference/estimate_tolerance.py [-v]
"""
from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

import gguf_export  # noqa: E402
import hf_models  # noqa: E402

ROUTER_GAP = 0.05  # the README's rule: positions with a smaller top-k router logit gap are fragile
MODELS = Path(__file__).resolve().parents[2] / "tests" / "reference" / "fixtures" / "models"


def round_q8_0(x: torch.Tensor) -> torch.Tensor:
    """ggml's quantize_row_q8_0 then dequantise, along the last dimension (a multiple of 32)."""
    shape = x.shape
    b = x.reshape(-1, 32)
    d = b.abs().amax(dim=1, keepdim=True) / 127
    inv = torch.where(d == 0, torch.zeros_like(d), 1 / d)
    q = torch.sign(b * inv) * torch.floor((b * inv).abs() + 0.5)
    return (q * d.half().float()).reshape(shape)


@contextmanager
def rounded_activations(kind_by_storage: dict[int, str]):
    """Patches F.linear: the input is rounded as ggml would for the weight's stored type."""
    orig = F.linear

    def linear(x, w, bias=None):
        kind = kind_by_storage.get(w.untyped_storage().data_ptr())
        if kind == "Q8_0" and x.shape[-1] % 32 == 0:
            x = round_q8_0(x)
        elif kind in ("F16", "Q8_0"):  # Q8_0 fell back to F16 where rows are not whole blocks
            x = x.half().float()
        return orig(x, w, bias)

    F.linear = linear
    try:
        yield
    finally:
        F.linear = orig


def storage_kinds(model, cfg: dict, types: dict[str, str]) -> dict[int, str]:
    """Maps each HF parameter's storage to the GGUF type its weight has in the file."""
    # Which GGUF tensor each in-memory parameter comes from (experts: any one of the stack).
    by_param = {"model.embed_tokens.weight": "token_embd.weight", "lm_head.weight": "output.weight"}
    for i in range(cfg["num_hidden_layers"]):
        for hf, gg in (("q_proj", "attn_q"), ("k_proj", "attn_k"), ("v_proj", "attn_v"),
                       ("o_proj", "attn_output")):
            by_param[f"model.layers.{i}.self_attn.{hf}.weight"] = f"blk.{i}.{gg}.weight"
        by_param[f"model.layers.{i}.mlp.experts.gate_up_proj"] = f"blk.{i}.ffn_gate_exps.weight"
        by_param[f"model.layers.{i}.mlp.experts.down_proj"] = f"blk.{i}.ffn_down_exps.weight"
    kinds = {}
    params = dict(model.named_parameters())
    for p_name, g_name in by_param.items():
        if p_name in params and g_name in types:
            kinds[params[p_name].untyped_storage().data_ptr()] = types[g_name]
    return kinds


def main() -> int:
    verbose = "-v" in sys.argv[1:]
    torch.set_num_threads(1)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    for ref_path in sorted(MODELS.glob("*/reference.json")):
        ref = json.loads(ref_path.read_text())
        mdir = ref_path.parent
        cfg = json.loads((mdir / "hf" / "config.json").read_text())
        for v in ref["variants"]:
            tensors = {k: a for k, (a, _) in gguf_export.read_gguf_tensors(mdir / v["gguf"][0]).items()}
            model = hf_models.model_from_checkpoint(mdir / "hf", gguf_export.gguf_to_hf_state(cfg, tensors))
            kinds = storage_kinds(model, cfg, v["tensor_types"])
            worst, worst_robust, flips = 0.0, 0.0, 0
            for lg in v["logits"]:
                toks = next(p["tokens"] for p in ref["prompts"] if p["name"] == lg["prompt"])
                want = np.fromfile(mdir / lg["file"], dtype="<f4").reshape(lg["shape"])
                with rounded_activations(kinds):
                    got = hf_models.logits_all(model, toks)[lg["positions"]]
                err = np.abs(got - want).max(axis=1) / np.abs(want).max(axis=1)
                worst = max(worst, float(err.max()))
                gap = np.array(lg["router_min_logit_gap"])[lg["positions"]]
                robust = gap >= ROUTER_GAP
                if robust.any():
                    worst_robust = max(worst_robust, float(err[robust].max()))
                if verbose:
                    print(f"  {lg['prompt']:6s} per-position error {np.array2string(err, precision=4)}"
                          f" router gap {np.array2string(np.array(lg['router_min_logit_gap'])[lg['positions']], precision=3)}")
                flips += int((got.argmax(axis=1) != want.argmax(axis=1)).sum())
            print(f"{ref['model']:12s} {v['name']:5s} simulated ggml activation rounding: "
                  f"max relative logit error {worst:.2e} (positions with router gap >= "
                  f"{ROUTER_GAP}: {worst_robust:.2e}), argmax changes {flips}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
