"""The machine and software a measurement was made on (every results file carries it)."""

from __future__ import annotations

from targets.env import RUNTIME_PACKAGES
from targets.env import environment as _environment

PACKAGES = ("bert-compress", "torch", "transformers", "onnx", "onnxscript", "torchao", "nncf", "litert-torch",
            "ai-edge-quantizer", *RUNTIME_PACKAGES)


def environment() -> dict:
    return _environment(PACKAGES)
