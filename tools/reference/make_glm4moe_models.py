#!/usr/bin/env python3
# Regenerates the glm4moe reference fixture: a small random Glm4MoeForCausalLM, HF + GGUF, logits.
"""Make tests/reference/fixtures/models/glm4moe-a: a small random Glm4MoeForCausalLM (GQA with
q/k/v biases and per-head q/k RMSNorm, NEOX RoPE on half of each head, sigmoid routing with
e_score_correction_bias over 2 groups, shared expert, first layer dense), saved BF16-exact as an
HF directory and as a glm4moe GGUF written the way llama.cpp's converter writes it
(post_attention_norm, exp_probs_b, stacked experts), plus one random multi-token-prediction block
(nextn_predict_layers 1, blk.L.nextn.* tensors) that the runtime must load and skip: HF has no
MTP block, so equal logits prove it is skipped. Format as make_models.py.

Usage: ${HEXE_PY:-.venv-tools/bin/python} tools/reference/make_glm4moe_models.py
"""
from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import AutoTokenizer, Glm4MoeConfig, Glm4MoeForCausalLM  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

import gguf  # noqa: E402
import gguf_export  # noqa: E402
import hf_models  # noqa: E402
from make_deepseek_models import LONG_TEXT, reference_outputs  # noqa: E402
from make_models import FORMAT_VERSION, OUT, TOKENIZERS, tokenize_prompts, write_json  # noqa: E402
from model_specs import PROMPTS  # noqa: E402

SPEC = {
    "name": "glm4moe-a",
    "description": "Glm4Moe: hidden 64, heads 4 / kv 2 x 32, q/k/v bias, q/k norm, partial RoPE 0.5 "
                   "(16 of 32 dims, NEOX), 3 layers with the first dense; 8 experts in 2 groups, "
                   "topk_group 1, top-2, 1 shared expert, norm_topk_prob true, routed_scaling 2.5; "
                   "GGUF F32 with one random MTP (nextn) block that must be skipped",
    "seed": 4001,
    "config": dict(max_position_embeddings=512, rms_norm_eps=1e-5, bos_token_id=1200, eos_token_id=1202,
                   hidden_size=64, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                   intermediate_size=96, moe_intermediate_size=16, num_hidden_layers=3,
                   first_k_dense_replace=1, n_routed_experts=8, n_group=2, topk_group=1,
                   num_experts_per_tok=2, n_shared_experts=1, norm_topk_prob=True,
                   routed_scaling_factor=2.5, attention_bias=True, use_qk_norm=True,
                   tie_word_embeddings=False, num_nextn_predict_layers=1,
                   rope_parameters={"rope_type": "default", "rope_theta": 1000000.0,
                                    "partial_rotary_factor": 0.5}),
}


