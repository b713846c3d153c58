"""Cross-entropy of the student's logits against the gold labels (DistilBERT's task-side term); per tagged token for
a token classifier."""

import torch.nn.functional as F


def hard_ce(student, teacher, batch, ctx=None):
    # a token classifier's [B, S, tags] against [B, S] tags; -100 (no tag) is cross_entropy's ignore_index
    return F.cross_entropy(student.logits.flatten(0, -2), batch["labels"].flatten())


from compress.distill.losses.base import LossSpec  # noqa: E402

SPEC = LossSpec("hard_ce", hard_ce, frozenset({"logits"}), doc=__doc__, needs_labels=True,
                reads=lambda layer_map, n: {})
