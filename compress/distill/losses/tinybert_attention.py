"""TinyBERT attention loss on the unnormalised scores QKᵀ/√d_k, summed over mapped layers.

Per layer: mean over heads and over (query, key) pairs where both positions are real tokens of
(A_S − A_T)². The TinyBERT reference zeroes masked scores (≤ −100) before its MSE; excluding padded pairs
is the same comparison without counting padding in the mean. Student and teacher need the same number of
heads (head h of the student learns head h of the teacher); other head counts are refused.
"""

from compress.distill.losses.base import LossSpec
from compress.errors import UserError


def tinybert_attention(student, teacher, batch, ctx):
    mask = batch["attention_mask"].to(student.attention_scores[0].dtype)
    pairs = mask[:, None, :, None] * mask[:, None, None, :]  # (B, 1, S, S)
    total = 0.0
    for s, t in ctx.layer_map:
        a_s, a_t = student.attention_scores[s - 1], teacher.attention_scores[t - 1]
        total = total + ((a_s - a_t) ** 2 * pairs).sum() / (pairs.sum() * a_s.shape[1])
    return total


def check(ctx) -> None:
    h_s, h_t = ctx.student.config.num_attention_heads, ctx.teacher.config.num_attention_heads
    if h_s != h_t:
        raise UserError(
            f"tinybert_attention needs the same number of heads: student {h_s}, teacher {h_t}; "
            f"give the student {h_t} heads (student.num_attention_heads) or drop the term"
        )


SPEC = LossSpec("tinybert_attention", tinybert_attention, frozenset({"attention_scores"}), doc=__doc__, check=check,
                reads=lambda layer_map, n: {"attention_scores": {t for _, t in layer_map}})
