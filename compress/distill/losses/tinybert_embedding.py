"""TinyBERT embedding loss: MSE(E_S · W_e, E_T) over real tokens (W_e is the distiller's projection)."""

from compress.distill.losses.base import LossSpec, check_projectable, masked_mse


def tinybert_embedding(student, teacher, batch, ctx):
    e_s = ctx.project("embeddings", student.hidden_states[0])
    return masked_mse(e_s, teacher.hidden_states[0], batch["attention_mask"])


SPEC = LossSpec("tinybert_embedding", tinybert_embedding, frozenset({"hidden_states"}), doc=__doc__,
                check=check_projectable, reads=lambda layer_map, n: {"hidden_states": {0}})
