"""Stage 1, the teacher: fine-tuned on the task when it has no head for the task's labels, else used as it is."""

from __future__ import annotations

import time

from compress.distributed import main_process, pick_device
from compress.errors import UserError
from compress.fsutil import atomic_dir, read_json, settings_hash, write_json
from compress.progress import info
from compress.tasks import DEFAULT as DEFAULT_TASK
from compress.teacher import weights_identity


def run(run, force: bool = False) -> dict:
    import torch

    from compress import distributed
    from compress.training import fit

    recipe, task, t0 = run.recipe, run.task, time.perf_counter()
    has_head = task.has_head(run.source, run.data.labels)
    mode = recipe.teacher.finetune
    if mode == "never" and not has_head:
        raise UserError(
            f"teacher {run.source.spec} has no {task.head} for labels {run.data.labels} "
            "and teacher.finetune is 'never': set it to 'auto'"
        )
    if mode == "never" or (mode == "auto" and has_head):
        what = f"{task.head} for {run.data.labels}" if run.data.labels else task.head
        info(f"teacher: {run.source.spec} already has {what}; no fine-tuning")
        return {"finetuned": False, "teacher_path": run.source.location, "reason": "checkpoint has a head for the task's labels"}

    settings = {
        "teacher": weights_identity(run.source),
        "train": recipe.teacher.model_dump(exclude={"checkpoint", "finetune"}),
        "seed": recipe.seed,
        "max_length": recipe.data.max_length,
        "data": run.data_fingerprint("train", "dev"),
        **({"precision": recipe.precision} if recipe.precision != "fp32" else {}),  # fp32 keeps earlier teachers valid
        **({"task": task.name} if task.name != DEFAULT_TASK else {}),  # so does the first task
    }
    digest = settings_hash(settings)
    marker = run.layout.teacher_marker
    if marker.is_file() and read_json(marker).get("settings_hash") == digest:
        info(f"teacher: reusing the fine-tuned teacher in {run.layout.teacher} (same settings)")
        return read_json(marker) | {"reused": True, "teacher_path": str(run.layout.teacher)}

    device = pick_device(recipe.device)
    t = recipe.teacher
    limits = "".join([f", at least {t.min_steps} steps" if t.min_steps else "", f", at most {t.max_steps} steps" if t.max_steps else "",
                      f", stopping after {t.patience} evaluation(s) without a better dev {task.metric_name}" if t.patience else "",
                      f", within {t.max_minutes:g} min" if t.max_minutes else ""])
    info(f"teacher: fine-tuning {run.source.spec} on {len(run.data.train)} training rows (up to {t.epochs} epochs{limits}, {device})")
    torch.manual_seed(recipe.seed)
    model = task.load_model(run.source.location, run.data.labels, run.source.spec, recipe).to(device)
    train, dev = run.encode("train"), run.encode("dev")

    def loss_fn(batch):
        loss = task.train_loss(model, batch)
        return loss, {"ce": float(loss.detach())}

    result = fit(model, loss_fn, train, dev, recipe.teacher, recipe.seed, "fine-tune teacher",
                 checkpoint=run.checkpoint("finetune", "teacher"), precision=recipe.precision, metric=task.metric)
    model.to("cpu")
    record = {
        "finetuned": True,
        "teacher_path": str(run.layout.teacher),
        "source": run.source.spec,
        "settings_hash": digest,
        "dev_quality": result["best_dev_quality"],
        "best_epoch": result["best_epoch"],
        "history": result["history"],
        **{k: result.get(k) for k in ("best_step", "steps", "planned_steps", "stopped")},
        "train_seconds": time.perf_counter() - t0,
        "processes": distributed.world().size,
    }
    if main_process():
        with atomic_dir(run.layout.teacher) as tmp:
            model.save_pretrained(tmp)
            run.tokenizer.save_pretrained(tmp)
            write_json(tmp / marker.name, record)
    return record
