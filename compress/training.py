"""One training loop for fine-tuning and distillation.

AdamW (no decay on biases and LayerNorm), linear warm-up then linear decay, gradient clipping, dev
accuracy after each epoch; the best epoch's weights are kept and restored at the end. With a Checkpoint the
loop can stop at any point and continue to the same weights (compress/checkpoint.py). Under torchrun the
same loop runs in every process (compress/distributed.py): the model is wrapped in DDP, each process takes
its share of every global batch, and losses, dev accuracy and Ctrl-C are agreed across processes.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from typing import Callable

import torch

from compress import distributed
from compress.checkpoint import Checkpoint, Interrupted, rng_state, set_rng_state, stop_on_signals
from compress.data.batching import Encoded, collate, subset, train_batches
from compress.errors import UserError
from compress.evaluate import accuracy, predict_logits
from compress.progress import bar, info
from compress.schedule import TrainConfig

LossFn = Callable[[dict[str, torch.Tensor]], tuple[torch.Tensor, dict[str, float]]]


class TrainingDiverged(UserError):
    """A non-finite loss: a setting (usually the learning rate) or the data is wrong, so exit code 2 like other bad input."""


def param_groups(named_params, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in named_params:
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class TrainStep(torch.nn.Module):
    """What DDP wraps: the trained model and the distiller's projections, with the loss as its forward."""

    def __init__(self, model: torch.nn.Module, extra: list[tuple[str, torch.nn.Parameter]], loss_fn: LossFn):
        super().__init__()
        self.model = model
        self.extra = torch.nn.ParameterList([p for _, p in extra])
        self.loss_fn = loss_fn

    def forward(self, batch):
        return self.loss_fn(batch)


def autocast(device: torch.device, precision: str):
    """bf16 autocast for the forward passes (losses are computed in fp32 by the distiller); fp32: nothing."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


OLD_NAMES = {"dev_accuracy": "dev_quality", "best_dev_accuracy": "best_dev_quality"}
"""What a checkpoint of an earlier version called the task's dev metric (it held F1 or fidelity for other tasks too)."""


def renamed(record):
    """A checkpoint's loop position or result with the names of today (nested dicts and lists included)."""
    if isinstance(record, dict):
        return {OLD_NAMES.get(k, k): renamed(v) for k, v in record.items()}
    if isinstance(record, list):
        return [renamed(v) for v in record]
    return record


def dev_quality(model, dev: Encoded, metric: Callable | None = None) -> float:
    """The task's dev metric (accuracy unless the task gives another); under torchrun each process predicts its
    share of the rows and the counts are summed (accuracy), or every process scores all of dev (other metrics)."""
    world = distributed.world()
    if metric is not None and metric is not accuracy:
        return metric(predict_logits(model, dev), dev.labels)
    if not world.distributed:
        return accuracy(predict_logits(model, dev), dev.labels)
    mine = list(range(world.rank, len(dev), world.size))
    part = subset(dev, mine)
    correct = float((predict_logits(model, part).argmax(-1) == part.labels).sum()) if mine else 0.0
    counts = distributed.all_reduce_sum(torch.tensor([correct, float(len(mine))], dtype=torch.float64))
    return float(counts[0] / counts[1])


def adamw(groups: list[dict], lr: float) -> torch.optim.AdamW:
    """AdamW with the fused kernel where PyTorch has one (CPU and CUDA, fp32): on the default student's 17.4M
    parameters one step takes 15 ms instead of 102 ms (2 threads, this CPU), a fifth of a 32-row training step."""
    try:
        return torch.optim.AdamW(groups, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):  # a device or dtype without the fused kernel
        return torch.optim.AdamW(groups, lr=lr)


class _Decay:
    """Linear warm-up then linear decay to zero at `total` steps; `total` may be re-planned once the time budget is
    measured (a callable object, so LambdaLR keeps the schedule in its state)."""

    def __init__(self, total: int, warmup_ratio: float):
        self.total, self.warmup_ratio = total, warmup_ratio

    def __call__(self, step: int) -> float:
        warmup = int(self.warmup_ratio * self.total)
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (self.total - step) / max(1, self.total - warmup))


