"""MiniLMv2 self-attention relation distillation (Wang et al. 2021, arXiv 2012.15828): the query–query,
key–key and value–value relations of the student's last mapped layer learn the teacher's, through a number of
relation heads that is the same for both models and independent of either's attention heads. The student may
so have fewer heads, or another width, than the teacher, with no projection.

Per relation (Q, K or V) and model: the layer's (B, S, A) vectors are split into R relation heads of A / R
dimensions, and the relation is softmax(X_r X_rᵀ / √(A / R)) over the real key positions. The loss is
KL(teacher ‖ student) per relation head and real query position, averaged, summed over the relations.
Which layers: the last pair of the layer map (student's last layer ↔ teacher's last layer under the uniform
map, MiniLMv2's choice for base-size teachers); an explicit `distill.layer_map` ending on another teacher
layer picks that one (the papers found an upper-middle layer better for large teachers).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from compress.distill.losses.base import LossSpec
from compress.errors import UserError

_INDEX = {"query": 0, "key": 1, "value": 2}


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    relation_heads: int = Field(8, ge=1)
    """R: both models' attention widths must be divisible by it (MiniLMv2: 12 for base-size teachers, 48-64 for large)."""
    relations: list[Literal["query", "key", "value"]] = Field(default_factory=lambda: ["query", "key", "value"], min_length=1)


def _log_relation(x: torch.Tensor, heads: int, key_mask: torch.Tensor) -> torch.Tensor:
    """(B, S, A) -> (B, R, S, S) log-probabilities of each position's relation to every real position."""
    b, s, a = x.shape
    d = a // heads
    xr = x.view(b, s, heads, d).transpose(1, 2)
    return torch.log_softmax(xr @ xr.transpose(-1, -2) / math.sqrt(d) + key_mask, dim=-1)


def minilm_relation(student, teacher, batch, ctx, relation_heads: int, relations: list[str]):
    s_layer, t_layer = ctx.layer_map[-1]
    mask = batch["attention_mask"].float()
    key_mask = (1.0 - mask)[:, None, None, :] * -1e4  # padded keys get no probability
    queries = mask[:, None, :]  # only real positions' rows count
    total = 0.0
    for name in relations:
        i = _INDEX[name]
        log_s = _log_relation(student.qkv[s_layer - 1][i], relation_heads, key_mask)
        log_t = _log_relation(teacher.qkv[t_layer - 1][i], relation_heads, key_mask)
        kl = (log_t.exp() * (log_t - log_s)).sum(-1)  # (B, R, S)
        total = total + (kl * queries).sum() / (queries.sum() * relation_heads)
    return total


def check(ctx, params: Params) -> None:
    r = params.relation_heads
    widths = {"student": ctx.student.config.hidden_size, "teacher": ctx.teacher.config.hidden_size}
    bad = {who: w for who, w in widths.items() if w % r}
    if bad:
        fits = [n for n in (1, 2, 4, 8, 12, 16, 24, 32, 48, 64) if all(w % n == 0 for w in widths.values())]
        raise UserError(
            f"minilm_relation: relation_heads {r} does not divide the attention width of the "
            + " and ".join(f"{who} ({w})" for who, w in bad.items())
            + f": use one of {fits}"
        )


SPEC = LossSpec("minilm_relation", minilm_relation, frozenset({"qkv"}), params=Params, doc=__doc__,
                check_params=check, reads=lambda layer_map, n: {"qkv": {layer_map[-1][1]}})
