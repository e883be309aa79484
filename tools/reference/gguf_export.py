# HF checkpoint (safetensors names) <-> GGUF, the way llama.cpp's convert_hf_to_gguf.py does it.
"""GGUF export of the fixture models, mirroring llama.cpp's converter (conversion/base.py,
llama.py, qwen.py) for the two architectures the fixtures use:

  Qwen3MoeForCausalLM -> "qwen3moe": q/k kept as HF stores them (NEOX RoPE), experts stacked.
  MixtralForCausalLM  -> "llama":    q/k rows permuted by LlamaModel.permute (interleaved RoPE),
                                     experts stacked (or, on request, the old per-expert layout
                                     blk.N.ffn_{gate,down,up}.E.weight that llama.cpp still loads).

Type policy (ModelBase.prepare_tensors): 1-D tensors, *_norm.weight and ffn_gate_inp stay F32;
everything else takes the file type; a Q8_0 tensor whose row (ne[0]) is not a multiple of 32
raises QuantError in gguf.quants and falls back to F16, as the converter does.

Also the inverse: read a GGUF back and rebuild the HF checkpoint dict (dequantised, permutation
undone, experts split), used for the reference runs and the self-check.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import gguf
from gguf import GGMLQuantizationType as QT
from gguf import LlamaFileType as FT

GGUF_ARCH = {"qwen3_moe": "qwen3moe", "mixtral": "llama"}
FILE_TYPES = {"f32": FT.ALL_F32, "f16": FT.MOSTLY_F16, "q8_0": FT.MOSTLY_Q8_0}
_FT_QTYPE = {FT.ALL_F32: QT.F32, FT.MOSTLY_F16: QT.F16, FT.MOSTLY_Q8_0: QT.Q8_0}

# HF expert projection name -> GGUF stacked tensor, per architecture. Mixtral's w1 is the gate,
# w3 the up and w2 the down projection.
_EXPERT_NAMES = {
    "qwen3_moe": ("mlp.experts", {"gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}),
    "mixtral": ("block_sparse_moe.experts", {"w1": "ffn_gate", "w3": "ffn_up", "w2": "ffn_down"}),
}
_ROUTER = {"qwen3_moe": "mlp.gate.weight", "mixtral": "block_sparse_moe.gate.weight"}
_LAYER_MAP = {
    "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.q_norm.weight": "attn_q_norm.weight",
    "self_attn.k_norm.weight": "attn_k_norm.weight",
}
_GLOBAL_MAP = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}


def llama_permute(w: np.ndarray, n_head: int, n_head_kv: int | None) -> np.ndarray:
    """LlamaModel.permute: rows of each head go from [x0..x(d/2-1), y0..] (HF rotate_half
    layout) to interleaved pairs (x0, y0, x1, y1, ...), so ggml's normal RoPE applies."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def llama_unpermute(w: np.ndarray, n_head: int, n_head_kv: int | None) -> np.ndarray:
    """Inverse of llama_permute."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def hf_to_gguf_tensors(cfg: dict, state: dict[str, np.ndarray],
                       per_expert: bool = False) -> list[tuple[str, np.ndarray]]:
    """Maps an HF checkpoint dict (the names save_pretrained writes) to GGUF tensors, float32,
    in numpy order ([E, rows, cols]; GGUF ne is the reverse). Raises on any unused tensor."""
    mt = cfg["model_type"]
    n_layer, n_exp = cfg["num_hidden_layers"], cfg["num_local_experts"]
    n_head, n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    exp_prefix, exp_names = _EXPERT_NAMES[mt]
    used: set[str] = set()
    out: list[tuple[str, np.ndarray]] = []

    def take(name: str) -> np.ndarray:
        used.add(name)
        return np.asarray(state[name], dtype=np.float32)

    out.append(("token_embd.weight", take("model.embed_tokens.weight")))
    for i in range(n_layer):
        p = f"model.layers.{i}."
        for hf, gg in _LAYER_MAP.items():
            if p + hf not in state:
                continue
            w = take(p + hf)
            if mt == "mixtral" and hf == "self_attn.q_proj.weight":
                w = llama_permute(w, n_head, n_head)
            if mt == "mixtral" and hf == "self_attn.k_proj.weight":
                w = llama_permute(w, n_head, n_kv)
            out.append((f"blk.{i}.{gg}", w))
        out.append((f"blk.{i}.ffn_gate_inp.weight", take(p + _ROUTER[mt])))
        for hf_w, gg in exp_names.items():
            per = [take(f"{p}{exp_prefix}.{e}.{hf_w}.weight") for e in range(n_exp)]
            if per_expert:
                out.extend((f"blk.{i}.{gg}.{e}.weight", w) for e, w in enumerate(per))
            else:
                out.append((f"blk.{i}.{gg}_exps.weight", np.stack(per, axis=0)))
    out.append(("output_norm.weight", take("model.norm.weight")))
    if "lm_head.weight" in state:  # absent when tied: llama.cpp then reuses token_embd
        out.append(("output.weight", take("lm_head.weight")))
    unused = sorted(set(state) - used)
    if unused:
        raise ValueError(f"tensors not mapped to GGUF: {unused}")
    return out


def tensor_qtype(name: str, data: np.ndarray, ftype: FT) -> QT:
    """The converter's choice of type for one tensor (before the Q8_0 -> F16 fallback)."""
    if data.ndim <= 1 or name.endswith("_norm.weight"):
        return QT.F32
    if ".ffn_gate_inp." in name or not name.endswith(".weight"):
        return QT.F32
    return _FT_QTYPE[ftype]


