# The fixture models' shapes and seeds, the prompts, and the perplexity setup.
"""What make_models.py builds. Every model is small (vocabulary ~1200, hidden 96) but hits the
cases a runtime gets wrong: hidden sizes that are multiples of 32 but not powers of two, head_dim
decoupled from hidden/n_head, GQA and MHA, top-k 1 and 8, norm_topk_prob true and false, tied
embeddings, expert FFN rows that are not a multiple of 32 (Q8_0 falls back to F16 there), a
sharded safetensors checkpoint, BF16 checkpoints, and the old per-expert GGUF layout.

Seeds: for the two models with F16/Q8_0 files the seed is the one among the first twelve with
the largest smallest top-k router logit gap and greedy top-2 logit margin over the prompts (near
ties make a comparison fragile: a rounding difference can swap an expert or a token).

Size: weights are stored several times (HF + one GGUF per type), so each model costs about
(hf bytes/param + sum of GGUF bytes/param) x params; see the README for the totals."""

# Our own sentences; "one" is a single token for both tokenizers (for llama-spm: just BOS).
_LONG = ("The runtime loads a mixture-of-experts model and keeps the hot experts in fast "
         "memory, so each token goes to a few of them.")
_SHORT = "Each token is routed"
PROMPTS = {
    "qwen2-bpe": {"one": "The", "short": _SHORT, "long": _LONG},
    "llama-spm": {"one": "", "short": _SHORT, "long": _LONG},
}

_QWEN_COMMON = dict(
    max_position_embeddings=4096, rms_norm_eps=1e-6, intermediate_size=192,
    rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
    bos_token_id=1200, eos_token_id=1202, decoder_sparse_step=1, mlp_only_layers=[],
    use_sliding_window=False,
)
_MIXTRAL_COMMON = dict(
    max_position_embeddings=4096, rms_norm_eps=1e-5, sliding_window=None,
    bos_token_id=1, eos_token_id=2, router_jitter_noise=0.0,
)

MODELS = [
    {
        "name": "qwen3moe-a",
        "description": "GQA 4/2, head_dim 32 != hidden/n_head (24), 8 experts top-2, "
                       "norm_topk_prob true, untied; F32 checkpoint in two shards; F32/F16/Q8_0 GGUF",
        "model_type": "qwen3_moe", "tokenizer": "qwen2-bpe", "seed": 1006,
        "config": dict(_QWEN_COMMON, hidden_size=96, num_attention_heads=4, num_key_value_heads=2,
                       head_dim=32, num_hidden_layers=2, num_experts=8, num_experts_per_tok=2,
                       moe_intermediate_size=32, norm_topk_prob=True, tie_word_embeddings=False),
        "hf_dtype": "float32", "hf_shards": 2,
        "gguf_types": ["f32", "f16", "q8_0"],
    },
    {
        "name": "qwen3moe-b",
        "description": "MHA 3/3, 3 layers, 32 experts top-8, norm_topk_prob false, tied embeddings, "
                       "expert FFN 8 (down_proj rows of 8 elements); BF16 checkpoint; F32 GGUF and a Q8_0 GGUF "
                       "whose ffn_down_exps fall back to F16",
        "model_type": "qwen3_moe", "tokenizer": "qwen2-bpe", "seed": 1002,
        "config": dict(_QWEN_COMMON, hidden_size=96, num_attention_heads=3, num_key_value_heads=3,
                       head_dim=32, num_hidden_layers=3, num_experts=32, num_experts_per_tok=8,
                       moe_intermediate_size=8, norm_topk_prob=False, tie_word_embeddings=True),
        "hf_dtype": "bfloat16",
        # Q8_0: ffn_down_exps rows (8 values) are not whole blocks, so the converter writes them
        # F16 next to Q8_0 gate/up: one expert FFN with two weight types.
        "gguf_types": ["f32", "q8_0"],
    },
    {
        "name": "mixtral-a",
        "description": "GQA 3/1, 8 experts top-1, untied; BF16 checkpoint; F32/F16/Q8_0 GGUF "
                       "(q/k permuted for interleaved RoPE) and a Q8_0 GGUF in the old per-expert "
                       "layout; perplexity fixture",
        "model_type": "mixtral", "tokenizer": "llama-spm", "seed": 2001,
        "config": dict(_MIXTRAL_COMMON, hidden_size=96, num_attention_heads=3, num_key_value_heads=1,
                       num_hidden_layers=2, num_local_experts=8, num_experts_per_tok=1,
                       intermediate_size=32, tie_word_embeddings=False,
                       rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
        "hf_dtype": "bfloat16",
        "gguf_types": ["f32", "f16", "q8_0"], "per_expert_types": ["q8_0"],
    },
    {
        "name": "mixtral-b",
        "description": "GQA 6/2 with head_dim 16, 8 experts top-4, tied embeddings, expert FFN 16, "
                       "rope_theta 1e4; BF16 checkpoint; F32 GGUF",
        "model_type": "mixtral", "tokenizer": "llama-spm", "seed": 2002,
        "config": dict(_MIXTRAL_COMMON, hidden_size=96, num_attention_heads=6, num_key_value_heads=2,
                       num_hidden_layers=2, num_local_experts=8, num_experts_per_tok=4,
                       intermediate_size=16, tie_word_embeddings=True,
                       rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
        "hf_dtype": "bfloat16",
        "gguf_types": ["f32"],
    },
]

# llama-perplexity on the F32 weights of a model whose vocabulary adds BOS (the interesting case).
PERPLEXITY = {"model": "mixtral-a", "text_file": "perplexity.txt", "n_ctx": 64}
