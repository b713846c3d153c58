"""TFLite / LiteRT export through litert-torch: one .tflite file, one signature per sequence-length bucket.

litert-torch exports fixed shapes only (dynamic batch or sequence fails, see ../shared/notes/toolchain.md), so
the model is converted once per bucket (`seq_32`, `seq_64`, `seq_128`: batch 1, int32 inputs) and the buckets
are signatures of one file: the converter stores each weight once, so three buckets cost what one does. A
device pads a text to the smallest bucket that holds it (targets.runtime.LiteRTModel).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from compress.errors import UserError
from compress.export.base import Exporter, ExportInput, Made
from compress.progress import info

TFLITE_EXTRA = "pip install 'bert-compress[tflite]'"


def signature_name(bucket: int) -> str:
    return f"seq_{bucket}"


def require_litert_torch():
    try:
        import litert_torch  # noqa: F401
    except ImportError:
        raise UserError(f"the TFLite export needs litert-torch: {TFLITE_EXTRA}, or set export.tflite: off") from None
    return litert_torch


def litert_torch_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("litert_torch") is not None


def export_tflite(model, input_names: list[str], path: Path, buckets: list[int]) -> Path:
    """Convert `model` (a HF classifier) to `path` with one signature per bucket; inputs int32 named as in HF."""
    import torch

    from compress.export.onnx import INPUT_ORDER, LogitsOnly

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before the import: the converter's C++ INFO lines
    litert_torch = require_litert_torch()
    names = [n for n in INPUT_ORDER if n in input_names]
    wrapper = LogitsOnly(model.eval()).eval()
    converter = litert_torch
    for bucket in sorted(set(buckets)):
        sample = {n: (torch.zeros if n == "token_type_ids" else torch.ones)(1, bucket, dtype=torch.int32) for n in names}
        converter = converter.signature(signature_name(bucket), wrapper, sample_kwargs=sample)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _converter_quiet():
        converter.convert().export(str(path))
    return path


@contextlib.contextmanager
def _converter_quiet():
    """litert-torch prints a line per conversion step on its own console; our progress lines say enough."""
    try:
        from litert_torch import progress

        console = progress.console
    except (ImportError, AttributeError):  # another litert-torch layout: leave its output alone
        yield
        return
    before, console.quiet = console.quiet, True
    try:
        yield
    finally:
        console.quiet = before


def _wanted(recipe) -> bool:
    """export.tflite: on needs litert-torch (one line and exit 2 before anything runs); auto uses it when there."""
    if recipe.export.tflite == "off":
        return False
    if recipe.export.tflite == "on":
        require_litert_torch()
        return True
    if not litert_torch_available():
        info(f"[yellow]note[/]: no TFLite export: litert-torch is not installed ({TFLITE_EXTRA})")
        return False
    return True


def _make(inp: ExportInput) -> Made:
    from compress.recipe import tflite_buckets

    buckets = tflite_buckets(inp.recipe.export, inp.recipe.data.max_length)
    info(f"export: TFLite fp32 via litert-torch, one signature per sequence bucket {buckets} (batch 1, int32 inputs)")
    path = export_tflite(inp.student, inp.input_names, inp.directory / "model.tflite", buckets)
    return Made(path, "LiteRT fp32, signatures " + ", ".join(signature_name(b) for b in buckets), buckets)


# litert-torch cannot lower every model: the ONNX artifacts still ship
EXPORTER = Exporter("student-tflite-fp32", _make, "litert-torch conversion failed", "litert", what="fp32 .tflite",
                    install=TFLITE_EXTRA, wanted=_wanted)
