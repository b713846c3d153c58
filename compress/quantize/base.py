"""What every quantization backend is built from: its typed settings, what it may read, its record.

A leaf module: the backends import it, the registry (compress.quantize) imports the backends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict

from compress.errors import UserError


@dataclass(frozen=True)
class Precision:
    """What an artifact's numbers are: `label` for people (bundle metadata, reports), `compute` for the GEMM peak
    its matmuls are measured against ("int8" when activations are quantized too, else "fp32")."""

    label: str
    compute: str


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.model_dump().items())

    def precision(self) -> Precision:
        """Each backend says what its settings produce; static int8 (weights and activations) unless overridden."""
        return Precision("int8 weights, int8 activations", "int8")


@dataclass
class Context:
    """What a backend may read: the verified fp32 exports, calibration batches, the student, a place to write."""

    plain_onnx: Path
    fused_onnx: Path | None
    calibration: Any  # compress.data.batching.Encoded, the student's tokenizer
    student_dir: Path
    work: Path
    qad: Callable[[Any, int, float | None], dict] | None = None
    """Distil a (fake-quantized) student for N epochs at a learning rate with the last stage's losses."""
    notes: dict = field(default_factory=dict)
    """What a backend reports beyond the artifact (e.g. the QAD training history); the guard records it."""
    tflite: Path | None = None
    """The verified fp32 .tflite (bucket signatures), when the export wrote one."""
    pte: Path | None = None
    """The verified fp32 ExecuTorch .pte, when the export wrote one."""
    max_length: int = 128
    """data.max_length: the longest sequence a lowered .pte takes."""
    buckets: list[int] = field(default_factory=lambda: [32, 64, 128])
    """The sequence buckets a .pte falls back to when its sequence axis cannot stay dynamic."""


@dataclass(frozen=True)
class Backend:
    name: str
    runtime: str  # "onnxruntime" | "litert" | "executorch" | "pytorch": how the artifact is loaded and timed
    settings: type[Settings]
    quantize: Callable[[Settings, Context, Path], Path]
    fallbacks: Callable[[Settings], list[Settings]]
    description: str


ARTIFACT_SUFFIX = {"onnxruntime": ".onnx", "litert": ".tflite", "executorch": ".pte", "pytorch": ".pt"}


def require_module(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"the {module} package is missing (a bert-compress dependency): pip install {module}") from None
