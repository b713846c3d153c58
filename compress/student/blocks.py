"""Copying teacher weights into a smaller student: shared by the BERT and ALBERT student builders."""

from __future__ import annotations

import torch


def truncated_block(source: torch.Tensor, shape: torch.Size) -> torch.Tensor | None:
    """The leading block of a teacher tensor that fits the student's shape (None if it cannot)."""
    if source.ndim != len(shape) or any(s > t for s, t in zip(shape, source.shape)):
        return None
    return source[tuple(slice(0, n) for n in shape)].clone()
