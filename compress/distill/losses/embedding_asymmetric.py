"""Asymmetric in-batch distillation: the student's vectors as queries against the teacher's vectors as documents,
row by row KL(softmax(cos(t_i, t_j)/τ) ‖ softmax(cos(s_i, t_j)/τ)) over every text j of the batch, mean over rows.

The on-device search this serves: documents embedded once by the teacher on a server, queries by the student on the
phone. The target row is the teacher's own (its query against its documents), so the student's query must rank
the teacher's documents as the teacher's query does, its own text first.
"""

from pydantic import BaseModel, ConfigDict, Field

from compress.distill.losses.embedding_batch_kl import row_kl, similarity_logits


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    temperature: float = Field(0.05, gt=0)


def embedding_asymmetric(student, teacher, batch, ctx=None, temperature: float = 0.05):
    s, t = student.sentence_embedding, teacher.sentence_embedding.detach().to(student.sentence_embedding.dtype)  # the teacher is fixed
    if len(s) < 2:
        return s.sum() * 0.0
    return row_kl(similarity_logits(t, t, temperature), similarity_logits(s, t, temperature))


from compress.distill.losses.base import LossSpec, check_same_dim, reads_vectors  # noqa: E402

SPEC = LossSpec("embedding_asymmetric", embedding_asymmetric, frozenset({"sentence_embedding"}), Params, __doc__,
                check=check_same_dim, reads=reads_vectors)
