"""ExecuTorch int8 / int4: torchao's dynamic int8 activations with int8 (per channel) or int4 (per group) weights
on the student's linears, then the same lowering as the fp32 .pte (compress.export.executorch): XNNPACK runs
those linears with its integer kernels, activations quantized per call (per token), no calibration.

Starts from the PyTorch student, like the torchao backend, not from the fp32 .pte; it runs only when the export
stage wrote and verified an fp32 .pte (so ExecuTorch is installed and lowers this model).
(The pt2e XNNPACKQuantizer route fails on this BERT under transformers 5: its observers break the traced
attention-mask indexing; measured with executorch 1.5.1.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from compress.quantize.base import Backend, Context, Precision, Settings as _Settings


class Settings(_Settings):
    weight_bits: Literal["int8", "int4"] = "int8"
    """int8: one scale per output channel; int4: one scale per `group_size` input features."""
    group_size: int = Field(32, ge=16)
    """int4 only: input features per weight scale (a linear whose inputs do not divide by it stays fp32)."""

    def precision(self) -> Precision:
        if self.weight_bits == "int4":
            return Precision(f"int4 weights (groups of {self.group_size}), int8 activations (quantized per call)", "int8")
        return Precision("int8 weights, int8 activations (quantized per call)", "int8")


def quantize(settings: Settings, ctx: Context, dst: Path):
    import torch

    from compress.export.base import Made
    from compress.export.config import tflite_buckets
    from compress.export.executorch import executorch_available, extras, lower_to_pte, report
    from compress.export.onnx import LogitsOnly
    from compress.tasks import load_any_student

    if ctx.file("executorch") is None or not executorch_available():
        raise RuntimeError("no verified fp32 .pte export (export.executorch is off, or executorch is not installed)")
    from torchao.quantization import Int8DynamicActivationIntxWeightConfig, quantize_
    from torchao.quantization.granularity import PerAxis, PerGroup

    int4 = settings.weight_bits == "int4"
    config = Int8DynamicActivationIntxWeightConfig(
        weight_dtype=torch.int4 if int4 else torch.int8,
        weight_granularity=PerGroup(settings.group_size) if int4 else PerAxis(0))
    wrapper = LogitsOnly(load_any_student(ctx.student_dir)).eval()
    linear = lambda m, fqn: isinstance(m, torch.nn.Linear) and (not int4 or m.in_features % settings.group_size == 0)  # noqa: E731
    quantize_(wrapper, config, filter_fn=linear)
    max_length = ctx.recipe.data.max_length  # lowered as the fp32 .pte was (compress.export.executorch)
    lowered = lower_to_pte(wrapper, list(ctx.calibration.features), dst, max_length,
                           tflite_buckets(ctx.recipe.export, max_length))
    report(lowered)
    return Made(dst, "", lowered.buckets, extras(lowered))


def fallbacks(settings: Settings) -> list[Settings]:
    """int4 weights that lose too much: int8 ones. int8 has no finer variant here."""
    return [settings.model_copy(update={"weight_bits": "int8"})] if settings.weight_bits == "int4" else []


BACKEND = Backend("executorch-xnnpack", "executorch", Settings, quantize, fallbacks,
                  "torchao dynamic int8 activations + int8 / int4 weights, lowered to an XNNPACK .pte")
