"""Stages 2 and 3, student and distillation: build the student from the teacher, then distil it (an optional
general stage on unlabeled text, then the task stage(s)), teacher outputs read from a cache when one fits."""

from __future__ import annotations

import os
from pathlib import Path

from compress.distributed import main_process, pick_device
from compress.fsutil import atomic_dir, write_json
from compress.progress import info
from compress.stages.common import require_absent
from compress.teacher import teacher_identity


def _teacher_caches(run, distiller, plan, datasets: dict) -> tuple[dict, dict]:
    """One teacher-output cache per distillation data set ('task', 'general'), built or reused; name -> cache,
    and what the stage record says about them."""
    from compress.data.batching import fingerprint
    from compress.distill.teacher_cache import estimate_bytes, native_bf16, open_or_build, plan_for

    cfg = run.recipe.distill.teacher_cache
    if cfg.mode == "off":
        return {}, {"mode": "off"}
    caches, record = {}, {"mode": cfg.mode}
    t_cfg = distiller.teacher.config
    device = next(distiller.teacher.parameters()).device
    precision = cfg.precision if cfg.precision != "auto" else "bf16" if native_bf16(device) else "fp32"
    teacher = teacher_identity(run.teacher_location("distill"))
    for name, enc in datasets.items():
        losses = [loss for stage_name, _, loss in plan if (stage_name == "general") == (name == "general")]
        what = plan_for(losses, distiller.layer_map, t_cfg.num_hidden_layers)
        size = estimate_bytes(enc, what, t_cfg.hidden_size, t_cfg.num_attention_heads, cfg.dtype)
        if cfg.mode == "auto" and size > cfg.max_gb * 1e9:
            info(f"[yellow]note[/]: no teacher cache for '{name}': it would take {size / 1e9:.1f} GB, over "
                 f"distill.teacher_cache.max_gb {cfg.max_gb:g}; the teacher runs every step")
            record[name] = {"skipped": f"estimated {size / 1e9:.1f} GB > max_gb {cfg.max_gb:g}"}
            continue
        shared = cfg.path is not None
        path = (Path(cfg.path) if shared else run.layout.teacher_cache) / name
        cache = open_or_build(path, distiller, enc, what, {"teacher": teacher, "data": fingerprint(enc)}, cfg.dtype,
                              shared, name, precision=precision)
        caches[name] = cache
        record[name] = {"path": str(path), "bytes": cache.meta["bytes"], "build_seconds": cache.meta["build_seconds"],
                        "holds": str(what), "dtype": cfg.dtype, "rows": len(enc), "precision": precision}
    return caches, record


def _distill_static(run) -> dict:
    """student: static: model2vec distils the teacher into a static table; a linear map fitted on the teacher's vectors
    of the training text (and of the transfer set, when the recipe has one) takes its vectors into the teacher's space,
    or model2vec's trainer fits table and map on them (compress.embedding.static)."""
    import time

    import numpy as np

    from compress.data.batching import encode
    from compress.embedding.static import distill_static, save_static
    from compress.evaluate import predict_logits

    t0 = time.perf_counter()
    texts = [e.text for e in run.data.train]
    teacher_vectors = run.teacher_outputs("train")
    transfer = None
    if run.recipe.distill.transfer.active:
        teacher = run.load_teacher("distill")
        transfer = _transfer_set(run, teacher, [("task", None, None)])
        extra = transfer.examples
        texts += [e.text for e in extra]
        teacher_vectors = np.concatenate([teacher_vectors, predict_logits(
            teacher, encode(run.tokenizer, extra, run.recipe.data.max_length), description="teacher vectors of the transfer set")])
        del teacher
    student_cfg = run.recipe.student
    student = distill_static(run.teacher_location("distill"), student_cfg.pca_dims, fit_texts=texts,
                             teacher_vectors=teacher_vectors, fit=student_cfg.static_fit, weights=student_cfg.static_weights,
                             seed=run.recipe.seed)
    fidelity = run.task.metric(student.encode([e.text for e in run.data.dev]), run.teacher_outputs("dev"))
    record = {"architecture": "static", "build": {"kind": "static", **student.metadata}, "num_layers": 0,
              "teacher_layers": [], "dev_quality": fidelity, "stages": [], "seconds": round(time.perf_counter() - t0, 1),
              "data": {"labelled": len(run.data.train)} | ({"transfer": transfer.record} if transfer is not None else {})}
    if main_process():
        with atomic_dir(run.layout.student) as tmp:
            save_static(student, tmp)
            run.task.student_files(run, tmp, teacher_vectors)
            write_json(tmp / "bert_compress_student.json", {"teacher": run.source.spec, "kind": "static"})
    return record


