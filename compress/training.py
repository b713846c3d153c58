"""One training loop for fine-tuning and distillation.

AdamW (no decay on biases and LayerNorm), linear warm-up then linear decay, gradient clipping, dev
accuracy after each epoch; the best epoch's weights are kept and restored at the end. With a Checkpoint the
loop can stop at any point and continue to the same weights (compress/checkpoint.py).
"""

from __future__ import annotations

import math
import time
from typing import Callable

import torch
from transformers import get_linear_schedule_with_warmup

from compress.checkpoint import Checkpoint, Interrupted, rng_state, set_rng_state, stop_on_signals
from compress.data.batching import Encoded, iterate, train_batches
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
) -> dict:
    """Train `model` in place; returns the history and the best dev accuracy.

    select_best: restore the epoch with the best dev accuracy (else keep the last epoch, e.g. for an
    intermediate-layer stage whose dev accuracy says little).
    checkpoint: save the whole training state every `every_steps` steps, at each epoch's end, on Ctrl-C /
    SIGTERM (then raise Interrupted) and when done; resume from it when one with the same settings exists.
    """
    torch.manual_seed(seed)
    device = next(model.parameters()).device
    extra = list(extra_params or [])
    named = list(model.named_parameters()) + extra
    optimizer = torch.optim.AdamW(param_groups(named, cfg.weight_decay), lr=cfg.lr)
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total), total)
    # where the loop stands: everything a checkpoint must hold to continue exactly
    pos = {"epoch": 1, "batch": 0, "step": 0, "running": 0.0, "parts_sum": {}, "epoch_seconds": 0.0,
           "history": [], "best": {"dev_accuracy": -1.0, "epoch": 0, "state": None}}

    def snapshot(complete: bool = False, result: dict | None = None) -> dict:
        return {"complete": complete, "result": result, "pos": pos, "rng": rng_state(),
                "model": model.state_dict(), "extra": {n: p.detach() for n, p in extra},
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}

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
        set_rng_state(saved["rng"])
        info(f"{name}: resuming at epoch {pos['epoch']}, step {pos['step']} of {total} ({checkpoint.path})")
    last_saved = pos["step"]

    with stop_on_signals() as stop:
        while pos["epoch"] <= cfg.epochs:
            epoch = pos["epoch"]
            model.train()
            t0 = time.perf_counter() - pos["epoch_seconds"]
            batches = train_batches(train, cfg.batch_size, seed, epoch)
            with bar(f"{name} epoch {epoch}/{cfg.epochs}", len(batches)) as advance:
                advance(pos["batch"])
                for i, (_, batch) in enumerate(iterate(train, batches[pos["batch"]:]), pos["batch"] + 1):
                    batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
                    loss, parts = loss_fn(batch)
                    if not torch.isfinite(loss):
                        kept = (f"the last good training state (step {last_saved}) is kept in {checkpoint.path}"
                                if checkpoint and checkpoint.path.is_file() else "no output was written")
                        raise TrainingDiverged(
                            f"{name}: the loss became {float(loss.detach())} at step {pos['step'] + 1} (epoch {epoch}): training "
                            f"stopped; {kept}; lower the learning rate ({cfg.lr}) or check the data"
                        )
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_([p for _, p in named], cfg.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    pos["step"] += 1
                    pos["batch"] = i
                    pos["running"] += loss.item()
                    for k, v in parts.items():
                        pos["parts_sum"][k] = pos["parts_sum"].get(k, 0.0) + v
                    advance(status=f"loss {pos['running'] / i:.4f}")
                    if i == len(batches):  # the epoch's end saves after the dev evaluation
                        break
                    if checkpoint and (stop or pos["step"] % checkpoint.every_steps == 0) and weights_finite():
                        pos["epoch_seconds"] = time.perf_counter() - t0
                        checkpoint.save(snapshot())  # never a diverged state over a good one (weights_finite)
                        last_saved = pos["step"]
                    if stop:
                        raise _interrupted(name, stop, pos["step"], total, checkpoint)
            dev_acc = accuracy(predict_logits(model, dev), dev.labels)
            n = len(batches)
            record = {
                "epoch": epoch,
                "train_loss": pos["running"] / n,
                "loss_terms": {k: v / n for k, v in pos["parts_sum"].items()},
                "dev_accuracy": dev_acc,
                "seconds": time.perf_counter() - t0,
            }
            pos["history"].append(record)
            info(f"{name} epoch {epoch}: loss {record['train_loss']:.4f}, dev accuracy {dev_acc:.4f} ({record['seconds']:.0f} s)")
            if not select_best:
                pos["best"] = {"dev_accuracy": dev_acc, "epoch": epoch, "state": None}
            elif dev_acc > pos["best"]["dev_accuracy"]:
                pos["best"] = {"dev_accuracy": dev_acc, "epoch": epoch,
                               "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
            pos.update(epoch=epoch + 1, batch=0, running=0.0, parts_sum={}, epoch_seconds=0.0)
            if checkpoint and epoch < cfg.epochs and weights_finite():
                checkpoint.save(snapshot())
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
        checkpoint.save(snapshot(complete=True, result=result))
    return result


def _interrupted(name: str, stop, step: int, total: int, checkpoint: Checkpoint | None) -> Interrupted:
    where = f"saved at step {step} of {total} in {checkpoint.path}" if checkpoint else "not saved (no checkpoint was asked for)"
    return Interrupted(f"{name}: stopped by {stop.signal}; training state {where}; "
                       f"continue with {checkpoint.resume_command if checkpoint else 'a new run'}")
