"""Reliability: kill -9 / Ctrl-C during training, then --resume, ends with the weights of an uninterrupted run;
finished stages are skipped, changed ones redone; same seed, same weights."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compress.checkpoint import Checkpoint
from compress.cli import main
from tests.helpers import make_tiny_bert

pytestmark = pytest.mark.slow  # whole runs of the pipeline (or of training, killed and resumed)

# a student narrower than the teacher: the hidden-state loss trains a projection, which must resume too
RECIPE = """
name: resume-test
checkpoint_every: 3
teacher: {epochs: 1, lr: 1.0e-3, batch_size: 16}
student: {num_layers: 1, hidden_size: 16, num_attention_heads: 2}
distill: {epochs: 3, lr: 1.0e-3, batch_size: 2, losses: {distilbert_soft: {}, hard_ce: {}, tinybert_hidden: {}}}
data: {max_length: 32}
export: {tflite: off, executorch: off, ort_format: false}
quantize: {candidates: [{backend: ort-dynamic}], min_label_agreement: 0.5, max_accuracy_drop: 100}
bench: {seq_lens: [16], threads: [1], batches: [1], warmup: 1, runs: 3, min_seconds: 0, rounds: 1, gemm_peak: false, isolate: false}
"""


def _weights(out: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(out / "student" / "model.safetensors"))


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def _cli(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "BERT_COMPRESS_PROGRESS": "0"}
    return subprocess.Popen([sys.executable, "-m", "compress", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, **kw)


def _finish(proc: subprocess.Popen, timeout: float = 600) -> tuple[int, str]:
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def _when_checkpointed(proc: subprocess.Popen, ckpt: Path, saves: int = 2, timeout: float = 300) -> None:
    """Wait until the training checkpoint has been written `saves` times: the run is mid-training."""
    seen, last, t0 = 0, None, time.monotonic()
    while seen < saves:
        assert proc.poll() is None, f"training ended before it could be interrupted: {proc.stderr.read()}"
        assert time.monotonic() - t0 < timeout
        if ckpt.is_file():
            stamp = ckpt.stat().st_mtime_ns
            if stamp != last:
                seen, last = seen + 1, stamp
        time.sleep(0.005)


def _recipe(root: Path, teacher: Path, data: Path, text: str = RECIPE, name: str = "recipe.yaml") -> Path:
    """A recipe file naming the teacher and data itself, so `--recipe` alone says everything."""
    path = root / name
    path.write_text(text.replace("teacher: {", f"teacher: {{checkpoint: '{teacher}', ").replace("data: {", f"data: {{path: '{data}', "))
    return path


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, tiny_data):
    """OUT with the fine-tuned teacher (stage finetune) and the uninterrupted reference distillation."""
    root = tmp_path_factory.mktemp("resume")
    teacher = make_tiny_bert(root / "teacher-src")
    recipe = _recipe(root, teacher, tiny_data)
    base = root / "base"
    code, err = _finish(_cli("finetune", "--recipe", str(recipe), "--out", str(base)))
    assert code == 0, err
    reference = root / "reference"
    shutil.copytree(base, reference)
    code, err = _finish(_cli("distill", "--out", str(reference)))
    assert code == 0, err
    assert not (reference / "checkpoints").exists(), "a finished stage removes its checkpoints"
    return base, reference, lambda text, name: _recipe(root, teacher, tiny_data, text, name)


def _distill_until_checkpointed(base: Path, out: Path, saves: int) -> tuple[Path, subprocess.Popen]:
    """A distillation subprocess on a copy of `base`, returned once it has saved its checkpoint `saves` times."""
    shutil.copytree(base, out)
    ckpt = out / "checkpoints" / "distill" / "0-task.pt"
    proc = _cli("distill", "--out", str(out))
    _when_checkpointed(proc, ckpt, saves=saves)
    return ckpt, proc


def test_kill_9_mid_training_then_resume_gives_the_uninterrupted_weights(prepared, tmp_path):
    base, reference, _ = prepared
    out = tmp_path / "out"
    ckpt, proc = _distill_until_checkpointed(base, out, saves=3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "student").exists() and not (out / "stages" / "distill.json").exists()  # nothing looks finished
    saved_at = Checkpoint(ckpt, key="").read()["pos"]["step"]
    assert 0 < saved_at
    code, err = _finish(_cli("distill", "--out", str(out), "--resume"))
    assert code == 0, err
    assert "resuming at epoch" in err and f"step {saved_at} " in err
    diff = _max_diff(_weights(out), _weights(reference))
    print(f"kill -9 at step {saved_at}: max |Δweight| after --resume = {diff:.3g}")
    assert diff <= 1e-6
    record = json.loads((out / "stages" / "distill.json").read_text())
    assert record["settings_hash"] and "student/model.safetensors" in record["outputs"]


def test_ctrl_c_saves_and_exits_cleanly_then_resumes(prepared, tmp_path):
    base, reference, _ = prepared
    out = tmp_path / "out"
    _, proc = _distill_until_checkpointed(base, out, saves=2)
    proc.send_signal(signal.SIGINT)
    code, err = _finish(proc)
    assert code == 130, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("bert-compress: error: distill:task: stopped by SIGINT; training state saved at step")
    assert f"bert-compress distill --out {out} --resume" in last and "Traceback" not in err
    code, err = _finish(_cli("distill", "--out", str(out), "--resume"))
    assert code == 0, err
    assert _max_diff(_weights(out), _weights(reference)) <= 1e-6


def test_same_seed_same_weights_and_another_seed_differs(prepared, tmp_path):
    base, reference, recipe_file = prepared
    again = tmp_path / "again"
    shutil.copytree(base, again)
    code, err = _finish(_cli("distill", "--out", str(again)))  # same thread count as the reference (docs/cli.md, Determinism)
    assert code == 0, err
    assert _max_diff(_weights(again), _weights(reference)) == 0.0
    other = tmp_path / "other"
    shutil.copytree(base, other)
    recipe = recipe_file(RECIPE + "seed: 7\n", "seed.yaml")
    assert main(["distill", "--out", str(other), "--recipe", str(recipe), "--force"]) == 0
    assert _max_diff(_weights(other), _weights(reference)) > 1e-3


def test_resume_skips_finished_stages_and_redoes_changed_ones(prepared, tmp_path, capsys):
    base, _, recipe_file = prepared
    out = tmp_path / "out"
    shutil.copytree(base, out)
    assert main(["run", "--out", str(out), "--resume"]) == 0  # finetune is done: skipped; the rest runs
    err = capsys.readouterr().err
    assert "finetune: finished earlier with the same settings and inputs: skipped" in err
    stamps = {p: p.stat().st_mtime_ns for p in (out / "student/model.safetensors", out / "export/model.onnx", out / "bundle" / "pi.zip")}
    assert main(["run", "--out", str(out), "--resume"]) == 0
    err = capsys.readouterr().err
    assert all(f"{s}: finished earlier" in err for s in ("finetune", "distill", "export", "quantize", "bench", "bundle")), err
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    # a changed bench setting redoes bench and what comes after it, nothing before
    changed = recipe_file(RECIPE.replace("runs: 3", "runs: 4"), "changed.yaml")
    assert main(["run", "--out", str(out), "--resume", "--recipe", str(changed)]) == 0
    err = capsys.readouterr().err
    assert all(f"{s}: finished earlier" in err for s in ("finetune", "distill", "export", "quantize"))
    assert "bench: finished earlier" not in err and "bundle: finished earlier" not in err
    assert (out / "student/model.safetensors").stat().st_mtime_ns == stamps[out / "student/model.safetensors"]
    # an output changed behind our back is redone, not trusted
    (out / "export" / "model.onnx").write_bytes(b"not a model")
    assert main(["run", "--out", str(out), "--resume", "--recipe", str(changed)]) == 0
    err = capsys.readouterr().err
    assert "distill: finished earlier" in err and "export: finished earlier" not in err
    assert (out / "export" / "model.onnx").stat().st_size > 1000


class _Payload:
    """Unpickling this creates the file `marker` (a stand-in for any code a foreign checkpoint could run)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