def _transfer_set(run, teacher, plan):
    """The rows the teacher labels beside the labelled ones (compress.distill.transfer), or None."""
    import math

    cfg = run.recipe.distill
    if not cfg.transfer.active or not any(name != "general" for name, _, _ in plan):
        return None
    from compress.distill.transfer import build

    data = run.data
    held_out = [t for split in ("dev", "test") for e in data.split(split) for t in (e.text, e.text_pair) if t]
    if (quality := run.task.quality(run)) is not None:  # what the task's own evaluation reads beyond dev / test
        held_out += quality.evaluated_texts()  # (retrieval passages)
    passes = 1
    if cfg.transfer.augment.per_epoch:  # each epoch of the last task stage gets its own variants
        schedule = cfg.train_config(plan[-1][1])
        rows = len(data.train) * (1 + cfg.transfer.augment.copies)
        steps = math.ceil(rows / schedule.batch_size)
        passes = math.ceil(schedule.planned_steps(steps) / steps)
    transfer = build(cfg.transfer, task=run.task, train=data.train, held_out=held_out, data_path=run.recipe.data.path,
                     seed=run.recipe.seed, teacher=teacher, tokenizer=run.tokenizer, checkpoint=run.source.location,
                     passes=passes, labels=data.labels, max_length=run.recipe.data.max_length)
    rows = transfer.record["rows"]
    info("transfer set: " + ", ".join(f"{v:,} {k}" for k, v in rows.items() if k != "total")
         + f" rows ({rows['total']:,} in all" + "".join(f"; {k} {v} s" for k, v in transfer.record["seconds"].items()) + ")")
    return transfer


def _data_record(run, general: dict | None, transfer, caches: dict) -> dict:
    """What the student was distilled on, row counts per source, and what the rows beyond the labelled ones cost."""
    out = {"labelled": len(run.data.train)}
    if general:
        out["general"] = general
    if transfer is not None:
        out["transfer"] = transfer.record
    task_cache = caches.get("task") if isinstance(caches, dict) else None
    if isinstance(task_cache, dict) and "build_seconds" in task_cache:
        out["teacher_labels_seconds"] = task_cache["build_seconds"]
    return out


