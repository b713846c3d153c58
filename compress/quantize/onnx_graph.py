"""Graph facts the ONNX quantizers need: which nodes are numerically sensitive, how to feed calibration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx


def sensitive_nodes(path: Path) -> list[str]:
    """Embedding lookups (Gather on a weight table) and the classifier (the MatMul/Gemm that makes the logits).

    These are the nodes whose int8 error is least averaged away: an embedding row is used as it is, and the
    classifier's error lands directly on the logits.
    """
    model = onnx.load(str(path), load_external_data=False)
    graph = model.graph
    weights = {i.name for i in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    names = [n.name for n in graph.node if n.op_type == "Gather" and n.input and n.input[0] in weights]
    frontier = [o.name for o in graph.output]
    seen = set()
    while frontier:  # walk back from the logits through element-wise ops to the first matrix product
        name = frontier.pop()
        node = producer.get(name)
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        if node.op_type in ("MatMul", "Gemm", "MatMulInteger", "FusedMatMul"):
            names.append(node.name)
        elif node.op_type in ("Add", "Identity", "Cast", "Reshape", "Squeeze", "Flatten"):
            frontier += [i for i in node.input if i not in weights]
    return names


GELU_OPS = ("Gelu", "BiasGelu", "FastGelu", "Erf")


def ffn_output_nodes(path: Path) -> list[str]:
    """The FFN output projections (the MatMul fed by GELU): their inputs carry the large activation outliers of
    BERT (Bondarenko et al., 2021), which one per-tensor int8 scale resolves worst."""
    model = onnx.load(str(path), load_external_data=False)
    producer = {out: node for node in model.graph.node for out in node.output}
    names = []
    for node in model.graph.node:
        if node.op_type not in ("MatMul", "Gemm"):
            continue
        hop, value = 0, node.input[0]
        while hop < 4 and value in producer:  # GELU, or the Mul / Add ops an unfused erf-GELU ends with
            up = producer[value]
            if up.op_type in GELU_OPS:
                names.append(node.name)
                break
            if up.op_type not in ("Mul", "Add", "Div", "Cast"):
                break
            value, hop = up.input[0], hop + 1
    return names


def excluded_nodes(path: Path, exclude: str) -> list[str]:
    """Nodes kept in fp32 for an `exclude` setting: none, sensitive, or sensitive+ffn-out."""
    if exclude == "none":
        return []
    names = sensitive_nodes(path)
    if exclude == "sensitive+ffn-out":
        names += ffn_output_nodes(path)
    return names


def calibration_feeds(enc, input_names: list[str], batch_size: int = 8, same_length: bool = False) -> list[dict[str, np.ndarray]]:
    """Calibration batches as ONNX feeds: dynamic padding like inference, or every batch padded to the longest
    row (histogram calibrators stack activations across batches, so their shapes must agree)."""
    from compress.data.batching import collate, eval_batches

    feeds, width = [], max(enc.lengths) if same_length else None
    for idx in eval_batches(enc, batch_size):
        batch = collate(enc, idx, pad_to=width)
        feeds.append({k: batch[k].numpy() for k in input_names})
    return feeds


def input_names(path: Path) -> list[str]:
    model = onnx.load(str(path), load_external_data=False)
    weights = {i.name for i in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in weights]
