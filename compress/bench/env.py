"""The machine and software a measurement was made on (every results file carries it)."""

from __future__ import annotations

from targets.env import RUNTIME_PACKAGES
from targets.env import environment as _environment

PACKAGES = ("bert-compress", "torch", "transformers", "onnx", "onnxscript", "torchao", "nncf", "litert-torch",
            "ai-edge-quantizer", "onnxruntime-extensions", "mediapipe", *RUNTIME_PACKAGES)


def environment() -> dict:
    return _environment(PACKAGES)


def machine_identity() -> dict:
    """The CPU an int8 decision was measured on: int8 numerics and speed depend on its instruction set."""
    from targets.env import cpu_model, int8_isa

    return {"cpu": cpu_model(), "int8_isa": int8_isa(), "method": "one text per call at its own length"}
