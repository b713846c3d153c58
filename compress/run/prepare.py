"""Everything the user gave is checked before OUT is touched: teacher, data, recipe, the OUT folder itself."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from compress.data import TaskData
from compress.errors import UserError, first_line
from compress.fsutil import write_text
from compress.progress import info
from compress.recipe import Recipe, build_recipe
from compress.run.context import Run, pick_device
from compress.run.layout import Layout
from compress.tasks import get as get_task
from compress.teacher import check_max_length, resolve_teacher


def _check_writable(out: Path) -> None:
    """OUT, or the deepest folder above it that exists, must really take a new folder: os.access says yes for
    root on read-only mounts and on /proc, so a throw-away folder is made and removed (nothing stays)."""
    import tempfile

    probe = out
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"cannot create {out}: {probe} is a file")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".bert-compress-probe-", dir=probe))
    except OSError as exc:
        raise UserError(f"cannot write to {probe} ({exc.strerror or first_line(exc)}): choose another --out "
                        "or fix its permissions") from None


def _reorder_labels(data: TaskData, order: list[str]) -> TaskData:
    """Use the label order of the teacher's existing head, so its outputs keep their meaning."""
    remap = {data.labels.index(lab): i for i, lab in enumerate(order)}
    from dataclasses import replace

    def fix(rows):
        if rows and getattr(rows[0], "words", None) is not None:  # token classification: a tag per word
            return [replace(e, tags=tuple(remap[t] for t in e.tags)) for e in rows]
        return [replace(e, label=remap[e.label]) for e in rows]

    return replace(data, labels=list(order), train=fix(data.train), dev=fix(data.dev), test=fix(data.test))


def check_out(out: Path, *, force: bool, resume: bool, whole_run: bool) -> None:
    """What `prepare` refuses about OUT itself (checked early by work that comes before it, e.g. a budget's profile)."""
    _check_writable(out)
    saved = Layout(out).recipe
    if force and resume:
        raise UserError("--force redoes every stage and --resume continues them: pass one of the two")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file: give a directory")
    if resume and not saved.is_file():
        raise UserError(f"nothing to resume in {out}: it holds no bert-compress run (no recipe.yaml); start one without --resume")
    if whole_run and out.is_dir() and any(out.iterdir()) and not force and not resume:
        raise UserError(f"{out} already exists and is not empty: pass --resume to continue it (stages with changed "
                        "settings are redone), --force to start over, or choose another --out")


def prepare(recipe: Recipe, out: Path, *, force: bool, whole_run: bool, resume: bool = False, command: str = "run",
            write: bool = True) -> Run:
    """Validate everything the user gave, then create OUT and save the resolved recipe there.

    write=False: load the same inputs without checking or touching OUT (the other processes under torchrun, once
    rank 0 has prepared it)."""
    out = Path(out)
    if not write:
        return load_run(recipe, out, resume, command)
    check_out(out, force=force, resume=resume, whole_run=whole_run)
    saved = Layout(out).recipe
    if not whole_run and saved.is_file() and not force and not resume:
        import yaml

        previous = build_recipe(yaml.safe_load(saved.read_text()), str(saved))
        if previous != recipe:
            raise UserError(f"{out} was made with other settings ({saved}): pass --resume to redo the stages they change, "
                            "or --force to redo this one")

    from compress import distributed

    distributed.check_batch_sizes(recipe, command, distributed.world().size)
    if whole_run or command == "export":  # a format asked for (`on`) whose package is missing: one line now, not after training
        from compress.export import exporters

        for exporter in exporters():
            exporter.wanted(recipe)
    run = load_run(recipe, out, resume, command)
    for note in run.data.notes:
        info(f"[yellow]note[/]: {note}")

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # e.g. a folder made read-only between the check and now
        raise UserError(f"cannot create {out} ({exc.strerror or first_line(exc)}): choose another --out") from None
    if whole_run and force:
        # A forced run redoes every stage; the fine-tuned teacher stays as a cache keyed by its settings.
        for target in Layout(out).forced_run_removes():
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    write_text(saved, recipe.to_yaml())
    return run


def load_run(recipe: Recipe, out: Path, resume: bool = False, command: str = "run") -> Run:
    """Teacher, data and tokenizer, each checked (one clear error each); nothing is written (benchmarks use it
    to read the same inputs as a run without an OUT)."""
    pick_device(recipe.device)  # 'cuda' without a GPU is refused before OUT is touched
    source = resolve_teacher(recipe.teacher.checkpoint)
    check_max_length(source.config, source.spec, recipe.data.max_length)
    from compress.distill.plan import validate_plan

    task = get_task(recipe.task)
    task.check_inputs(source, recipe)
    if recipe.student.kind != "static":  # a static student is made by model2vec: no layers, losses or layer map
        validate_plan(source.config, recipe, task)
    data = task.load_data(recipe.data)
    head = task.head_labels(source)
    if head and sorted(head) == sorted(data.labels) and head != data.labels and recipe.data.labels is None:
        data = _reorder_labels(data, head)
    task.check_labels(source, data.labels)
    entities = recipe.distill.transfer.entities
    if entities.copies:  # refuses data without a tag per word, or without an entity, before OUT is touched
        task.entity_augmenter(data.train, data.labels, entities.p, recipe.seed)
    run = Run(recipe=recipe, out=Path(out), source=source, data=data, resume=resume, command=command)
    _ = run.tokenizer  # a tokenizer that does not fit the weights is bad input too: fail before writing
    if recipe.student.vocabulary == "task":
        from compress.vocab import check_prunable

        check_prunable(run.tokenizer)
    return run


def prepare_all_ranks(recipe: Recipe, out: Path, **kw) -> Run:
    """prepare() in rank 0, then the others load the same inputs; one process: prepare() itself. An error in rank 0
    (printed there) ends every process with its exit code."""
    from compress import distributed

    world = distributed.world()
    if not world.distributed:
        return prepare(recipe, out, **kw)
    failure, run = None, None
    if world.is_main:
        try:
            run = prepare(recipe, out, **kw)
        except UserError as exc:
            failure = (str(exc), exc.exit_code)
            raise
        finally:
            distributed.broadcast(failure)
    else:
        failure = distributed.broadcast(None)
        if failure is not None:
            error = UserError(failure[0])
            error.exit_code = failure[1]
            raise error
        run = prepare(recipe, out, write=False, **kw)
    return run
