"""The training schedule: steps that fit the data (min_steps / max_steps), dev evaluations every N steps, early stop
on patience, a wall-clock budget that re-plans the steps so the learning rate still decays, and per-epoch rows."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from compress.data.batching import Encoded
from compress.recipe import DistillConfig, StageConfig, TrainConfig
from compress.training import fit


def _data(rows: int) -> Encoded:
    ids = [[101, 7 + i % 5, 102] for i in range(rows)]
    return Encoded({"input_ids": ids, "attention_mask": [[1, 1, 1]] * rows}, np.array([i % 2 for i in range(rows)]), 0)


class _Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Linear(1, 2)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        from types import SimpleNamespace

        return SimpleNamespace(logits=self.w(input_ids.float().mean(-1, keepdim=True)))


def _fit(cfg: TrainConfig, rows: int = 40, metric=None, seen: list | None = None, slow: float = 0.0, **kw) -> dict:
    model = _model = _Model()

    def loss(batch):
        if seen is not None:
            seen.extend(batch["index"].tolist())
        if slow:
            time.sleep(slow)
        return _model(batch["input_ids"]).logits.pow(2).mean(), {}

    return fit(model, loss, _data(rows), _data(8), cfg, 0, "schedule-test", metric=metric or (lambda o, y: 0.5), **kw)


def test_planned_steps():
    assert TrainConfig(epochs=2).planned_steps(10) == 20
    assert TrainConfig(epochs=2, min_steps=50).planned_steps(10) == 50  # a small data set gets more passes
    assert TrainConfig(epochs=2, min_steps=50, max_steps=30).planned_steps(10) == 30
    stage = StageConfig(name="task", losses={"hard_ce": {}}, epochs=3, patience=2)
    cfg = DistillConfig(min_steps=400, max_minutes=5).train_config(stage)
    assert (cfg.epochs, cfg.min_steps, cfg.patience, cfg.max_minutes) == (3, 400, 2, 5)  # the stage's, then distill's


def test_min_steps_runs_more_passes_and_eval_every_evaluates_between():
    result = _fit(TrainConfig(epochs=1, min_steps=25, batch_size=8))  # 5 steps per pass: 5 passes
    assert result["steps"] == 25 and len(result["history"]) == 5 and result["history"][-1]["epoch"] == 5
    result = _fit(TrainConfig(epochs=2, batch_size=8, eval_every=3))  # 10 steps: evaluations at 3, 6, 9 and 10
    assert [h["step"] for h in result["history"]] == [3, 6, 9, 10]


def test_patience_stops_when_the_dev_metric_stops_improving():
    scores = iter([0.5, 0.6, 0.55, 0.58, 0.9, 0.9])
    result = _fit(TrainConfig(epochs=6, batch_size=8, patience=2), metric=lambda o, y: next(scores))
    assert result["stopped"] == "patience" and result["steps"] == 20 and result["best_epoch"] == 2
    assert result["best_dev_quality"] == 0.6 and result["planned_steps"] == 30


def test_time_budget_cuts_the_plan_so_the_schedule_still_ends():
    result = _fit(TrainConfig(epochs=50, batch_size=8, max_minutes=0.05), slow=0.02)  # 250 steps of 20 ms: 5 s
    assert result["planned_steps"] == 250 and result["steps"] < 250  # re-planned to what 3 s hold at 20 ms a step
    assert result["stopped"] in ("schedule", "time")


def test_epoch_rows_choose_what_each_pass_trains_on():
    seen: list[int] = []
    _fit(TrainConfig(epochs=2, batch_size=4), rows=12, seen=seen,
         epoch_rows=lambda epoch: [0, 1, 2, 3] + ([4, 5, 6, 7] if epoch == 1 else [8, 9, 10, 11]))
    assert sorted(seen) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 5, 6, 7, 8, 9, 10, 11]


def test_schedule_fields_are_checked():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        TrainConfig(patience=0)
    with pytest.raises(ValidationError):
        TrainConfig(max_minutes=0)
