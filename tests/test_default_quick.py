"""One real end-to-end run: the default teacher (all-MiniLM-L6-v2) on the vendored data, --quick profile."""

import json

import pytest

from compress.cli import main
from test_pipeline import check_report


@pytest.mark.slow
def test_quick_run_on_the_default_teacher(tmp_path, capsys):
    out = tmp_path / "quick"
    assert main(["run", "--quick", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["quick"] is True and report["recipe"] == "default"
    check_report(report, [32, 128], [1], batches=(1,))  # the --quick grid
    t, s = report["teacher"], report["student"]
    assert (t["layers"], t["hidden_size"], s["layers"]) == (6, 384, 3)
    assert t["finetuned"] and s["teacher_layers"] == [1, 3, 5]
    assert report["summary"]["best_artifact"] in {a["name"] for a in report["artifacts"]}
    assert "faster than the teacher" in capsys.readouterr().err
    # the Pi bundle: ONNX always, TFLite when the tflite extra is installed; each checked through the runner
    import importlib.util

    meta = json.loads((out / "bundle/pi/metadata.json").read_text())
    files = {m["file"] for m in meta["models"]}
    assert "model.onnx" in files and (out / "bundle" / "pi.zip").is_file()
    if importlib.util.find_spec("litert_torch"):
        assert "model.tflite" in files and any(a["format"] == "tflite" for a in report["artifacts"])
    assert report["bundle"]["models"] and all(m["runner_check"]["rows"] == 256 for m in meta["models"])
    md = (out / "report.md").read_text()
    assert "Runner bundle" in md and "What to ship, per platform" in md
    # the string-in artifacts of the real student, checked from raw dev text by the platforms' own libraries
    platforms = {p["platform"]: p for p in report["bundle"]["platforms"]}
    for name in ("android-ort", "web") + (("android-litert",) if importlib.util.find_spec("litert_torch") else ()):
        p = platforms[name]
        if name == "web" and p["check"] is None:
            continue  # transformers.js not installed here: the report says why
        assert p["skipped"] is None and p["check"]["passed"] and p["check"]["rows"] == 256, (name, p)
    # the device side on the real bundle: a quick matrix through the runner, merged with the build machine's
    from targets.__main__ import main as runner_main

    assert runner_main(["check", str(out / "bundle" / "pi.zip")]) == 0  # every bundled model re-checked on this CPU
    assert runner_main(["bench", str(out / "bundle" / "pi.zip"), "--quick", "--out", str(tmp_path / "device.json")]) == 0
    assert main(["report", str(out / "bench.json"), str(tmp_path / "device.json"), "--out", str(tmp_path / "merged")]) == 0
    merged = (tmp_path / "merged" / "report.md").read_text()
    assert "## Headline" in merged and "speed-up" in merged and (tmp_path / "merged/plots/pareto.png").is_file()
