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


@dataclass(frozen=True)
class Fp32File:
    """A verified fp32 export as a quantizer starts from it: the file, its runtime, its buckets and extras."""

    path: Path
    runtime: str
    buckets: list[int] | None = None
    extras: dict = field(default_factory=dict)


@dataclass
class Context:
    """What a backend may read: the verified fp32 exports by what they are ('the fp32 file of runtime X'),
    calibration batches, the student, the recipe, a place to write."""

    fp32: dict[str, Fp32File]
    """'onnxruntime', 'onnxruntime/fused', 'litert', 'executorch', ... -> the file (compress.export.fp32_files)."""
    calibration: Any  # compress.data.batching.Encoded, the student's tokenizer
    student_dir: Path
    work: Path
    qad: Callable[[Any, int, float | None], dict] | None = None
    """Distil a (fake-quantized) student for N epochs at a learning rate with the last stage's losses."""
    notes: dict = field(default_factory=dict)
    """What a backend reports beyond the artifact (e.g. the QAD training history); the guard records it."""
    recipe: Any = None
    """The run's recipe (compress.recipe.Recipe): what a backend reads beyond its settings (data.max_length, ...)."""

    def __post_init__(self) -> None:  # a bare path is the file of the runtime its key names
        self.fp32 = {k: v if isinstance(v, Fp32File) else Fp32File(Path(v), k.split("/")[0])
                     for k, v in self.fp32.items() if v is not None}

    def file(self, key: str) -> Path | None:
        """The fp32 file handed on as `key`, or None when the export has none."""
        return self.fp32[key].path if key in self.fp32 else None

    def require(self, key: str) -> Fp32File:
        if key not in self.fp32:
            raise RuntimeError(f"no verified fp32 {key} export to start from")
        return self.fp32[key]


ARTIFACT_SUFFIX = {"onnxruntime": ".onnx", "litert": ".tflite", "executorch": ".pte", "pytorch": ".pt"}
"""The file a runtime's artifact is, unless its backend says another (Backend.suffix)."""


@dataclass(frozen=True)
class Backend:
    name: str
    runtime: str  # "onnxruntime" | "litert" | "executorch" | "pytorch": how the artifact is loaded and timed
    settings: type[Settings]
    quantize: Callable[[Settings, Context, Path], Any]
    """(settings, context, destination) -> the written file: a Path, or a compress.export.base.Made that also
    carries buckets and extras (a file without them inherits its fp32 source's buckets)."""
    fallbacks: Callable[[Settings], list[Settings]]
    description: str
    starts_from: str | None = ""
    """The fp32 file it quantizes ('onnxruntime', 'litert', ...): '' for its own runtime's, None for none (it
    starts from the PyTorch student)."""
    suffix: str = ""
    """Its artifact's file suffix ('' : ARTIFACT_SUFFIX of its runtime)."""

    @property
    def source(self) -> str | None:
        return self.runtime if self.starts_from == "" else self.starts_from

    @property
    def artifact_suffix(self) -> str:
        return self.suffix or ARTIFACT_SUFFIX[self.runtime]


def require_module(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"the {module} package is missing (a bert-compress dependency): pip install {module}") from None
