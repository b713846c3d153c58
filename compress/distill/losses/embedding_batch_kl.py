"""In-batch similarity distillation: the student's cosine-similarity matrix of a batch against the teacher's, row by row
KL(softmax(cos(t_i, t_j)/τ) ‖ softmax(cos(s_i, s_j)/τ)) over the other texts j ≠ i, mean over rows.

It teaches the batch's *ranking* (which texts are near which), what retrieval reads, where MSE and cosine teach each
vector alone (sentence-transformers' distillation losses score a query against candidates the same way). The
diagonal is left out: every text is its own nearest in both matrices.
"""

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    temperature: float = Field(0.05, gt=0)


def similarity_logits(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """cos(a_i, b_j) / τ for every pair: [rows of a, rows of b]."""
    return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / temperature


def row_kl(target_logits: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Mean over rows of KL(softmax(target) ‖ softmax(logits)); -inf entries take no part."""
    p = F.softmax(target_logits, dim=-1)
    log_q = F.log_softmax(logits, dim=-1)
    terms = torch.where(p > 0, p * (torch.log(p.clamp_min(1e-30)) - log_q), torch.zeros_like(p))
    return terms.sum(-1).mean()


def embedding_batch_kl(student, teacher, batch, ctx=None, temperature: float = 0.05):
    s, t = student.sentence_embedding, teacher.sentence_embedding.detach().to(student.sentence_embedding.dtype)  # the teacher is fixed
    if len(s) < 3:  # one other text: no ranking to learn
        return s.sum() * 0.0
    self_pairs = torch.eye(len(s), dtype=torch.bool, device=s.device)
    target = similarity_logits(t, t, temperature).masked_fill(self_pairs, float("-inf"))
    return row_kl(target, similarity_logits(s, s, temperature).masked_fill(self_pairs, float("-inf")))


from compress.distill.losses.base import LossSpec, check_same_dim, reads_vectors  # noqa: E402

SPEC = LossSpec("embedding_batch_kl", embedding_batch_kl, frozenset({"sentence_embedding"}), Params, __doc__,
                check=check_same_dim, reads=reads_vectors)
