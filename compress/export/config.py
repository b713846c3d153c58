"""The recipe's `export` section: formats, opset and the bars every exported file must pass."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from compress.schema import Strict as _Strict


class ExportConfig(_Strict):
    opset: int = Field(18, ge=17)
    atol: float = Field(1e-3, gt=0)
    """Largest |difference| of the outputs (logits; embeddings: vector values) between an fp32 file and PyTorch."""
    min_label_agreement: float = Field(0.999, gt=0, le=1)
    """Least agreement of an fp32 file with PyTorch on dev: label agreement; for embeddings, the mean cosine."""
    tflite: Literal["auto", "on", "off"] = "auto"
    """TFLite / LiteRT export (litert-torch, the `tflite` extra): auto converts when litert-torch is installed."""
    tflite_buckets: list[int] | None = None
    """Sequence lengths the .tflite is converted for (one signature each); default 32, 64, 128 below
    data.max_length. data.max_length itself is always one. A device pads each text to the smallest bucket that holds it."""
    executorch: Literal["auto", "on", "off"] = "auto"
    """ExecuTorch .pte with the XNNPACK delegate (the `executorch` extra): auto exports when executorch is installed."""
    ort_format: bool = True
    """The android-ort / ios-ort bundles ship their string-in model in ONNX Runtime's .ort format (which its mobile
    and minimal builds load too) instead of .onnx, when it converts and gives the same outputs on dev."""

    @field_validator("tflite", "executorch", mode="before")
    @classmethod
    def _yaml_booleans(cls, value):
        """YAML reads a bare on / off as a boolean."""
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value

    @field_validator("tflite_buckets")
    @classmethod
    def _buckets(cls, buckets: list[int] | None) -> list[int] | None:
        if buckets is not None:
            if not buckets or any(b < 1 for b in buckets):
                raise ValueError("tflite_buckets must be a non-empty list of positive sequence lengths")
            return sorted(set(buckets))
        return None


def tflite_buckets(export: ExportConfig, max_length: int) -> list[int]:
    if export.tflite_buckets:
        return sorted(set(export.tflite_buckets) | {max_length})
    return sorted({b for b in (32, 64, 128) if b < max_length} | {max_length})
