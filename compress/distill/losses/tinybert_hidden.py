"""TinyBERT hidden-state loss: Σ over mapped layers of MSE(H_S^m · W_h^m, H_T^g(m)), real tokens only.

Summed over layers, as the TinyBERT reference does; W_h is the distiller's projection for layer m (or one
shared projection).
"""

from compress.distill.losses.base import LossSpec, check_projectable, masked_mse, reads_mapped_hidden


def tinybert_hidden(student, teacher, batch, ctx):
    mask = batch["attention_mask"]
    total = 0.0
    for s, t in ctx.layer_map:
        total = total + masked_mse(ctx.project(f"layer{s}", student.hidden_states[s]), teacher.hidden_states[t], mask)
    return total


SPEC = LossSpec("tinybert_hidden", tinybert_hidden, frozenset({"hidden_states"}), doc=__doc__,
                check=check_projectable, reads=reads_mapped_hidden)
