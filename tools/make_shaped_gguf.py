#!/usr/bin/env python3
"""Writes a GGUF with a real model's shapes and random but valid weights (no download needed).

    ${HEXE_PY:-.venv-tools/bin/python} tools/make_shaped_gguf.py --shape qwen3-30b-a3b \
        --layers 4 --type q8_0 -o /tmp/qwen3-30b-a3b-4l-q8_0.gguf

Keys and tensor names are llama.cpp's (written with the gguf package's GGUFWriter), so the file is
what convert_hf_to_gguf.py + llama-quantize would give, minus meaningful weights: good for load,
placement, kernel and speed work at real shapes. Quantised blocks hold random quants with small
finite f16 scales, so the forward pass stays finite. A minimal GPT-2-style byte-level tokenizer
(256 byte tokens, a few merges, ChatML specials, [PADi] up to the vocab size) makes it runnable.
Tensors are generated and written one at a time: memory stays at about the largest tensor.
The Python environment comes from tools/venv.sh (.venv-tools/).
"""
import argparse
import os
import pathlib
import sys
import time

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT

# Real shapes, from the published config.json files.
SHAPES = {
    "qwen3-30b-a3b": dict(arch="qwen3moe", layers=48, hidden=2048, heads=32, kv_heads=4, head_dim=128,
                          experts=128, experts_used=8, expert_ff=768, ff=6144, vocab=151936,
                          ctx=40960, rope_theta=1e6, rms_eps=1e-6, pre="qwen2"),
    "qwen3-235b-a22b": dict(arch="qwen3moe", layers=94, hidden=4096, heads=64, kv_heads=4, head_dim=128,
                            experts=128, experts_used=8, expert_ff=1536, ff=12288, vocab=151936,
                            ctx=40960, rope_theta=1e6, rms_eps=1e-6, pre="qwen2"),
    "mixtral-8x7b": dict(arch="llama", layers=32, hidden=4096, heads=32, kv_heads=8, head_dim=128,
                         experts=8, experts_used=2, expert_ff=14336, ff=14336, vocab=32000,
                         ctx=32768, rope_theta=1e6, rms_eps=1e-5, pre="default"),
    # DeepSeek-V3/R1 (and Kimi-K2 differs only in experts 384, heads 64, vocab 163840): MLA in the
    # newer GGUF layout (attn_k_b/attn_v_b per head), 3 leading dense layers, 1 shared expert.
    "deepseek-v3": dict(arch="deepseek2", layers=61, hidden=7168, heads=128, kv_heads=1, head_dim=192,
                        experts=256, experts_used=8, expert_ff=2048, ff=18432, vocab=129280,
                        ctx=163840, rope_theta=1e4, rms_eps=1e-6, pre="qwen2",
                        q_lora=1536, kv_lora=512, nope=128, rope=64, v_dim=128, shared=1,
                        dense=3, groups=8, groups_used=4, scale=2.5, yarn=40.0, yarn_ctx=4096),
    # Small enough for tests, still a multiple of 256 where K-quants need it.
    "tiny-qwen3moe": dict(arch="qwen3moe", layers=2, hidden=256, heads=4, kv_heads=2, head_dim=64,
                          experts=8, experts_used=2, expert_ff=256, ff=512, vocab=512,
                          ctx=4096, rope_theta=1e6, rms_eps=1e-6, pre="qwen2"),
}

# Weight types: (GGML type, elements per block, bytes per block,
#                [(byte offset of an f16 field in the block, max |value| it scales to, sign)]).
# Random bytes fill each block; the f16 fields are then overwritten with small finite scales sized
# so that |weight| stays below about 0.05 (q: quant range, sc: 6-bit/8-bit sub-block scale range).
TYPES = {
    "q8_0": (QT.Q8_0, 32, 34, [(0, 0.05 / 127, 1)]),
    "q4_0": (QT.Q4_0, 32, 18, [(0, 0.05 / 8, 1)]),
    "q4_1": (QT.Q4_1, 32, 20, [(0, 0.1 / 15, 1), (2, 0.05, -1)]),
    "q5_0": (QT.Q5_0, 32, 22, [(0, 0.05 / 16, 1)]),
    "q5_1": (QT.Q5_1, 32, 24, [(0, 0.1 / 31, 1), (2, 0.05, -1)]),
    "q4_k": (QT.Q4_K, 256, 144, [(0, 0.1 / (63 * 15), 1), (2, 0.05 / 63, 1)]),
    "q5_k": (QT.Q5_K, 256, 176, [(0, 0.1 / (63 * 31), 1), (2, 0.05 / 63, 1)]),
    "q6_k": (QT.Q6_K, 256, 210, [(208, 0.05 / (128 * 32), 1)]),
}
FLOATS = {"f32": (QT.F32, 4), "f16": (QT.F16, 2), "bf16": (QT.BF16, 2)}
FILE_TYPE = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 7, "q5_0": 8, "q5_1": 9,
             "q4_k": 15, "q5_k": 17, "q6_k": 18, "bf16": 32, "q4_k_m": 15, "q5_k_m": 17}  # llama_ftype (_M variants)
