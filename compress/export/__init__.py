"""Exporters, one module per format, and verification of every artifact against the PyTorch student.

Adding a format is one module with an `EXPORTER` (compress.export.base.Exporter) and one line in `_registry`; its
runtime on the device goes into targets/runtime.py. The export stage runs them in the registry's order.
"""

from __future__ import annotations

from compress.export.base import Exporter


def _registry() -> list[Exporter]:
    from compress.export import executorch, onnx, ort_optimize, tflite

    return [onnx.EXPORTER, ort_optimize.EXPORTER, tflite.EXPORTER, executorch.EXPORTER]


def exporters() -> list[Exporter]:
    return _registry()
