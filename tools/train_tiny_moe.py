#!/usr/bin/env python3
# Trains the small Qwen3-MoE model hexe ships as its default (models/), from the Debian fortunes.
"""Train a tiny Qwen3-MoE language model on the fortune cookie files Debian ships.

Corpus: the English fortune files of the Debian package `fortunes` (BSD licence, see
/usr/share/doc/fortunes/copyright), split into single fortunes at the "%" lines, shuffled with
the seed; every 20th fortune is held out (never trained on, not in the tokenizer training
either) and written to OUT/heldout.txt for perplexity checks.

Tokenizer: a byte-level BPE laid out exactly like Qwen2/Qwen3's (the same pre-tokenizer regex,
ChatML special tokens, Qwen3 chat template; made by tools/reference/make_tokenizers.py's
make_qwen2), 4096 tokens in all.

Model: Qwen3MoeForCausalLM, hidden 256, 4 layers, 4 query / 2 KV heads of 64, 32 experts of
FFN 128, top-2 with normalised top-k weights, untied LM head (15.5 M parameters).
Trained with AdamW on random windows of the training token stream, float32, 2 CPU threads,
deterministic for a given seed and step count. --max-minutes stops early (and still saves) if
the machine is slower than expected; the log says whether that happened.

Usage: ${HEXE_PY:-.venv-tools/bin/python} tools/train_tiny_moe.py --out DIR [--steps N]
(create .venv-tools with tools/venv.sh; `apt-get install fortunes` first).
Writes DIR/hf (the HF model directory), DIR/heldout.txt, DIR/train_log.txt, DIR/result.json.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from transformers import (AutoModelForCausalLM, AutoTokenizer, GenerationConfig,  # noqa: E402
                          Qwen3MoeConfig, Qwen3MoeForCausalLM)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools" / "reference"))
from hf_models import perplexity_llama_cpp  # noqa: E402
from make_tokenizers import make_qwen2  # noqa: E402

FORTUNE_DIR = Path("/usr/share/games/fortunes")
# The package's general (non-offensive) English files; all under the package's BSD licence.
FORTUNE_FILES = ("fortunes", "wisdom", "literature", "science", "computers", "people", "humorists",
                 "work", "platitudes", "education", "law", "food", "kids", "pets", "love",
                 "riddles", "sports", "medicine", "magic", "news", "miscellaneous")
VOCAB_SIZE = 4096  # including the 3 ChatML special tokens
SPECIALS = 3
PPL_CTX = 256      # the perplexity context (hexe perplexity -c 256)


def read_fortunes() -> list[str]:
    out = []
    for name in FORTUNE_FILES:
        text = (FORTUNE_DIR / name).read_text(encoding="utf-8", errors="replace")
        for f in text.split("\n%\n"):
            f = f.strip("\n%")
            if f.strip():
                out.append(f.rstrip() + "\n")
    return out


def model_config(vocab: int, eos: int, pad: int) -> Qwen3MoeConfig:
    return Qwen3MoeConfig(
        vocab_size=vocab, hidden_size=256, intermediate_size=512, moe_intermediate_size=128,
        num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, head_dim=64,
        num_experts=32, num_experts_per_tok=2, norm_topk_prob=True, decoder_sparse_step=1,
        mlp_only_layers=[], max_position_embeddings=2048, rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        tie_word_embeddings=False, router_aux_loss_coef=0.01, output_router_logits=True,
        bos_token_id=None, eos_token_id=eos, pad_token_id=pad, use_cache=False)


class FastQwen3Moe(torch.nn.Module):
    """The same function as transformers' Qwen3MoeForCausalLM (same parameter names and shapes,
    so its state_dict loads into the HF model unchanged), written for training speed on a CPU:
    each expert runs once on the tokens routed to it instead of transformers' per-expert loop
    overhead. main() checks the HF model gives the same logits before saving."""

    def __init__(self, cfg: Qwen3MoeConfig):
        super().__init__()
        self.cfg = cfg
        H, D, E, I = cfg.hidden_size, cfg.head_dim, cfg.num_experts, cfg.moe_intermediate_size
        nh, nkv = cfg.num_attention_heads, cfg.num_key_value_heads
        P = torch.nn.Parameter
        self.model = torch.nn.Module()
        self.model.embed_tokens = torch.nn.Embedding(cfg.vocab_size, H)
        self.model.layers = torch.nn.ModuleList()
        for _ in range(cfg.num_hidden_layers):
            layer = torch.nn.Module()
            att = torch.nn.Module()
            att.q_proj = torch.nn.Linear(H, nh * D, bias=False)
            att.k_proj = torch.nn.Linear(H, nkv * D, bias=False)
            att.v_proj = torch.nn.Linear(H, nkv * D, bias=False)
            att.o_proj = torch.nn.Linear(nh * D, H, bias=False)
            att.q_norm = torch.nn.Module()
            att.q_norm.weight = P(torch.ones(D))
            att.k_norm = torch.nn.Module()
            att.k_norm.weight = P(torch.ones(D))
            layer.self_attn = att
            mlp = torch.nn.Module()
            mlp.experts = torch.nn.Module()
            mlp.experts.gate_up_proj = P(torch.randn(E, 2 * I, H) / math.sqrt(H))
            mlp.experts.down_proj = P(torch.randn(E, H, I) / math.sqrt(I) / math.sqrt(2 * cfg.num_hidden_layers))
            mlp.gate = torch.nn.Linear(H, E, bias=False)
            layer.mlp = mlp
            layer.input_layernorm = torch.nn.Module()
            layer.input_layernorm.weight = P(torch.ones(H))
            layer.post_attention_layernorm = torch.nn.Module()
            layer.post_attention_layernorm.weight = P(torch.ones(H))
            self.model.layers.append(layer)
        self.model.norm = torch.nn.Module()
        self.model.norm.weight = P(torch.ones(H))
        self.lm_head = torch.nn.Linear(H, cfg.vocab_size, bias=False)
        for n, p in self.named_parameters():
            if n.endswith("proj.weight") or n.endswith("gate.weight") or n.endswith("lm_head.weight"):
                torch.nn.init.normal_(p, 0.0, 1.0 / math.sqrt(p.shape[1]))
        torch.nn.init.normal_(self.model.embed_tokens.weight, 0.0, 1.0)
        theta = cfg.rope_parameters["rope_theta"]
        inv = 1.0 / (theta ** (torch.arange(0, D, 2, dtype=torch.float32) / D))
        self.register_buffer("inv_freq", inv, persistent=False)

    def rms(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.cfg.rms_norm_eps) * w

    def forward(self, ids):
        cfg = self.cfg
        B, T = ids.shape
        D, nh, nkv, E, K = (cfg.head_dim, cfg.num_attention_heads, cfg.num_key_value_heads,
                            cfg.num_experts, cfg.num_experts_per_tok)
        pos = torch.arange(T, dtype=torch.float32)
        freqs = torch.outer(pos, self.inv_freq)
        emb = torch.cat([freqs, freqs], -1)
        cos, sin = emb.cos(), emb.sin()

        def rope(x):
            x1, x2 = x[..., :D // 2], x[..., D // 2:]
            return x * cos + torch.cat([-x2, x1], -1) * sin

        x = self.model.embed_tokens(ids)
        aux = 0.0
        counts = []
        for layer in self.model.layers:
            a = layer.self_attn
            h = self.rms(x, layer.input_layernorm.weight)
            q = self.rms(a.q_proj(h).view(B, T, nh, D), a.q_norm.weight).transpose(1, 2)
            k = self.rms(a.k_proj(h).view(B, T, nkv, D), a.k_norm.weight).transpose(1, 2)
            v = a.v_proj(h).view(B, T, nkv, D).transpose(1, 2)
            q, k = rope(q), rope(k)
            o = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                                 enable_gqa=True)
            x = x + a.o_proj(o.transpose(1, 2).reshape(B, T, nh * D))
            h = self.rms(x, layer.post_attention_layernorm.weight).reshape(B * T, -1)
            m = layer.mlp
            probs = torch.softmax(m.gate(h), dim=-1)
            w, sel = torch.topk(probs, K, dim=-1)
            if cfg.norm_topk_prob:
                w = w / w.sum(-1, keepdim=True)
            out = torch.zeros_like(h)
            flat = sel.reshape(-1)
            order = torch.argsort(flat, stable=True)
            cnt = torch.bincount(flat, minlength=E)
            counts.append(cnt)
            tok_of = order // K
            wts = w.reshape(-1)[order]
            start = 0
            for e, c in enumerate(cnt.tolist()):
                if c == 0:
                    continue
                idx = tok_of[start:start + c]
                xe = h[idx]
                gu = xe @ m.experts.gate_up_proj[e].t()
                g, u = gu.chunk(2, dim=-1)
                ye = (torch.nn.functional.silu(g) * u) @ m.experts.down_proj[e].t()
                out.index_add_(0, idx, ye * wts[start:start + c, None])
                start += c
            x = x + out.view(B, T, -1)
            frac = cnt.float() / flat.numel()
            aux = aux + E * (frac * probs.mean(0)).sum()
        x = self.rms(x, self.model.norm.weight)
        return self.lm_head(x), aux / len(self.model.layers), counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=20261125)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-minutes", type=float, default=28.0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    hf_dir = args.out / "hf"
    hf_dir.mkdir(exist_ok=True)
    log = open(args.out / "train_log.txt", "w", encoding="utf-8")

    def say(msg: str) -> None:
        print(msg, flush=True)
        log.write(msg + "\n")
        log.flush()

    fortunes = read_fortunes()
    random.Random(args.seed).shuffle(fortunes)
    held = [f for i, f in enumerate(fortunes) if i % 20 == 0]
    train = [f for i, f in enumerate(fortunes) if i % 20 != 0]
    train_text = "\n".join(train)
    held_text = "\n".join(held)
    (args.out / "heldout.txt").write_text(held_text, encoding="utf-8")
    say(f"corpus: {len(fortunes)} fortunes from {len(FORTUNE_FILES)} files; train {len(train_text)} "
        f"chars sha256 {hashlib.sha256(train_text.encode()).hexdigest()[:16]}, held-out "
        f"{len(held_text)} chars")

    lines = train_text.splitlines(keepends=True)
    chunks = ["".join(lines[i:i + 4]) for i in range(0, len(lines), 4)]
    make_qwen2(hf_dir, chunks, VOCAB_SIZE - SPECIALS)
    tok = AutoTokenizer.from_pretrained(hf_dir)
    vocab = len(tok)
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    pad = tok.convert_tokens_to_ids("<|endoftext|>")
    train_ids = torch.tensor(tok(train_text).input_ids, dtype=torch.long)
    held_ids = tok(held_text).input_ids
    say(f"tokenizer: {vocab} tokens; train {len(train_ids)} tokens, held-out {len(held_ids)} tokens")

    cfg = model_config(vocab, eos, pad)
    model = FastQwen3Moe(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    say(f"model: {n_params / 1e6:.2f} M parameters")
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    warmup = max(1, args.steps // 20)

    def lr_at(step: int) -> float:
        if step < warmup:
            return args.lr * (step + 1) / warmup
        t = (step - warmup) / max(1, args.steps - warmup)
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))

    gen = torch.Generator().manual_seed(args.seed)
    model.train()
    t0 = time.time()
    stopped_early = False
    step = 0
    for step in range(args.steps):
        starts = torch.randint(0, len(train_ids) - args.seq - 1, (args.batch,), generator=gen)
        batch = torch.stack([train_ids[s:s + args.seq + 1] for s in starts.tolist()])
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        logits, aux, _ = model(batch[:, :-1])
        ce = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), batch[:, 1:].reshape(-1))
        loss = ce + cfg.router_aux_loss_coef * aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 5 == 0 or step == args.steps - 1:
            say(f"step {step:5d} loss {ce.item():.4f} aux {float(aux):.3f} "
                f"lr {lr_at(step):.2e} {time.time() - t0:7.1f}s")
        if time.time() - t0 > args.max_minutes * 60:
            stopped_early = True
            say(f"stopped early at step {step} (--max-minutes {args.max_minutes})")
            break
    train_s = time.time() - t0

    # Into transformers' own class (same state_dict), saved in the HF checkpoint layout.
    model.eval()
    cfg.output_router_logits = False
    cfg.use_cache = True
    hf = Qwen3MoeForCausalLM(cfg)
    hf.load_state_dict(model.state_dict(), strict=True)
    hf.eval()
    hf.save_pretrained(hf_dir)
    GenerationConfig(eos_token_id=eos, pad_token_id=pad).save_pretrained(hf_dir)
    fast = model
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    probe = torch.tensor([held_ids[:64]])
    with torch.no_grad():
        a = model(probe).logits
        b = fast(probe)[0]
    diff = float((a - b).abs().max())
    say(f"HF reload vs training model: max |logit diff| {diff:.2e}")
    if diff > 1e-3:
        raise RuntimeError("the saved HF model does not compute what was trained")
    ppl = perplexity_llama_cpp(model, held_ids, PPL_CTX, None)
    ppl.pop("chunks")
    say(f"held-out perplexity (llama-perplexity method, n_ctx {PPL_CTX}): {ppl['ppl']:.4f} "
        f"+/- {ppl['ppl_error']:.4f} over {ppl['count']} tokens")
    with torch.no_grad():
        prompt = tok("The meaning of life is", return_tensors="pt").input_ids
        sample = model.generate(prompt, max_new_tokens=40, do_sample=False)
    text = tok.decode(sample[0])
    say(f"greedy sample: {text!r}")
    result = {"seed": args.seed, "steps_run": step + 1, "steps_planned": args.steps,
              "stopped_early": stopped_early, "train_seconds": round(train_s, 1),
              "batch": args.batch, "seq": args.seq, "lr": args.lr, "threads": args.threads,
              "n_params": n_params, "vocab": vocab, "train_tokens": len(train_ids),
              "heldout_tokens": len(held_ids), "fortune_files": list(FORTUNE_FILES),
              "heldout_perplexity": ppl, "greedy_sample": text}
    (args.out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
