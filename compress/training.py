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
from transformers import get_linear_schedule_with_warmup

from compress import distributed
from compress.checkpoint import Checkpoint, Interrupted, rng_state, set_rng_state, stop_on_signals
from compress.data.batching import Encoded, collate, subset, train_batches
from compress.errors import UserError
from compress.evaluate import accuracy, predict_logits
from compress.progress import bar, info
from compress.recipe import TrainConfig

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


def dev_accuracy(model, dev: Encoded, metric: Callable | None = None) -> float:
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
) -> dict:
    """Train `model` in place; returns the history and the best dev accuracy.

    select_best: restore the epoch with the best dev accuracy (else keep the last epoch, e.g. for an
    intermediate-layer stage whose dev accuracy says little).
    checkpoint: save the whole training state every `every_steps` steps, at each epoch's end, on Ctrl-C /
    SIGTERM (then raise Interrupted) and when done; resume from it when one with the same settings exists.
    precision: 'bf16' runs the forward passes under bf16 autocast (weights and optimizer stay fp32).
    metric: the task's (outputs, labels) -> quality, higher is better, that picks the best epoch (default accuracy).
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
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total), total)
    # where the loop stands: everything a checkpoint must hold to continue exactly
    pos = {"epoch": 1, "batch": 0, "step": 0, "running": 0.0, "parts_sum": {}, "epoch_seconds": 0.0, "samples": 0,
           "history": [], "best": {"dev_accuracy": -1.0, "epoch": 0, "state": None}}

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
            return saved["result"]
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        pos = saved["pos"]
        ranks = saved.get("rng_ranks") or [saved["rng"]]
        set_rng_state(ranks[world.rank] if world.rank < len(ranks) else ranks[0])
        info(f"{name}: resuming at epoch {pos['epoch']}, step {pos['step']} of {total} ({checkpoint.path})")
    last_saved = pos["step"]

    with stop_on_signals() as stop:
        while pos["epoch"] <= cfg.epochs:
            epoch = pos["epoch"]
            step_fn.train()
            t0 = time.perf_counter() - pos["epoch_seconds"]
            batches = train_batches(train, cfg.batch_size, seed, epoch)
            with bar(f"{name} epoch {epoch}/{cfg.epochs}", len(batches)) as advance:
                advance(pos["batch"])
                for i, idx in enumerate(batches[pos["batch"]:], pos["batch"] + 1):
                    mine, weight = distributed.shard(idx)
                    batch = collate(train, mine)
                    batch["index"] = torch.tensor(mine)
                    batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
                    with autocast(device, precision):
                        loss, parts = step_fn(batch)
                    # the whole batch's loss and terms, and whether any process was asked to stop
                    keys = sorted(parts)
                    agreed = distributed.all_reduce_sum(torch.tensor(
                        [float(loss.detach()) * weight, 1.0 if stop else 0.0] + [parts[k] * weight for k in keys],
                        dtype=torch.float64))
                    batch_loss = float(agreed[0]) / world.size
                    if agreed[1] and not stop:
                        stop.signal = "a signal to another training process"
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
                    pos["running"] += batch_loss
                    pos["samples"] = pos.get("samples", 0) + len(idx)
                    for k, v in zip(keys, agreed[2:].tolist()):
                        pos["parts_sum"][k] = pos["parts_sum"].get(k, 0.0) + v / world.size
                    advance(status=f"loss {pos['running'] / i:.4f}")
                    if i == len(batches):  # the epoch's end saves after the dev evaluation
                        break
                    if checkpoint and (stop or pos["step"] % checkpoint.every_steps == 0) and weights_finite():
                        pos["epoch_seconds"] = time.perf_counter() - t0
                        save()  # never a diverged state over a good one (weights_finite)
                        last_saved = pos["step"]
                    if stop:
                        raise _interrupted(name, stop, pos["step"], total, checkpoint)
            train_seconds = time.perf_counter() - t0
            dev_acc = dev_accuracy(model, dev, metric)
            n = len(batches)
            record = {
                "epoch": epoch,
                "train_loss": pos["running"] / n,
                "loss_terms": {k: v / n for k, v in pos["parts_sum"].items()},
                "dev_accuracy": dev_acc,
                "seconds": time.perf_counter() - t0,
                "train_seconds": train_seconds,
                "samples_per_second": pos.get("samples", len(train)) / train_seconds,
            }
            pos["history"].append(record)
            info(f"{name} epoch {epoch}: loss {record['train_loss']:.4f}, dev {getattr(metric, 'label', 'accuracy')} {dev_acc:.4f} "
                 f"({record['seconds']:.0f} s, {record['samples_per_second']:.0f} samples/s"
                 + (f" over {world.size} processes" if world.distributed else "") + ")")
            if not select_best:
                pos["best"] = {"dev_accuracy": dev_acc, "epoch": epoch, "state": None}
            elif dev_acc > pos["best"]["dev_accuracy"]:
                pos["best"] = {"dev_accuracy": dev_acc, "epoch": epoch,
                               "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
            pos.update(epoch=epoch + 1, batch=0, running=0.0, parts_sum={}, epoch_seconds=0.0, samples=0)
            if checkpoint and epoch < cfg.epochs and weights_finite():
                save()
                last_saved = pos["step"]
            if stop and epoch < cfg.epochs:
                raise _interrupted(name, stop, pos["step"], total, checkpoint)
    best = pos["best"]
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    model.eval()
    result = {"history": pos["history"], "best_epoch": best["epoch"], "best_dev_accuracy": best["dev_accuracy"], "steps": pos["step"]}
    if checkpoint:
        pos["best"] = {k: v for k, v in best.items() if k != "state"}  # the weights above are the best ones
        save(complete=True, result=result)
    return result


def _interrupted(name: str, stop, step: int, total: int, checkpoint: Checkpoint | None) -> Interrupted:
    where = f"saved at step {step} of {total} in {checkpoint.path}" if checkpoint else "not saved (no checkpoint was asked for)"
    return Interrupted(f"{name}: stopped by {stop.signal}; training state {where}; "
                       f"continue with {checkpoint.resume_command if checkpoint else 'a new run'}")
