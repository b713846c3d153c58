"""LiteRT integer models with ai-edge-quantizer, on the bucketed fp32 .tflite export.

- `litert-dynamic`: int8 (or int4) weights, activations quantized per call (`dynamic_wi8_afp32`, ...). No
  calibration; XNNPack runs it with integer kernels: the fastest route measured on this CPU.
- `litert-static`: full-integer model, weights int8 and activations int8 (or int16) with ranges calibrated on
  task text for every bucket signature (`static_wi8_ai8`, `static_wi8_ai16`): what integer-only
  accelerators (NPUs, DSPs) need.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Literal

import numpy as np

from compress.quantize.base import Backend, Context, Precision, Settings as _Settings, require_module

DYNAMIC_RECIPES = {"int8": "dynamic_wi8_afp32", "int4": "dynamic_wi4_afp32"}


class DynamicSettings(_Settings):
    weight_bits: Literal["int8", "int4"] = "int8"
    """Per-output-channel weight scales. (The block-wise recipes of ai-edge-quantizer 0.10 left this BERT's
    weights in fp32: measured, so they are not offered.)"""
    weight_only: bool = False
    """True: int8 weights dequantized to fp32 at load (a smaller file at fp32 speed)."""

    def precision(self) -> Precision:
        if self.weight_bits == "int4":
            return Precision("int4 weights", "fp32" if self.weight_only else "int8")
        if self.weight_only:
            return Precision("int8 weights, fp32 compute (dequantized at load)", "fp32")
        return Precision("int8 weights, fp32 activations (quantized per call)", "int8")


class StaticSettings(_Settings):
    activation_bits: Literal[8, 16] = 8
    """8: full int8 (integer-only hardware); 16: int16 activations with int8 weights (more accurate)."""

    def precision(self) -> Precision:
        if self.activation_bits == 8:
            return Precision("int8 weights, int8 activations", "int8")
        return Precision("int8 weights, int16 activations", "int8")


def _require_tflite(ctx: Context) -> Path:
    if ctx.file("litert") is None or not ctx.file("litert").is_file():
        raise RuntimeError("no fp32 .tflite export to quantize (export.tflite is off or litert-torch is missing)")
    return ctx.file("litert")


@contextlib.contextmanager
def _quiet():
    """ai-edge-quantizer prints a size report and progress bars per run; keep the pipeline's output readable."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def _quantize(src: Path, recipe_name: str, dst: Path, calibration=None) -> Path:
    require_module("ai_edge_quantizer")
    from ai_edge_quantizer import quantizer, recipe

    with _quiet():
        qt = quantizer.Quantizer(str(src))
        qt.load_quantization_recipe(getattr(recipe, recipe_name)())
        result = None
        if qt.need_calibration:
            result = qt.calibrate(calibration, num_threads=1)
        qt.quantize(result, enable_progress_report=False).export_model(str(dst), overwrite=True)
    if not _integer_tensors(dst):  # a recipe whose op patterns matched nothing in this graph
        raise RuntimeError(f"{recipe_name} quantized no tensor of this model (its ops are not covered by that recipe)")
    return dst


def _integer_tensors(path: Path) -> int:
    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_path=str(path)).get_tensor_details()
    return sum(1 for d in details if d["dtype"] in (np.int8, np.uint8) or str(d["dtype"]).endswith("int4"))


def quantize_dynamic(settings: DynamicSettings, ctx: Context, dst: Path) -> Path:
    name = "weight_only_wi8_afp32" if settings.weight_only else DYNAMIC_RECIPES[settings.weight_bits]
    ctx.notes["ai_edge_quantizer_recipe"] = name
    return _quantize(_require_tflite(ctx), name, dst)


def calibration_by_signature(enc, signatures: dict[str, list[str]]) -> dict[str, list[dict[str, np.ndarray]]]:
    """Each calibration row for every bucket it fits, zero-padded as a device pads it, so the largest bucket's
    ranges cover all the text; a bucket no row fits gets the first rows cut to its length."""
    buckets = sorted(int(s.split("_", 1)[1]) for s in signatures)

    def row(i: int, bucket: int) -> dict[str, np.ndarray]:
        out = {}
        for name in signatures[f"seq_{bucket}"]:
            arr = np.full((1, bucket), enc.pad_id if name == "input_ids" else 0, dtype=np.int32)
            values = enc.features[name][i][:bucket]
            arr[0, : len(values)] = values
            out[name] = arr
        return out

    data = {}
    for b in buckets:
        fits = [i for i in range(len(enc)) if len(enc.features["input_ids"][i]) <= b]
        data[f"seq_{b}"] = [row(i, b) for i in (fits or range(min(len(enc), 16)))]
    return data


def quantize_static(settings: StaticSettings, ctx: Context, dst: Path) -> Path:
    from targets.runtime import LiteRTModel

    src = _require_tflite(ctx)
    model = LiteRTModel(src)
    signatures = {f"seq_{b}": model.input_names for b in model.buckets}
    name = "static_wi8_ai8" if settings.activation_bits == 8 else "static_wi8_ai16"
    ctx.notes["ai_edge_quantizer_recipe"] = name
    return _quantize(src, name, dst, calibration_by_signature(ctx.calibration, signatures))


def no_fallbacks(settings):
    return []


def dynamic_fallbacks(settings: DynamicSettings):
    """int4 weights that lose too much: int8 ones; int8 with per-call int8 activations that disagree: int8 weights
    with fp32 compute (the same file size: what a size target needs, at fp32 speed). ai-edge-quantizer has no finer
    variant that quantizes this graph."""
    if settings.weight_bits == "int4":
        return [settings.model_copy(update={"weight_bits": "int8"})]
    return [] if settings.weight_only else [settings.model_copy(update={"weight_only": True})]


DYNAMIC_BACKEND = Backend("litert-dynamic", "litert", DynamicSettings, quantize_dynamic, dynamic_fallbacks,
                          "ai-edge-quantizer dynamic-range quantization of the .tflite (int8 weights, fp32 activations)")
STATIC_BACKEND = Backend("litert-static", "litert", StaticSettings, quantize_static, no_fallbacks,  # measured: no variant recovers it
                         "ai-edge-quantizer full-integer quantization of the .tflite, calibrated on task text")