def init(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if name.endswith("norm.weight"):
                v = 1.0 + 0.15 * torch.randn(p.shape, generator=g)
            elif name.endswith("embed_tokens.weight"):
                v = 0.6 * torch.randn(p.shape, generator=g)
            elif name.endswith("lm_head.weight") or (name.endswith("gate.weight") and p.dim() == 2):
                v = 2.5 / p.shape[-1] ** 0.5 * torch.randn(p.shape, generator=g)
            elif name.endswith(".bias"):
                v = 0.1 * torch.randn(p.shape, generator=g)
            else:
                v = torch.randn(p.shape, generator=g) / p.shape[-1] ** 0.5
            p.copy_(v.to(torch.bfloat16).to(torch.float32))
        for layer in model.model.layers:
            gate = getattr(layer.mlp, "gate", None)
            if gate is not None and hasattr(gate, "e_score_correction_bias"):
                b = 0.1 * torch.randn(gate.e_score_correction_bias.shape, generator=g)
                gate.e_score_correction_bias.copy_(b.to(torch.bfloat16).to(torch.float32))


def write_gguf(path: Path, hf_dir: Path, cfg: dict, state: dict, name: str, seed: int) -> dict:
    w = gguf.GGUFWriter(path, "glm4moe")
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name(name)
    L, n_mtp = cfg["num_hidden_layers"], cfg["num_nextn_predict_layers"]
    u32 = lambda k, v: w.add_uint32(f"glm4moe.{k}", int(v))  # noqa: E731
    f32 = lambda k, v: w.add_float32(f"glm4moe.{k}", float(v))  # noqa: E731
    u32("block_count", L + n_mtp)
    u32("context_length", cfg["max_position_embeddings"])
    u32("embedding_length", cfg["hidden_size"])
    u32("feed_forward_length", cfg["intermediate_size"])
    u32("attention.head_count", cfg["num_attention_heads"])
    u32("attention.head_count_kv", cfg["num_key_value_heads"])
    u32("attention.key_length", cfg["head_dim"])
    u32("attention.value_length", cfg["head_dim"])
    f32("rope.freq_base", cfg["rope_parameters"]["rope_theta"])
    u32("rope.dimension_count", int(cfg["head_dim"] * cfg["rope_parameters"]["partial_rotary_factor"]))
    f32("attention.layer_norm_rms_epsilon", cfg["rms_norm_eps"])
    u32("expert_count", cfg["n_routed_experts"])
    u32("expert_used_count", cfg["num_experts_per_tok"])
    u32("expert_feed_forward_length", cfg["moe_intermediate_size"])
    u32("expert_shared_count", cfg["n_shared_experts"])
    u32("leading_dense_block_count", cfg["first_k_dense_replace"])
    u32("expert_group_count", cfg["n_group"])
    u32("expert_group_used_count", cfg["topk_group"])
    f32("expert_weights_scale", cfg["routed_scaling_factor"])
    w.add_bool("glm4moe.expert_weights_norm", bool(cfg["norm_topk_prob"]))
    u32("expert_gating_func", 2)
    u32("nextn_predict_layers", n_mtp)
    u32("vocab_size", cfg["vocab_size"])
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    gguf_export.add_vocab_gpt2(w, hf_dir, cfg["vocab_size"], tokpre="qwen2")
    used = set()

    def take(n):
        used.add(n)
        return state[n]

    t = [("token_embd.weight", take("model.embed_tokens.weight")),
         ("output_norm.weight", take("model.norm.weight")), ("output.weight", take("lm_head.weight"))]
    attn = {"input_layernorm.weight": "attn_norm.weight",
            "post_attention_layernorm.weight": "post_attention_norm.weight",
            "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
            "self_attn.v_proj.weight": "attn_v.weight", "self_attn.q_proj.bias": "attn_q.bias",
            "self_attn.k_proj.bias": "attn_k.bias", "self_attn.v_proj.bias": "attn_v.bias",
            "self_attn.o_proj.weight": "attn_output.weight", "self_attn.q_norm.weight": "attn_q_norm.weight",
            "self_attn.k_norm.weight": "attn_k_norm.weight"}
    n_exp = cfg["n_routed_experts"]
    for i in range(L):
        p, b = f"model.layers.{i}.", f"blk.{i}."
        t += [(b + g, take(p + h)) for h, g in attn.items()]
        if p + "mlp.gate.weight" in state:
            t += [(b + "ffn_gate_inp.weight", take(p + "mlp.gate.weight")),
                  (b + "exp_probs_b.bias", take(p + "mlp.gate.e_score_correction_bias"))]
            for hw, gg in (("gate_proj", "ffn_gate"), ("up_proj", "ffn_up"), ("down_proj", "ffn_down")):
                t.append((f"{b}{gg}_exps.weight", np.stack([take(f"{p}mlp.experts.{e}.{hw}.weight") for e in range(n_exp)])))
                t.append((f"{b}{gg}_shexp.weight", take(f"{p}mlp.shared_experts.{hw}.weight")))
        else:
            for hw, gg in (("gate_proj", "ffn_gate"), ("up_proj", "ffn_up"), ("down_proj", "ffn_down")):
                t.append((f"{b}{gg}.weight", take(f"{p}mlp.{hw}.weight")))
    unused = sorted(set(state) - used)
    if unused:
        raise ValueError(f"HF tensors not exported: {unused}")
    # The MTP block: the last MoE layer's tensor shapes, random values, plus the nextn.* tensors.
    rng = np.random.default_rng(seed)
    last = f"blk.{L - 1}."
    h, V = cfg["hidden_size"], cfg["vocab_size"]
    for n, a in list(t):
        if n.startswith(last):
            t.append((f"blk.{L}." + n[len(last):], rng.standard_normal(a.shape).astype(np.float32) * 0.1))
    m = f"blk.{L}.nextn."
    t += [(m + "eh_proj.weight", rng.standard_normal((h, 2 * h)).astype(np.float32) * 0.1),
          (m + "enorm.weight", np.ones(h, np.float32)), (m + "hnorm.weight", np.ones(h, np.float32)),
          (m + "shared_head_norm.weight", np.ones(h, np.float32))]
    types = {}
    for n, a in t:
        w.add_tensor(n, np.ascontiguousarray(a, dtype=np.float32), raw_dtype=gguf.GGMLQuantizationType.F32)
        types[n] = "F32"
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return types


def main() -> int:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("gguf").setLevel(logging.ERROR)
    spec, name = SPEC, SPEC["name"]
    mdir = OUT / name
    if mdir.exists():
        shutil.rmtree(mdir)
    (mdir / "logits").mkdir(parents=True)
    tok_dir = TOKENIZERS / "qwen2-bpe"
    vocab_size = len(AutoTokenizer.from_pretrained(tok_dir))
    cfg = dict(spec["config"], vocab_size=vocab_size)
    config = Glm4MoeConfig(**cfg)
    config._attn_implementation = "eager"
    torch.manual_seed(spec["seed"])
    model = Glm4MoeForCausalLM(config).eval()
    init(model, spec["seed"])
    hf_dir = mdir / "hf"
    hf_files = hf_models.save_hf(model, hf_dir, tok_dir, torch.bfloat16, 1)
    state = hf_models.read_checkpoint(hf_dir)
    reloaded = hf_models.load_hf(hf_dir)
    texts = PROMPTS["qwen2-bpe"]
    prompts = tokenize_prompts(tok_dir, {"one": texts["one"], "short": texts["short"], "long": LONG_TEXT})
    for p in prompts:
        if not np.array_equal(hf_models.logits_all(model, p["tokens"]), hf_models.logits_all(reloaded, p["tokens"])):
            raise RuntimeError(f"{name}: reloaded HF dir gives different logits")
    files = [f"{name}-f32.gguf"]
    types = write_gguf(mdir / files[0], hf_dir, cfg, state, name, spec["seed"])
    ref = reference_outputs(reloaded, prompts, mdir / "logits", mdir)
    result = {
        "format_version": FORMAT_VERSION, "model": name, "description": spec["description"],
        "hf_architecture": "Glm4MoeForCausalLM", "gguf_architecture": "glm4moe", "tokenizer": "qwen2-bpe",
        "seed": spec["seed"], "hf_dir": "hf", "hf_files": hf_files, "hf_dtype": "bfloat16",
        "n_vocab": vocab_size, "prompts": prompts,
        "variants": [{"name": "f32", "gguf": files, "weights": "hf", "tensor_types": types,
                      "tensor_type_counts": {"F32": len(types)}, **ref}],
    }
    write_json(mdir / "reference.json", result)
    size = sum(f.stat().st_size for f in mdir.rglob("*") if f.is_file())
    print(f"{name}: {size / 1e6:.2f} MB, prompts {[len(p['tokens']) for p in prompts]}, min greedy margin "
          f"{min(g['min_top2_margin'] for g in ref['greedy']):.4f}, max |logit| {ref['max_abs_logit']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