@pytest.mark.parametrize("case", ["force and resume", "nothing to resume", "corrupt checkpoint", "existing OUT", "malicious checkpoint"])
def test_resume_bad_input(case, prepared, tmp_path, capsys):
    base, _, recipe_file = prepared
    out = tmp_path / "out"
    shutil.copytree(base, out)
    args, message = {
        "force and resume": (["distill", "--out", str(out), "--force", "--resume"], "pass one of the two"),
        "nothing to resume": (["run", "--out", str(tmp_path / "empty"), "--resume"], "nothing to resume in"),
        "corrupt checkpoint": (["distill", "--out", str(out), "--resume"], "cannot be read"),
        "existing OUT": (["run", "--out", str(out)], "pass --resume to continue it"),
        "malicious checkpoint": (["distill", "--out", str(out), "--resume"], "could run code"),
    }[case]
    if case == "corrupt checkpoint":
        (out / "checkpoints" / "distill").mkdir(parents=True)
        (out / "checkpoints" / "distill" / "0-task.pt").write_bytes(b"half a checkpoint")
    if case == "malicious checkpoint":  # an OUT from someone else: --resume must not run what its checkpoint holds
        import torch

        (out / "checkpoints" / "distill").mkdir(parents=True)
        torch.save({"version": 2, "key": "k", "pos": _Payload(tmp_path / "pwned")}, out / "checkpoints" / "distill" / "0-task.pt")
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not (out / "student").exists()
    assert not (tmp_path / "pwned").exists(), "the checkpoint's pickled code ran"


def test_diverging_loss_stops_and_keeps_the_last_good_checkpoint(prepared, tmp_path, capsys):
    base, _, recipe_file = prepared
    out = tmp_path / "out"
    shutil.copytree(base, out)
    recipe = recipe_file(RECIPE.replace("lr: 1.0e-3, batch_size: 2", "lr: 1.0e+6, batch_size: 2").replace("checkpoint_every: 3", "checkpoint_every: 1"), "hot.yaml")
    assert main(["distill", "--out", str(out), "--recipe", str(recipe), "--force"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "the loss became nan" in err and "training stopped" in err and "lower the learning rate" in err, err
    assert not (out / "student").exists()
    ckpt = out / "checkpoints" / "distill" / "0-task.pt"
    assert f"is kept in {ckpt}" in err  # the last finite state, not the diverged one
    import torch

    state = Checkpoint(ckpt, key="").read()
    assert f"(step {state['pos']['step']})" in err
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
