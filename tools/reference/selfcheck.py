# Reads a written fixture GGUF back and checks it against the HF checkpoint it came from.
"""Self-check of one exported GGUF: metadata keys and values, tokenizer keys against the
tokenizer fixture's vocab.gguf, tensor types (the converter's policy), raw Q8_0 block layout, and
dequantised weights against the HF checkpoint (exact for F32, f16-rounded for F16, within
0.563 quantisation steps for Q8_0: half a step plus the f16 rounding of the scale). Returns the
weights in HF checkpoint naming, dequantised, for the reference runs."""
from __future__ import annotations

from pathlib import Path

import numpy as np

import gguf
from gguf import GGMLQuantizationType as QT

import gguf_export


def _field(r: gguf.GGUFReader, key: str):
    f = r.get_field(key)
    if f is None:
        raise AssertionError(f"missing key {key}")
    return f.contents()


def check_metadata(r: gguf.GGUFReader, cfg: dict, vt: str) -> None:
    arch = gguf_export.GGUF_ARCH[cfg["model_type"]]
    rope = cfg.get("rope_parameters") or {}
    want = {
        "general.architecture": arch,
        "general.file_type": int(gguf_export.FILE_TYPES[vt]),
        "general.quantization_version": gguf.GGML_QUANT_VERSION,
        f"{arch}.block_count": cfg["num_hidden_layers"],
        f"{arch}.context_length": cfg["max_position_embeddings"],
        f"{arch}.embedding_length": cfg["hidden_size"],
        f"{arch}.feed_forward_length": cfg["intermediate_size"],
        f"{arch}.attention.head_count": cfg["num_attention_heads"],
        f"{arch}.attention.head_count_kv": cfg["num_key_value_heads"],
        f"{arch}.expert_count": cfg["num_local_experts"],
        f"{arch}.expert_used_count": cfg["num_experts_per_tok"],
    }
    if cfg["model_type"] == "qwen3_moe":
        want[f"{arch}.attention.key_length"] = cfg["head_dim"]
        want[f"{arch}.attention.value_length"] = cfg["head_dim"]
        want[f"{arch}.expert_feed_forward_length"] = cfg["moe_intermediate_size"]
        want["tokenizer.ggml.model"] = "gpt2"
        want["tokenizer.ggml.pre"] = "qwen2"
    else:
        want[f"{arch}.vocab_size"] = cfg["vocab_size"]
        want[f"{arch}.rope.dimension_count"] = cfg["hidden_size"] // cfg["num_attention_heads"]
        want["tokenizer.ggml.model"] = "llama"
        want["tokenizer.ggml.add_bos_token"] = True
    norm_key = f"{arch}.expert_weights_norm"
    if cfg["model_type"] == "qwen3_moe" and not cfg["norm_topk_prob"]:
        want[norm_key] = False
    elif r.get_field(norm_key) is not None:
        raise AssertionError(f"{norm_key} written although the top-k weights are renormalised")
    for k, v in want.items():
        got = _field(r, k)
        if got != v:
            raise AssertionError(f"{k} = {got!r}, expected {v!r}")
    for k, v in ((f"{arch}.rope.freq_base", rope["rope_theta"]),
                 (f"{arch}.attention.layer_norm_rms_epsilon", cfg["rms_norm_eps"])):
        if abs(_field(r, k) - v) > 1e-6 * abs(v):
            raise AssertionError(f"{k} = {_field(r, k)}, expected {v}")
    if len(_field(r, "tokenizer.ggml.tokens")) != cfg["vocab_size"]:
        raise AssertionError("token list length != vocab_size")


def check_tokenizer_keys(r: gguf.GGUFReader, vocab_gguf: Path) -> None:
    """The model's tokenizer.* keys must equal those of the tokenizer fixture's vocab.gguf."""
    v = gguf.GGUFReader(vocab_gguf)
    mine = {k: f for k, f in r.fields.items() if k.startswith("tokenizer.")}
    theirs = {k: f for k, f in v.fields.items() if k.startswith("tokenizer.")}
    if set(mine) != set(theirs):
        raise AssertionError(f"tokenizer keys differ from {vocab_gguf}: {sorted(set(mine) ^ set(theirs))}")
    for k, f in mine.items():
        if f.types != theirs[k].types or f.contents() != theirs[k].contents():
            raise AssertionError(f"{k} differs from {vocab_gguf}")


def check_q8_0_blocks(t, deq: np.ndarray) -> None:
    """Decodes the raw bytes as ggml's block_q8_0 {f16 d; int8 qs[32]} independently of
    gguf.quants and compares with its dequantisation."""
    raw = np.ascontiguousarray(t.data).reshape(-1, 34)
    d = raw[:, :2].copy().view("<f2").astype(np.float32)
    qs = raw[:, 2:].copy().view(np.int8).astype(np.float32)
    mine = (qs * d).reshape(-1)
    if not np.array_equal(mine, deq.reshape(-1)):
        raise AssertionError(f"{t.name}: Q8_0 block decode mismatch")


def check_gguf(path: Path, cfg: dict, state: dict[str, np.ndarray], vt: str,
               vocab_gguf: Path | None = None) -> dict[str, np.ndarray]:
    r = gguf.GGUFReader(path)
    check_metadata(r, cfg, vt)
    if vocab_gguf is not None and vocab_gguf.exists():
        check_tokenizer_keys(r, vocab_gguf)
    ftype = gguf_export.FILE_TYPES[vt]
    per_expert = any(".ffn_gate.0." in t.name for t in r.tensors)
    expected = dict(gguf_export.hf_to_gguf_tensors(cfg, state, per_expert=per_expert))
    got: dict[str, np.ndarray] = {}
    if {t.name for t in r.tensors} != set(expected):
        raise AssertionError(f"{path.name}: tensor names differ from the expected set")
    for t in r.tensors:
        w = expected[t.name]
        shape = [int(n) for n in reversed(t.shape)]
        if shape != list(w.shape):
            raise AssertionError(f"{t.name}: shape {shape}, expected {list(w.shape)}")
        want_type = gguf_export.tensor_qtype(t.name, w, ftype)
        if want_type == QT.Q8_0 and w.shape[-1] % 32 != 0:
            want_type = QT.F16
        if t.tensor_type != want_type:
            raise AssertionError(f"{t.name}: type {t.tensor_type.name}, expected {want_type.name}")
        deq = gguf.quants.dequantize(t.data, t.tensor_type).reshape(shape).astype(np.float32)
        if t.tensor_type == QT.F32:
            ok = np.array_equal(deq, w)
        elif t.tensor_type == QT.F16:
            ok = np.array_equal(deq, w.astype(np.float16).astype(np.float32))
        else:
            check_q8_0_blocks(t, deq)
            blocks = w.reshape(-1, 32)
            step = np.abs(blocks).max(axis=1, keepdims=True) / 127
            # |q*f16(d) - x| <= d/2 + 127*|f16(d) - d| <= d * (0.5 + 127 * 2^-11)
            ok = bool(np.all(np.abs(deq.reshape(-1, 32) - blocks) <= step * 0.563 + 1e-7))
        if not ok:
            raise AssertionError(f"{path.name}: {t.name} does not match the HF weights")
        got[t.name] = deq
    back = gguf_export.gguf_to_hf_state(cfg, got)
    if set(back) != set(state):
        raise AssertionError(f"{path.name}: tensors do not map back to the HF checkpoint names")
    if vt == "f32":
        for k, v in state.items():
            if not np.array_equal(back[k], v):
                raise AssertionError(f"{path.name}: {k} differs after GGUF round trip")
    return back
