"""The app bundle stage: what a phone app or a Pi needs, in one directory and one zip, checked end to end.

OUT/bundle/ holds the chosen model files (the fastest verified ONNX artifact, its ONNX Runtime Mobile `.ort`
twin, the fastest verified TFLite artifact), the tokenizer files, labels.txt, metadata.json, a README for app
developers, and the torch-free runner (`runner/targets`). Every model is then run the way a device runs it
(raw text -> pure-Python tokenizer -> targets runtime) over the dev split and compared with the PyTorch
student; a model that does not agree is not bundled, and metadata.json records what was measured.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from compress import __version__
from compress.bench.report import p50_at
from compress.bench.results import compute_precision
from compress.errors import UserError
from compress.fsutil import atomic_dir, file_digest, read_json, write_json, write_text
from compress.progress import info
from compress.vocab import write_vocab_txt
from targets.runtime import SESSION_CONFIG

RUNNER_FILES = ("__init__.py", "__main__.py", "bundle.py", "runtime.py", "tokenizer.py", "bench.py", "env.py",
                "gemm_fp32.onnx", "gemm_u8s8.onnx", "pyproject.toml", "README.md")
FP32_MIN_AGREEMENT = 0.999


def choose_models(report: dict, wanted: list[str] | None) -> list[dict]:
    """The report's artifacts to bundle: those named, else the fastest ONNX and the fastest TFLite one."""
    artifacts = {a["name"]: a for a in report["artifacts"] if a["runtime"] in ("onnxruntime", "litert")}
    if wanted:
        unknown = [n for n in wanted if n not in artifacts]
        if unknown:
            raise UserError(f"bundle.artifacts names {', '.join(unknown)}, not a shipped ONNX / TFLite artifact; "
                            f"shipped: {', '.join(artifacts) or 'none'}")
        return [artifacts[n] for n in wanted]
    seq, threads = report["summary"]["seq_len"], report["summary"]["threads"]
    chosen = []
    for runtime in ("onnxruntime", "litert"):
        options = [a for a in artifacts.values() if a["runtime"] == runtime]
        if options:
            chosen.append(min(options, key=lambda a: p50_at(a["latency"], seq, threads) or float("inf")))
    if not chosen:
        raise UserError("no verified ONNX or TFLite artifact to bundle: re-run export (and quantize)")
    return chosen


