"""The recipe's `embedding` section (task: embedding)."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from compress.schema import Strict as _Strict


class EmbeddingConfig(_Strict):
    """The embedding task: how the teacher's token vectors become one sentence vector (the student copies it)."""

    pooling: Literal["auto", "mean", "cls", "max", "mean_sqrt_len_tokens"] = "auto"
    """auto: what the teacher's modules.json says (a bare encoder without one needs a choice)."""
    normalize: Literal["auto", "on", "off"] = "auto"
    """L2-normalise the vectors; auto: as the teacher's modules.json says (on for a bare encoder)."""
    truncate_dims: list[int] | None = None
    """Shorter stored vectors (compress.embedding.shorter): the widths the bench scores and the bundle offers, each
    below the vector's width and a multiple of 8; [] for none; None: 256, 128 and 64 where the vector is wider (half
    and a quarter of a narrower one)."""

    @field_validator("normalize", mode="before")
    @classmethod
    def _yaml_booleans(cls, value):
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value
