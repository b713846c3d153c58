"""Sentence-embedding cosine: 1 − cos(v_S, v_T) between the student's and the teacher's sentence vectors, batch mean.

Only the direction counts (what cosine search compares), so it also fits teachers that do not normalise.
"""

import torch.nn.functional as F

from compress.distill.losses.base import LossSpec, check_same_dim, reads_vectors


def embedding_cosine(student, teacher, batch, ctx=None):
    return (1.0 - F.cosine_similarity(student.sentence_embedding, teacher.sentence_embedding, dim=-1)).mean()


SPEC = LossSpec("embedding_cosine", embedding_cosine, frozenset({"sentence_embedding"}), doc=__doc__,
                check=check_same_dim, reads=reads_vectors)
