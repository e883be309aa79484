#!/usr/bin/env python3
# Regenerates tests/reference/fixtures/fp8/deepseek3-fp8: a tiny block-FP8 DeepseekV3 checkpoint.
"""Make tests/reference/fixtures/fp8/deepseek3-fp8: a small random DeepseekV3ForCausalLM saved the
way DeepSeek publishes V3/R1, as block-FP8: every linear weight of the decoder layers (attention
projections, dense MLP, routed and shared experts; not the embeddings, norms, router or LM head)
is float8_e4m3fn with a float32 "<name>_scale_inv" of one value per 128 x 128 block, and
config.json has quantization_config {"quant_method": "fp8", "fmt": "e4m3",
"weight_block_size": [128, 128], ...}. The dims are not multiples of 128 (136, 200, 48, ...), so
most weights end in partial blocks, and one tensor holds every finite FP8 code.

Also written:
  dequantised.safetensors  every FP8 tensor as float32, value = fp8 * scale_inv[r // 128][c // 128]
                           (DeepSeek's fp8_cast_bf16.py weight_dequant before its bfloat16 store)
  logits.bin               transformers' float32 logits for reference.json's tokens, with the
                           model's weights = the dequantised values (BF16-exact for the rest)
  reference.json           tokens, shapes, the FP8 tensor names, what the files hold

Usage: ${HEXE_PY:-.venv-tools/bin/python} tools/reference/make_fp8_model.py
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from transformers import AutoTokenizer, DeepseekV3Config, DeepseekV3ForCausalLM  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

import hf_models  # noqa: E402
from make_models import FIXTURES, TOKENIZERS, write_json  # noqa: E402

OUT = FIXTURES / "fp8" / "deepseek3-fp8"
SEED = 3101
BLOCK = 128
FP8_MAX = 448.0  # largest finite float8_e4m3fn
PROMPT = "Groups of experts compete first, then the best."
QUANT_CONFIG = {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                "weight_block_size": [BLOCK, BLOCK]}
CONFIG = dict(
    max_position_embeddings=512, rms_norm_eps=1e-6, bos_token_id=1200, eos_token_id=1202,
    hidden_act="silu", attention_bias=False, rope_interleave=True, tie_word_embeddings=False,
    hidden_size=48, num_attention_heads=2, num_key_value_heads=2, intermediate_size=200,
    moe_intermediate_size=24, qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16,
    kv_lora_rank=32, q_lora_rank=136, num_hidden_layers=2, first_k_dense_replace=1,
    n_routed_experts=4, n_group=1, topk_group=1, num_experts_per_tok=2, n_shared_experts=1,
    norm_topk_prob=True, routed_scaling_factor=2.5,
    rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
)
# Every finite code (all but 0x7F / 0xFF, NaN) goes into this tensor's first elements.
ALL_CODES_TENSOR = "model.layers.0.mlp.down_proj.weight"


def is_fp8_weight(name: str, t: torch.Tensor) -> bool:
    """DeepSeek-V3's FP8 set: 2-D linear weights inside the decoder layers, except the router."""
    return (name.startswith("model.layers.") and name.endswith(".weight") and t.dim() == 2
            and not name.endswith("mlp.gate.weight"))


