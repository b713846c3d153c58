"""Benchmark worker for PyTorch models (teacher, student, torchao artifacts), run in a fresh process.

`python -m compress.bench.torch_worker SPEC_JSON` prints one JSON line: the same fields as a runtime artifact's
(targets.bench.measure), so load time and peak RSS are the model's own and comparable across runtimes.
"""

from __future__ import annotations

import os
import sys
import time

from targets.bench import Grid, Timing, measure, worker_main


def _load_model(spec: dict):
    from compress.teacher import quiet_transformers

    quiet_transformers()
    kind, task = spec["kind"], spec.get("task", "sequence-classification")
    if kind == "teacher":  # with the task's own head (a token classifier's scores every token)
        from compress.tasks import get

        return get(task).load_timed_teacher(spec)
    if kind == "student":
        from compress.tasks import get

        return get(task).load_student(spec["path"])
    if kind == "torchao":
        from compress.quantize import backend
        from compress.quantize.torchao_ptq import load

        return load(spec["path"], backend("torchao").settings(**spec["settings"]), spec["student_dir"])
    raise ValueError(f"unknown model kind {kind}")


def torch_loader(load_model):
    """load(threads) for targets.bench.measure: the model is loaded once; each call sets torch's thread count."""
    import torch

    state = {}

    def load(threads: int):
        torch.set_num_threads(threads)
        if "model" not in state:
            state["model"] = load_model()
        model = state["model"]

        from compress.evaluate import task_output

        @torch.inference_mode()
        def run(feeds):
            return task_output(model(**{k: torch.from_numpy(v) for k, v in feeds.items()}))

        run.input_names = list(feeds_names(model))
        return run

    return load


def feeds_names(model) -> list[str]:
    names = ["input_ids", "attention_mask"]
    if getattr(model.config, "type_vocab_size", 0):
        names.append("token_type_ids")
    return names


def _measure(spec: dict) -> dict:
    t0 = time.perf_counter()
    import torch  # noqa: F401  (import time is not load time)

    import_s = time.perf_counter() - t0
    result = measure(torch_loader(lambda: _load_model(spec)), Grid(**spec["grid"]), Timing(**spec["timing"]),
                     spec["vocab_size"], spec["label"], input_names=spec.get("input_names"), seed=spec.get("seed", 0))
    return result | {"interpreter": f"pytorch {torch.__version__} eager", "import_s": round(import_s, 3)}


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(worker_main(sys.argv[1:], _measure))
