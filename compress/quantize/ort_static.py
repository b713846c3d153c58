"""ONNX Runtime static quantization: weights and activations int8, activation ranges calibrated on task text.

QDQ format (QuantizeLinear/DequantizeLinear pairs that ONNX Runtime fuses into integer kernels at load time).
On x86, uint8 activations with int8 weights (U8S8) hit the VNNI / AVX2 u8×s8 kernels; int8 activations (S8S8)
are the format ARM's sdot kernels and mobile runtimes favour (and are slower than U8S8 on x86).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

from compress.quantize.base import Backend, Context, Settings as _Settings
from compress.quantize.onnx_graph import calibration_feeds, excluded_nodes, input_names
from compress.quantize.ort_dynamic import fallbacks, preprocessed  # the same fallback order


class Settings(_Settings):
    format: Literal["qdq", "qoperator"] = "qdq"
    activation_type: Literal["uint8", "int8"] = "uint8"
    """uint8: fast on x86 (U8S8); int8: S8S8, the ARM / mobile choice."""
    weight_type: Literal["int8", "uint8"] = "int8"
    per_channel: bool = False
    calibration: Literal["minmax", "entropy", "percentile"] = "minmax"
    exclude: Literal["none", "sensitive", "sensitive+ffn-out"] = "none"
    """sensitive: keep the embedding lookups and the classifier in fp32; +ffn-out: also the FFN output projections."""


class _Reader:
    """onnxruntime.quantization.CalibrationDataReader over pre-built feeds."""

    def __init__(self, feeds):
        self._it = iter(feeds)

    def get_next(self):
        return next(self._it, None)

    def rewind(self):  # some calibrators iterate twice
        pass


def quantize(settings: Settings, ctx: Context, dst: Path) -> Path:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from compress.export.onnx import dedupe_file

    qtype = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}
    with tempfile.TemporaryDirectory(dir=ctx.work) as tmp:
        # the portable graph: static QDQ placement and ORT's own QDQ fusions need standard ops
        model = preprocessed(ctx.require("onnxruntime").path, Path(tmp))
        feeds = calibration_feeds(ctx.calibration, input_names(model), same_length=settings.calibration != "minmax")
        quantize_static(
            str(model), str(dst), _Reader(feeds),
            quant_format=QuantFormat.QDQ if settings.format == "qdq" else QuantFormat.QOperator,
            activation_type=qtype[settings.activation_type],
            weight_type=qtype[settings.weight_type],
            per_channel=settings.per_channel,
            calibrate_method={"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                              "percentile": CalibrationMethod.Percentile}[settings.calibration],
            nodes_to_exclude=excluded_nodes(model, settings.exclude),
            op_types_to_quantize=["MatMul", "Gemm", "Gather"],
            extra_options={"MatMulConstBOnly": True, "CalibTensorRangeSymmetric": settings.activation_type == "int8"},
        )
    dedupe_file(dst)
    return dst


BACKEND = Backend("ort-static", "onnxruntime", Settings, quantize, fallbacks,
                  "ONNX Runtime static quantization (QDQ, activation ranges calibrated on task text)")
