"""The stage table: every stage's name, what it does, the recipe sections it reads and the outputs it owns, in the
order `run` runs them. Adding a stage is one module in compress/stages/ and one row here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from compress.stages import bench, bundle, distill, export, finetune, quantize


@dataclass(frozen=True)
class Stage:
    name: str
    help: str
    sections: tuple[str, ...]
    """The recipe sections it reads, on top of those of the stages before it (its settings hash covers them all)."""
    outputs: tuple[str, ...]
    """What it writes in OUT (compress.run.layout.Layout properties); digest-checked under --resume."""
    run: Callable[..., dict]
    """(run, force) -> the stage record (without the bookkeeping fields)."""
    upgrade: Callable[..., dict] | None = None
    """(run, record) -> the record of an OUT written by an earlier version, in today's form (None: unchanged)."""
    optional_sections: tuple[str, ...] = ()
    """Recipe fields hashed only when they differ from the default, so OUT folders made before they existed still
    match."""


STAGES: tuple[Stage, ...] = (
    Stage("finetune", "fine-tune the teacher on the task (skipped when it already has the task's head)",
          ("teacher", "data", "seed", "precision"), ("teacher",), finetune.run, optional_sections=("task", "embedding")),
    Stage("distill", "build the student from the teacher's layers and distill into it",
          ("student", "distill", "device"), ("student", "projections"), distill.run),
    Stage("export", "export the student to ONNX (and TFLite) and verify it against PyTorch on dev",
          ("export",), ("export",), export.run),
    Stage("quantize", "int8 artifacts from each quantization backend in the recipe, guarded by the task's dev metric",
          ("quantize",), ("quantized",), quantize.run),
    Stage("bench", "measure quality, size and latency of every model; write report.json and report.md",
          ("bench",), (), bench.run, upgrade=bench.upgrade),
    Stage("bundle", "one app bundle per platform (OUT/bundle/<platform>/ + .zip): pi (runner), android-litert, "
          "android-ort, ios-litert, ios-ort, web; each checked with the platform's own library where it runs here",
          ("bundle",), ("bundle",), bundle.run),
)
STAGE_NAMES = tuple(s.name for s in STAGES)


def stage(name: str) -> Stage:
    for s in STAGES:
        if s.name == name:
            return s
    raise KeyError(name)
