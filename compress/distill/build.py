"""The one way a Distiller is built from a recipe: the distill stage trains with it, quantization-aware distillation
builds the same one again (the distill stage's projections loaded back), so neither rebuilds it by hand."""

from __future__ import annotations

from pathlib import Path


def build_distiller(recipe, teacher, student, student_ids=None, losses=(), projections: Path | None = None):
    """teacher -> student through the recipe's layer map and projection mode; `student_ids` maps a task vocabulary's
    ids; `projections`: the trained projections to load (when the file exists); each loss is checked against it."""
    import torch

    from compress.distill.distiller import Distiller
    from compress.distill.mapping import build_layer_map

    cfg = recipe.distill
    layer_map = build_layer_map(student.config.num_hidden_layers, teacher.config.num_hidden_layers, cfg.layer_map)
    distiller = Distiller(teacher, student, layer_map, cfg.projection, student_ids)
    if projections is not None and len(distiller.projections) and Path(projections).is_file():
        distiller.projections.load_state_dict(torch.load(projections, weights_only=True))
    for loss in losses:
        distiller.check(loss)
    return distiller
