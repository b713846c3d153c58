"""Loss registry: name -> LossSpec. Adding a loss is one file and one line in REGISTRY.

Every term is called as `fn(student, teacher, batch, ctx, **params)`: `student` / `teacher` are
`distiller.Outputs` (logits, hidden_states with the embeddings at [0], pre-softmax attention_scores per
layer, qkv: the (query, key, value) vectors per layer), `batch` holds `input_ids`, `attention_mask`, `labels`, and `ctx` is the Distiller (its `layer_map`
and `project(key, x)`). `needs` says which outputs the models must produce, so nothing unused is computed;
`check(ctx)` / `check_params(ctx, params)` refuse impossible combinations (e.g. widths) before training starts; `reads(layer_map, L)` says
which teacher outputs the term uses, so the teacher-output cache keeps only those (compress.distill.teacher_cache).
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import BaseModel, ValidationError

from compress.distill.losses.base import LossSpec, NoParams, teacher_reads  # noqa: F401 (the public names)
from compress.distill.losses import (
    cosine,
    embedding_asymmetric,
    embedding_batch_kl,
    embedding_cosine,
    embedding_mse,
    hard_ce,
    minilm_relation,
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
        embedding_mse.SPEC,
        embedding_cosine.SPEC,
        embedding_batch_kl.SPEC,
        embedding_asymmetric.SPEC,
        minilm_relation.SPEC,
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
