"""ONNX Runtime's transformer fusions on the fp32 export: Attention (with its QKV projection) and BiasGelu.

ONNX Runtime's own optimizer (`onnxruntime.transformers.optimizer`) fuses LayerNorm and GELU on our dynamo
export but never attention: the masking subgraph transformers 5 writes (And / Expand / GatherND / Where)
matches none of its patterns. onnxscript's `ort_fusions` is written for dynamo graphs and fuses attention
into `com.microsoft.Attention` with an additive mask. Three small rewrites then make it the graph ONNX
Runtime's kernels and quantizer expect:

- the additive mask becomes the raw 0/1 `attention_mask` (Attention's `mask_index`), when it is computed
  from that input alone; the whole masking subgraph then disappears;
- the Q, K, V weights concatenated at run time become one initializer;
- `qkv_hidden_sizes` is dropped when the three are equal (its default): the dynamic quantizer only turns
  Attention into `QAttention` (int8 attention projections) without it;
- `SkipLayerNormalization` is split back into Add + `LayerNormalization`: ONNX Runtime's CPU kernel for it is
  the slow one (see `targets.runtime.SESSION_CONFIG`, which also stops ONNX Runtime from re-fusing them).

The result uses ONNX Runtime contrib ops (com.microsoft domain): it runs in ONNX Runtime only (desktop and
Mobile), which is why the portable export is kept beside it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from compress.export.base import Exporter, ExportInput, Made
from compress.progress import info

FUSED_OPS = ("Attention", "SkipLayerNormalization", "BiasGelu", "FastGelu", "Gelu", "EmbedLayerNormalization")


def optimize_for_ort(src: Path, dst: Path, config) -> dict[str, int]:
    """Write the fused model to `dst`; returns how many of each fused operator it holds."""
    import onnx

    try:
        model = _onnxscript_fusions(src)
    except Exception:  # onnxscript's rewriter changes quickly: ORT's own optimizer still fuses the rest
        model = _ort_optimizer(src, config)
    from compress.export.onnx import dedupe_initializers, drop_stale_value_info

    split_skip_layernorm(model)
    dedupe_initializers(model)  # shared (ALBERT) layers: one fused QKV weight, not one per layer
    drop_stale_value_info(model)
    onnx.save(model, str(dst))
    counts = Counter(n.op_type for n in model.graph.node)
    return {op: counts[op] for op in FUSED_OPS if counts[op]}


def _ort_optimizer(src: Path, config):
    from onnxruntime.transformers import optimizer

    fused = optimizer.optimize_model(str(src), model_type="bert", num_heads=config.num_attention_heads,
                                     hidden_size=config.hidden_size, opt_level=1)
    return fused.model


def _onnxscript_fusions(src: Path):
    import onnx_ir as ir
    from onnxscript.rewriter import ort_fusions

    fused, _ = ort_fusions.optimize_for_ort(ir.load(str(src)))
    model = ir.to_proto(fused)
    fold_constant_concats(model)
    raw_attention_mask(model)
    prune_dead_nodes(model)
    return model


def fold_constant_concats(model) -> int:
    """Concat nodes whose inputs are all initializers become one initializer (the fused QKV weight)."""
    import numpy as np
    from onnx import numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    folded = 0
    for node in list(graph.node):
        if node.op_type != "Concat" or not node.input or not all(x in inits for x in node.input):
            continue
        axis = next(a.i for a in node.attribute if a.name == "axis")
        array = np.concatenate([numpy_helper.to_array(inits[x]) for x in node.input], axis=axis)
        init = numpy_helper.from_array(array, node.output[0])
        graph.initializer.append(init)
        inits[init.name] = init
        graph.node.remove(node)
        folded += 1
    return folded


def _data_inputs(graph, value: str) -> set[str]:
    """Graph inputs whose *values* reach `value` (a path through Shape only depends on a shape)."""
    graph_inputs = {i.name for i in graph.input}
    inits = {i.name for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    found, seen, stack = set(), set(), [value]
    while stack:
        name = stack.pop()
        if not name or name in seen or name in inits:
            continue
        seen.add(name)
        if name in graph_inputs:
            found.add(name)
        elif name in producer and producer[name].op_type != "Shape":
            stack.extend(producer[name].input)
    return found


def raw_attention_mask(model, mask_input: str = "attention_mask") -> int:
    """Feed Attention the raw 0/1 mask (int32 `mask_index`) instead of an additive bias built from it."""
    from onnx import TensorProto, helper

    graph = model.graph
    if mask_input not in {i.name for i in graph.input}:
        return 0
    cast_name, rewritten = f"{mask_input}_int32", 0
    for node in graph.node:
        if node.op_type != "Attention" or node.domain != "com.microsoft":
            continue
        for attr in list(node.attribute):
            if attr.name == "qkv_hidden_sizes" and len(set(attr.ints)) == 1:
                node.attribute.remove(attr)
        inputs = list(node.input) + [""] * (6 - len(node.input))
        if not inputs[5] or inputs[3] or _data_inputs(graph, inputs[5]) != {mask_input}:
            continue
        inputs[3], inputs[5] = cast_name, ""
        while inputs and not inputs[-1]:
            inputs.pop()
        del node.input[:]
        node.input.extend(inputs)
        rewritten += 1
    if rewritten:
        graph.node.insert(0, helper.make_node("Cast", [mask_input], [cast_name], to=TensorProto.INT32,
                                              name="attention_mask_to_int32"))
    return rewritten


def prune_dead_nodes(model) -> None:
    """Drop nodes and initializers no graph output depends on (the replaced mask subgraph)."""
    graph = model.graph
    needed = {o.name for o in graph.output}
    kept = []
    for node in reversed(list(graph.node)):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    for init in [i for i in graph.initializer if i.name not in needed]:
        graph.initializer.remove(init)


def split_skip_layernorm(model) -> int:
    """SkipLayerNormalization(x, skip, gamma, beta, bias) -> Add(x + bias) -> Add(+ skip) -> LayerNormalization.

    Same arithmetic; onnxruntime's fused CPU kernel is the slower of the two, which is why the runner turns the
    fusion off (targets/runtime.py SESSION_CONFIG, and the speed-up measured there).
    """
    from onnx import helper

    graph = model.graph
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    nodes, split = [], 0
    for node in graph.node:
        if node.op_type != "SkipLayerNormalization" or node.domain != "com.microsoft":
            nodes.append(node)
            continue
        x, skip, gamma, beta, bias = (list(node.input) + [""] * 5)[:5]
        y, mean, inv_std, total = (list(node.output) + [""] * 4)[:4]
        if (mean and mean in used) or (inv_std and inv_std in used):  # statistics LayerNormalization cannot give
            nodes.append(node)
            continue
        eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-12)
        name = node.name or f"skip_layernorm_{split}"
        if bias:
            nodes.append(helper.make_node("Add", [x, bias], [f"{name}/biased"], name=f"{name}/bias"))
            x = f"{name}/biased"
        total = total if total and total in used else f"{name}/sum"
        nodes.append(helper.make_node("Add", [x, skip], [total], name=f"{name}/residual"))
        nodes.append(helper.make_node("LayerNormalization", [total, gamma] + ([beta] if beta else []), [y],
                                      name=f"{name}/layernorm", axis=-1, epsilon=eps))
        split += 1
    del graph.node[:]
    graph.node.extend(nodes)
    return split


def _make(inp: ExportInput) -> Made:
    info("export: ONNX Runtime transformer fusions (Attention, BiasGelu; ONNX Runtime only)")
    dst = inp.directory / "model.ort-opt.onnx"
    fused = optimize_for_ort(inp.made["student-onnx-fp32"], dst, inp.student.config)
    return Made(dst, "fused for ONNX Runtime: " + ", ".join(f"{k}×{v}" for k, v in fused.items()),
                extras={"fused_ops": fused})


# best-effort: an unfused graph is still a valid artifact
# a static-embedding student has no attention or FFN to fuse
EXPORTER = Exporter("student-onnx-fp32-ort-opt", _make, "optimizer failed", "onnxruntime", variant="fused",
                    what="fused fp32 ONNX", wanted=lambda recipe: recipe.student.kind != "static")
