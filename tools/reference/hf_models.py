# Builds the small random HF MoE models and computes their reference outputs with transformers.
"""HF side of the fixture generation: model construction with seeded, non-degenerate weights,
save_pretrained, reloading a checkpoint dict into a model, logits, greedy continuations, router
statistics and the llama-perplexity-style perplexity. Everything runs in float32 on the CPU."""
from __future__ import annotations

import copy
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file
from safetensors.torch import load_file as load_torch
from transformers import (AutoModelForCausalLM, GenerationConfig, MixtralConfig, MixtralForCausalLM,
                          Qwen3MoeConfig, Qwen3MoeForCausalLM)

ARCHS = {
    "qwen3_moe": (Qwen3MoeConfig, Qwen3MoeForCausalLM),
    "mixtral": (MixtralConfig, MixtralForCausalLM),
}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def make_config(model_type: str, params: dict):
    cfg_cls, _ = ARCHS[model_type]
    return cfg_cls(**params)


def _fan_in_std(p: torch.Tensor, gain: float) -> float:
    return gain / math.sqrt(p.shape[-1])  # [out, in] and [E, out, in] alike


def init_weights(model: torch.nn.Module, seed: int, round_bf16: bool) -> None:
    """Seeded weights that make every part of the model matter: RMS-norm gains 1 +- 0.15,
    linear layers N(0, 1/fan_in) (activations stay O(1) through the residual stream), the router
    N(0, 2.5^2/fan_in) so that routing differs clearly per token, the LM head scaled for logits
    of a few units. round_bf16 makes every value exactly representable in bfloat16 (so a BF16
    checkpoint stores the same model)."""
    g = torch.Generator().manual_seed(seed)
    tied = model.config.tie_word_embeddings
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if name.endswith("norm.weight"):
                v = 1.0 + 0.15 * torch.randn(p.shape, generator=g)
            elif name.endswith("embed_tokens.weight"):
                v = (0.35 if tied else 0.6) * torch.randn(p.shape, generator=g)
            elif name.endswith("lm_head.weight"):
                v = _fan_in_std(p, 2.5) * torch.randn(p.shape, generator=g)
            elif name.endswith("gate.weight") and p.dim() == 2:  # the router
                v = _fan_in_std(p, 2.5) * torch.randn(p.shape, generator=g)
            elif p.dim() >= 2:
                v = _fan_in_std(p, 1.0) * torch.randn(p.shape, generator=g)
            else:
                raise ValueError(f"no init rule for {name} {tuple(p.shape)}")
            if round_bf16:
                v = v.to(torch.bfloat16).to(torch.float32)
            p.copy_(v)


def build_model(model_type: str, params: dict, seed: int, round_bf16: bool):
    _, model_cls = ARCHS[model_type]
    config = make_config(model_type, params)
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = model_cls(config).eval()
    init_weights(model, seed, round_bf16)
    return model


def save_hf(model, out: Path, tokenizer_dir: Path, dtype: torch.dtype, n_shards: int) -> list[str]:
    """save_pretrained into `out` (F32 or BF16), split into n_shards files when > 1, plus the
    tokenizer files copied unchanged. Returns the file names written."""
    if out.exists():
        shutil.rmtree(out)
    # A copy: .to() also casts buffers such as RoPE's inv_freq, which must stay float32 here.
    m = copy.deepcopy(model).to(dtype)
    kwargs = {}
    if n_shards > 1:
        total = sum(p.numel() * p.element_size() for p in m.state_dict().values())
        kwargs["max_shard_size"] = int(total / n_shards * 1.02)
    m.save_pretrained(out, **kwargs)
    for f in TOKENIZER_FILES:
        shutil.copyfile(tokenizer_dir / f, out / f)
    shards = sorted(p.name for p in out.glob("model*.safetensors"))
    if len(shards) != n_shards:
        raise RuntimeError(f"{out}: expected {n_shards} safetensors files, got {shards}")
    return sorted(p.name for p in out.iterdir())


def read_checkpoint(hf_dir: Path) -> dict[str, np.ndarray]:
    """All tensors of an HF directory as float32 numpy arrays, by checkpoint name."""
    state: dict[str, np.ndarray] = {}
    for f in sorted(hf_dir.glob("model*.safetensors")):
        for k, v in load_torch(f).items():
            state[k] = v.to(torch.float32).numpy()
    return state


def load_hf(hf_dir: Path):
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32,
                                                 attn_implementation="eager")
    return model.eval()


