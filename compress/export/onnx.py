"""fp32 ONNX export with dynamic batch and sequence axes.

The dynamo exporter is used: the legacy TorchScript exporter traced shape-dependent constants into this
BERT under transformers 5 and gave logits off by ~6e-3 at other sequence lengths (measured, see README).
"""

from __future__ import annotations

from pathlib import Path

import torch

INPUT_ORDER = ("input_ids", "attention_mask", "token_type_ids")


class LogitsOnly(torch.nn.Module):
    """The classifier as a function of token arrays to logits: what a device calls."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> torch.Tensor:
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        return self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).logits


def export_onnx(model: torch.nn.Module, input_names: list[str], path: Path, opset: int) -> Path:
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
        output_names=["logits"],
        dynamic_shapes={n: {0: batch, 1: seq} for n in input_names},
        optimize=True,
        verbose=False,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    program.save(str(path), external_data=False)
    return path
