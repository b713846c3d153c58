"""The student: the teacher's architecture with fewer layers, initialised from the teacher's layers.

DistilBERT initialises its student from every other teacher layer. We take every k-th layer ending on the
last one (TinyBERT's uniform map g(m) = m·k), so the student's top layer starts as the layer the classifier
was trained on; an explicit list in the recipe overrides it.
"""

from __future__ import annotations

import copy
import re

import torch

from compress.errors import UserError
from compress.recipe import StudentConfig

_LAYER_KEY = re.compile(r"^(.*\.encoder\.layer\.)(\d+)(\..*)$")


def select_layers(n_teacher: int, cfg: StudentConfig) -> list[int]:
    n = cfg.num_layers
    if n > n_teacher:
        raise UserError(f"student.num_layers {n} is more than the teacher's {n_teacher} layers")
    if cfg.layers is not None:
        layers = list(cfg.layers)
        if len(layers) != n:
            raise UserError(f"student.layers lists {len(layers)} layers but student.num_layers is {n}")
        bad = [x for x in layers if not 0 <= x < n_teacher]
        if bad:
            raise UserError(f"student.layers {bad} are out of range: the teacher has layers 0..{n_teacher - 1}")
        if len(set(layers)) != len(layers):
            raise UserError(f"student.layers {layers} repeats a layer")
        return layers
    k = n_teacher / n
    return [round((m + 1) * k) - 1 for m in range(n)]


def build_student(teacher: torch.nn.Module, cfg: StudentConfig) -> tuple[torch.nn.Module, list[int]]:
    """A new model of the teacher's class with `cfg.num_layers` layers copied from the teacher."""
    n_teacher = teacher.config.num_hidden_layers
    layers = select_layers(n_teacher, cfg)
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(layers)
    student = type(teacher)(config)
    source = {}
    for key, value in teacher.state_dict().items():
        match = _LAYER_KEY.match(key)
        if match is None:
            source[key] = value
        else:
            t_layer = int(match.group(2))
            for m, chosen in enumerate(layers):
                if chosen == t_layer:
                    source[f"{match.group(1)}{m}{match.group(3)}"] = value
    student.load_state_dict({k: v.clone() for k, v in source.items()}, strict=True)
    return student.eval(), layers


def count_params(model: torch.nn.Module) -> int:
    """Unique parameters (a tensor shared by several modules counts once)."""
    seen = {}
    for p in model.parameters():
        seen[p.data_ptr()] = p.numel()
    return sum(seen.values())