def model_from_checkpoint(hf_dir: Path, state: dict[str, np.ndarray]):
    """A model with hf_dir's config and the given checkpoint tensors, loaded by transformers'
    own from_pretrained (so its checkpoint -> module mapping is the one under test)."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        shutil.copyfile(hf_dir / "config.json", tmp / "config.json")
        save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()},
                  str(tmp / "model.safetensors"), metadata={"format": "pt"})
        return load_hf(tmp)


@torch.no_grad()
def logits_all(model, tokens: list[int]) -> np.ndarray:
    """Logits of every position, [n_tokens, n_vocab] float32, one forward pass, no cache."""
    ids = torch.tensor([tokens], dtype=torch.long)
    return model(input_ids=ids, use_cache=False).logits[0].float().numpy()


@torch.no_grad()
def greedy(model, tokens: list[int], n_new: int) -> tuple[list[int], list[float]]:
    """HF generate, greedy (do_sample=False), n_new tokens, not stopping at EOS. Also returns,
    per step, the gap between the best and second-best logit (how safe the argmax is)."""
    ids = torch.tensor([tokens], dtype=torch.long)
    gc = GenerationConfig(do_sample=False, max_new_tokens=n_new, min_new_tokens=0,
                          eos_token_id=None, pad_token_id=0, bos_token_id=None)
    # generate() fills unset fields from the model's generation_config (eos from config.json);
    # clear that so an EOS token does not end the continuation early.
    saved = model.generation_config
    model.generation_config = GenerationConfig(eos_token_id=None, pad_token_id=0)
    try:
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=gc,
                             output_logits=True, return_dict_in_generate=True)
    finally:
        model.generation_config = saved
    new = out.sequences[0, len(tokens):].tolist()
    margins = []
    for step in out.logits:
        top2 = torch.topk(step[0].float(), 2).values
        margins.append(float(top2[0] - top2[1]))
    if len(new) != n_new:
        raise RuntimeError(f"generate returned {len(new)} tokens, wanted {n_new}")
    # The same continuation by full recomputation (no KV cache) must agree.
    seq = list(tokens)
    for t in new:
        step_logits = logits_all(model, seq)[-1]
        if int(np.argmax(step_logits)) != t:
            raise RuntimeError("generate (with cache) and full recomputation disagree")
        seq.append(t)
    return new, margins


class RouterProbe:
    """Records, per MoE layer, how often each expert is picked, and per token the smallest gap
    between the k-th and (k+1)-th router logit over all layers (a small gap makes the routing
    decision fragile: a tiny numeric difference can swap an expert)."""

    def __init__(self, model):
        self.k = model.config.num_experts_per_tok
        self.n = model.config.num_local_experts
        self.usage = {i: np.zeros(self.n, dtype=np.int64) for i in range(len(model.model.layers))}
        self.token_gap: np.ndarray | None = None
        self.handles = [layer.mlp.gate.register_forward_hook(self._hook(i))
                        for i, layer in enumerate(model.model.layers)]

    def _hook(self, i):
        def hook(mod, inp, out):
            router_logits = out[0].detach().float()
            top = torch.topk(router_logits, min(self.k + 1, self.n), dim=-1)
            for row in top.indices[:, :self.k].tolist():
                for e in row:
                    self.usage[i][e] += 1
            if self.k < self.n:
                gap = (top.values[:, self.k - 1] - top.values[:, self.k]).numpy()
            else:
                gap = np.full(router_logits.shape[0], np.inf)
            self.token_gap = gap if self.token_gap is None else np.minimum(self.token_gap, gap)
        return hook

    def take_token_gaps(self) -> np.ndarray:
        gap, self.token_gap = self.token_gap, None
        return gap

    def close(self):
        for h in self.handles:
            h.remove()


@torch.no_grad()
def perplexity_llama_cpp(model, tokens: list[int], n_ctx: int, bos_id: int | None) -> dict:
    """llama-perplexity's computation (tools/perplexity/perplexity.cpp, perplexity()):
    `tokens` is the whole text tokenized with special tokens (so with BOS when the vocabulary
    adds it); n_chunk = len // n_ctx non-overlapping chunks; when the model adds BOS the first
    token of every chunk is replaced by BOS; the logits at positions first = n_ctx/2 ..
    n_ctx-2 score the next token (n_ctx - first - 1 per chunk); PPL = exp(mean NLL) and the
    printed error is PPL * sqrt((mean(NLL^2) - mean(NLL)^2) / (count - 1))."""
    if len(tokens) < 2 * n_ctx:
        raise ValueError(f"need at least {2 * n_ctx} tokens, have {len(tokens)}")
    n_chunk = len(tokens) // n_ctx
    first = n_ctx // 2
    nll = nll2 = 0.0
    count = 0
    chunks = []
    for c in range(n_chunk):
        chunk = list(tokens[c * n_ctx:(c + 1) * n_ctx])
        if bos_id is not None:
            chunk[0] = bos_id
        logits = torch.from_numpy(logits_all(model, chunk)).double()
        logp = torch.log_softmax(logits, dim=-1)
        c_nll = 0.0
        for pos in range(first, n_ctx - 1):
            lp = float(logp[pos, chunk[pos + 1]])
            nll -= lp
            nll2 += lp * lp
            c_nll -= lp
        n = n_ctx - first - 1
        count += n
        chunks.append({"chunk": c + 1, "mean_nll": c_nll / n,
                       "running_ppl": math.exp(nll / count)})
    mean = nll / count
    var = nll2 / count - mean * mean
    ppl = math.exp(mean)
    err = ppl * math.sqrt(var / (count - 1)) if var > 0 else float("nan")
    return {"n_ctx": n_ctx, "n_chunk": n_chunk, "first": first, "scored_per_chunk": n_ctx - first - 1,
            "count": count, "mean_nll": mean, "ppl": ppl, "ppl_error": err, "chunks": chunks}
