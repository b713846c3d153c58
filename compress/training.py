"""One training loop for fine-tuning and distillation.

AdamW (no decay on biases and LayerNorm), linear warm-up then linear decay, gradient clipping, dev
accuracy after each epoch; the best epoch's weights are kept and restored at the end.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import torch
from transformers import get_linear_schedule_with_warmup

from compress.data.batching import Encoded, iterate, train_batches
from compress.errors import UserError
from compress.evaluate import accuracy, predict_logits
from compress.progress import bar, info
from compress.recipe import TrainConfig

LossFn = Callable[[dict[str, torch.Tensor]], tuple[torch.Tensor, dict[str, float]]]


class TrainingDiverged(UserError):
    exit_code = 1


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
) -> dict:
    """Train `model` in place; returns the history and the best dev accuracy.

    select_best: restore the epoch with the best dev accuracy (else keep the last epoch, e.g. for an
    intermediate-layer stage whose dev accuracy says little).
    """
    torch.manual_seed(seed)
    device = next(model.parameters()).device
    named = list(model.named_parameters()) + list(extra_params or [])
    optimizer = torch.optim.AdamW(param_groups(named, cfg.weight_decay), lr=cfg.lr)
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total), total)
    best = {"dev_accuracy": -1.0, "epoch": 0, "state": None}
    history = []
    step = 0
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        running, parts_sum = 0.0, {}
        batches = train_batches(train, cfg.batch_size, seed, epoch)
        with bar(f"{name} epoch {epoch}/{cfg.epochs}", len(batches)) as advance:
            for i, (_, batch) in enumerate(iterate(train, batches), 1):
                batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
                loss, parts = loss_fn(batch)
                if not torch.isfinite(loss):
                    raise TrainingDiverged(
                        f"{name}: the loss became {float(loss)} at step {step + 1} (epoch {epoch}); "
                        f"lower the learning rate ({cfg.lr}) or check the data; no output was written"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_([p for _, p in named], cfg.max_grad_norm)
                optimizer.step()
                scheduler.step()
                step += 1
                running += loss.item()
                for k, v in parts.items():
                    parts_sum[k] = parts_sum.get(k, 0.0) + v
                advance(status=f"loss {running / i:.4f}")
        dev_acc = accuracy(predict_logits(model, dev), dev.labels)
        n = len(batches)
        record = {
            "epoch": epoch,
            "train_loss": running / n,
            "loss_terms": {k: v / n for k, v in parts_sum.items()},
            "dev_accuracy": dev_acc,
            "seconds": time.perf_counter() - t0,
        }
        history.append(record)
        info(f"{name} epoch {epoch}: loss {record['train_loss']:.4f}, dev accuracy {dev_acc:.4f} ({record['seconds']:.0f} s)")
        if not select_best:
            best = {"dev_accuracy": dev_acc, "epoch": epoch, "state": None}
        elif dev_acc > best["dev_accuracy"]:
            best = {
                "dev_accuracy": dev_acc,
                "epoch": epoch,
                "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
            }
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    model.eval()
    return {"history": history, "best_epoch": best["epoch"], "best_dev_accuracy": best["dev_accuracy"], "steps": step}
