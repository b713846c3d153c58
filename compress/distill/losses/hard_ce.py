"""Cross-entropy of the student's logits against the gold labels (DistilBERT's task-side term)."""

import torch.nn.functional as F


def hard_ce(student, teacher, batch, ctx=None):
    return F.cross_entropy(student.logits, batch["labels"])


from compress.distill.losses.base import LossSpec  # noqa: E402

SPEC = LossSpec("hard_ce", hard_ce, frozenset({"logits"}), doc=__doc__, needs_labels=True,
                reads=lambda layer_map, n: {})
