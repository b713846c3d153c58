"""Exporters, one module per format, and verification of every artifact against the PyTorch student.

Adding a format is one module with an `EXPORTER` (compress.export.base.Exporter) and one line in `_registry`; its
runtime on the device goes into targets/runtime.py. The export stage runs them in the registry's order.
"""

from __future__ import annotations

from pathlib import Path

from compress.export.base import Exporter
from compress.registry import Registered

_REGISTERED = Registered()
registered = _REGISTERED.register
"""with registered(exporter): one more exporter, after the built-in ones, while the block runs (a test's own)."""


def _registry() -> list[Exporter]:
    from compress.export import executorch, onnx, ort_optimize, tflite

    return [onnx.EXPORTER, ort_optimize.EXPORTER, tflite.EXPORTER, executorch.EXPORTER]


def exporters() -> list[Exporter]:
    return _registry() + list(_REGISTERED.items)


def provider(key: str) -> Exporter | None:
    """The exporter that hands on the fp32 file `key` ('onnxruntime', 'onnxruntime/fused', 'litert', ...)."""
    return next((e for e in exporters() if e.hands_on == key), None)


def fp32_files(artifacts, out: Path) -> dict:
    """key -> the verified fp32 file of that runtime (compress.quantize.base.Fp32File), from the export stage's
    artifacts: what quantizers start from, found by what each exporter hands on, not by its name."""
    from compress.quantize.base import Fp32File

    by_name = {e.name: e for e in exporters()}
    files = {}
    for a in artifacts:
        exporter = by_name.get(a.name)
        if exporter is not None and a.file(out).is_file():
            files[exporter.hands_on] = Fp32File(a.file(out), a.runtime, a.buckets, dict(a.extras))
    return files
