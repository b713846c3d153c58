"""Loss registry: name -> LossSpec. Adding a loss is one file and one line in REGISTRY.

Every term is called as `fn(student, teacher, batch, ctx, **params)`: `student` / `teacher` are
`distiller.Outputs` (logits, hidden_states with the embeddings at [0], pre-softmax attention_scores per
layer), `batch` holds `input_ids`, `attention_mask`, `labels`, and `ctx` is the Distiller (its `layer_map`
and `project(key, x)`). `needs` says which outputs the models must produce, so nothing unused is computed;
`check(ctx)` refuses impossible combinations (e.g. widths) before training starts; `reads(layer_map, L)` says
which teacher outputs the term uses, so the teacher-output cache keeps only those (compress.distill.teacher_cache).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from pydantic import BaseModel, ConfigDict, ValidationError


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
    "attention_scores": {layers, 1-based}}: the teacher outputs this term reads; None: all that `needs` names."""


def teacher_reads(spec: LossSpec, layer_map: list[tuple[int, int]], teacher_layers: int) -> dict[str, Any]:
    if spec.reads is not None:
        return spec.reads(layer_map, teacher_layers)
    everything = {"logits": True, "hidden_states": set(range(teacher_layers + 1)),
                  "attention_scores": set(range(1, teacher_layers + 1))}
    return {k: v for k, v in everything.items() if k in spec.needs}


def reads_logits(layer_map, teacher_layers) -> dict[str, Any]:
    return {"logits": True}


def reads_mapped_hidden(layer_map, teacher_layers) -> dict[str, Any]:
    return {"hidden_states": {t for _, t in layer_map}}


def masked_mse(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over real tokens only: a, b are (B, S, D), mask is (B, S) with 1 for real tokens."""
    m = mask.to(a.dtype).unsqueeze(-1)
    return ((a - b) ** 2 * m).sum() / (m.sum() * a.shape[-1])


def check_projectable(ctx) -> None:
    """Terms that compare hidden states need equal widths or the distiller's projections."""
    d_s, d_t = ctx.widths
    if d_s != d_t and not ctx.projections:
        from compress.errors import UserError

        raise UserError(
            f"student hidden size {d_s} differs from the teacher's {d_t} and distill.projection is 'none': "
            "set it to 'per_layer' or 'shared'"
        )


from compress.distill.losses import (  # noqa: E402  (specs need LossSpec above)
    cosine,
    hard_ce,
    soft_kl,
    tinybert_attention,
    tinybert_embedding,
    tinybert_hidden,
    tinybert_prediction,
)

REGISTRY: dict[str, LossSpec] = {
    spec.name: spec
    for spec in (
        soft_kl.SPEC,
        hard_ce.SPEC,
        cosine.SPEC,
        tinybert_embedding.SPEC,
        tinybert_hidden.SPEC,
        tinybert_attention.SPEC,
        tinybert_prediction.SPEC,
    )
}


def validate_terms(terms: dict[str, dict[str, Any]]) -> dict[str, tuple[float, BaseModel]]:
    """name -> (weight, params); ValueError with one readable line on any mistake."""
    out = {}
    for name, term in terms.items():
        spec = REGISTRY.get(name)
        if spec is None:
            raise ValueError(f"unknown loss '{name}'; known losses: {', '.join(REGISTRY)}")
        term = dict(term)
        weight = float(term.pop("weight", 1.0))
        if weight < 0:
            raise ValueError(f"loss '{name}' has a negative weight {weight}; weights must be >= 0")
        try:
            params = spec.params.model_validate(term)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"])
            allowed = ", ".join(spec.params.model_fields) or "none besides weight"
            raise ValueError(f"loss '{name}' setting '{key}': {err['msg']} (allowed: {allowed})") from None
        out[name] = (weight, params)
    if out and all(w == 0 for w, _ in out.values()):
        raise ValueError("every loss weight is 0: nothing would be learned")
    return out


class CombinedLoss:
    """The weighted sum of a stage's loss terms; also reports each term for the logs."""

    def __init__(self, terms: dict[str, dict[str, Any]]):
        self.terms = [(REGISTRY[n], w, p) for n, (w, p) in validate_terms(terms).items() if w > 0]
        self.needs = frozenset().union(*(spec.needs for spec, _, _ in self.terms))
        self.needs_labels = any(spec.needs_labels for spec, _, _ in self.terms)

    def __call__(self, student_out, teacher_out, batch, ctx=None) -> tuple[torch.Tensor, dict[str, float]]:
        total = 0.0
        parts = {}
        for spec, weight, params in self.terms:
            value = spec.fn(student_out, teacher_out, batch, ctx, **params.model_dump())
            parts[spec.name] = float(value.detach())
            total = total + weight * value
        return total, parts