def fit(
    model: torch.nn.Module,
    loss_fn: LossFn,
    train: Encoded,
    dev: Encoded,
    cfg: TrainConfig,
    seed: int,
    name: str,
    extra_params: list[tuple[str, torch.nn.Parameter]] | None = None,
    select_best: bool = True,
    checkpoint: Checkpoint | None = None,
    precision: str = "fp32",
    metric: Callable | None = None,
    epoch_rows: Callable[[int], list[int]] | None = None,
) -> dict:
    """Train `model` in place; returns the history of dev evaluations and the best one.

    The schedule (cfg, a TrainConfig): the planned steps are epochs x steps per pass, raised to min_steps and cut
    to max_steps; with max_minutes they are cut again to what the budget holds, measured on the first steps. The dev
    metric is evaluated every eval_every steps (else after each pass) and at the last step; patience stops the loop
    after that many evaluations without improvement.
    select_best: restore the evaluation with the best dev metric (else keep the last weights, e.g. for an
    intermediate-layer stage whose dev accuracy says little, where patience does not apply either).
    checkpoint: save the whole training state every `every_steps` steps, at each evaluation, on Ctrl-C /
    SIGTERM (then raise Interrupted) and when done; resume from it when one with the same settings exists.
    precision: 'bf16' runs the forward passes under bf16 autocast (weights and optimizer stay fp32).
    metric: the task's (outputs, labels) -> quality, higher is better, that picks the best evaluation (default accuracy).
    epoch_rows: epoch (1-based) -> the rows of `train` that pass uses (fresh augmented copies per epoch); default all.
    Batches carry `index`: the rows' positions in `train` (the teacher-output cache looks them up).
    """
    torch.manual_seed(seed)
    world = distributed.world()
    distributed.check_batch_size(cfg.batch_size, f"{name}: batch size")
    device = next(model.parameters()).device
    extra = list(extra_params or [])
    named = list(model.named_parameters()) + extra
    step_fn = TrainStep(model, extra, loss_fn)
    if world.distributed:
        from torch.nn.parallel import DistributedDataParallel

        # static_graph: a stage's losses may leave parts of the model without gradients (e.g. the classifier
        # during intermediate-layer distillation), the same parts at every step; DDP learns which in the first step
        step_fn = DistributedDataParallel(step_fn, device_ids=[device.index] if device.type == "cuda" else None,
                                          static_graph=True, broadcast_buffers=False,
                                          gradient_as_bucket_view=True)  # no second copy of the gradients
    optimizer = adamw(param_groups(named, cfg.weight_decay), cfg.lr)
    rows_of = epoch_rows or (lambda epoch: None)
    pass_rows = rows_of(1)
    steps_per_epoch = math.ceil((len(train) if pass_rows is None else len(pass_rows)) / cfg.batch_size)
    decay = _Decay(cfg.planned_steps(steps_per_epoch), cfg.warmup_ratio)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, decay)
    # where the loop stands: everything a checkpoint must hold to continue exactly
    pos = {"epoch": 1, "batch": 0, "step": 0, "running": 0.0, "parts_sum": {}, "segment_seconds": 0.0, "samples": 0,
           "batches": 0, "total": decay.total, "planned": decay.total, "replanned": False, "seconds": 0.0,
           "bad_evals": 0, "history": [], "stopped": "schedule",
           "best": {"dev_quality": -1.0, "epoch": 0, "step": 0, "state": None}}

    def save(complete: bool = False, result: dict | None = None) -> None:
        """Every rank calls this at the same step (it gathers each rank's RNG state); rank 0 writes."""
        rngs = distributed.gather(rng_state())
        if world.is_main:
            checkpoint.save({"complete": complete, "result": result, "pos": pos, "rng": rngs[0], "rng_ranks": rngs,
                             "model": model.state_dict(), "extra": {n: p.detach() for n, p in extra},
                             "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()})

    def weights_finite() -> bool:
        return all(bool(torch.isfinite(p).all()) for _, p in named)

    saved = checkpoint.load() if checkpoint else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        by_name = dict(extra)
        with torch.no_grad():
            for n, value in saved["extra"].items():
                by_name[n].copy_(value)
        if saved["complete"]:
            info(f"{name}: finished earlier; restored from {checkpoint.path}")
            model.eval()
            return renamed(saved["result"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        pos = renamed(saved["pos"])
        decay.total = pos["total"]
        ranks = saved.get("rng_ranks") or [saved["rng"]]
        set_rng_state(ranks[world.rank] if world.rank < len(ranks) else ranks[0])
        info(f"{name}: resuming at epoch {pos['epoch']}, step {pos['step']} of {pos['total']} ({checkpoint.path})")
    last_saved = pos["step"]
    budget = cfg.max_minutes * 60 if cfg.max_minutes else None
    calibrate_at = max(20, pos["total"] // 10)  # steps timed before the budget re-plans (the first ones run slower)
    eval_seconds = None

    def replan(elapsed: float, train_seconds: float, evals_left_seconds: float) -> None:
        """Cut the planned steps to what the time budget holds at the measured pace (rank 0's plan for all).
        elapsed: the loop's seconds so far; train_seconds: those spent in steps."""
        per_step = train_seconds / max(1, pos["step"])
        fits = pos["step"] + int(max(0.0, budget - elapsed - evals_left_seconds) / per_step)
        total = distributed.broadcast(min(pos["total"], max(pos["step"] + 1, fits)))
        if total < pos["total"]:
            info(f"{name}: the time budget of {cfg.max_minutes:g} min holds {total} of {pos['planned']} planned steps "
                 f"({per_step * 1000:.0f} ms per step here)")
            pos["total"] = decay.total = total
            pos["time_cut"] = True  # it ends by the budget, even when it runs every step of the cut plan

    def evaluate(t0: float, end_of_pass: bool) -> bool:
        """A dev evaluation and its history record; True: stop here (patience)."""
        nonlocal eval_seconds
        train_seconds = time.perf_counter() - t0
        e0 = time.perf_counter()
        dev_acc = dev_quality(model, dev, metric)
        n = max(1, pos["batches"])
        record = {
            "epoch": pos["epoch"],
            "step": pos["step"],
            "train_loss": pos["running"] / n,
            "loss_terms": {k: v / n for k, v in pos["parts_sum"].items()},
            "dev_quality": dev_acc,
            "seconds": train_seconds + time.perf_counter() - e0,
            "train_seconds": train_seconds,
            "samples_per_second": pos["samples"] / max(train_seconds, 1e-9),
        }
        eval_seconds = time.perf_counter() - e0
        pos["history"].append(record)
        pos["seconds"] += record["seconds"]
        where = f"epoch {pos['epoch']}" + ("" if end_of_pass else f", step {pos['step']}/{pos['total']}")
        info(f"{name} {where}: loss {record['train_loss']:.4f}, dev {getattr(metric, 'label', 'accuracy')} {dev_acc:.4f} "
             f"({record['seconds']:.0f} s, {record['samples_per_second']:.0f} samples/s"
             + (f" over {world.size} processes" if world.distributed else "") + ")")
        if not select_best:
            pos["best"] = {"dev_quality": dev_acc, "epoch": pos["epoch"], "step": pos["step"], "state": None}
        elif dev_acc > pos["best"]["dev_quality"]:
            pos["best"] = {"dev_quality": dev_acc, "epoch": pos["epoch"], "step": pos["step"],
                           "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
            pos["bad_evals"] = 0
        else:
            pos["bad_evals"] += 1
        pos.update(running=0.0, parts_sum={}, samples=0, batches=0, segment_seconds=0.0)
        return bool(select_best and cfg.patience and pos["bad_evals"] >= cfg.patience)

    with stop_on_signals() as stop:
        done = pos["step"] >= pos["total"]
        while not done:
            epoch = pos["epoch"]
            step_fn.train()
            t0 = time.perf_counter() - pos["segment_seconds"]
            batches = train_batches(train, cfg.batch_size, seed, epoch, rows_of(epoch))
            left = pos["total"] - pos["step"] + pos["batch"]
            with bar(f"{name} epoch {epoch} (step {pos['step']}/{pos['total']})", min(len(batches), left)) as advance:
                advance(pos["batch"])
                for i, idx in enumerate(batches[pos["batch"]:], pos["batch"] + 1):
                    mine, weight = distributed.shard(idx)
                    batch = collate(train, mine)
                    batch["index"] = torch.tensor(mine)
                    batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
                    # over the time budget before this step (agreed below, so every process stops at the same step)
                    late = bool(budget) and pos["seconds"] + time.perf_counter() - t0 >= budget
                    with autocast(device, precision):
                        loss, parts = step_fn(batch)
                    # the whole batch's loss and terms, and whether any process was asked to stop
                    keys = sorted(parts)
                    agreed = distributed.all_reduce_sum(torch.tensor(
                        [float(loss.detach()) * weight, 1.0 if stop else 0.0, 1.0 if late else 0.0]
                        + [parts[k] * weight for k in keys], dtype=torch.float64))
                    batch_loss = float(agreed[0]) / world.size
                    if agreed[1] and not stop:
                        stop.signal = "a signal to another training process"
                    over_time = bool(agreed[2])
                    if not math.isfinite(batch_loss):
                        kept = (f"the last good training state (step {last_saved}) is kept in {checkpoint.path}"
                                if checkpoint and checkpoint.path.is_file() else "no output was written")
                        raise TrainingDiverged(
                            f"{name}: the loss became {batch_loss} at step {pos['step'] + 1} (epoch {epoch}): training "
                            f"stopped; {kept}; lower the learning rate ({cfg.lr}) or check the data"
                        )
                    optimizer.zero_grad(set_to_none=True)
                    (loss * weight if weight != 1.0 else loss).backward()
                    torch.nn.utils.clip_grad_norm_([p for _, p in named], cfg.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    pos["step"] += 1
                    pos["batch"] = i
                    pos["batches"] += 1
                    pos["running"] += batch_loss
                    pos["samples"] += len(idx)
                    for k, v in zip(keys, agreed[3:].tolist()):
                        pos["parts_sum"][k] = pos["parts_sum"].get(k, 0.0) + v / world.size
                    advance(status=f"loss {pos['running'] / pos['batches']:.4f}")
                    if budget and not pos["replanned"] and pos["step"] >= calibrate_at:
                        # no evaluation yet: a dev row costs about a third of a training row (forward only); the
                        # first evaluation measures it
                        elapsed = pos["seconds"] + time.perf_counter() - t0
                        evals = (pos["total"] - pos["step"]) / (cfg.eval_every or len(batches)) + 1
                        per_row = elapsed / max(1, pos["step"] * cfg.batch_size)
                        replan(elapsed, elapsed, evals * len(dev) * per_row / 3)
                        pos["replanned"] = True
                    end_of_pass = i == len(batches)
                    last = pos["step"] >= pos["total"]
                    if over_time and not last:
                        pos["stopped"] = "time"
                    due = last or over_time or (cfg.eval_every and pos["step"] % cfg.eval_every == 0) or \
                        (not cfg.eval_every and end_of_pass)
                    if due:
                        if evaluate(t0, end_of_pass):
                            pos["stopped"] = "patience"
                            done = True
                        done = done or last or over_time
                        if end_of_pass:
                            pos.update(epoch=epoch + 1, batch=0)
                        if budget and len(pos["history"]) == 1 and not done:  # the first evaluation's cost is known now
                            evals = (pos["total"] - pos["step"]) / (cfg.eval_every or len(batches)) + 1
                            replan(pos["seconds"], pos["history"][0]["train_seconds"], evals * eval_seconds)
                        t0 = time.perf_counter()
                        if checkpoint and not done and weights_finite():
                            save()  # never a diverged state over a good one (weights_finite)
                            last_saved = pos["step"]
                        if done:
                            break
                    elif checkpoint and (stop or pos["step"] % checkpoint.every_steps == 0) and weights_finite():
                        pos["segment_seconds"] = time.perf_counter() - t0
                        save()
                        last_saved = pos["step"]
                    if stop:
                        raise _interrupted(name, stop, pos["step"], pos["total"], checkpoint)
                    if end_of_pass:
                        break
            if not done and pos["batch"] == len(batches):  # a pass that ended without an evaluation
                pos.update(epoch=epoch + 1, batch=0)
            pos["segment_seconds"] = time.perf_counter() - t0
    best = pos["best"]
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    model.eval()
    if pos["stopped"] == "schedule" and pos.get("time_cut"):
        pos["stopped"] = "time"
    if pos["stopped"] != "schedule":
        info(f"{name}: stopped at step {pos['step']} of {pos['total']} ("
             + ("no better dev metric in the last " + f"{cfg.patience} evaluations" if pos["stopped"] == "patience"
                else f"the time budget of {cfg.max_minutes:g} min") + f"); best: step {best['step']}")
    result = {"history": pos["history"], "best_epoch": best["epoch"], "best_step": best["step"],
              "best_dev_quality": best["dev_quality"], "steps": pos["step"], "planned_steps": pos["planned"],
              "steps_per_epoch": steps_per_epoch, "stopped": pos["stopped"], "seconds": round(pos["seconds"], 1)}
    if checkpoint:
        pos["best"] = {k: v for k, v in best.items() if k != "state"}  # the weights above are the best ones
        save(complete=True, result=result)
    return result


def _interrupted(name: str, stop, step: int, total: int, checkpoint: Checkpoint | None) -> Interrupted:
    where = f"saved at step {step} of {total} in {checkpoint.path}" if checkpoint else "not saved (no checkpoint was asked for)"
    return Interrupted(f"{name}: stopped by {stop.signal}; training state {where}; "
                       f"continue with {checkpoint.resume_command if checkpoint else 'a new run'}")
