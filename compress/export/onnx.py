"""fp32 ONNX export with dynamic batch and sequence axes.

The dynamo exporter is used: under transformers 5 the legacy TorchScript exporter traces shape-dependent constants
into this BERT and does not reproduce PyTorch's logits at other sequence lengths (docs/export.md; the dynamo export
does, guarded by tests/test_export.py).
"""

from __future__ import annotations

from pathlib import Path

import torch

from compress.evaluate import task_output
from compress.export.base import Exporter, ExportInput, Made
from compress.progress import info

INPUT_ORDER = ("input_ids", "attention_mask", "token_type_ids")


class LogitsOnly(torch.nn.Module):
    """The model as a function of token arrays to its task output (a classifier's logits, a sentence encoder's
    pooled, normalised vectors): what a device calls."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> torch.Tensor:
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        return task_output(self.model(input_ids=input_ids, attention_mask=attention_mask, **extra))


def export_onnx(model: torch.nn.Module, input_names: list[str], path: Path, opset: int,
                output_names: tuple[str, ...] = ("logits",)) -> Path:
    input_names = [n for n in INPUT_ORDER if n in input_names]
    wrapper = LogitsOnly(model.eval()).eval()
    sample = torch.ones(2, 16, dtype=torch.long)
    kwargs = {n: sample.clone() if n != "token_type_ids" else torch.zeros_like(sample) for n in input_names}
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence", max=model.config.max_position_embeddings)
    program = torch.onnx.export(
        wrapper,
        (),
        kwargs=kwargs,
        dynamo=True,
        opset_version=opset,
        input_names=input_names,
        output_names=list(output_names),
        dynamic_shapes={n: {0: batch, 1: seq} for n in input_names},
        optimize=True,
        verbose=False,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    program.save(str(path), external_data=False)
    import onnx

    model = onnx.load(str(path))
    fold_weight_transposes(model)
    dedupe_initializers(model)
    strip_debug_metadata(model)
    drop_stale_value_info(model)
    onnx.save(model, str(path))
    return path


def fold_weight_transposes(model) -> int:
    """Replace Transpose(initializer) nodes by one transposed initializer per (weight, permutation).

    The exporter leaves `Transpose(W)` in front of MatMul when W is used by several layers (shared weights).
    Folding makes every MatMul weight an initializer again, so quantizers can quantize it, and keeps a single
    copy per shared weight. Returns how many nodes were folded.
    """
    from onnx import numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    folded: dict[tuple, str] = {}
    rename: dict[str, str] = {}
    kept = []
    for node in graph.node:
        if node.op_type != "Transpose" or node.input[0] not in inits:
            kept.append(node)
            continue
        perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
        key = (node.input[0], tuple(perm) if perm else None)
        if key not in folded:
            array = numpy_helper.to_array(inits[node.input[0]])
            name = f"{node.input[0]}.transposed{len(folded)}"
            graph.initializer.append(numpy_helper.from_array(array.transpose(perm), name=name))
            folded[key] = name
        rename[node.output[0]] = folded[key]
    if not rename:
        return 0
    del graph.node[:]
    graph.node.extend(kept)
    _rename_inputs(graph, rename)
    for out in graph.output:
        if out.name in rename:  # never the case for a classifier, kept for safety
            raise ValueError(f"graph output {out.name} is a folded weight")
    used = {name for node in graph.node for name in node.input}
    unused = [i for i in graph.initializer if i.name not in used]
    for init in unused:
        graph.initializer.remove(init)
    return len(rename)


def dedupe_file(path: Path) -> int:
    """dedupe_initializers on a saved model (e.g. after a quantizer wrote one copy per node)."""
    import onnx

    model = onnx.load(str(path))
    dropped = dedupe_initializers(model)
    if dropped:
        onnx.save(model, str(path))
    return dropped


def drop_stale_value_info(model) -> None:
    """Keep shape records only for values a node still produces: folding and de-duplication leave records
    for names that no longer exist, which strict shape inference (used by quantizers) may trip over."""
    graph = model.graph
    produced = {name for node in graph.node for name in node.output}
    kept = [v for v in graph.value_info if v.name in produced]
    del graph.value_info[:]
    graph.value_info.extend(kept)


def strip_debug_metadata(model) -> None:
    """Drop the exporter's per-node debug records (Python stack traces with local paths, class names):
    they are most of a small model's file and nothing a device needs."""
    for node in model.graph.node:
        del node.metadata_props[:]


def dedupe_initializers(model) -> int:
    """Keep one copy of byte-identical initializers; returns how many were dropped.

    Shared (ALBERT-style) weights are one tensor in PyTorch, but the exporter's constant folding writes a
    transposed copy of a weight for every layer that uses it: without this pass a 4-layer all-shared
    model's file holds its layer weights four times.
    """
    import hashlib

    import onnx
    from onnx import numpy_helper

    graph = model.graph if isinstance(model, onnx.ModelProto) else model
    keep: dict[tuple, str] = {}
    rename: dict[str, str] = {}
    unique = []
    for init in graph.initializer:
        array = numpy_helper.to_array(init)
        key = (init.data_type, tuple(init.dims), hashlib.sha256(array.tobytes()).hexdigest())
        if key in keep:
            rename[init.name] = keep[key]
        else:
            keep[key] = init.name
            unique.append(init)
    if not rename:
        return 0
    del graph.initializer[:]
    graph.initializer.extend(unique)
    _rename_inputs(graph, rename)
    return len(rename)


def _rename_inputs(graph, rename: dict[str, str]) -> None:
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]


def _make(inp: ExportInput) -> Made:
    from compress.student.kind import kind_of

    if kind_of(inp.student).exports_itself:  # e.g. a static-embedding student: its own small graph
        info(f"export: ONNX fp32 of the {kind_of(inp.student).name} student (its own graph)")
        path = inp.student.export_onnx(inp.directory / "model.onnx")
        return Made(path, "portable ONNX, standard ops only: table lookup and mean, no attention")
    info("export: ONNX fp32 (dynamic batch and sequence axes)")
    path = export_onnx(inp.student, inp.input_names, inp.directory / "model.onnx", inp.recipe.export.opset, inp.output_names)
    return Made(path, "portable ONNX, standard ops only")


EXPORTER = Exporter("student-onnx-fp32", _make, "the ONNX export failed", "onnxruntime", what="fp32 ONNX", required=True)
