"""Training in several processes with PyTorch's DistributedDataParallel (gloo on CPUs, nccl on GPUs).

Start it with `torchrun --nproc_per_node N -m compress distill ...` or `bert-compress distill --nproc N ...`
(the same launcher, with a one-line error instead of torchrun's failure report). Every process loads the
same recipe, teacher and data; each global batch of `batch_size` rows is split across the processes, DDP
averages the gradients, and every process steps the same weights. Only rank 0 writes (stage records, the
student, checkpoints) and prints; losses and dev accuracy are reduced across ranks, so the logs and records
say what the whole batch did.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from datetime import timedelta

from compress.errors import UserError

TRAINING_COMMANDS = ("run", "finetune", "distill")
"""Commands that train, so can run in several processes; the others run in one."""


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


_WORLD = World()


def world() -> World:
    return _WORLD


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(command: str, cuda: bool) -> World:
    """Join the process group torchrun set up (env://); a no-op in a single process."""
    global _WORLD
    if not launched_by_torchrun():
        return _WORLD
    if command not in TRAINING_COMMANDS:
        raise UserError(f"`bert-compress {command}` runs in one process: start it without torchrun / --nproc "
                        f"(only {', '.join(TRAINING_COMMANDS)} train in several)")
    import torch
    import torch.distributed as dist

    _WORLD = World(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", "0")))
    if cuda:
        torch.cuda.set_device(_WORLD.local_rank)
    if not dist.is_initialized():
        # long timeout: rank 0 alone writes the fine-tuned teacher and the caches while the others wait
        dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(hours=2))
    return _WORLD


def shutdown() -> None:
    global _WORLD
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _WORLD = World()
    # what runs next (benchmark workers, the bundle check) is a plain process, not a torchrun worker
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK", "ROLE_WORLD_SIZE"):
        os.environ.pop(name, None)


def barrier() -> None:
    if _WORLD.distributed:
        import torch.distributed as dist

        dist.barrier()


def broadcast(obj):
    """Rank 0's `obj` on every rank."""
    if not _WORLD.distributed:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(obj) -> list:
    """Every rank's `obj`, in rank order, on every rank."""
    if not _WORLD.distributed:
        return [obj]
    import torch.distributed as dist

    out = [None] * _WORLD.size
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(values):
    """Sum a float tensor over ranks (in place); returns it."""
    if _WORLD.distributed:
        import torch.distributed as dist

        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def check_batch_sizes(recipe, command: str, size: int) -> None:
    """Before anything runs: each batch size the command trains with must split evenly over the processes."""
    if command in ("run", "finetune") and recipe.teacher.finetune != "never":
        check_batch_size(recipe.teacher.batch_size, "teacher.batch_size", size)
    if command in ("run", "distill"):
        check_batch_size(recipe.distill.batch_size, "distill.batch_size", size)


def check_batch_size(batch_size: int, what: str, size: int | None = None) -> None:
    size = size or _WORLD.size
    if size > 1 and batch_size % size:
        raise UserError(f"{what} {batch_size} is not divisible by the {size} training processes: use a multiple of {size} "
                        f"(each process takes batch_size / {size} rows of every batch) or start {_divisors(batch_size)} processes")


def _divisors(n: int) -> str:
    return " or ".join(str(d) for d in range(2, min(n, 8) + 1) if n % d == 0) or "1"


def shard(indices: list[int]) -> tuple[list[int], float]:
    """This rank's rows of a global batch and the weight of its loss.

    DDP averages gradients over ranks; weighting each rank's mean loss by (its rows × ranks / batch rows) makes
    that average the gradient of the whole batch's mean loss, also when the last batch does not split evenly.
    A rank left without rows runs one row with weight 0, so every rank still takes part in each step."""
    size = _WORLD.size
    if size == 1:
        return indices, 1.0
    mine = indices[_WORLD.rank::size]
    if not mine:
        return indices[:1], 0.0
    return mine, len(mine) * size / len(indices)


# ---- the launcher: torchrun, with our own error handling ------------------------------------------
def launch(nproc: int, argv: list[str]) -> int:
    """`torchrun --standalone --nproc_per_node nproc -m compress argv`: exit code of the first failed worker,
    whose own one-line error is already printed, without torchrun's traceback."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    # one thread per process unless asked otherwise: N processes x all cores each would oversubscribe the CPU
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    for name in list(logging.root.manager.loggerDict):  # its own loggers set their levels: quiet each
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    args = parse_args(["--standalone", "--nproc_per_node", str(nproc), "--module", "compress", *argv])
    try:
        run(args)
    except ChildFailedError as exc:
        _, failure = exc.get_first_failure()
        code = failure.exitcode
        if code < 0:  # killed by a signal
            print(f"bert-compress: error: a training process was killed by signal {-code}", file=sys.stderr)
            return 128 - code
        return code or 1
    except SignalException:  # Ctrl-C / SIGTERM: the workers saved their training state and said so
        return 130
    return 0


def pick_device(preference: str):
    """auto: a CUDA GPU when one is visible (under torchrun: the one of this process's local rank), else the CPU."""
    import torch

    if preference == "cuda" and not torch.cuda.is_available():
        raise UserError("device 'cuda' was asked for but no CUDA GPU is visible: use device 'auto' or 'cpu'")
    if preference == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", world().local_rank)


def main_process() -> bool:
    """Only the first process writes OUT (the others under torchrun compute the same record)."""
    return world().is_main
