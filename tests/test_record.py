"""The bench stage's typed results record (compress.bench.record) and the names that say what a field holds: records
and reports written with the old names (`accuracy`, `label_agreement`, a string `agreement`, `dev_accuracy`) read
the same as today's."""

import json
from pathlib import Path

import pytest

from compress.artifacts import Quantization, Verification
from compress.bench.record import BenchResults, Measured

ROOT = Path(__file__).resolve().parents[1]


def _cell(threads, p50, seq=128, batch=1):
    return {"threads": threads, "seq_len": seq, "batch": batch, "p50_ms": p50, "p90_ms": p50, "p99_ms": p50}


OLD = {  # a report.json of schema 1
    "created": "2026-01-01T00:00:00+00:00", "recipe": "default", "quick": False, "task": "token-classification",
    "bench": {"grid": {"seq_lens": [32, 128], "threads": [1, 2]}},
    "teacher": {"accuracy": 0.54, "size_bytes": 90_000_000, "layers": 6, "latency": [_cell(1, 10.0)]},
    "student": {"accuracy": 0.40, "size_bytes": 9_000_000, "latency": [_cell(1, 2.0)]},
    "artifacts": [{"name": "student-int8-ort-dynamic", "runtime": "onnxruntime", "format": "onnx", "size_bytes": 2_000_000,
                   "accuracy": 0.41, "label_agreement": 0.97, "agreement": "token agreement", "max_abs_diff": 0.1,
                   "quantization": {"backend": "ort-dynamic", "settings": {"per_channel": True}},
                   "latency": [_cell(1, 1.0), _cell(2, 0.8)]}],
    "references": [{"name": "teacher-onnx-fp32", "runtime": "onnxruntime", "accuracy": 0.54, "latency": [_cell(1, 8.0)]}],
}


def test_an_old_report_reads_with_the_names_of_today():
    r = BenchResults.from_dict(OLD)
    art = r.artifact("student-int8-ort-dynamic")
    assert (r.teacher.quality, r.student.quality, art.quality) == (0.54, 0.40, 0.41)
    assert (art.agreement, art.agreement_name) == (0.97, "token agreement")
    assert art.precision != "fp32" and art.compute == "int8"  # derived from the quantization settings, not guessed
    assert (r.teacher.name, r.student.name, r.teacher.runtime) == ("teacher", "student (pytorch)", "pytorch")
    assert r.point == (128, 1) and art.p50(128, 1) == 1.0 and art.p50(128, 2) == 0.8 and art.p50(32, 1) is None
    assert r.onnx_teacher.p50(128, 1) == 8.0 and art.retained(r.teacher) == pytest.approx(0.41 / 0.54)
    assert r.teacher.get("layers") == 6 and r.meta["task"] == "token-classification"


def test_the_record_round_trips_and_writes_only_the_new_names():
    once = BenchResults.from_dict(OLD).to_dict()
    text = json.dumps(once)
    assert '"accuracy"' not in text and "label_agreement" not in text
    assert once["artifacts"][0]["agreement"] == 0.97 and once["artifacts"][0]["agreement_name"] == "token agreement"
    assert "name" not in once["teacher"]  # the teacher's and the student's rows are named by their key
    assert BenchResults.from_dict(once).to_dict() == once


def test_a_measured_model_keeps_what_has_no_attribute_in_extras():
    m = Measured.from_dict({"name": "x", "runtime": "litert", "quality": 0.5, "embedding": {"mrr@10": 0.7}, "load_s": 0.1})
    assert m.get("embedding") == {"mrr@10": 0.7} and m.to_dict()["load_s"] == 0.1 and m.retained(m) == 1.0
    assert Measured.from_dict({"name": "y", "quality": None}).retained(m) is None


def test_verification_and_quantization_records_of_earlier_versions_read_the_same():
    old = {"max_abs_diff": 0.01, "label_agreement": 0.98, "rows": 8, "passed": True, "atol": None,
           "min_label_agreement": 0.99, "agreement": "mean cosine"}
    v = Verification.from_dict(old)
    assert (v.agreement, v.min_agreement, v.agreement_name) == (0.98, 0.99, "mean cosine")
    assert Verification.from_dict(v.as_dict()) == v and "label_agreement" not in v.as_dict()
    q = Quantization.from_dict({"backend": "ort-dynamic", "settings": {}, "fallback": 0, "reason": "kept", "seconds": 1.0,
                                "dev_accuracy": 0.8, "fp32_dev_accuracy": 0.81, "qad_history": [1]})
    assert (q.dev_quality, q.fp32_dev_quality, q.extra) == (0.8, 0.81, {"qad_history": [1]})
    assert "dev_accuracy" not in q.to_dict() and Quantization.from_dict(q.to_dict()) == q


@pytest.mark.parametrize("path", sorted(str(p.relative_to(ROOT)) for p in (ROOT / "benchmarks" / "results").glob("*_report.json")))
def test_every_committed_report_reads_as_the_typed_record(path):
    r = BenchResults.from_dict(json.loads((ROOT / path).read_text()))
    assert r.teacher.quality is not None and r.artifacts and all(a.name and a.runtime for a in r.artifacts)
    assert r.teacher.p50(*r.point) is not None


def test_a_training_checkpoint_of_an_earlier_version_reads_with_the_new_names():
    from compress.training import renamed

    old = {"best": {"dev_accuracy": 0.5, "epoch": 1, "state": None}, "history": [{"dev_accuracy": 0.4, "step": 10}],
           "best_dev_accuracy": 0.5}
    assert renamed(old) == {"best": {"dev_quality": 0.5, "epoch": 1, "state": None},
                            "history": [{"dev_quality": 0.4, "step": 10}], "best_dev_quality": 0.5}
