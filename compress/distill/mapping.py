"""Student <-> teacher layer maps, validated in one place.

Layers are numbered from 1 (layer 0 is the embedding output, always matched to the teacher's embeddings).
- uniform: student m <-> teacher round(m · L_T / L_S)   (TinyBERT's g(m) = m·k)
- last:    student m <-> teacher L_T - L_S + m         (the top layers)
- explicit: a list of [student, teacher] pairs
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict

from compress.errors import UserError


class LayerMapConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    strategy: Literal["uniform", "last", "explicit"] = "uniform"
    pairs: list[tuple[int, int]] | None = None


def uniform_teacher_layer(m: int, n_student: int, n_teacher: int) -> int:
    """TinyBERT's g(m) = m·k, k = L_T / L_S, rounded half up (layers from 1)."""
    return math.floor(m * n_teacher / n_student + 0.5)


def build_layer_map(n_student: int, n_teacher: int, cfg: LayerMapConfig) -> list[tuple[int, int]]:
    if cfg.strategy != "explicit" and cfg.pairs is not None:
        raise UserError(f"layer_map.pairs is only used with strategy 'explicit', not '{cfg.strategy}'")
    if cfg.strategy in ("uniform", "last") and n_student > n_teacher:
        raise UserError(
            f"a {cfg.strategy} layer map needs a student no deeper than the teacher: student has {n_student} layers, "
            f"teacher {n_teacher}; use strategy 'explicit'"
        )
    if cfg.strategy == "uniform":
        return [(m, uniform_teacher_layer(m, n_student, n_teacher)) for m in range(1, n_student + 1)]
    if cfg.strategy == "last":
        return [(m, n_teacher - n_student + m) for m in range(1, n_student + 1)]
    if not cfg.pairs:
        raise UserError("layer_map strategy 'explicit' needs pairs, e.g. [[1, 2], [2, 4]]")
    for s, t in cfg.pairs:
        if not 1 <= s <= n_student or not 1 <= t <= n_teacher:
            raise UserError(
                f"layer_map pair [{s}, {t}] is out of range: student layers are 1..{n_student}, "
                f"teacher layers 1..{n_teacher} (0 is the embeddings, matched separately)"
            )
    students = [s for s, _ in cfg.pairs]
    if len(set(students)) != len(students):
        raise UserError(f"layer_map pairs {cfg.pairs} match a student layer twice")
    return [tuple(p) for p in cfg.pairs]
