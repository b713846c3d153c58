"""Post-training quantization backends behind one interface, tried in the recipe's order.

A backend is one module with a typed `Settings` (pydantic, unknown keys refused), a `quantize(settings, ctx)`
that writes one artifact, and `fallbacks(settings)`: the more conservative variants the accuracy guard
tries when the first one loses too much (per-channel weights, then the sensitive nodes left in fp32).
Adding a backend is one new file and one line in REGISTRY.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict

from compress.errors import UserError


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.model_dump().items())


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


@dataclass(frozen=True)
class Backend:
    name: str
    runtime: str  # "onnxruntime" | "litert" | "pytorch": how the artifact is loaded and timed
    settings: type[Settings]
    quantize: Callable[[Settings, Context, Path], Path]
    fallbacks: Callable[[Settings], list[Settings]]
    description: str


ARTIFACT_SUFFIX = {"onnxruntime": ".onnx", "litert": ".tflite", "pytorch": ".pt"}


def _registry() -> dict[str, Backend]:
    from compress.quantize import litert, nncf_ptq, ort_dynamic, ort_static, torchao_ptq

    return {b.name: b for b in (ort_dynamic.BACKEND, ort_static.BACKEND, nncf_ptq.BACKEND, torchao_ptq.BACKEND,
                                litert.DYNAMIC_BACKEND, litert.STATIC_BACKEND)}


def backend(name: str) -> Backend:
    registry = _registry()
    if name not in registry:
        raise ValueError(f"unknown quantization backend '{name}'; known: {', '.join(registry)}")
    return registry[name]


def parse_candidate(raw: dict[str, Any]) -> tuple[Backend, Settings]:
    """{'backend': name, **settings} -> the backend and its validated settings (ValueError names the bad key)."""
    raw = dict(raw)
    name = raw.pop("backend", None)
    if not name:
        raise ValueError("each quantize candidate needs a 'backend'")
    raw.pop("name", None)
    b = backend(str(name))
    try:
        return b, b.settings(**raw)
    except Exception as exc:  # pydantic.ValidationError -> one line
        errors = getattr(exc, "errors", None)
        if errors:
            e = errors()[0]
            key = ".".join(str(p) for p in e["loc"])
            if e["type"] == "extra_forbidden":
                raise ValueError(f"{name}: unknown setting '{key}'; allowed: {', '.join(b.settings.model_fields)}") from None
            raise ValueError(f"{name}: setting '{key}': {e['msg']}") from None
        raise


def candidate_name(raw: dict[str, Any], taken: set[str]) -> str:
    base = str(raw.get("name") or raw["backend"])
    name, i = base, 2
    while name in taken:
        name, i = f"{base}-{i}", i + 1
    return name


def require_module(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"the {module} package is missing (a bert-compress dependency): pip install {module}") from None
