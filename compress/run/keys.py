"""Stage bookkeeping: the settings hash each stage's result depends on, and the digests of what it wrote."""

from __future__ import annotations

from compress.fsutil import file_digest, settings_hash
from compress.recipe import Recipe
from compress.run.table import STAGE_NAMES, STAGES, stage


def stage_key(run, name: str) -> str:
    """Hash of everything a stage's result depends on: its recipe sections and those of the stages before it,
    the teacher's weights, the task data, and which run of each earlier stage made its inputs (a redone
    earlier stage makes the later ones redo too)."""
    upto = STAGES[: STAGE_NAMES.index(name) + 1]
    settings = {section: getattr(run.recipe, section) for st in upto for section in st.sections}
    for st in upto:
        for section in st.optional_sections:
            if getattr(run.recipe, section) != Recipe.model_fields[section].get_default(call_default_factory=True):
                settings[section] = getattr(run.recipe, section)
    settings = {k: v.model_dump(mode="json") if hasattr(v, "model_dump") else v for k, v in settings.items()}
    earlier = {st.name: (run.stage_record(st.name) or {}).get("run_id") for st in upto[:-1]}
    return settings_hash({"settings": settings, **run.inputs_identity, "earlier_runs": earlier})


def stage_outputs(run, name: str) -> dict[str, str]:
    """relative path -> SHA-256 of every file the stage owns."""
    if name == "finetune" and not (run.stage_record("finetune") or {}).get("finetuned"):
        return {}  # the checkpoint was used as it is: the teacher identity covers it
    found = {}
    for path in run.layout.owned(stage(name).outputs):
        files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path] if path.is_file() else []
        for f in files:
            found[run.layout.rel(f)] = file_digest(f)
    return found


def outputs_intact(run, outputs: dict[str, str | None]) -> bool:
    """Every recorded output still there with its digest (None: recorded by an earlier version for presence only)."""
    for rel, digest in outputs.items():
        path = run.out / rel
        if not path.is_file() or (digest is not None and file_digest(path) != digest):
            return False
    return True
