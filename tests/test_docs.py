"""The docs can't drift from their results: every generated table in README.md and benchmarks/README.md equals
what `python benchmarks/readme_tables.py` makes from the committed results file it names; every results file
stores its command and the machine it ran on; no doc shows a temp-dir path."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def _tables():
    spec = importlib.util.spec_from_file_location("readme_tables", ROOT / "benchmarks" / "readme_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tables = _tables()


def _results_files() -> list[Path]:
    return sorted(RESULTS.rglob("*.json"))


def _docs() -> list[Path]:
    return [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted(RESULTS.rglob("*.md"))]


# ---- the generated tables ---------------------------------------------------------------------------------
def test_readme_tables_match_their_results_files():
    """The same check as `python benchmarks/readme_tables.py --check` (exit 1 and a diff when a table is stale)."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "readme_tables.py"), "--check"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, f"stale tables: run python benchmarks/readme_tables.py\n{done.stdout}{done.stderr}"


def test_the_readme_has_a_headline_table_from_a_committed_file():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = [m for m in tables.MARKER.finditer(text) if m.group(1) == "headline"]
    assert len(blocks) == 1, "README.md needs exactly one <!-- headline: FILE --> ... <!-- /headline --> block"
    path = blocks[0].group(2).strip()
    assert path.startswith("benchmarks/results/") and (ROOT / path).is_file(), path
    assert "CPU: " in blocks[0].group(3) and "Command: `" in blocks[0].group(3)


def test_every_marker_names_a_known_renderer_and_existing_files():
    for doc in (ROOT / "README.md", ROOT / "benchmarks" / "README.md"):
        text = doc.read_text(encoding="utf-8")
        found = list(tables.MARKER.finditer(text))
        assert len(found) == text.count("<!-- /"), f"{doc.name}: a block without its closing <!-- /KIND -->"
        for m in found:
            assert m.group(1) in tables.RENDERERS, f"{doc.name}: unknown table kind {m.group(1)}"
            for p in m.group(2).split(","):
                assert (ROOT / p.strip()).exists(), f"{doc.name}: {p.strip()} does not exist"


def test_check_mode_fails_on_a_stale_table(tmp_path, monkeypatch):
    doc = tmp_path / "DOC.md"
    doc.write_text("intro\n<!-- headline: benchmarks/results/devices_matrix/inputs/build_machine.json -->\n"
                   "| an old table |\n<!-- /headline -->\nend\n", encoding="utf-8")
    monkeypatch.setattr(tables, "ROOT", ROOT)
    assert tables.main(["--check", str(doc)]) == 1
    assert "an old table" in doc.read_text(encoding="utf-8")  # --check changes nothing
    assert tables.main([str(doc)]) == 0
    fixed = doc.read_text(encoding="utf-8")
    assert "an old table" not in fixed and fixed.startswith("intro\n") and fixed.endswith("<!-- /headline -->\nend\n")
    assert tables.main(["--check", str(doc)]) == 0


def test_an_unknown_kind_or_missing_file_is_one_error(tmp_path, capsys):
    for marker in ("<!-- nosuch: benchmarks/results/quantize_ab.json -->", "<!-- headline: benchmarks/results/missing.json -->"):
        doc = tmp_path / "DOC.md"
        doc.write_text(f"{marker}\n<!-- /{marker[5:].split(':')[0]} -->\n", encoding="utf-8")
        assert tables.main(["--check", str(doc)]) == 2
        assert "readme_tables: error:" in capsys.readouterr().err


# ---- the headline renderer on both schemas and on incomplete files -----------------------------------------
def _cell(threads, p50, seq=128):
    return {"threads": threads, "seq_len": seq, "batch": 1, "p50_ms": p50}


def _write(tmp_path, monkeypatch, doc) -> str:
    monkeypatch.setattr(tables, "ROOT", tmp_path)
    (tmp_path / "r.json").write_text(json.dumps(doc), encoding="utf-8")
    return "r.json"


