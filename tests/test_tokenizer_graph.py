"""The tokenizer inside the ONNX graph (onnxruntime-extensions, built from the student's tokenizer) gives the Python
tokenizer's ids, token types, mask and character offsets, truncation included: on the dev split, on the texts the
plain operator gets wrong, and (slow) on generated text."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from compress.data.readers import default_data_dir
from compress.teacher import default_teacher_dir

pytest.importorskip("onnxruntime_extensions")

HARD = ["naïve café", "ΟΔΟΣ", "Łódź Dvořák", "good [SEP] bad", "x[MASK]y", "good😀", "a，b", "ab\ufeffcd", "a\u2028b",
        "a\x00b c", "東京の映画はすばらしい", "한국어", "İstanbul", "", "   ", "It's OK!"]


@pytest.fixture(scope="module")
def graph_and_reference():
    from compress.platforms.tokenizer_graph import _hf_tokenizer, tokenizer_graph, tokenizer_session

    d = default_teacher_dir()
    graph, mode = tokenizer_graph(d, 128)
    assert mode == "exact"
    return tokenizer_session(d, 128), _hf_tokenizer(d)


def _check(session, hf, text: str, max_length: int = 128) -> None:
    got = session.run(None, {"text": np.array([text], dtype=object)})
    names = [o.name for o in session.get_outputs()]
    out = dict(zip(names, got))
    want = hf(text, truncation=True, max_length=max_length, return_offsets_mapping=True)
    assert out["input_ids"].tolist() == want["input_ids"], text
    assert out["token_type_ids"].tolist() == want["token_type_ids"], text
    assert out["attention_mask"].tolist() == want["attention_mask"], text
    assert [tuple(x) for x in out["offset_mapping"].tolist()] == [tuple(x) for x in want["offset_mapping"]], text


def test_in_graph_ids_and_offsets_equal_the_python_tokenizer_on_dev_and_hard_text(graph_and_reference):
    session, hf = graph_and_reference
    dev = [json.loads(line)["text"] for line in (default_data_dir() / "dev.jsonl").read_text().splitlines()]
    long = " ".join(["a remarkably tedious, overlong film"] * 60)  # cut at 128: [SEP] stays last
    for text in dev + HARD + [long]:
        _check(session, hf, text)


def test_the_plain_operator_alone_gets_the_hard_texts_wrong():
    """Why the front end exists: the extensions' operator with its best options differs from the Python tokenizer."""
    import onnxruntime as ort
    from onnxruntime_extensions import get_library_path

    from compress.platforms.tokenizer_graph import _build, _hf_tokenizer

    hf = _hf_tokenizer(default_teacher_dir())
    options = ort.SessionOptions()
    options.register_custom_ops_library(get_library_path())
    plain = ort.InferenceSession(_build(hf, 128, exact=False).SerializeToString(), options)
    wrong = [t for t in HARD if plain.run(["input_ids"], {"text": np.array([t], dtype=object)})[0].tolist()
             != hf(t, truncation=True, max_length=128)["input_ids"]]
    assert {"ΟΔΟΣ", "good [SEP] bad", "a\x00b c", "good😀"} <= set(wrong)


@pytest.mark.slow
def test_in_graph_ids_equal_the_python_tokenizer_on_generated_text(graph_and_reference):
    from tests.test_tokenizer_parity import texts

    session, hf = graph_and_reference
    words = [w for w in hf.get_vocab() if w.isalpha()][:3000]
    typed = ["[SEP]", "[CLS]", "[MASK]", "[PAD]", "[UNK]", "[sep]", "[SEP"]

    @settings(max_examples=600, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(texts(words, typed), st.sampled_from([8, 32, 128]))
    def check(text, max_length):
        _check(session if max_length == 128 else _session(max_length), hf, text, max_length)

    sessions = {}

    def _session(n):
        from compress.platforms.tokenizer_graph import tokenizer_session

        if n not in sessions:
            sessions[n] = tokenizer_session(default_teacher_dir(), n)
        return sessions[n]

    check()