def to_ort_format(src: Path, dst: Path, session_config: dict[str, str] = SESSION_CONFIG) -> Path:
    """ONNX -> ONNX Runtime's flatbuffer format for ORT Mobile. Extended (not 'all') optimizations: those are
    the same on every CPU, so the file does not depend on the x86 it was made on. The runner's session config
    (no SkipLayerNorm fusion) is applied here, so the saved graph keeps it without any app-side setting."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    for key, value in session_config.items():
        options.add_session_config_entry(key, value)
    options.optimized_model_filepath = str(dst)
    options.add_session_config_entry("session.save_model_format", "ORT")
    ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])
    return dst


def _precision(artifact: dict) -> str:
    q = artifact.get("quantization")
    if not q:
        return "fp32"
    s = q["settings"]
    if s.get("weight_bits") == "int4" or s.get("scheme") == "int4-weight":
        return "int4 weights"
    if q["backend"] == "litert-static":
        return "int8 weights, int8 activations" if s.get("activation_bits") == 8 else "int8 weights, int16 activations"
    return "int8 weights, fp32 activations (quantized per call)" if "dynamic" in q["backend"] else "int8"


def _io(artifact: dict, input_names: list[str], num_labels: int) -> tuple[list, list]:
    if artifact["runtime"] == "litert":
        ins = [{"name": n, "dtype": "int32", "shape": [1, "bucket"]} for n in sorted(input_names)]
        outs = [{"name": "output_0", "dtype": "float32", "shape": [1, num_labels]}]
    else:
        ins = [{"name": n, "dtype": "int64", "shape": ["batch", "sequence"]} for n in input_names]
        outs = [{"name": "logits", "dtype": "float32", "shape": ["batch", num_labels]}]
    return ins, outs


def write_bundle(run, force: bool = False) -> dict:
    import targets
    from compress.evaluate import predict_logits
    from compress.export.verify import compare
    from compress.pipeline import load_student
    from targets.bundle import BUNDLE_FORMAT, SCHEMA_VERSION, Classifier
    from targets.runtime import RUNTIME_OF_SUFFIX
    from targets.tokenizer import WordPieceTokenizer

    bundle_dir, zip_path = run.out / "bundle", run.out / "bundle.zip"
    for path in (bundle_dir, zip_path):
        if path.exists() and not force:
            raise UserError(f"{path} exists already: pass --force to redo the bundle stage, or choose another --out")
    report_path = run.out / "report.json"
    if not report_path.is_file():
        raise UserError(f"bundle needs the bench stage's report: run `bert-compress bench --out {run.out}` first")
    report = read_json(report_path)
    export = run.stage_record("export", needed_by="bundle")
    cfg = run.recipe.bundle
    chosen = choose_models(report, cfg.artifacts)
    tokenizer_dir = run.student_dir
    dev_rows = run.data.split("dev")
    texts = [e.text for e in dev_rows]
    pairs = [e.text_pair for e in dev_rows] if dev_rows and dev_rows[0].text_pair is not None else None
    student = load_student(run, "bundle")
    reference = predict_logits(student, run.encode("dev", run.student_tokenizer()), description="student logits on dev")
    num_labels = len(run.data.labels)
    del student

    with atomic_dir(bundle_dir) as tmp:
        for name in ("vocab.txt", "tokenizer.json"):
            if (tokenizer_dir / name).is_file():
                shutil.copy2(tokenizer_dir / name, tmp / name)
        if not (tmp / "vocab.txt").is_file():  # a student saved before vocab.txt was written beside tokenizer.json
            write_vocab_txt(json.loads((tmp / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"], tmp)
        write_text(tmp / "labels.txt", "\n".join(run.data.labels) + "\n")
        runner = tmp / "runner" / "targets"
        runner.mkdir(parents=True)
        src = Path(targets.__file__).parent
        for name in RUNNER_FILES:
            if (src / name).is_file():
                shutil.copy2(src / name, runner / name)

        models, rejected = [], []
        for art in chosen:
            suffix = Path(art["path"]).suffix
            files = [(f"model{suffix}", run.out / art["path"])]
            if suffix == ".onnx" and run.recipe.export.ort_format:
                files.append(("model.ort", None))
            for file_name, source in files:
                dst = tmp / file_name
                try:
                    if source is not None:
                        shutil.copy2(source, dst)
                    else:
                        to_ort_format(tmp / f"model{suffix}", dst)
                except Exception as exc:  # an .ort conversion the installed ORT cannot do: the .onnx still ships
                    rejected.append({"file": file_name, "artifact": art["name"], "reason": f"conversion failed: {exc}"})
                    continue
                models.append({"file": file_name, "artifact": art["name"], "runtime": RUNTIME_OF_SUFFIX[dst.suffix],
                               "format": dst.suffix.lstrip("."), "source": art})
        tokenizer = WordPieceTokenizer.from_tokenizer_json(tmp / "tokenizer.json")  # what a device will read
        meta = {
            "format": BUNDLE_FORMAT,
            "schema_version": SCHEMA_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "labels": run.data.labels,
            "labels_file": "labels.txt",
            "max_length": run.recipe.data.max_length,
            "tokenizer": {"type": "bert-wordpiece", "vocab": "vocab.txt", "tokenizer_json": "tokenizer.json",
                          "lowercase": tokenizer.lowercase, "strip_accents": tokenizer.strip_accents,
                          "vocab_size": len(tokenizer.vocab),
                          "special_tokens": {"[CLS]": tokenizer.cls_id, "[SEP]": tokenizer.sep_id,
                                             "[PAD]": tokenizer.pad_id, "[UNK]": tokenizer.unk_id},
                          "text_pairs": pairs is not None},
            "teacher": {"checkpoint": run.source.spec, "test_accuracy": report["teacher"]["accuracy"],
                        "layers": report["teacher"]["layers"], "hidden_size": report["teacher"]["hidden_size"]},
            "student": {"layers": report["student"]["layers"], "hidden_size": report["student"]["hidden_size"],
                        "params": report["student"]["params"], "test_accuracy": report["student"]["accuracy"],
                        "architecture": report["student"].get("arch")},
            "recipe": run.recipe.name,
            "versions": _versions(),
            "models": [],
        }
        operators = {m["artifact"]: _onnx_operators(tmp / m["file"]) for m in models if m["format"] == "onnx"}
        entries = {m["file"]: _model_meta(m, export, num_labels, tmp) | (
            {"operators": operators[m["artifact"]]} if m["artifact"] in operators else {}) for m in models}
        write_json(tmp / "metadata.json", meta | {"models": list(entries.values())})  # what the runner check loads
        kept = []
        for m in models:
            art = m["source"]
            clf = Classifier(tmp, runtime=m["file"], threads=1)
            logits = clf.logits(texts, pairs)
            fp32 = not art.get("quantization")  # fp32: the export's bars; int8: the quantization guard's
            check = compare(reference, logits, run.recipe.export.atol if fp32 else float("inf"),
                            FP32_MIN_AGREEMENT if fp32 else run.recipe.quantize.min_label_agreement)
            accuracy = float((logits.argmax(-1) == np.array([e.label for e in dev_rows])).mean())
            info(f"bundle {m['file']} through the torch-free runner (pure-Python tokenizer): max |Δlogit| vs PyTorch "
                 f"{check.max_abs_diff:.2e}, label agreement {check.label_agreement:.4f}, dev accuracy {100 * accuracy:.2f}%")
            if not check.passed:
                (tmp / m["file"]).unlink()
                rejected.append({"file": m["file"], "artifact": art["name"],
                                 "reason": f"runner output does not match the PyTorch student: {check.as_dict()}"})
                continue
            kept.append(entries[m["file"]] | {
                "runner_check": {"rows": check.rows, "max_abs_diff_vs_pytorch": check.max_abs_diff,
                                 "label_agreement_vs_pytorch": check.label_agreement, "dev_accuracy": accuracy}})
        if not kept:
            raise UserError("bundle: no model passed the runner check against the PyTorch student; see the lines above")
        meta["models"] = kept
        meta["rejected"] = rejected
        write_json(tmp / "metadata.json", meta)
        write_text(tmp / "README.md", app_readme(meta))
    tmp_zip = zip_path.with_name(f".tmp-{zip_path.name}")
    with zipfile.ZipFile(tmp_zip, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(bundle_dir.rglob("*")):
            if path.is_file():
                zf.write(path, Path("bundle") / path.relative_to(bundle_dir))
    tmp_zip.replace(zip_path)
    for r in rejected:
        info(f"[yellow]not bundled[/]: {r['file']} ({r['artifact']}): {r['reason']}")
    record = {"bundle": str(bundle_dir), "zip": str(zip_path), "zip_bytes": zip_path.stat().st_size,
              "models": [{k: m[k] for k in ("file", "artifact", "runtime", "precision", "size_bytes", "runner_check")} for m in kept],
              "rejected": rejected}
    info(f"bundle: {bundle_dir} ({', '.join(m['file'] for m in kept)}) and {zip_path.name} ({zip_path.stat().st_size / 1e6:.1f} MB)")
    return record


def _model_meta(m: dict, export: dict, num_labels: int, root: Path) -> dict:
    art = m["source"]
    ins, outs = _io(art, export["input_names"], num_labels)
    seq_latency = {f"seq{e['seq_len']}_{e['threads']}t": e["p50_ms"] for e in art["latency"] if e.get("batch", 1) == 1}
    return {
        "file": m["file"], "runtime": m["runtime"], "format": m["format"], "artifact": art["name"],
        "precision": _precision(art), "inputs": ins, "outputs": outs,
        **({"buckets": art["buckets"], "signatures": [f"seq_{b}" for b in art["buckets"]]} if art.get("buckets") else {}),
        "size_bytes": (root / m["file"]).stat().st_size, "sha256": file_digest(root / m["file"], None),
        "test_accuracy": art["accuracy"], "verification": {"max_abs_diff": art["max_abs_diff"], "label_agreement": art["label_agreement"],
                                                           "on": art["verified_on"]},
        "latency_p50_ms_on_build_machine": seq_latency,
        "quantization": ({"backend": art["quantization"]["backend"], "settings": art["quantization"]["settings"]}
                         if art.get("quantization") else None),
        "compute": compute_precision(art.get("quantization")),
        # what the runner sets for a .onnx (a .ort was saved with it applied): an app loading the .onnx sets it too
        **({"session_config": SESSION_CONFIG} if m["file"].endswith(".onnx") else {}),
    }


def _onnx_operators(path: Path) -> str:
    import onnx

    domains = {o.domain for o in onnx.load(str(path), load_external_data=False).opset_import}
    if "com.microsoft" in domains:
        return "ONNX Runtime contrib operators (com.microsoft): runs in ONNX Runtime / ONNX Runtime Mobile only"
    return "standard ONNX operators"


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"bert_compress": __version__}
    for pkg in ("onnxruntime", "ai-edge-litert", "litert-torch", "ai-edge-quantizer", "onnx", "torch", "transformers"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def app_readme(meta: dict) -> str:
    from compress.bundle_readme import render

    return render(meta)
