"""The teacher-output cache's recipe section (distill.teacher_cache): what compress.distill.teacher_cache builds."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from compress.schema import Strict as _Strict


class TeacherCacheConfig(_Strict):
    """The teacher's outputs (logits, and the hidden states / attention scores the losses read) computed once per
    distillation data set, stored on disk and reused by every epoch and stage instead of running the teacher each
    step. Exact up to the stored dtype: the teacher runs in eval mode on data without augmentation."""

    mode: Literal["auto", "on", "off"] = "auto"
    """auto: cache when it needs at most max_gb of disk; on: always; off: run the teacher every step."""
    path: str | None = None
    """Where to keep it (default OUT/cache/teacher). A shared directory lets runs with the same teacher and data (e.g.
    several students) reuse one cache; a cache there made from another teacher or data is refused."""
    dtype: Literal["float16", "float32"] = "float16"
    """Storage of hidden states, attention scores and sentence vectors (logits are always float32)."""
    max_gb: float = Field(4.0, gt=0)
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """The teacher's forward passes that fill the cache. auto: bf16 where this machine multiplies bf16 natively (a CPU
    with AMX or AVX512-BF16, a CUDA GPU), else fp32. The outputs are soft targets: bf16 moves a logit by about 1e-2,
    and labels the rows 2-3x faster on such a CPU (the transfer rows make this the longest step of distillation)."""

    @field_validator("mode", mode="before")
    @classmethod
    def _yaml_booleans(cls, value):
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value
