"""The student: the teacher's architecture with fewer layers, initialised from the teacher's layers.

DistilBERT initialises its student from every other teacher layer. We take every k-th layer ending on the
last one (TinyBERT's uniform map g(m) = m·k), so the student's top layer starts as the layer the classifier
was trained on; an explicit list in the recipe overrides it. A narrower student takes the leading block of
each tensor (init 'teacher') or the teacher's most important heads, neurons and channels (init 'pruned',
compress/student/prune.py).
"""

from __future__ import annotations

import copy
import re

import torch

from compress.errors import UserError
from compress.recipe import StudentConfig
from compress.student.blocks import truncated_block  # noqa: F401 (ALBERT students use it too)

_LAYER_KEY = re.compile(r"^(.*\.encoder\.layer\.)(\d+)(\..*)$")


def select_layers(n_teacher: int, cfg: StudentConfig) -> list[int]:
    n = cfg.num_layers
    if n > n_teacher:
        raise UserError(
            f"student.num_layers {n} is more than the teacher's {n_teacher} layers: "
            "a student initialised from the teacher cannot be deeper (use student.init: random)"
        )
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
    from compress.distill.mapping import uniform_teacher_layer

    # the same rule as the uniform layer map, so a student layer starts as the teacher layer it learns from
    return [uniform_teacher_layer(m, n, n_teacher) - 1 for m in range(1, n + 1)]


def student_config(teacher_config, cfg: StudentConfig, num_layers: int):
    from compress.student.albert import with_dropout

    config = copy.deepcopy(with_dropout(teacher_config, cfg.dropout))
    config.num_hidden_layers = num_layers
    config.hidden_size = cfg.hidden_size or teacher_config.hidden_size
    config.num_attention_heads = cfg.num_attention_heads or teacher_config.num_attention_heads
    config.intermediate_size = cfg.intermediate_size or teacher_config.intermediate_size
    if config.hidden_size % config.num_attention_heads:
        raise UserError(
            f"student hidden size {config.hidden_size} is not divisible by its {config.num_attention_heads} "
            "attention heads: change student.hidden_size or student.num_attention_heads"
        )
    if cfg.albert_style:
        from compress.student.albert import validate

        validate(num_layers, config.hidden_size, cfg.embedding_size, cfg.sharing or "none", cfg.groups)
    return config


def build_student(teacher: torch.nn.Module, cfg: StudentConfig, importance=None) -> tuple[torch.nn.Module, list[int], dict]:
    """A new model of the teacher's class and the recipe's shape.

    init 'teacher': the chosen teacher layers (and embeddings, classifier) are copied; where the student is
    narrower, each tensor's leading block is taken (truncation). init 'pruned': the structures `importance`
    (compress.student.prune.Importance, scored on the teacher) ranks highest. init 'random': Hugging Face's own init.
    Returns the student, the teacher layers it started from, and what else the build did (ALBERT: SVD error).
    """
    n_teacher = teacher.config.num_hidden_layers
    layers = select_layers(n_teacher, cfg) if cfg.init in ("teacher", "pruned") else []
    if cfg.albert_style and cfg.init == "pruned":
        # prune a BERT of the student's shape first; the ALBERT student then starts from it layer for layer (its
        # factorized table is the SVD of the pruned table, its shared groups the pruned layers they begin with)
        bert_shape = cfg.model_copy(update={"embedding_size": None, "sharing": None, "groups": 1})
        pruned, _, record = build_student(teacher, bert_shape, importance)
        albert_cfg = cfg.model_copy(update={"init": "teacher", "layers": None})
        student, albert_record = _albert_from(pruned, albert_cfg, list(range(cfg.num_layers)))
        return student, layers, record | albert_record
    if cfg.albert_style:
        student, record = _albert_from(teacher, cfg, layers)
        return student, layers, record
    config = student_config(teacher.config, cfg, cfg.num_layers)
    # a sentence encoder makes its own kind (pooling, projection to its output size); a HF model, one of its class
    student = teacher.new_like(config) if hasattr(teacher, "new_like") else type(teacher)(config)
    if cfg.init == "random":
        return student.eval(), layers, {}
    if cfg.init == "pruned":
        from compress.student.prune import check_prunable, choose, pruned_state

        check_prunable(teacher.config, config)
        if importance is None:
            raise ValueError("init 'pruned' needs the teacher's importance scores (compress.student.prune.importance)")
        kept = choose(importance, teacher.config, config, layers)
        state, untouched = pruned_state(teacher.state_dict(), student.state_dict(), kept, layers)
        student.load_state_dict(state, strict=True)
        return student.eval(), layers, {"importance": importance.method, "importance_rows": importance.rows,
                                        "heads_kept": kept.heads}
    source = {}
    for key, value in teacher.state_dict().items():
        match = _LAYER_KEY.match(key)
        if match is None:
            source[key] = value
        else:
            for m, chosen in enumerate(layers):
                if chosen == int(match.group(2)):
                    source[f"{match.group(1)}{m}{match.group(3)}"] = value
    state = student.state_dict()
    for key, target in state.items():
        if key in source:
            block = truncated_block(source[key], target.shape)
            if block is not None:
                state[key] = block
    student.load_state_dict(state, strict=True)
    return student.eval(), layers, {}


def _albert_from(teacher: torch.nn.Module, cfg: StudentConfig, layers: list[int]) -> tuple[torch.nn.Module, dict]:
    from compress.student.albert import build_albert_student

    student, record = build_albert_student(teacher, cfg, layers)
    if hasattr(teacher, "wrap"):  # a sentence encoder: the same pooling around the ALBERT encoder
        student = teacher.wrap(student.albert)
    return student, record


def count_params(model: torch.nn.Module) -> int:
    """Unique parameters (a tensor shared by several modules counts once)."""
    seen = {}
    for p in model.parameters():
        seen[p.data_ptr()] = p.numel()
    return sum(seen.values())
