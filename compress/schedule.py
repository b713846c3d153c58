"""How long a training loop runs (fine-tuning the teacher, each distillation stage): the recipe's schedule fields and
the steps they plan (compress.training.fit runs them)."""

from __future__ import annotations

from pydantic import Field

from compress.schema import Strict as _Strict


class TrainConfig(_Strict):
    """AdamW with linear warm-up and decay over the planned steps; dev evaluations along the way, the best one's
    weights kept. The planned steps fit the data: epochs x steps per pass, raised to min_steps, cut to max_steps,
    and cut again to what max_minutes holds."""

    epochs: int = Field(2, ge=1)
    """Passes over the training rows (an upper bound when patience stops earlier)."""
    lr: float = Field(5e-5, gt=0)
    batch_size: int = Field(32, ge=1)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    weight_decay: float = Field(0.01, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    min_steps: int = Field(0, ge=0)
    """At least this many optimizer steps: a small data set gets more passes instead of stopping half-trained."""
    max_steps: int | None = Field(None, ge=1)
    """At most this many optimizer steps: a large data set gets a fraction of a pass."""
    eval_every: int | None = Field(None, ge=1)
    """Steps between dev evaluations; unset: after each pass (and always at the last step)."""
    patience: int | None = Field(None, ge=1)
    """Stop after this many dev evaluations in a row without a better dev metric; unset: run the planned steps."""
    max_minutes: float | None = Field(None, gt=0)
    """Wall-clock budget of the loop (training and dev evaluations): the planned steps are cut to what fits at the
    pace measured on the first steps, so the learning rate still decays to zero. The result then depends on this
    machine's speed (the steps it ran are recorded)."""

    def planned_steps(self, steps_per_epoch: int) -> int:
        steps = max(self.epochs * steps_per_epoch, self.min_steps)
        return min(steps, self.max_steps) if self.max_steps else steps


class Schedule(_Strict):
    """A distillation stage's own schedule; a field left unset comes from `distill` (TrainConfig says what each means)."""

    min_steps: int | None = Field(None, ge=0)
    max_steps: int | None = Field(None, ge=1)
    eval_every: int | None = Field(None, ge=1)
    patience: int | None = Field(None, ge=1)
    max_minutes: float | None = Field(None, gt=0)
