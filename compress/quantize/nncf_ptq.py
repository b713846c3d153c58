"""NNCF post-training quantization of the ONNX student (`nncf.quantize`, transformer model type).

NNCF places QDQ pairs with transformer-aware rules (no quantization of LayerNorm / Softmax inputs, fp32 where
int8 hurts), calibrates on task text and corrects biases. Its SmoothQuant step rewrites MatMul weights per
node, which breaks a weight shared by several layers (ALBERT-style students): `smooth_quant: auto` turns it
off for those.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Literal

from compress.quantize.base import Backend, Context, Settings as _Settings, require_module
from compress.quantize.onnx_graph import calibration_feeds, input_names, sensitive_nodes


class Settings(_Settings):
    preset: Literal["performance", "mixed"] = "performance"
    """performance: symmetric activations; mixed: asymmetric activations (better for skewed ones, e.g. GELU out)."""
    smooth_quant: Literal["auto", "on", "off"] = "auto"
    """auto: on, except for models that share weights across layers."""
    fast_bias_correction: bool = True
    exclude: Literal["none", "sensitive"] = "none"


def shares_weights(path: Path) -> bool:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    weights = {i.name for i in model.graph.initializer}
    uses = Counter(i for n in model.graph.node if n.op_type in ("MatMul", "Gemm") for i in n.input if i in weights)
    return any(c > 1 for c in uses.values())


def quantize(settings: Settings, ctx: Context, dst: Path) -> Path:
    import onnx

    nncf = require_module("nncf")
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, AdvancedSmoothQuantParameters

    from compress.export.onnx import dedupe_file
    from compress.quantize.ort_dynamic import preprocessed

    with tempfile.TemporaryDirectory(dir=ctx.work) as tmp:
        src = preprocessed(ctx.require("onnxruntime").path, Path(tmp))
        feeds = calibration_feeds(ctx.calibration, input_names(src))
        smooth = settings.smooth_quant == "on" or (settings.smooth_quant == "auto" and not shares_weights(src))
        advanced = None if smooth else AdvancedQuantizationParameters(
            smooth_quant_alphas=AdvancedSmoothQuantParameters(matmul=-1))
        ignored = nncf.IgnoredScope(names=sensitive_nodes(src), validate=False) if settings.exclude == "sensitive" else None
        quantized = nncf.quantize(
            onnx.load(str(src)), nncf.Dataset(feeds),
            preset=nncf.QuantizationPreset.PERFORMANCE if settings.preset == "performance" else nncf.QuantizationPreset.MIXED,
            model_type=nncf.ModelType.TRANSFORMER,
            subset_size=len(feeds),
            fast_bias_correction=settings.fast_bias_correction,
            ignored_scope=ignored,
            advanced_parameters=advanced,
        )
        onnx.save(quantized, str(dst))
    dedupe_file(dst)
    return dst


def fallbacks(settings: Settings) -> list[Settings]:
    out = []
    if settings.preset == "performance":
        out.append(settings.model_copy(update={"preset": "mixed"}))
    if settings.exclude == "none":
        out.append(settings.model_copy(update={"preset": "mixed", "exclude": "sensitive"}))
    return out


BACKEND = Backend("nncf", "onnxruntime", Settings, quantize, fallbacks,
                  "NNCF post-training quantization of the ONNX model (QDQ, transformer rules, calibrated)")
