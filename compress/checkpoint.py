"""Training checkpoints: Ctrl-C or kill -9 at any point, then `--resume`, gives the weights of an uninterrupted run.

A checkpoint holds everything the next optimizer step depends on: the weights of the model and of the
distiller's projections, AdamW's moments, the scheduler, the RNG states, the epoch and the position in it (the
batch order is a pure function of seed and epoch, so the position is enough), the running loss sums, the history
and the best epoch so far. It is written under a temporary name and renamed: a kill during a save leaves the
previous checkpoint whole. A finished fit saves its result too, so a resumed stage skips it.

A checkpoint is read with `torch.load(weights_only=True)`: tensors, numbers, strings and containers only, so a
checkpoint from someone else cannot run code when resumed. Everything saved is such a value (numpy's RNG
state is stored as a tensor and plain numbers, not as an ndarray).
"""

from __future__ import annotations

import os
import pickle
import random
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from compress.errors import UserError, first_line
from compress.progress import info

FORMAT_VERSION = 2
"""2: loaded with weights_only=True (v1 stored numpy's RNG state as an ndarray, which only a full unpickle reads)."""


class Interrupted(UserError):
    """Ctrl-C during training: the state was saved; `--resume` continues from it."""

    exit_code = 130


@dataclass
class Checkpoint:
    path: Path
    key: str
    """hash of every setting the training depends on: a checkpoint made with other settings is never resumed"""
    every_steps: int = 100
    resume: bool = True
    resume_command: str = "the same command with --resume"

    def load(self) -> dict | None:
        """The saved state when resuming and it was made with the same settings; else None (start over)."""
        if not self.resume or not self.path.is_file():
            return None
        state = self.read()
        if state.get("key") != self.key:
            info(f"[yellow]note[/]: {self.path.name} was saved with other settings: this training starts over")
            return None
        return state

    def read(self) -> dict:
        """The file's contents; a damaged, foreign or older file is one clear error. Nothing in it is executed."""
        import torch

        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:  # it names Python objects beyond tensors and numbers: not loaded
            raise UserError(f"checkpoint {self.path} cannot be read: {_unsafe_contents(self.path)}; "
                            "delete it, or pass --force to start over") from None
        except Exception as exc:  # a truncated or foreign file: say which, do not guess
            raise UserError(f"checkpoint {self.path} cannot be read ({first_line(exc)}): delete it, or pass --force to start over") from None
        if not isinstance(state, dict) or state.get("version") != FORMAT_VERSION:
            raise UserError(f"checkpoint {self.path} is not a bert-compress v{FORMAT_VERSION} checkpoint: delete it, or pass --force")
        return state

    def save(self, state: dict) -> None:
        import torch

        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".tmp-{self.path.name}.{os.getpid()}")
        try:
            torch.save(state | {"version": FORMAT_VERSION, "key": self.key}, tmp)
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def _unsafe_contents(path: Path) -> str:
    """Why a checkpoint was not loaded, from the names of the Python objects it holds (found without loading it)."""
    import torch

    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:
        names = []
    if names and all(n.startswith("numpy.") for n in names):  # v1 stored numpy's RNG state as an ndarray
        return "it was written by an older bert-compress (checkpoint format v1), which this version does not resume"
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    return (f"it holds Python objects{f' ({shown})' if shown else ''} besides tensors and numbers, which are not loaded "
            "because loading them could run code")


def rng_state() -> dict:
    """Every RNG the training draws from, as tensors, numbers and tuples (what weights_only loading reads)."""
    import torch

    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": {"bit_generator": str(name), "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state((n["bit_generator"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class StopFlag:
    """Set by the first Ctrl-C (SIGINT) or SIGTERM; the training loop checks it between steps."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self.at = 0.0

    def __bool__(self) -> bool:
        return self.signal is not None


@contextmanager
def stop_on_signals() -> Iterator[StopFlag]:
    """The first Ctrl-C / SIGTERM asks the loop to save and stop after the current step; a second Ctrl-C
    interrupts at once (the last saved checkpoint is still whole)."""
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag  # signal handlers can only be installed from the main thread
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum, frame):
        if flag and time.monotonic() - flag.at < 1.0:
            return  # the same stop delivered twice (torchrun forwards the terminal's Ctrl-C to its workers)
        if flag:  # second signal: stop now
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        flag.signal, flag.at = signal.Signals(signum).name, time.monotonic()
        info(f"[yellow]{flag.signal}[/]: saving the training state after this step (press Ctrl-C again to stop at once)")

    for s in previous:
        signal.signal(s, handler)
    try:
        yield flag
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
