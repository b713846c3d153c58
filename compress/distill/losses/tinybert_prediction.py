"""TinyBERT prediction-layer loss: soft cross-entropy −softmax(z_T/t) · log_softmax(z_S/t), batch mean.

t = 1 worked best in the paper.
"""

import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from compress.distill.losses.base import LossSpec, reads_logits, scored_logits


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    temperature: float = Field(1.0, gt=0)


def tinybert_prediction(student, teacher, batch, ctx, temperature: float = 1.0):
    s_logits, t_logits = scored_logits(batch, student.logits, teacher.logits)  # per tagged token for a token task
    p_t = F.softmax(t_logits / temperature, dim=-1)
    return -(p_t * F.log_softmax(s_logits / temperature, dim=-1)).sum(-1).mean()


SPEC = LossSpec("tinybert_prediction", tinybert_prediction, frozenset({"logits"}), Params, __doc__, reads=reads_logits)
