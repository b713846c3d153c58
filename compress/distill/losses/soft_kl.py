"""DistilBERT soft-target loss: KL(teacher || student) of temperature-softened distributions, times T².

T² keeps the gradient scale independent of the temperature (Hinton et al. 2015). A token classifier's is per tagged
token (batchmean over those tokens).
"""

import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    temperature: float = Field(2.0, gt=0)


def soft_kl(student, teacher, batch, ctx=None, temperature: float = 2.0):
    t = temperature
    s_logits, t_logits = scored_logits(batch, student.logits, teacher.logits)  # per tagged token for a token task
    log_p_student = F.log_softmax(s_logits / t, dim=-1)
    p_teacher = F.softmax(t_logits / t, dim=-1)
    return F.kl_div(log_p_student, p_teacher, reduction="batchmean") * (t * t)


from compress.distill.losses.base import LossSpec, reads_logits, scored_logits  # noqa: E402

SPEC = LossSpec("distilbert_soft", soft_kl, frozenset({"logits"}), Params, __doc__, reads=reads_logits)
