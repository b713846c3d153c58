"""ONNX Runtime's transformer graph optimizer on the fp32 export (fused SkipLayerNorm, BiasGelu, ...).

The result uses ONNX Runtime contrib ops (com.microsoft domain): it runs in ONNX Runtime only, which is
why the plain export is kept beside it. Measured on the default student: about 20% lower latency at
seq 128 on 1 thread (see README).
"""

from __future__ import annotations

from pathlib import Path


def optimize_for_ort(src: Path, dst: Path, config) -> dict[str, int]:
    """Write the optimized model to `dst`; returns how many of each fused operator it holds."""
    from onnxruntime.transformers import optimizer

    model = optimizer.optimize_model(
        str(src),
        model_type="bert",
        num_heads=config.num_attention_heads,
        hidden_size=config.hidden_size,
        opt_level=1,
    )
    model.save_model_to_file(str(dst))
    return {k: v for k, v in model.get_fused_operator_statistics().items() if v}
