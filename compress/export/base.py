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
    path: Path
    description: str
    extra: dict = field(default_factory=dict)  # Artifact fields the format has (buckets, fused_ops)


@dataclass(frozen=True)
class Exporter:
    name: str
    """The artifact's name (what reports, the bundle and `bundle.artifacts` call it)."""
    make: Callable[[ExportInput], Made]
    """Write the file; an exception means this format cannot take this model (recorded as not shipped)."""
    failure: str
    """What a failed `make` is called in the record ('optimizer failed', 'litert-torch conversion failed')."""
    wanted: Callable[[Any], bool] = lambda recipe: True
    """recipe -> whether to write it; may raise UserError (asked for but impossible) before any model loads."""
    required: bool = False
    """True: the stage stops when it fails (the portable ONNX every other artifact starts from)."""