def quantize_tensor(name: str, data: np.ndarray, ftype: FT) -> tuple[np.ndarray, QT]:
    qtype = tensor_qtype(name, data, ftype)
    try:
        return gguf.quants.quantize(data, qtype), qtype
    except gguf.QuantError:  # row not a multiple of the block size
        return gguf.quants.quantize(data, QT.F16), QT.F16


def _token_bytes(s: str) -> bytes:
    return s.encode("utf-8")


def add_vocab_gpt2(w: gguf.GGUFWriter, hf_dir: Path, vocab_size: int, tokpre: str) -> None:
    """TextModel._set_vocab_gpt2 / get_vocab_base. tokpre is what get_vocab_base_pre would find
    for the real tokenizer this one imitates (our trained vocab has no registered hash)."""
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(hf_dir)
    vocab = tok.get_vocab()
    assert max(vocab.values()) < vocab_size
    reverse = {i: t for t, i in vocab.items()}
    added = tok.get_added_vocab()
    added_dec = tok.added_tokens_decoder
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in reverse:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        t = reverse[i]
        if t in added:
            if not added_dec[i].normalized:
                t = tok.decode(tok.encode(t, add_special_tokens=False))
            if added_dec[i].special or (t.startswith("<|") and t.endswith("|>")):
                types.append(gguf.TokenType.CONTROL)
            else:
                t = t.replace("\u2581", " ")
                types.append(gguf.TokenType.USER_DEFINED)
        else:
            types.append(gguf.TokenType.NORMAL)
        tokens.append(t)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(tokpre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    gguf.SpecialVocab(hf_dir, load_merges=True).add_to_gguf(w, quiet=True)


def add_vocab_llama_spm(w: gguf.GGUFWriter, hf_dir: Path, vocab_size: int) -> None:
    """TextModel._set_vocab_sentencepiece, as it would read a Mixtral-style tokenizer.model made
    from our vocabulary: pieces in id order; sentencepiece BPE scores (a normal piece scores minus
    its rank, here -id; control, unknown and byte pieces 0); types UNKNOWN for <unk>, CONTROL for
    <s> and </s>, BYTE for <0xXX>, NORMAL otherwise. This is the form the vocab-only
    tokenizers/llama-spm/vocab.gguf uses, and the self-check requires the two to agree, so the
    tokenizer fixtures and the model fixtures describe one tokenizer. (Differences from what the
    converter would do: it also re-marks tokenizer_config's special added tokens CONTROL with score
    -1000, <unk> included, and writes add_sep_token false; and without a tokenizer.model it takes
    the _set_vocab_llama_hf path, scoring every piece -1000, which llama.cpp's SPM merge order
    cannot use. Tokenization is the same for any scores that order the pieces by id.)"""
    tj = json.loads((hf_dir / "tokenizer.json").read_text(encoding="utf-8"))
    vocab: dict[str, int] = tj["model"]["vocab"]
    assert len(vocab) == vocab_size and sorted(vocab.values()) == list(range(vocab_size))
    specials = {t["id"] for t in tj["added_tokens"] if t["special"]}
    tokens = [b""] * vocab_size
    scores = [0.0] * vocab_size
    types = [gguf.TokenType.NORMAL] * vocab_size
    for piece, i in vocab.items():
        tokens[i] = _token_bytes(piece)
        if piece == tj["model"].get("unk_token"):
            types[i] = gguf.TokenType.UNKNOWN
        elif i in specials:
            types[i] = gguf.TokenType.CONTROL
        elif piece.startswith("<0x") and piece.endswith(">") and len(piece) == 6:
            types[i] = gguf.TokenType.BYTE
        else:
            scores[i] = -float(i)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    sv = gguf.SpecialVocab(hf_dir, n_vocab=vocab_size)
    sv.add_special_token.pop("sep", None)
    sv.add_to_gguf(w, quiet=True)


def add_hparams(w: gguf.GGUFWriter, cfg: dict, ftype: FT) -> None:
    """TextModel.set_gguf_parameters + the Qwen2MoeModel / LlamaModel additions."""
    mt = cfg["model_type"]
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    rope = cfg.get("rope_parameters") or {}
    assert rope.get("rope_type", "default") == "default", "only plain RoPE is exported"
    w.add_rope_freq_base(rope.get("rope_theta", cfg.get("rope_theta")))
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_expert_count(cfg["num_local_experts"])
    w.add_expert_used_count(cfg["num_experts_per_tok"])
    if cfg.get("head_dim") is not None:
        w.add_key_length(cfg["head_dim"])
        w.add_value_length(cfg["head_dim"])
    w.add_file_type(ftype)
    if mt == "qwen3_moe":
        w.add_expert_feed_forward_length(cfg["moe_intermediate_size"])
        # Not written by llama.cpp's converter (its qwen3moe graph always renormalises the top-k
        # weights). Written here only when false, under the key llama.cpp uses for other MoE
        # architectures, so a reader that defaults it to true reads real Qwen3 files right.
        if not cfg["norm_topk_prob"]:
            w.add_expert_weights_norm(False)
    else:
        w.add_vocab_size(cfg["vocab_size"])
        head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
        w.add_rope_dimension_count(head_dim)


def write_gguf(path: Path, hf_dir: Path, cfg: dict, state: dict[str, np.ndarray], ftype_name: str,
               model_name: str, per_expert: bool = False) -> dict[str, str]:
    """Writes one GGUF; returns {tensor name: GGML type name} for the fixture metadata."""
    ftype = FILE_TYPES[ftype_name]
    w = gguf.GGUFWriter(path, GGUF_ARCH[cfg["model_type"]])
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name(model_name)
    add_hparams(w, cfg, ftype)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    if cfg["model_type"] == "qwen3_moe":
        add_vocab_gpt2(w, hf_dir, cfg["vocab_size"], tokpre="qwen2")
    else:
        add_vocab_llama_spm(w, hf_dir, cfg["vocab_size"])
    types = {}
    for name, data in hf_to_gguf_tensors(cfg, state, per_expert=per_expert):
        q, qtype = quantize_tensor(name, data, ftype)
        w.add_tensor(name, q, raw_dtype=qtype)
        types[name] = qtype.name
    # prepare_metadata: the size label ("8x21K") from the tensors just added.
    w.add_size_label(gguf.size_label(*w.get_total_parameter_count()))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return types


def read_gguf_tensors(path: Path) -> dict[str, tuple[np.ndarray, str]]:
    """{name: (float32 array in numpy order, GGML type name)}, dequantised."""
    r = gguf.GGUFReader(path)
    out = {}
    for t in r.tensors:
        shape = [int(n) for n in reversed(t.shape)]
        data = gguf.quants.dequantize(t.data, t.tensor_type).reshape(shape).astype(np.float32)
        out[t.name] = (data, t.tensor_type.name)
    return out


def gguf_to_hf_state(cfg: dict, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Inverse of hf_to_gguf_tensors (either expert layout). Raises on any unused tensor."""
    mt = cfg["model_type"]
    n_head, n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    exp_prefix, exp_names = _EXPERT_NAMES[mt]
    used: set[str] = set()
    st: dict[str, np.ndarray] = {}

    def take(name: str) -> np.ndarray:
        used.add(name)
        return tensors[name]

    for hf, gg in _GLOBAL_MAP.items():
        if gg in tensors:
            st[hf] = take(gg)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        for hf, gg in _LAYER_MAP.items():
            name = f"blk.{i}.{gg}"
            if name not in tensors:
                continue
            w = take(name)
            if mt == "mixtral" and hf == "self_attn.q_proj.weight":
                w = llama_unpermute(w, n_head, n_head)
            if mt == "mixtral" and hf == "self_attn.k_proj.weight":
                w = llama_unpermute(w, n_head, n_kv)
            st[p + hf] = w
        st[p + _ROUTER[mt]] = take(f"blk.{i}.ffn_gate_inp.weight")
        for hf_w, gg in exp_names.items():
            stacked = f"blk.{i}.{gg}_exps.weight"
            for e in range(cfg["num_local_experts"]):
                w = take(stacked)[e] if stacked in tensors else take(f"blk.{i}.{gg}.{e}.weight")
                st[f"{p}{exp_prefix}.{e}.{hf_w}.weight"] = w
    unused = sorted(set(tensors) - used)
    if unused:
        raise ValueError(f"GGUF tensors not mapped back: {unused}")
    return st
