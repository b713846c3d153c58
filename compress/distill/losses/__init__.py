"""Loss registry: name -> LossSpec. Adding a loss is one file and one line in REGISTRY.

Every term gets the student's and the teacher's model outputs (Hugging Face output objects: `.logits`,
`.hidden_states`) and the batch (`input_ids`, `attention_mask`, `labels`, ...), plus its own parameters
from the recipe. Its `needs` say which outputs the models must produce, so nothing unused is computed.
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


from compress.distill.losses import cosine, hard_ce, soft_kl  # noqa: E402  (specs need LossSpec above)

REGISTRY: dict[str, LossSpec] = {
    spec.name: spec
    for spec in (
        soft_kl.SPEC,
        hard_ce.SPEC,
        cosine.SPEC,
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
    return out


class CombinedLoss:
    """The weighted sum of the recipe's loss terms; also reports each term for the logs."""

    def __init__(self, terms: dict[str, dict[str, Any]]):
        self.terms = [(REGISTRY[n], w, p) for n, (w, p) in validate_terms(terms).items() if w > 0]
        self.needs = frozenset().union(*(spec.needs for spec, _, _ in self.terms))

    def __call__(self, student_out, teacher_out, batch) -> tuple[torch.Tensor, dict[str, float]]:
        total = 0.0
        parts = {}
        for spec, weight, params in self.terms:
            value = spec.fn(student_out, teacher_out, batch, **params.model_dump())
            parts[spec.name] = float(value.detach())
            total = total + weight * value
        return total, parts
