"""Sentence-embedding MSE (Reimers & Gurevych 2020, arXiv 2004.09813): ‖v_S − v_T‖² between the pooled (and, when the
teacher normalises, L2-normalised) sentence vectors, summed over the dimensions and averaged over the batch.

Summed rather than averaged over the dimensions, so its scale does not shrink with the width (for unit vectors it
equals 2·(1 − cos)). The student's vectors are in the teacher's space: a narrower student's projection is part of it.
"""

from compress.distill.losses.base import LossSpec, check_same_dim, reads_vectors


def embedding_mse(student, teacher, batch, ctx=None):
    return ((student.sentence_embedding - teacher.sentence_embedding) ** 2).sum(-1).mean()


SPEC = LossSpec("embedding_mse", embedding_mse, frozenset({"sentence_embedding"}), doc=__doc__, check=check_same_dim,
                reads=reads_vectors)
