#!/usr/bin/env python3
"""Writes the quantisation test vectors of tests/cpu_kernels/fixtures/ from gguf-py (the `gguf`
package), so the C++ (de)quantisers are checked against an independent implementation.

Run (tools/venv.sh creates .venv-tools/ with gguf and numpy):
    ${HEXE_PY:-.venv-tools/bin/python} tools/reference/make_quant_vectors.py [OUT_DIR]

One file per type, quant_<name>.bin, little-endian:
    u32 magic 0x56515848 ("HXQV"), u32 version 1, u32 ggml type id,
    u32 n_deq_blocks, u32 n_q_blocks, u32 block_elems, u32 block_bytes
    n_deq_blocks raw blocks, then their gguf.quants.dequantize() floats (f32)
    n_q_blocks * block_elems input floats (f32), then gguf.quants.quantize() of them (raw blocks)
Raw blocks are random bytes with every f16 scale replaced by a finite value drawn across the
whole f16 range (negative, subnormal, +-0, 65504), so every field combination occurs. Block
counts are odd on purpose.

Quantiser outputs come from gguf-py where it has one (F16, BF16 and the 32-element formats).
gguf-py has none for the K-quants; for those the vectors come from GGML itself through the
optional `ggml-python` package (pip install ggml-python==0.0.45, which builds ggml from source)
when it is importable, else n_q_blocks is 0 and the C++ test skips them.
"""
import pathlib
import struct
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants
from gguf.constants import GGML_QUANT_SIZES

MAGIC = 0x56515848
SEED = 20261125

# type -> byte offsets of the f16 scale fields inside one block
F16_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
# types gguf-py can also quantise (bit-exact with GGML's reference quantisers)
QUANTISABLE = {T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0}
# K-quants: GGML's own reference quantisers through ggml-python (optional)
GGML_QUANTISABLE = {T.Q4_K, T.Q5_K, T.Q6_K}


def ggml_quantize(x: np.ndarray, qtype: T, n_blocks: int, nbytes: int) -> np.ndarray | None:
    """GGML's quantize_chunk (no importance matrix: the reference round-to-nearest path)."""
    try:
        import ctypes
        import ggml  # ggml-python
    except ImportError:
        return None
    dst = np.zeros(n_blocks * nbytes, np.uint8)
    x = np.ascontiguousarray(x, dtype=np.float32)
    ggml.ggml_quantize_init(int(qtype))
    written = ggml.ggml_quantize_chunk(int(qtype), x.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
                                       dst.ctypes.data_as(ctypes.c_void_p), 0, n_blocks, 256, None)
    assert written == dst.size
    return dst
TYPES = [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q4_K, T.Q5_K, T.Q6_K]


def random_f16(rng: np.random.Generator, n: int) -> np.ndarray:
    """Finite f16 values spread over every exponent, plus the edge cases."""
    bits = rng.integers(0, 0x7C00, size=n, dtype=np.uint16)  # finite magnitudes incl. subnormals
    bits |= (rng.integers(0, 2, size=n, dtype=np.uint16) << 15)  # either sign
    edge = np.array([0x0000, 0x8000, 0x7BFF, 0xFBFF, 0x0001, 0x03FF, 0x3C00], dtype=np.uint16)
    k = min(n, len(edge))
    bits[:k] = edge[:k]
    return bits


def random_blocks(rng: np.random.Generator, qtype: T, n_blocks: int) -> np.ndarray:
    elems, nbytes = GGML_QUANT_SIZES[qtype]
    if qtype == T.F32:
        vals = rng.standard_normal(n_blocks).astype(np.float32) * np.float32(10.0) ** rng.integers(-30, 30, n_blocks)
        return vals.astype(np.float32).view(np.uint8)
    if qtype == T.F16:
        return random_f16(rng, n_blocks).view(np.uint8)
    if qtype == T.BF16:
        bits = rng.integers(0, 0x7F80, size=n_blocks, dtype=np.uint16) | (rng.integers(0, 2, n_blocks, dtype=np.uint16) << 15)
        return bits.view(np.uint8)
    raw = rng.integers(0, 256, size=(n_blocks, nbytes), dtype=np.uint8)
    for off in F16_FIELDS[qtype]:
        raw[:, off:off + 2] = random_f16(rng, n_blocks).view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(-1)


def random_inputs(rng: np.random.Generator, n_blocks: int, elems: int) -> np.ndarray:
    """Floats for the quantisers: varied magnitudes, an all-zero block, a block with one outlier,
    a constant block and an all-negative block."""
    x = rng.standard_normal((n_blocks, elems)).astype(np.float32)
    x *= (np.float32(2.0) ** rng.integers(-12, 8, size=(n_blocks, 1))).astype(np.float32)
    x[0] = 0
    if n_blocks > 1:
        x[1, 5] = 1000.0
    if n_blocks > 2:
        x[2] = 0.75
    if n_blocks > 3:
        x[3] = -np.abs(x[3])
    return x.reshape(-1)


def write(out_dir: pathlib.Path, qtype: T, rng: np.random.Generator) -> int:
    elems, nbytes = GGML_QUANT_SIZES[qtype]
    n_deq = {1: 97}.get(elems, 13 if elems == 32 else 5)
    raw = random_blocks(rng, qtype, n_deq)
    deq = quants.dequantize(raw.reshape(1, -1), qtype).astype(np.float32).reshape(-1)
    assert deq.size == n_deq * elems
    n_q = 0
    qin = np.zeros(0, np.float32)
    qout = np.zeros(0, np.uint8)
    if qtype in QUANTISABLE:
        n_q = 64 if elems == 1 else 7
        qin = random_inputs(rng, n_q if elems > 1 else 8, elems if elems > 1 else 8).reshape(-1)[: n_q * elems]
        qout = np.ascontiguousarray(quants.quantize(qin.reshape(1, -1), qtype)).view(np.uint8).reshape(-1)
        assert qout.size == n_q * nbytes
    elif qtype in GGML_QUANTISABLE:
        x = random_inputs(rng, 9, elems)
        q = ggml_quantize(x, qtype, 9, nbytes)
        if q is None:
            print(f"note: ggml-python not importable, no quantiser vectors for {qtype.name}")
        else:
            n_q, qin, qout = 9, x, q
    path = out_dir / f"quant_{qtype.name.lower()}.bin"
    with open(path, "wb") as f:
        f.write(struct.pack("<7I", MAGIC, 1, int(qtype), n_deq, n_q, elems, nbytes))
        f.write(raw.tobytes())
        f.write(deq.tobytes())
        f.write(qin.astype(np.float32).tobytes())
        f.write(qout.tobytes())
    return path.stat().st_size


def main() -> None:
    root = pathlib.Path(__file__).resolve().parents[2]
    out_dir = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else root / "tests/cpu_kernels/fixtures"
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    total = sum(write(out_dir, t, rng) for t in TYPES)
    print(f"wrote {len(TYPES)} files, {total} bytes, to {out_dir}")


if __name__ == "__main__":
    main()
