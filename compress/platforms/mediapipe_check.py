"""Run MediaPipe Tasks (`TextClassifier` / `TextEmbedder`, Python) on a .tflite with metadata, from raw strings.

It runs in its own process (`python -m compress.platforms.mediapipe_check SPEC OUT`): MediaPipe's graph runner
keeps native threads and state until the interpreter exits, and its objects fail in `__del__` at exit when not
closed; a separate process keeps both away from the pipeline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def run_mediapipe(model: Path, texts: list[str], embedding: bool, width: int, timeout: float = 1800) -> tuple[np.ndarray, float, str]:
    """(outputs [texts, width]: class probabilities by label index, or vectors; mean ms per call; tool name)."""
    with tempfile.TemporaryDirectory() as work:
        spec, out = Path(work) / "spec.json", Path(work) / "out.json"
        spec.write_text(json.dumps({"model": str(model), "texts": texts, "embedding": embedding, "width": width}),
                        encoding="utf-8")
        env = os.environ | {"GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "2"}
        proc = subprocess.run([sys.executable, "-m", "compress.platforms.mediapipe_check", str(spec), str(out)],
                              capture_output=True, text=True, timeout=timeout, env=env)
        if proc.returncode != 0 or not out.is_file():
            tail = [line for line in proc.stderr.strip().splitlines() if line.strip()]
            raise RuntimeError(f"MediaPipe could not run the model: {tail[-1] if tail else f'exit {proc.returncode}'}")
        got = json.loads(out.read_text(encoding="utf-8"))
    return np.asarray(got["outputs"], dtype=np.float32), got["ms_per_text"], got["tool"]


def _main(spec_path: str, out_path: str) -> int:
    from importlib.metadata import version

    from mediapipe.tasks.python.core.base_options import BaseOptions
    from mediapipe.tasks.python.text import text_classifier, text_embedder

    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    base = BaseOptions(model_asset_path=spec["model"])
    outputs, seconds = [], 0.0
    if spec["embedding"]:
        task = text_embedder.TextEmbedder.create_from_options(
            text_embedder.TextEmbedderOptions(base_options=base, l2_normalize=False, quantize=False))
        name = "TextEmbedder"
        call = lambda text: list(task.embed(text).embeddings[0].embedding)  # noqa: E731
    else:
        task = text_classifier.TextClassifier.create_from_options(
            text_classifier.TextClassifierOptions(base_options=base, max_results=-1))
        name = "TextClassifier"

        def call(text):
            row = [0.0] * spec["width"]
            for c in task.classify(text).classifications[0].categories:
                row[c.index] = c.score
            return row
    try:
        for text in spec["texts"]:
            t0 = time.perf_counter()
            outputs.append(call(text))
            seconds += time.perf_counter() - t0
    finally:
        task.close()
    Path(out_path).write_text(json.dumps({
        "outputs": outputs, "ms_per_text": round(1000 * seconds / max(1, len(outputs)), 3),
        "tool": f"MediaPipe Tasks {name} {version('mediapipe')} (Python)"}), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(_main(*sys.argv[1:3]))