def test_headline_from_a_report_json_with_missing_fields(tmp_path, monkeypatch):
    report = {
        "schema_version": 1, "recipe": "default",
        "environment": {"cpu": "AMD EPYC 7B13", "machine": "x86_64", "cores": 2, "simd": ["avx", "avx2", "fma"],
                        "python": "3.11.7", "versions": {"onnxruntime": "1.32.0", "ai-edge-litert": None}},
        "bench": {"command": "bert-compress bench --out /tmp/full4", "grid": {"threads": [1, 2], "seq_lens": [32, 128]}},
        "teacher": {"layers": 6, "hidden_size": 384, "size_bytes": 90_000_000, "accuracy": 0.8,
                    "latency": [_cell(1, 50.0), _cell(2, 30.0)]},
        "student": {"layers": 3, "hidden_size": 384, "size_bytes": 70_000_000, "accuracy": 0.82, "latency": [_cell(1, 25.0)]},
        "artifacts": [
            {"name": "student-int8-litert-dynamic", "runtime": "litert", "size_bytes": 20_000_000, "accuracy": 0.808,
             "quantization": {"backend": "litert-dynamic", "settings": {"weight_bits": "int8", "weight_only": False}},
             "latency": [_cell(1, 5.0), _cell(2, 4.0)]},
            {"name": "student-onnx-fp32"},  # no size, accuracy or latency
        ],
        "bundle": {"models": [{"file": "model.tflite", "artifact": "student-int8-litert-dynamic"}]},
    }
    lines = tables.render_headline([_write(tmp_path, monkeypatch, report)])
    text = "\n".join(lines)
    assert "| `student-int8-litert-dynamic` (bundled) | LiteRT | int8 (litert-dynamic) | 20.0 | 80.80% (101.0%) | 5.00 | 4.00 | 10.00× / 7.50× |" in text
    assert "| `student-onnx-fp32` | — | fp32 | — | — | — | — | — / — |" in text
    assert "| student, 3 layers / 384 | PyTorch eager | fp32 | 70.0 | 82.00% (102.5%) | 25.00 | — | 2.00× / — |" in text
    assert "CPU: AMD EPYC 7B13 (x86_64, 2 cores; AVX, AVX2, FMA; int8 kernels: AVX2)" in text
    assert "Command: `bert-compress bench --out OUT`" in text and "/tmp/" not in text
    assert "ai-edge-litert" not in text  # versions that are not installed are left out


def test_headline_from_a_bench_results_file_without_flags_or_command(tmp_path, monkeypatch):
    doc = {"schema": "bert-compress-bench", "schema_version": 1, "device": {"cpu": "Cortex-A76", "machine": "aarch64"},
           "models": [{"name": "teacher", "role": "teacher", "runtime": "pytorch", "precision": "fp32",
                       "arch": {"layers": 6, "hidden_size": 384}, "latency": [_cell(1, 40.0, seq=64)]},
                      {"name": "model.onnx", "role": "artifact", "runtime": "onnxruntime", "precision": "quantized (ort-dynamic)",
                       "compute": "int8", "shipped": True, "size_bytes": 1e6, "latency": [_cell(1, 4.0, seq=64)]}]}
    text = "\n".join(tables.render_headline([_write(tmp_path, monkeypatch, doc)]))
    assert "p50 ms, 1 thread | speed-up vs teacher |" in text  # one thread count measured: one column each
    assert "| `model.onnx` (bundled) | ONNX Runtime | int8 (ort-dynamic) | 1.0 | — | 4.00 | 10.00× |" in text
    assert "sequence length 64" in text
    assert "instruction sets not recorded in this file" in text and "Command: not recorded in this file." in text


# ---- every results file: command and environment ------------------------------------------------------------
def test_every_results_file_stores_its_command():
    missing = [p.relative_to(ROOT).as_posix() for p in _results_files()
               if tables.command_status(json.loads(p.read_text(encoding="utf-8"))) == "none"]
    assert not missing, f"results files without a command (top-level `command` or report `bench.command`): {missing}"


def test_a_command_added_afterwards_says_where_it_came_from():
    for p in _results_files():
        doc = json.loads(p.read_text(encoding="utf-8"))
        if "command_source" in doc:
            assert isinstance(doc.get("command"), str) and doc["command"] and doc["command_source"], p


def test_every_results_file_records_its_machine_or_is_allowed_not_to():
    """A results file names the CPU it ran on (report `environment`, device results `device`, or, for a merged
    report, every merged input's `device`), unless it is in the commented allow-list
    readme_tables.ENVIRONMENT_NOT_RECORDED with the reason."""
    allowed = tables.ENVIRONMENT_NOT_RECORDED
    for path, reason in allowed.items():
        assert (ROOT / path).is_file(), f"allow-list names a file that does not exist: {path}"
        assert reason.strip(), path
    for p in _results_files():
        rel = p.relative_to(ROOT).as_posix()
        status = tables.environment_status(rel, json.loads(p.read_text(encoding="utf-8")))
        if rel in allowed:
            assert status.startswith("none"), f"{rel} records an environment now: take it off the allow-list"
        else:
            assert not status.startswith("none"), f"{rel} records no CPU / environment"


# ---- no temp-dir paths in the docs --------------------------------------------------------------------------
@pytest.mark.parametrize("doc", _docs(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_temp_dir_paths_in_docs(doc):
    text = doc.read_text(encoding="utf-8")
    bad = [line for line in text.splitlines() if "/tmp/" in line or "/root/" in line]
    assert not bad, f"{doc.relative_to(ROOT)} shows machine paths (name them OUT / WORK / RESULTS): {bad[:3]}"