# Mixes: the base type, with q6_K where llama-quantize's Q4_K_M and Q5_K_M put it
# (placement/quant_recipe.cpp): the output head, and attn_v / every ffn_down in the "use more bits" layers.
MIXES = {"q4_k_m": "q4_k", "q5_k_m": "q5_k"}


def use_more_bits(i, n):
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def mix_kind(mix, name, layers):
    base = MIXES[mix]
    if name == "output.weight":
        return "q6_k"
    parts = name.split(".")
    if parts[0] == "blk" and (parts[2] == "attn_v" or parts[2].startswith("ffn_down")):
        if use_more_bits(int(parts[1]), layers):
            return "q6_k"
    return base

CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
          " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
          "{{ '<|im_start|>assistant\\n' }}{% endif %}")


def bytes_to_unicode():
    """GPT-2's byte -> printable character map (tokens are stored in this alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def tokenizer(vocab):
    """Byte tokens, merges of common English pairs, ChatML specials, then [PADi] to `vocab`."""
    byte_map = bytes_to_unicode()
    tokens = [byte_map[b] for b in range(256)]
    types = [gguf.TokenType.NORMAL] * 256
    # Merges in priority order; each joins two existing tokens into a new one ("Ġ" is the space).
    merges = ["Ġ t", "h e", "i n", "e r", "a n", "o n", "r e", "Ġ a", "Ġ s", "Ġ w", "Ġ o", "Ġ c",
              "Ġ b", "Ġ f", "Ġ m", "Ġ p", "Ġ i", "e n", "a t", "o r", "e s", "i s", "i t", "o u",
              "e d", "n d", "Ġt he", "in g", "Ġa nd", "Ġo f", "Ġt o", "Ġi n", "Ġi s", "Ġi t"]
    for m in merges:
        a, b = m.split(" ")
        assert a in tokens and b in tokens and a + b not in tokens, m
        tokens.append(a + b)
        types.append(gguf.TokenType.NORMAL)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    first_special = len(tokens)
    tokens += specials
    types += [gguf.TokenType.CONTROL] * len(specials)
    if len(tokens) > vocab:
        sys.exit(f"vocab {vocab} is smaller than the {len(tokens)} tokens the tokenizer needs")
    for i in range(len(tokens), vocab):
        tokens.append(f"[PAD{i}]")
        types.append(gguf.TokenType.UNUSED)
    return tokens, types, merges, first_special


class Pools:
    """Random material reused (from random offsets) so multi-GB files take a minute, not an hour."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.bytes = self.rng.integers(0, 256, size=1 << 26, dtype=np.uint8)
        self.normal = (self.rng.standard_normal(1 << 24) * 0.02).astype(np.float32)
        self.jitter = self.rng.uniform(0.5, 1.0, size=1 << 20).astype(np.float32)

    def take(self, pool, n):
        out = np.empty(n, dtype=pool.dtype)
        pos = 0
        while pos < n:
            start = int(self.rng.integers(0, len(pool)))
            k = min(n - pos, len(pool) - start)
            out[pos:pos + k] = pool[start:start + k]
            pos += k
        return out


def tensor_bytes(pools, kind, shape, ones=False):
    """Bytes of one tensor of `shape` (numpy order, last dim contiguous) in `kind`."""
    n = int(np.prod(shape))
    if ones:
        return np.ones(n, dtype=np.float32).view(np.uint8)
    if kind in FLOATS:
        v = pools.take(pools.normal, n)
        if kind == "f32":
            return v.view(np.uint8)
        if kind == "f16":
            return v.astype(np.float16).view(np.uint8)
        return (v.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8)  # bf16 (truncated)
    _, block, block_bytes, fields = TYPES[kind]
    n_blocks = n // block
    raw = pools.take(pools.bytes, n_blocks * block_bytes).reshape(n_blocks, block_bytes)
    for off, scale, sign in fields:
        d = (pools.take(pools.jitter, n_blocks) * (scale * sign)).astype(np.float16)
        raw[:, off:off + 2] = d.view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(-1)


