"""What an exporter is: one format the export stage writes from the PyTorch student, then verifies on dev.

An exporter module defines `EXPORTER = Exporter(...)` and the registry (compress.export) lists it, in the order
the stage runs them (an exporter may start from an earlier one's file, e.g. the fused ONNX from the plain one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


@dataclass
class ExportInput:
    """What an exporter may read."""

    student: Any  # the PyTorch student (eval mode, CPU)
    input_names: list[str]  # the tokenizer's model inputs, in the student's order
    recipe: Any  # compress.recipe.Recipe
    directory: Path  # where to write (the export folder being built)
    made: dict[str, Path] = field(default_factory=dict)  # files of the exporters before this one that passed
    output_names: tuple[str, ...] = ("logits",)  # the task's outputs (compress.tasks.Task.output_names)


@dataclass(frozen=True)
class Made:
    """A file an exporter (or a quantizer) wrote, and what only its format knows of it."""

    path: Path
    description: str
    buckets: list[int] | None = None  # batch-1 signatures / methods per sequence length (LiteRT, .pte)
    extras: dict = field(default_factory=dict)  # the artifact's `extras` (fused operators, portable operators, ...)


@dataclass(frozen=True)
class Exporter:
    name: str
    """The artifact's name (what reports, the bundle and `bundle.artifacts` call it)."""
    make: Callable[[ExportInput], Made]
    """Write the file; an exception means this format cannot take this model (recorded as not shipped)."""
    failure: str
    """What a failed `make` is called in the record ('optimizer failed', 'litert-torch conversion failed')."""
    runtime: str
    """The runtime that loads its file (targets.runtime): what it hands on is 'the fp32 file of runtime X'."""
    variant: str = ""
    """Another fp32 file of the same runtime ('fused': ONNX Runtime's fused graph): handed on as 'runtime/variant'."""
    what: str = ""
    """The file in words, for messages ('fp32 .tflite')."""
    install: str = ""
    """What to install when its package is missing (for messages)."""
    wanted: Callable[[Any], bool] = lambda recipe: True
    """recipe -> whether to write it; may raise UserError (asked for but impossible) before any model loads."""
    required: bool = False
    """True: the stage stops when it fails (the portable ONNX every other artifact starts from)."""

    @property
    def hands_on(self) -> str:
        """The key quantizers ask for its file by: the runtime, or 'runtime/variant'."""
        return f"{self.runtime}/{self.variant}" if self.variant else self.runtime
