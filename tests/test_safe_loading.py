"""Files from someone else's OUT cannot run code: training checkpoints and torchao artifacts are loaded with
weights_only=True; a file holding anything else is refused with one clear UserError and nothing in it runs."""

from __future__ import annotations

import os
import pickle
import random

import numpy as np
import pytest
import torch

from compress.checkpoint import FORMAT_VERSION, Checkpoint, rng_state, set_rng_state
from compress.errors import UserError


class Payload:
    """Unpickling this runs a shell command that creates `marker`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


def _malicious(path, marker, how: str):
    state = {"version": FORMAT_VERSION, "key": "k", "model": {"w": torch.zeros(2)}, "pos": Payload(marker)}
    if how == "torch.save":
        torch.save(state, path)
    else:  # a bare pickle (torch.load's legacy path)
        path.write_bytes(pickle.dumps(state, protocol=2))
    return path


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_a_checkpoint_with_a_malicious_pickle_is_refused_and_does_not_run(tmp_path, how):
    marker = tmp_path / "pwned"
    path = _malicious(tmp_path / "0-task.pt", marker, how)
    with pytest.raises(UserError) as err:
        Checkpoint(path, key="k").load()  # what --resume does
    assert not marker.exists(), "the checkpoint's pickled code ran"
    message = str(err.value)
    assert f"checkpoint {path} cannot be read" in message and "could run code" in message and "--force" in message
    assert len(message.splitlines()) == 1
    if how == "torch.save":
        assert "posix.system" in message  # what it would have called


def test_a_v1_checkpoint_is_refused_as_an_older_format(tmp_path):
    """v1 stored numpy's RNG state as an ndarray: not read (that needs a full unpickle), and said so."""
    path = tmp_path / "0-task.pt"
    torch.save({"version": 1, "key": "k", "rng": {"torch": torch.get_rng_state(), "python": random.getstate(),
                                                  "numpy": np.random.get_state()}}, path)
    with pytest.raises(UserError, match=r"older bert-compress \(checkpoint format v1\).*pass --force"):
        Checkpoint(path, key="k").load()


def test_checkpoint_round_trip_restores_every_rng(tmp_path):
    """What fit() saves reads back with weights_only=True, and the RNGs continue exactly where they were."""
    torch.manual_seed(3), random.seed(3), np.random.seed(3)
    np.random.standard_normal()  # numpy keeps half a Box-Muller pair: its cached gaussian must survive too
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(3, 4)).sum().backward()
    opt.step()
    ckpt = Checkpoint(tmp_path / "c.pt", key="k")
    ckpt.save({"rng": rng_state(), "model": model.state_dict(), "optimizer": opt.state_dict(),
               "pos": {"epoch": 1, "history": [{"dev_accuracy": 0.5}]}})
    want = (torch.rand(3), random.random(), np.random.standard_normal(), np.random.randint(0, 1 << 30))
    state = ckpt.load()
    assert state["version"] == FORMAT_VERSION and state["pos"]["history"] == [{"dev_accuracy": 0.5}]
    set_rng_state(state["rng"])
    got = (torch.rand(3), random.random(), np.random.standard_normal(), np.random.randint(0, 1 << 30))
    assert torch.equal(want[0], got[0]) and want[1:] == got[1:]
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state["model"].items())


# ---- torchao artifacts ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                     num_labels=2, max_position_embeddings=64)
    path = tmp_path_factory.mktemp("student") / "student"
    BertForSequenceClassification(cfg).eval().save_pretrained(path)
    return path


def _inputs():
    ids = torch.randint(5, 100, (2, 9), generator=torch.Generator().manual_seed(1))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}


@pytest.mark.parametrize("candidate", [{"scheme": "int8-dynamic", "embeddings": "int8"}, {"scheme": "int8-weight"},
                                       {"scheme": "int4-weight", "group_size": 16}])
def test_torchao_artifact_reloads_with_only_its_own_classes_allowed(student_dir, tmp_path, candidate):
    """safe_globals() is all a saved artifact needs: it loads with torch's global allowlist emptied of what
    importing torchao adds to it, and gives the quantized model's outputs."""
    from compress.student.albert import load_student
    from compress.quantize import Context, parse_candidate
    from compress.quantize.torchao_ptq import convert, load

    backend, settings = parse_candidate({"backend": "torchao", **candidate})
    path = backend.quantize(settings, Context({}, None, student_dir, tmp_path), tmp_path / "q.pt")
    with torch.no_grad():
        want = convert(load_student(student_dir), settings)(**_inputs()).logits
    added = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    try:
        again = load(path, settings, student_dir)
    finally:
        torch.serialization.add_safe_globals(added)
    with torch.no_grad():
        got = again(**_inputs()).logits
    assert (want - got).abs().max() <= 1e-6


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_a_torchao_artifact_with_a_malicious_pickle_is_refused_and_does_not_run(student_dir, tmp_path, how):
    from compress.quantize import parse_candidate
    from compress.quantize.torchao_ptq import load

    _, settings = parse_candidate({"backend": "torchao"})
    marker = tmp_path / "pwned"
    path = _malicious(tmp_path / "student-int8-torchao.pt", marker, how)
    with pytest.raises(UserError) as err:
        load(path, settings, student_dir)
    assert not marker.exists(), "the artifact's pickled code ran"
    message = str(err.value)
    assert f"torchao artifact {path} cannot be read" in message and "could run code" in message
    assert len(message.splitlines()) == 1


def test_a_torchao_artifact_of_other_settings_is_refused(student_dir, tmp_path):
    """A file that loads safely but holds another scheme's tensors: refused, not assigned into the model."""
    from compress.quantize import Context, parse_candidate
    from compress.quantize.torchao_ptq import load

    backend, int4 = parse_candidate({"backend": "torchao", "scheme": "int4-weight", "group_size": 16})
    path = backend.quantize(int4, Context({}, None, student_dir, tmp_path), tmp_path / "q.pt")
    _, int8 = parse_candidate({"backend": "torchao", "scheme": "int8-dynamic"})
    with pytest.raises(UserError, match="does not fit the student"):
        load(path, int8, student_dir)
    (tmp_path / "cut.pt").write_bytes(path.read_bytes()[:1000])
    with pytest.raises(UserError, match="cannot be read"):
        load(tmp_path / "cut.pt", int4, student_dir)