def deepseek2_tensors(s, layers):
    """deepseek2 blocks as llama.cpp's converter writes them (newer MLA layout)."""
    h, H, R, nope, rd, vd = s["hidden"], s["heads"], s["kv_lora"], s["nope"], s["rope"], s["v_dim"]
    e, ff, sh = s["experts"], s["expert_ff"], s["expert_ff"] * s["shared"]
    out = []
    for i in range(layers):
        b = f"blk.{i}."
        out += [(b + "attn_norm.weight", (h,), True, True),
                (b + "attn_q_a.weight", (s["q_lora"], h), False, False),
                (b + "attn_q_a_norm.weight", (s["q_lora"],), True, True),
                (b + "attn_q_b.weight", (H * (nope + rd), s["q_lora"]), False, False),
                (b + "attn_kv_a_mqa.weight", (R + rd, h), False, False),
                (b + "attn_kv_a_norm.weight", (R,), True, True),
                (b + "attn_k_b.weight", (H, R, nope), False, False),
                (b + "attn_v_b.weight", (H, vd, R), False, False),
                (b + "attn_output.weight", (h, H * vd), False, False),
                (b + "ffn_norm.weight", (h,), True, True)]
        if i < s["dense"]:
            out += [(b + "ffn_gate.weight", (s["ff"], h), False, False),
                    (b + "ffn_down.weight", (h, s["ff"]), False, False),
                    (b + "ffn_up.weight", (s["ff"], h), False, False)]
        else:
            out += [(b + "ffn_gate_inp.weight", (e, h), False, True),
                    (b + "exp_probs_b.bias", (e,), True, True),
                    (b + "ffn_gate_exps.weight", (e, ff, h), False, False),
                    (b + "ffn_down_exps.weight", (e, h, ff), False, False),
                    (b + "ffn_up_exps.weight", (e, ff, h), False, False),
                    (b + "ffn_gate_shexp.weight", (sh, h), False, False),
                    (b + "ffn_down_shexp.weight", (h, sh), False, False),
                    (b + "ffn_up_shexp.weight", (sh, h), False, False)]
    return out