def run(run, force: bool = False) -> dict:
    import time

    import torch

    from compress import distributed
    from compress.data.batching import encode
    from compress.distill.build import build_distiller
    from compress.distill.losses import CombinedLoss
    from compress.distill.plan import stage_terms
    from compress import vocab as task_vocab
    from compress.student import build_student, count_params
    from compress.training import fit

    recipe = run.recipe
    cfg = recipe.distill
    require_absent(run.layout.student, force, "distill")
    if recipe.student.kind == "static":
        return _distill_static(run)
    device = pick_device(recipe.device)
    teacher = run.load_teacher("distill")
    # Every stage and its loss, checked before the first step.
    plan = [(name, st, CombinedLoss(terms)) for name, st, terms in stage_terms(recipe)]
    general, general_record = {}, None
    if cfg.general is not None:
        from compress.distill.transfer import general_rows

        general["general"], general_record = general_rows(cfg.general, train=run.data.train, seed=recipe.seed,
                                                          tokenizer=run.tokenizer, max_length=recipe.data.max_length,
                                                          data_path=recipe.data.path)

    transfer = _transfer_set(run, teacher, plan)
    extra = transfer.examples if transfer is not None else []

    source, tokenizer, student_ids, vocab_record = teacher, run.tokenizer, None, {"vocabulary": "full"}
    if recipe.student.vocabulary == "task":
        # the student reads every text it is distilled on: the pieces augmentation and unlabeled text bring in too
        labelled = task_vocab.used_token_ids(run.tokenizer, run.data.train + [e for rows in general.values() for e in rows])
        used_by_transfer = task_vocab.used_token_ids(run.tokenizer, extra) if extra else set()
        keep = task_vocab.kept_ids(run.tokenizer, labelled | used_by_transfer)
        tokenizer = task_vocab.pruned_tokenizer(run.tokenizer, keep)
        student_ids = task_vocab.id_map(teacher.config.vocab_size, keep, run.tokenizer.unk_token_id)
        source = task_vocab.with_kept_rows(teacher, keep)
        vocab_record = {"vocabulary": "task", "pieces": len(keep), "teacher_pieces": teacher.config.vocab_size,
                        "from": ["train"] + list(general) + (["transfer"] if extra else [])}
        if extra:  # what the transfer rows cost in vocabulary (and so in embedding-table size)
            vocab_record["pieces_without_transfer"] = len(task_vocab.kept_ids(run.tokenizer, labelled))
    importance = None
    if recipe.student.init == "pruned":
        from compress.student.prune import importance as score_structures

        t0 = time.perf_counter()
        importance = score_structures(teacher, run.encode("train"), recipe.student.importance_rows)
        info(f"student init: {importance.method} importance of the teacher's heads, FFN neurons and hidden channels "
             f"on {importance.rows} training rows ({time.perf_counter() - t0:.0f} s)")
    torch.manual_seed(recipe.seed)
    student, layers, build_info = build_student(source, recipe.student, importance)
    del source
    distiller = build_distiller(recipe, teacher, student, student_ids, [loss for _, _, loss in plan])
    layer_map = distiller.layer_map
    info(
        f"student: {student.config.num_hidden_layers} layers × {student.config.hidden_size} "
        f"({student.config.num_attention_heads} heads, FFN {student.config.intermediate_size}), "
        f"{count_params(student) / 1e6:.1f}M parameters vs teacher {count_params(teacher) / 1e6:.1f}M; "
        f"init {recipe.student.init}" + (f" from teacher layers {layers}" if layers else "")
        + "".join(f"; {k} {v}" for k, v in build_info.items())
        + f"; layer map {layer_map}; {len(distiller.projections)} projection(s); training on {device}"
        + (f"; task vocabulary: {len(keep):,} of {teacher.config.vocab_size:,} word pieces" if student_ids is not None else "")
    )
    distiller.to(device)
    # batches carry teacher ids (the distiller maps them for a pruned student); dev is what the student will read
    train, dev = run.encode("train"), run.eval_split("dev", tokenizer, teacher=teacher)
    if extra:  # the labelled rows first (the cache and the per-epoch rows index them so), then the transfer rows
        train = encode(run.tokenizer, run.data.train + extra, recipe.data.max_length)
    datasets = {"task": train} if any(name != "general" for name, _, _ in plan) else {}
    if general:
        datasets["general"] = encode(run.tokenizer, general["general"], recipe.data.max_length)
    caches, cache_record = _teacher_caches(run, distiller, plan, datasets)
    history = []
    for i, (name, stage, loss) in enumerate(plan):
        key = "general" if name == "general" else "task"
        data, cache = datasets[key], caches.get(key)
        info(f"distill stage '{name}' ({len(data)} rows): " + ", ".join(f"{s.name}×{w:g}" for s, w, _ in loss.terms)
             + ("; teacher outputs from the cache" if cache is not None else ""))
        epoch_rows = transfer.epoch_rows(len(run.data.train)) if transfer is not None and key == "task" else None
        result = fit(
            student,
            lambda batch, loss=loss, cache=cache: distiller.loss(batch, loss, cache),
            data,
            dev,
            cfg.train_config(stage),
            recipe.seed + i,
            f"distill:{name}",
            extra_params=list(distiller.projections.named_parameters()),
            select_best=i == len(plan) - 1,
            checkpoint=run.checkpoint("distill", f"{i}-{name}"),
            precision=recipe.precision,
            metric=run.task.metric,
            epoch_rows=epoch_rows,
        )
        history.append({"stage": name, **result})
    student.to("cpu")
    record = {
        "teacher_layers": layers,
        "architecture": student.config.model_type,
        "build": build_info | vocab_record,
        "layer_map": layer_map,
        "projections": {k: list(v.weight.shape) for k, v in distiller.projections.items()},
        "num_layers": student.config.num_hidden_layers,
        "dev_quality": history[-1]["best_dev_quality"],
        "best_epoch": history[-1]["best_epoch"],
        "stages": history,
        "teacher_cache": cache_record,
        "data": _data_record(run, general_record, transfer, cache_record),
        "processes": distributed.world().size,
        "device": str(device),
        "precision": recipe.precision,
    }
    if not main_process():
        return record
    with atomic_dir(run.layout.student) as tmp:
        run.task.save_student(student, tokenizer, tmp, recipe.data.max_length)
        # the task cache's rows are the labelled ones first, in order (its sentence vectors, when it holds them)
        task_cache = caches.get("task")
        run.task.student_files(run, tmp, getattr(task_cache, "vectors", None))
        write_json(tmp / "bert_compress_student.json", {"teacher": run.source.spec, "teacher_layers": layers} | vocab_record)
        if student_ids is not None:
            write_json(tmp / task_vocab.KEPT_IDS_FILE, keep)
    if len(distiller.projections):
        # Training state only: the projections never become part of the student.
        saved = run.layout.projections
        tmp_state = saved.with_name(".tmp-distill-projections.pt")
        tmp_state.parent.mkdir(parents=True, exist_ok=True)
        torch.save(distiller.projections.to("cpu").state_dict(), tmp_state)
        os.replace(tmp_state, saved)
    return record
