"""A per-model roofline: the model's own matrix products, each timed alone in ONNX Runtime's kernels (the ones the
1024³ GEMM peak of targets.bench measures), so a report can say how much of a small model's latency is arithmetic
and how much per-operator overhead and element-wise work."""

from __future__ import annotations

import numpy as np

from targets.bench import GEMM_DIR, GEMM_MODELS, _timed


def model_gemms(arch: dict, seq_len: int) -> list[tuple[int, int, int, int, bool]]:
    """The matrix products of one BERT forward pass at batch 1 (those matmul_flops counts), as (M, K, N, how many,
    takes the weights): per layer Q, K, V, output projections and the two FFN products (weights), the attention
    scores and context of each head (activations only); the embedding projection; the pooler and classifier."""
    h, i, layers, s = arch["hidden_size"], arch["intermediate_size"], arch["layers"], seq_len
    heads = arch.get("heads") or arch.get("num_attention_heads") or max(1, h // 64)
    d, e = h // heads, arch.get("embedding_size") or h
    out = [(s, h, h, 4 * layers, True), (s, h, i, layers, True), (s, i, h, layers, True),
           (s, d, s, heads * layers, False), (s, s, d, heads * layers, False)]
    if e != h:
        out.append((s, e, h, 1, True))
    if arch.get("head", True):
        out += [(1, h, h, 1, True), (1, h, arch.get("num_labels", 2), 1, True)]
    return out


def shape_gemm_ms(arch: dict, seq_len: int, threads: int, compute: str, repeats: int = 7) -> dict:
    """A per-model roofline: each of the model's own matrix products alone (model_gemms), in ONNX Runtime's MLAS
    kernels, the ones the 1024³ peak measures (MatMulInteger uint8 × int8 for the weight products of a model whose
    activations are quantized, else fp32 MatMul), best of `repeats`; the time of a 1×1×1 product (the call's own
    overhead) is taken off each. Their sum is what the arithmetic alone takes at these narrow shapes: the rest of
    a model's latency is per-operator overhead and element-wise work."""
    try:
        import onnxruntime as ort
    except ImportError:
        return {"note": "onnxruntime is not installed: no per-model GEMM time"}
    rng = np.random.default_rng(0)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    sessions = {p: ort.InferenceSession(str(GEMM_DIR / f), options, providers=["CPUExecutionProvider"])
                for p, f in GEMM_MODELS.items()}

    def best(precision: str, m: int, k: int, n: int) -> float:
        feeds = ({"A": rng.standard_normal((m, k), dtype=np.float32), "B": rng.standard_normal((k, n), dtype=np.float32)}
                 if precision == "fp32" else
                 {"A": rng.integers(0, 255, (m, k), dtype=np.uint8), "B": rng.integers(-127, 127, (k, n), dtype=np.int8)})
        session = sessions[precision]
        for _ in range(3):
            session.run(None, feeds)
        return min(_timed(lambda: session.run(None, feeds)) for _ in range(repeats))  # noqa: B023 (called here)

    overhead = {p: best(p, 1, 1, 1) for p in GEMM_MODELS}
    total, flops, calls = 0.0, 0.0, 0
    for m, k, n, count, weights in model_gemms(arch, seq_len):
        precision = "int8" if weights and compute == "int8" else "fp32"
        total += count * max(0.0, best(precision, m, k, n) - overhead[precision])
        flops += count * 2.0 * m * k * n
        calls += count
    return {"seq_len": seq_len, "threads": threads, "compute": compute, "gemm_ms": round(1e3 * total, 4),
            "gflops": round(flops / 1e9, 4), "gflop_s": round(flops / total / 1e9, 1) if total else None, "products": calls,
            "call_overhead_ms": {p: round(1e3 * v, 4) for p, v in overhead.items()}}