def block_scales(w: torch.Tensor) -> torch.Tensor:
    """[ceil(R/128), ceil(C/128)] float32: each block's max |w| / 448 (1 for an all-zero block)."""
    R, C = w.shape
    s = torch.ones((R + BLOCK - 1) // BLOCK, (C + BLOCK - 1) // BLOCK, dtype=torch.float32)
    for i in range(s.shape[0]):
        for j in range(s.shape[1]):
            amax = w[i * BLOCK:(i + 1) * BLOCK, j * BLOCK:(j + 1) * BLOCK].abs().max()
            if amax > 0:
                s[i, j] = amax / FP8_MAX
    return s


def expand(s: torch.Tensor, R: int, C: int) -> torch.Tensor:
    return s.repeat_interleave(BLOCK, 0)[:R].repeat_interleave(BLOCK, 1)[:, :C]


def dequantise(q: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """fp8 -> float32, times its block's scale_inv: one float32 multiply per value."""
    return q.to(torch.float32) * expand(s, *q.shape)


def main() -> int:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("gguf").setLevel(logging.ERROR)
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    tok_dir = TOKENIZERS / "qwen2-bpe"
    tok = AutoTokenizer.from_pretrained(tok_dir)
    cfg = dict(CONFIG, vocab_size=len(tok))
    config = DeepseekV3Config(**cfg)
    config._attn_implementation = "eager"
    torch.manual_seed(SEED)
    model = DeepseekV3ForCausalLM(config).eval()
    hf_models.init_weights(model, SEED, round_bf16=True)
    hf_dir = OUT / "hf"
    hf_models.save_hf(model, hf_dir, tok_dir, torch.bfloat16, 1)
    state = load_file(hf_dir / "model.safetensors")

    fp8_state, deq, plain = {}, {}, {}
    for name in sorted(state):
        t = state[name]
        if not is_fp8_weight(name, t):
            fp8_state[name] = t
            plain[name] = t.to(torch.float32)
            continue
        w = t.to(torch.float32)
        s = block_scales(w)
        q = (w / expand(s, *w.shape)).to(torch.float8_e4m3fn)
        if name == ALL_CODES_TENSOR:
            codes = torch.tensor([c for c in range(256) if c not in (0x7F, 0xFF)], dtype=torch.uint8)
            flat = q.view(torch.uint8).reshape(-1).clone()
            flat[:codes.numel()] = codes
            q = flat.reshape(q.shape).view(torch.float8_e4m3fn)
        fp8_state[name] = q.contiguous()
        fp8_state[name + "_scale_inv"] = s.contiguous()
        deq[name] = dequantise(q, s)
        assert torch.isfinite(deq[name]).all(), name
    ragged = [n for n, d in deq.items() if d.shape[0] % BLOCK or d.shape[1] % BLOCK]
    assert len(ragged) == len(deq), "every FP8 weight should end in a partial block"
    assert any(d.shape[0] > BLOCK for d in deq.values()) and any(d.shape[1] > BLOCK for d in deq.values())
    (hf_dir / "model.safetensors").unlink()
    save_file(fp8_state, str(hf_dir / "model.safetensors"), metadata={"format": "pt"})
    hf_cfg = json.loads((hf_dir / "config.json").read_text())
    hf_cfg["quantization_config"] = QUANT_CONFIG
    (hf_dir / "config.json").write_text(json.dumps(hf_cfg, indent=2, sort_keys=True) + "\n")
    save_file(deq, str(OUT / "dequantised.safetensors"), metadata={"format": "pt"})

    # HF on the dequantised weights: the plain config (no quantization_config) and a float32
    # checkpoint with every tensor's value, loaded by transformers' own from_pretrained.
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        del hf_cfg["quantization_config"]
        (tmp / "config.json").write_text(json.dumps(hf_cfg))
        save_file({**plain, **deq}, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        ref = hf_models.load_hf(tmp)
    tokens = tok(PROMPT).input_ids
    logits = np.ascontiguousarray(hf_models.logits_all(ref, tokens), dtype="<f4")
    (OUT / "logits.bin").write_bytes(logits.tobytes())
    top2 = np.sort(logits, axis=1)[:, -2:]
    write_json(OUT / "reference.json", {
        "description": "DeepseekV3, block-FP8 (float8_e4m3fn, 128 x 128 float32 scale_inv blocks, "
                       "partial last blocks); hidden 48, q_lora 136, kv_lora 32, 2 heads, 2 layers "
                       "(first dense, FFN 200), 4 experts top-2 + 1 shared",
        "seed": SEED, "hf_dir": "hf", "block_size": [BLOCK, BLOCK],
        "fp8_tensors": sorted(deq), "all_codes_tensor": ALL_CODES_TENSOR,
        "dequantised": "dequantised.safetensors", "n_vocab": len(tok),
        "prompt": PROMPT, "tokens": tokens,
        "logits": {"file": "logits.bin", "shape": list(logits.shape), "dtype": "float32",
                   "byte_order": "little", "positions": "all",
                   "min_top2_margin": round(float((top2[:, 1] - top2[:, 0]).min()), 6)},
    })
    size = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"{OUT.name}: {size / 1e6:.2f} MB, {len(deq)} FP8 tensors, {len(tokens)} tokens")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
