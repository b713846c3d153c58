"""DistilBERT cosine loss: 1 - cos(h_S, h_T) between last hidden states, averaged over real tokens.

Padded positions are excluded (as in Hugging Face's distiller, which masks before CosineEmbeddingLoss).
Student and teacher must have the same hidden width: this term has no projection.
"""

import torch.nn.functional as F

from compress.errors import UserError


def hidden_cosine(student, teacher, batch, ctx=None):
    h_s = student.hidden_states[-1]
    h_t = teacher.hidden_states[-1]
    mask = batch["attention_mask"].bool()
    cos = F.cosine_similarity(h_s[mask], h_t[mask], dim=-1)
    return (1.0 - cos).mean()


def check(ctx) -> None:
    d_s, d_t = ctx.widths
    if d_s != d_t:
        raise UserError(
            f"hidden_cosine needs equal hidden sizes, got student {d_s} and teacher {d_t}: "
            "drop the term or use tinybert_hidden (which projects)"
        )


from compress.distill.losses.base import LossSpec  # noqa: E402

SPEC = LossSpec("hidden_cosine", hidden_cosine, frozenset({"hidden_states"}), doc=__doc__, check=check,
                reads=lambda layer_map, n: {"hidden_states": {n}})
