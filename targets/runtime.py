"""One call interface over on-device runtimes: feed int token arrays, get logits back (numpy only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class RuntimeLoadError(Exception):
    """The runtime cannot load this model file."""


class OnnxModel:
    """An ONNX Runtime session on the CPU with an explicit thread count (0 = runtime default)."""

    runtime = "onnxruntime"

    def __init__(self, path: str | Path, threads: int = 0):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own exception types per failure
            raise RuntimeLoadError(f"onnxruntime cannot load {path}: {str(exc).splitlines()[0]}") from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.input_types = {i.name: i.type for i in self.session.get_inputs()}

    def __call__(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        dtype = lambda name: np.int32 if "int32" in self.input_types[name] else np.int64  # noqa: E731
        inputs = {n: np.asarray(feeds[n], dtype=dtype(n)) for n in self.input_names}
        return self.session.run(None, inputs)[0]
