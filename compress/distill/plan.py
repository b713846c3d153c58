"""Check a whole distillation plan against the teacher's config before anything runs or is written.

Everything here needs only configs (no weights): the student's shape, the layer map, each loss term's
requirements (widths, heads, projections) and the general-distillation text file.
"""

from __future__ import annotations

from types import SimpleNamespace

from compress.distill.losses import REGISTRY, validate_terms
from compress.distill.mapping import build_layer_map
from compress.errors import UserError
from compress.recipe import Recipe
from compress.student import select_layers, student_config


def stage_terms(recipe: Recipe) -> list[tuple[str, object, dict]]:
    """(name, stage config, loss terms) of every distillation stage, in the order they run."""
    cfg = recipe.distill
    stages = ([("general", cfg.general)] if cfg.general is not None else []) + [(st.name, st) for st in cfg.task_stages()]
    return [(name, st, {k: v.model_dump() for k, v in st.losses.items()}) for name, st in stages]


def validate_plan(teacher_config, recipe: Recipe, task=None) -> list[tuple[int, int]]:
    """Raise UserError for any impossible combination; returns the layer map. task: the run's compress.tasks.Task,
    which says which model outputs (and whether labels) a loss may read."""
    if recipe.student.init in ("teacher", "pruned"):
        select_layers(teacher_config.num_hidden_layers, recipe.student)
    s_cfg = student_config(teacher_config, recipe.student, recipe.student.num_layers)
    if recipe.student.init == "pruned":
        from compress.student.prune import check_prunable

        check_prunable(teacher_config, s_cfg)
    layer_map = build_layer_map(s_cfg.num_hidden_layers, teacher_config.num_hidden_layers, recipe.distill.layer_map)
    d_s, d_t = s_cfg.hidden_size, teacher_config.hidden_size
    ctx = SimpleNamespace(
        widths=(d_s, d_t),
        layer_map=layer_map,
        projections={"any": None} if d_s != d_t and recipe.distill.projection != "none" else {},
        student=SimpleNamespace(config=s_cfg),
        teacher=SimpleNamespace(config=teacher_config),
    )
    for stage_name, _, terms in stage_terms(recipe):
        for name, (weight, params) in validate_terms(terms).items():
            spec = REGISTRY[name]
            why = task and weight > 0 and task.check_losses(spec.needs, spec.needs_labels, f"loss '{name}'")
            if why:
                raise UserError(f"distill stage '{stage_name}': {why}: choose other losses for this task")
            if weight > 0:
                spec.check_all(ctx, params)
    transfer = recipe.distill.transfer
    if transfer.active:
        from compress.distill.transfer import check

        check(transfer, recipe.data.path)
    if recipe.distill.general is not None:
        from compress.data.unlabeled import read_texts
        from compress.distill.transfer import listed, resolve_specs

        g = recipe.distill.general
        for spec in resolve_specs(listed(g.data), recipe.data.path)[0]:
            read_texts(spec, g.text_column, recipe.data.path)
    return layer_map
