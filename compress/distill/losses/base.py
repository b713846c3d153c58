"""What a loss term is (LossSpec) and the helpers terms share. A leaf module: the terms import it, the registry
(compress.distill.losses) imports the terms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from pydantic import BaseModel, ConfigDict

from compress.errors import UserError


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class LossSpec:
    name: str
    fn: Callable[..., torch.Tensor]
    needs: frozenset[str]
    params: type[BaseModel] = NoParams
    doc: str = ""
    check: Callable[[Any], None] | None = None
    needs_labels: bool = False
    reads: Callable[[list[tuple[int, int]], int], dict[str, Any]] | None = None
    """(layer_map, teacher layers) -> {"logits": True, "hidden_states": {indices, 0 = embeddings},
    "attention_scores": {layers, 1-based}, "qkv": {layers, 1-based}}: the teacher outputs this term reads; None:
    all that `needs` names."""
    check_params: Callable[[Any, BaseModel], None] | None = None
    """Like `check`, for refusals that depend on the term's settings: (ctx, params)."""

    def check_all(self, ctx, params: BaseModel) -> None:
        if self.check is not None:
            self.check(ctx)
        if self.check_params is not None:
            self.check_params(ctx, params)


def teacher_reads(spec: LossSpec, layer_map: list[tuple[int, int]], teacher_layers: int) -> dict[str, Any]:
    if spec.reads is not None:
        return spec.reads(layer_map, teacher_layers)
    everything = {"logits": True, "hidden_states": set(range(teacher_layers + 1)),
                  "attention_scores": set(range(1, teacher_layers + 1)), "qkv": set(range(1, teacher_layers + 1))}
    return {k: v for k, v in everything.items() if k in spec.needs}


def reads_logits(layer_map, teacher_layers) -> dict[str, Any]:
    return {"logits": True}


def reads_mapped_hidden(layer_map, teacher_layers) -> dict[str, Any]:
    return {"hidden_states": {t for _, t in layer_map}}


def masked_mse(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over real tokens only: a, b are (B, S, D), mask is (B, S) with 1 for real tokens."""
    m = mask.to(a.dtype).unsqueeze(-1)
    return ((a - b) ** 2 * m).sum() / (m.sum() * a.shape[-1])


def scored_logits(batch, *logits: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Logits as [rows, labels]: a classifier's as they are; a token classifier's [B, S, tags] at the positions that
    carry a tag (the first piece of each word: not padding, not special tokens, not a word's later pieces), or, on
    untagged text (general distillation), at every real token."""
    if logits[0].dim() != 3:
        return logits
    labels = batch.get("labels")
    if labels is not None and labels.shape == logits[0].shape[:2]:
        keep = labels != -100  # compress.token_classification.align.IGNORE
    else:
        keep = batch["attention_mask"].bool()
    return tuple(x[keep] for x in logits)


def check_projectable(ctx) -> None:
    """Terms that compare hidden states need equal widths or the distiller's projections."""
    d_s, d_t = ctx.widths
    if d_s != d_t and not ctx.projections:
        raise UserError(
            f"student hidden size {d_s} differs from the teacher's {d_t} and distill.projection is 'none': "
            "set it to 'per_layer' or 'shared'"
        )


def reads_vectors(layer_map, teacher_layers) -> dict[str, Any]:
    return {"sentence_embedding": True}


def check_same_dim(ctx) -> None:
    """Sentence vectors are compared as they are: the student's output size must be the teacher's."""
    d_s, d_t = getattr(ctx.student, "dim", None), getattr(ctx.teacher, "dim", None)
    if d_s is not None and d_t is not None and d_s != d_t:
        raise UserError(f"the student's sentence vectors have {d_s} dimensions and the teacher's {d_t}: they must match "
                        "to be compared (a narrower student gets a projection to the teacher's size)")
