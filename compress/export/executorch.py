"""ExecuTorch export: torch.export -> to_edge_transform_and_lower with the XNNPACK partitioner -> one .pte.

Batch 1 (a device runs one text per call) and a dynamic sequence axis from 2 to data.max_length: one method,
`forward`, takes any length. Where torch.export or the lowering cannot keep that axis dynamic, the model is lowered
once per bucket instead (methods `seq_32`, `seq_64`, ..., as the .tflite's signatures; each method's XNNPACK blob
holds its own weights, so the file grows with the buckets) and the export says so.

XNNPACK takes the matmuls, softmax, GELU and elementwise work; what it cannot take (this BERT's embedding lookups,
layer norms, reshapes) runs on ExecuTorch's portable kernels. The export names those operators in one line and
records them (`portable_ops`), it does not fail on them.

The model is lowered with eager attention, not transformers' SDPA path: SDPA's handling of fully masked rows adds
per-layer mask work (logical_not, any, where over [heads, L, L]) that lands on the single-threaded portable
kernels; the outputs are the same (every .pte is verified on dev). Measured on the default student, batch 1,
1 thread, SDPA vs eager: benchmarks/executorch_attention.py, results in benchmarks/results/executorch_attention_*.json.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from compress.errors import UserError
from compress.export.base import Exporter, ExportInput, Made
from compress.progress import info

EXECUTORCH_EXTRA = "pip install 'bert-compress[executorch]'"
# graph plumbing that is neither a kernel call on the device nor a sign of lost delegation
_NOT_KERNELS = ("getitem", "sym_size", "executorch_call_delegate", "_assert", "sym_constrain")


def executorch_available() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("executorch") is not None and importlib.util.find_spec("executorch.exir") is not None
    except (ValueError, ImportError):  # blocked in sys.modules, or a broken install
        return False


def require_executorch(what: str = "the ExecuTorch export") -> None:
    if not executorch_available():
        raise UserError(f"{what} needs ExecuTorch: {EXECUTORCH_EXTRA}, or set export.executorch: off")


@dataclass
class Lowered:
    """What lowering one model to a .pte gave."""

    path: Path
    dynamic: bool  # one `forward` method with a dynamic sequence axis; else one method per bucket
    buckets: list[int] | None
    delegate_calls: int  # XNNPACK subgraphs (per method, summed)
    portable_ops: dict[str, int] = field(default_factory=dict)  # edge operator -> count, left on portable kernels
    fallback_reason: str | None = None  # why the dynamic axis was given up

    def describe(self) -> str:
        shape = "dynamic sequence axis (2.." + "max)" if self.dynamic else "methods " + ", ".join(f"seq_{b}" for b in self.buckets)
        return f"{shape}, {self.delegate_calls} XNNPACK delegate call(s)"

    def portable_line(self) -> str:
        if not self.portable_ops:
            return "every operator runs in XNNPACK"
        return "left on ExecuTorch's portable kernels: " + ", ".join(f"{op} ×{n}" for op, n in self.portable_ops.items())


@contextlib.contextmanager
def _quiet():
    """torch.export / exir warn per node about pytree and experimental APIs; torchao logs its missing CUDA
    kernels on import. None of it is about this model."""
    loggers = [logging.getLogger(n) for n in ("torchao", "torch._export", "executorch")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _op_name(target) -> str:
    name = getattr(target, "__name__", None) or str(target)
    name = str(getattr(target, "_name", name))
    return name.split("::")[-1] if "::" in name else name


def _portable_ops(edge, methods: list[str]) -> tuple[int, dict[str, int]]:
    calls, left = 0, Counter()
    for m in methods:
        for node in edge.exported_program(m).graph.nodes:
            if node.op != "call_function":
                continue
            name = _op_name(node.target)
            if "executorch_call_delegate" in name:
                calls += 1
            elif not any(k in name for k in _NOT_KERNELS):
                left[name.removeprefix("aten.")] += 1
    return calls, dict(sorted(left.items(), key=lambda kv: (-kv[1], kv[0])))


def _samples(input_names: list[str], length: int):
    import torch

    return tuple((torch.zeros if n == "token_type_ids" else torch.ones)(1, length, dtype=torch.long) for n in input_names)


@contextlib.contextmanager
def eager_attention(module):
    """Every Hugging Face config under `module` set to eager attention for the duration (restored after)."""
    configs = {id(c): c for m in module.modules() if (c := getattr(m, "config", None)) is not None
               and hasattr(c, "_attn_implementation")}
    before = {k: c._attn_implementation for k, c in configs.items()}
    try:
        for c in configs.values():
            c._attn_implementation = "eager"
        yield
    finally:
        for k, c in configs.items():
            c._attn_implementation = before[k]


def lower_to_pte(module, input_names: list[str], path: Path, max_length: int, buckets: list[int],
                 attention: str = "eager") -> Lowered:
    """`module` (token arrays -> the task output, positional in INPUT_ORDER) as an XNNPACK-delegated .pte.
    attention: `eager` (the default, see above) or `as-is` (the model's own setting, e.g. SDPA)."""
    import torch

    from compress.export.onnx import INPUT_ORDER

    with _quiet(), (eager_attention(module) if attention == "eager" else contextlib.nullcontext()):
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower

        names = [n for n in INPUT_ORDER if n in input_names]
        module = module.eval()
        reason = None
        try:
            seq = torch.export.Dim("seq", min=2, max=max_length)
            program = torch.export.export(module, _samples(names, min(16, max_length)),
                                          dynamic_shapes=tuple({1: seq} for _ in names), strict=False)
            edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
            methods, dynamic = ["forward"], True
        except Exception as exc:  # noqa: BLE001 - a shape guard or an unsupported dynamic op: buckets still work
            from compress.errors import first_line

            reason = f"{type(exc).__name__}: {first_line(exc)[:200]}"
            programs = {f"seq_{b}": torch.export.export(module, _samples(names, b), strict=False) for b in buckets}
            edge = to_edge_transform_and_lower(programs, partitioner=[XnnpackPartitioner()])
            methods, dynamic = list(programs), False
        calls, left = _portable_ops(edge, methods)
        buffer = edge.to_executorch().buffer
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer)
    return Lowered(path, dynamic, None if dynamic else sorted(buckets), calls, left, reason)