def tensor_list(s, layers):
    """(name, numpy shape, is_norm, keep_f32) in llama.cpp's order."""
    h, q, kv = s["hidden"], s["heads"] * s["head_dim"], s["kv_heads"] * s["head_dim"]
    e, ff = s["experts"], s["expert_ff"]
    out = [("token_embd.weight", (s["vocab"], h), False, False)]
    if s["arch"] == "deepseek2":
        return out + deepseek2_tensors(s, layers) + [
            ("output_norm.weight", (h,), True, True), ("output.weight", (s["vocab"], h), False, False)]
    for i in range(layers):
        b = f"blk.{i}."
        out += [(b + "attn_norm.weight", (h,), True, True),
                (b + "attn_q.weight", (q, h), False, False),
                (b + "attn_k.weight", (kv, h), False, False),
                (b + "attn_v.weight", (kv, h), False, False),
                (b + "attn_output.weight", (h, q), False, False)]
        if s["arch"] == "qwen3moe":
            out += [(b + "attn_q_norm.weight", (s["head_dim"],), True, True),
                    (b + "attn_k_norm.weight", (s["head_dim"],), True, True)]
        out += [(b + "ffn_norm.weight", (h,), True, True),
                (b + "ffn_gate_inp.weight", (e, h), False, True),  # llama.cpp keeps the router f32
                (b + "ffn_gate_exps.weight", (e, ff, h), False, False),
                (b + "ffn_down_exps.weight", (e, h, ff), False, False),
                (b + "ffn_up_exps.weight", (e, ff, h), False, False)]
    out += [("output_norm.weight", (h,), True, True), ("output.weight", (s["vocab"], h), False, False)]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", required=True, choices=sorted(SHAPES))
    ap.add_argument("--layers", type=int, help="number of blocks (default: the model's)")
    ap.add_argument("--type", default="q8_0", choices=sorted(list(TYPES) + list(FLOATS) + list(MIXES)),
                    help="weight type of the matrices (norms and the router stay f32)")
    ap.add_argument("-o", "--out", required=True, help="output .gguf path")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split-max-tensors", type=int, default=0,
                    help="write a split set (NAME-0000i-of-0000N.gguf) with at most this many tensors per shard")
    args = ap.parse_args()

    s = dict(SHAPES[args.shape])
    layers = args.layers if args.layers is not None else s["layers"]
    if layers < 1:
        sys.exit("--layers must be >= 1")
    arch = s["arch"]
    tokens, types, merges, first_special = tokenizer(s["vocab"])

    out = os.path.abspath(args.out)
    tmp = out + ".partial"
    w = gguf.GGUFWriter(None, arch, split_max_tensors=args.split_max_tensors)
    w.add_name(f"{args.shape}-{layers}l-{args.type}-random")
    w.add_file_type(FILE_TYPE[args.type])
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_block_count(layers)
    w.add_context_length(s["ctx"])
    w.add_embedding_length(s["hidden"])
    w.add_head_count(s["heads"])
    w.add_head_count_kv(s["kv_heads"])
    w.add_rope_freq_base(s["rope_theta"])
    w.add_layer_norm_rms_eps(s["rms_eps"])
    w.add_expert_count(s["experts"])
    w.add_expert_used_count(s["experts_used"])
    w.add_vocab_size(s["vocab"])
    if arch == "qwen3moe":
        w.add_feed_forward_length(s["ff"])
        w.add_expert_feed_forward_length(s["expert_ff"])
        w.add_key_length(s["head_dim"])
        w.add_value_length(s["head_dim"])
        w.add_expert_weights_norm(True)
    elif arch == "deepseek2":
        a = "deepseek2."
        w.add_feed_forward_length(s["ff"])
        w.add_expert_feed_forward_length(s["expert_ff"])
        w.add_uint32(a + "leading_dense_block_count", min(s["dense"], layers))
        w.add_uint32(a + "attention.q_lora_rank", s["q_lora"])
        w.add_uint32(a + "attention.kv_lora_rank", s["kv_lora"])
        w.add_uint32(a + "attention.key_length", s["kv_lora"] + s["rope"])
        w.add_uint32(a + "attention.value_length", s["kv_lora"])
        w.add_uint32(a + "attention.key_length_mla", s["nope"] + s["rope"])
        w.add_uint32(a + "attention.value_length_mla", s["v_dim"])
        w.add_uint32(a + "expert_shared_count", s["shared"])
        w.add_float32(a + "expert_weights_scale", s["scale"])
        w.add_bool(a + "expert_weights_norm", True)
        w.add_uint32(a + "expert_gating_func", 2)
        w.add_uint32(a + "expert_group_count", s["groups"])
        w.add_uint32(a + "expert_group_used_count", s["groups_used"])
        w.add_uint32(a + "rope.dimension_count", s["rope"])
        w.add_string(a + "rope.scaling.type", "yarn")
        w.add_float32(a + "rope.scaling.factor", s["yarn"])
        w.add_uint32(a + "rope.scaling.original_context_length", s["yarn_ctx"])
        w.add_float32(a + "rope.scaling.yarn_log_multiplier", 0.1)
    else:  # llama / Mixtral: the expert FFN size is feed_forward_length
        w.add_feed_forward_length(s["expert_ff"])
        w.add_rope_dimension_count(s["head_dim"])
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(s["pre"])
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(first_special)        # <|endoftext|>
    w.add_eos_token_id(first_special + 2)    # <|im_end|>
    w.add_pad_token_id(first_special)
    w.add_add_bos_token(False)
    w.add_chat_template(CHATML)

    # Tensor infos first (sizes are known), then the data tensor by tensor.
    plan = []
    for name, shape, ones, keep_f32 in tensor_list(s, layers):
        kind = "f32" if keep_f32 else args.type
        if kind in MIXES:
            kind = mix_kind(kind, name, layers)
        if kind in TYPES and shape[-1] % TYPES[kind][1] != 0:
            kind = "f16"  # llama.cpp's fallback when a row is not a whole number of blocks
        qtype = FLOATS[kind][0] if kind in FLOATS else TYPES[kind][0]
        n = int(np.prod(shape))
        nbytes = n * FLOATS[kind][1] if kind in FLOATS else n // TYPES[kind][1] * TYPES[kind][2]
        w.add_tensor_info(name, shape, np.dtype(np.float32), nbytes, raw_dtype=qtype)
        plan.append((name, shape, kind, ones, nbytes))
    total = sum(p[4] for p in plan)

    w.write_header_to_file(path=pathlib.Path(tmp))
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    pools = Pools(args.seed)
    t0 = time.time()
    done = 0
    try:
        for name, shape, kind, ones, nbytes in plan:
            data = tensor_bytes(pools, kind, shape, ones)
            assert data.nbytes == nbytes, (name, data.nbytes, nbytes)
            w.write_tensor_data(data)
            done += nbytes
            if sys.stderr.isatty():
                print(f"\r{done / 2**30:6.2f} / {total / 2**30:.2f} GiB  {name:<32}", end="", file=sys.stderr)
        w.close()
        shards = w.format_shard_names(pathlib.Path(tmp))
        finals = w.format_shard_names(pathlib.Path(out))
        for a, b in zip(shards, finals):  # the temp names become the final ones only at the end
            os.replace(a, b)
    except BaseException:
        w.close()
        for a in w.format_shard_names(pathlib.Path(tmp)):
            if os.path.exists(a):
                os.remove(a)
        raise
    dt = time.time() - t0
    if sys.stderr.isatty():
        print(file=sys.stderr)
    names = ", ".join(str(f) for f in finals) if len(finals) > 1 else out
    print(f"wrote {names}: {args.shape}, {layers} layers, {args.type}, {len(plan)} tensors, "
          f"{total / 2**30:.2f} GiB in {dt:.1f} s ({total / 2**20 / max(dt, 1e-9):.0f} MiB/s)")


if __name__ == "__main__":
    main()
