"""Cross-entropy of the student's logits against the gold labels (DistilBERT's task-side term); per tagged token for
a token classifier."""

import torch.nn.functional as F


def hard_ce(student, teacher, batch, ctx=None):
    # a token classifier's [B, S, tags] against [B, S] tags; rows (tokens) without a gold label carry a negative one:
    # -100 (no tag: later pieces, padding) or UNLABELLED (text the teacher labels), and are left out
    logits, labels = student.logits.flatten(0, -2), batch["labels"].flatten()
    keep = labels >= 0
    if not bool(keep.any()):  # a batch of unlabelled rows only
        return logits.sum() * 0.0
    return F.cross_entropy(logits[keep], labels[keep])


from compress.distill.losses.base import LossSpec  # noqa: E402

SPEC = LossSpec("hard_ce", hard_ce, frozenset({"logits"}), doc=__doc__, needs_labels=True,
                reads=lambda layer_map, n: {})