def _wanted(recipe) -> bool:
    """export.executorch: on needs the package (one line and exit 2 before anything runs); auto uses it when there."""
    if recipe.export.executorch == "off":
        return False
    if recipe.export.executorch == "on":
        require_executorch()
        return True
    return executorch_available()


def _make(inp: ExportInput) -> Made:
    from compress.export.config import tflite_buckets
    from compress.export.onnx import LogitsOnly

    max_length = inp.recipe.data.max_length
    info(f"export: ExecuTorch fp32 .pte via torch.export + XNNPACK (batch 1, sequence 2..{max_length})")
    lowered = lower_to_pte(LogitsOnly(inp.student), inp.input_names, inp.directory / "model.pte", max_length,
                           tflite_buckets(inp.recipe.export, max_length))
    report(lowered)
    return Made(lowered.path, f"ExecuTorch fp32, XNNPACK, {lowered.describe()}", lowered.buckets, extras(lowered))


def report(lowered: Lowered) -> None:
    """One line each: where the dynamic axis was given up, and what XNNPACK did not take."""
    if lowered.fallback_reason:
        info(f"[yellow]note[/]: {lowered.path.name}: no dynamic sequence axis ({lowered.fallback_reason}); lowered per "
             f"bucket {lowered.buckets} instead")
    info(f"export: {lowered.path.name}: {lowered.delegate_calls} XNNPACK delegate call(s); {lowered.portable_line()}")


def extras(lowered: Lowered) -> dict:
    """What only a .pte has: the operators XNNPACK did not take, why it has bucket methods (when it has)."""
    return {"portable_ops": lowered.portable_ops,
            **({"dynamic_fallback": lowered.fallback_reason} if lowered.fallback_reason else {})}


# ExecuTorch cannot lower every model: the ONNX and TFLite artifacts still ship
EXPORTER = Exporter("student-pte-fp32", _make, "ExecuTorch lowering failed", "executorch", what="fp32 .pte",
                    install=EXECUTORCH_EXTRA, wanted=_wanted)
