"""Stage 7, the app bundle: what a phone app or a Pi needs, in one directory and one zip, checked end to end.

OUT/bundle/ holds the chosen model files (the fastest verified ONNX artifact, its ONNX Runtime Mobile `.ort`
twin, the fastest verified TFLite artifact), the tokenizer files, labels.txt, metadata.json, a README for app
developers, and the torch-free runner (`runner/targets`). Every model file is run the way a device runs it
(raw text -> the runner's tokenizer -> targets runtime, one text per call) over the dev split on this machine
and compared with the PyTorch student. A file that does not agree is removed and the next-fastest verified
artifact of its runtime is tried: int8 numerics differ between CPUs (AVX2, AVX-512 VNNI, AMX, ARM dot-product),
so a choice the quantize stage made elsewhere is re-checked here. metadata.json records what was measured.
The candidates and their speeds come from the bench stage's record; what each file is, from its Artifact record.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from compress import __version__
from compress.artifacts import Artifact
from compress.bench.report import p50_at
from compress.bench.results import reference_cell
from compress.errors import StageFailed, UserError, first_line
from compress.fsutil import atomic_dir, file_digest, write_json, write_text
from compress.progress import info
from compress.vocab import write_vocab_txt
from compress.export.ort_format import to_ort_format
from targets.bundle import RUNNER_FILES
from targets.runtime import SESSION_CONFIG

FP32_MIN_AGREEMENT = 0.999


def choose_models(results: dict, wanted: list[str] | None) -> list[list[dict]]:
    """The measured artifacts to try (the bench stage's results, or a report.json holding them), one list per
    runtime in the order tried: those named (no fallback: the user chose them), else every verified ONNX, then
    every TFLite artifact, fastest first. The first of a list that passes the runner check is bundled; the others
    are its fallbacks."""
    artifacts = {a["name"]: a for a in results["artifacts"] if a["runtime"] in ("onnxruntime", "litert")}
    if wanted:
        unknown = [n for n in wanted if n not in artifacts]
        if unknown:
            raise UserError(f"bundle.artifacts names {', '.join(unknown)}, not a shipped ONNX / TFLite artifact; "
                            f"shipped: {', '.join(artifacts) or 'none'}")
        return [[artifacts[n]] for n in wanted]
    seq, threads = reference_cell(results["bench"])
    chosen = []
    for runtime in ("onnxruntime", "litert"):
        options = [a for a in artifacts.values() if a["runtime"] == runtime]
        if options:
            chosen.append(sorted(options, key=lambda a: p50_at(a["latency"], seq, threads) or float("inf")))
    if not chosen:
        raise UserError("no verified ONNX or TFLite artifact to bundle: re-run export (and quantize)")
    return chosen


def _io(artifact: Artifact, task, input_names: list[str], num_labels: int) -> tuple[list, list]:
    shape = task.output_shape(num_labels)
    if artifact.runtime == "litert":  # batch-1 signatures; litert-torch names the outputs output_0, output_1, ...
        ins = [{"name": n, "dtype": "int32", "shape": [1, "bucket"]} for n in sorted(input_names)]
        outs = [{"name": f"output_{i}", "dtype": "float32", "shape": [1, *shape[1:]]} for i in range(len(artifact.outputs))]
    else:
        ins = [{"name": n, "dtype": "int64", "shape": ["batch", "sequence"]} for n in input_names]
        outs = [{"name": n, "dtype": "float32", "shape": shape} for n in artifact.outputs]
    return ins, outs


def run(run, force: bool = False) -> dict:
    import targets
    from compress.evaluate import predict_logits
    from compress.bench.env import machine_identity
    from targets.bundle import BUNDLE_FORMAT, SCHEMA_VERSION, Bundle
    from targets.check import CHECK_FILE, CheckSet, check_model
    from targets.tokenizer import TokenizerError, load_tokenizer

    bundle_dir, zip_path = run.layout.bundle, run.layout.bundle_zip
    for path in (bundle_dir, zip_path):
        if path.exists() and not force:
            raise UserError(f"{path} exists already: pass --force to redo the bundle stage, or choose another --out")
    results = (run.stage_record("bench", needed_by="bundle") or {}).get("results")
    if results is None:
        raise UserError(f"bundle needs the bench stage's results: run `bert-compress bench --out {run.out} --force` first")
    export = run.stage_record("export", needed_by="bundle")
    typed = {a.name: a for a in run.artifacts("export", "quantize")}
    cfg = run.recipe.bundle
    chosen = choose_models(results, cfg.artifacts)
    tokenizer_dir = run.layout.student
    dev_rows = run.data.split("dev")
    pairs = [e.text_pair for e in dev_rows] if dev_rows and dev_rows[0].text_pair is not None else None
    student = run.load_student("bundle")
    embedding = run.task.postprocess == "embedding"
    # fp32 files must match as the export did; quantized ones as the quantization guard asked, on this machine
    reference = predict_logits(student, run.encode("dev", run.student_tokenizer()), description="student outputs on dev")
    texts = [e.text for e in dev_rows]
    if embedding:
        checks = CheckSet(texts, None, np.array([], dtype=np.int64), reference, run.recipe.export.atol,
                          fp32_min_cosine=FP32_MIN_AGREEMENT, quantized_min_cosine=run.recipe.quantize.min_label_agreement)
        width, vectors = student.dim, _embedding_meta(student)
    else:
        checks = CheckSet(texts, pairs, np.array([e.label for e in dev_rows]), reference, run.recipe.export.atol,
                          FP32_MIN_AGREEMENT, run.recipe.quantize.min_label_agreement)
        width, vectors = len(run.data.labels), None
    static = getattr(student, "kind", None) == "static"
    del student

    with atomic_dir(bundle_dir) as tmp:
        if not (tokenizer_dir / "tokenizer.json").is_file():
            raise StageFailed(f"the student in {tokenizer_dir} has no tokenizer.json (a fast tokenizer): the bundle needs one")
        shutil.copy2(tokenizer_dir / "tokenizer.json", tmp / "tokenizer.json")
        try:
            tokenizer = load_tokenizer(tmp / "tokenizer.json")  # exactly what a device will read
        except TokenizerError as exc:
            raise StageFailed(f"bundle: the device runner cannot read the student's tokenizer: {exc}") from None
        wordpiece = tokenizer.kind == "bert-wordpiece"
        if wordpiece:  # vocab.txt: what apps' own WordPiece code reads
            if (tokenizer_dir / "vocab.txt").is_file():
                shutil.copy2(tokenizer_dir / "vocab.txt", tmp / "vocab.txt")
            else:
                write_vocab_txt(json.loads((tmp / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"], tmp)
        write_text(tmp / "labels.txt", "".join(f"{lab}\n" for lab in run.data.labels))
        checks.write(tmp / CHECK_FILE)  # travels with the bundle: `python -m targets check` re-runs it on a device
        runner = tmp / "runner" / "targets"
        runner.mkdir(parents=True)
        src = Path(targets.__file__).parent
        for name in RUNNER_FILES:
            if (src / name).is_file():
                shutil.copy2(src / name, runner / name)
        meta = {
            "format": BUNDLE_FORMAT,
            "schema_version": SCHEMA_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "task": {"name": run.task.name, "outputs": list(run.task.output_names), "postprocess": run.task.postprocess},
            "labels": run.data.labels,
            "labels_file": "labels.txt",
            "check_file": CHECK_FILE,
            "max_length": run.recipe.data.max_length,
            "tokenizer": {"type": tokenizer.kind, "vocab": "vocab.txt" if wordpiece else None,
                          "tokenizer_json": "tokenizer.json", "lowercase": tokenizer.lowercase,
                          "strip_accents": tokenizer.strip_accents, "vocab_size": len(tokenizer.vocab),
                          "special_tokens": tokenizer.special_tokens, "pad_id": tokenizer.pad_id,
                          "runs_on": "pure Python (runner/targets/tokenizer.py)" if wordpiece
                          else "the Hugging Face tokenizers package (pip install tokenizers)",
                          "text_pairs": pairs is not None,
                          # a static-embedding model reads word pieces only, no [CLS] / [SEP]
                          **({"add_special_tokens": False} if static else {})},
            **({"embedding": vectors} if vectors else {}),
            "teacher": {"checkpoint": run.source.spec, "test_accuracy": results["teacher"]["accuracy"],
                        "layers": results["teacher"]["layers"], "hidden_size": results["teacher"]["hidden_size"]},
            "student": {"layers": results["student"]["layers"], "hidden_size": results["student"]["hidden_size"],
                        "params": results["student"]["params"], "test_accuracy": results["student"]["accuracy"],
                        "architecture": results["student"].get("arch")},
            "recipe": run.recipe.name,
            "versions": _versions(),
            "checked_on": machine_identity(),
            "models": [],
        }

        kept, rejected = [], []

        def add(file_name: str, art: dict, make) -> bool:
            """Write one model file, check it alone through the runner; keep it or remove it (and say why)."""
            dst = tmp / file_name
            try:
                make(dst)
            except Exception as exc:  # e.g. an .ort conversion the installed ONNX Runtime cannot do
                rejected.append({"file": file_name, "artifact": art["name"], "reason": f"conversion failed: {first_line(exc)}"})
                dst.unlink(missing_ok=True)
                return False
            entry = _model_meta(file_name, typed[art["name"]], art, run.task, export["input_names"], width, tmp)
            write_json(tmp / "metadata.json", meta | {"models": kept + [entry]})  # the bundle as the runner sees it
            try:
                result = check_model(Bundle.load(tmp), entry, checks)
            except Exception as exc:  # the runner cannot load or run this file: the others may still ship
                entry["runner_check"], failure = None, f"the runner failed: {type(exc).__name__}: {first_line(exc)}"
            else:
                if embedding:
                    info(f"bundle {file_name} ({art['name']}) through the torch-free runner: max |Δ| vs PyTorch "
                         f"{result.max_abs_diff:.2e}, mean cosine {result.mean_cosine:.6f}")
                    entry["runner_check"] = {"rows": result.rows, "max_abs_diff_vs_pytorch": result.max_abs_diff,
                                             "mean_cosine_vs_pytorch": result.mean_cosine}
                else:
                    info(f"bundle {file_name} ({art['name']}) through the torch-free runner: max |Δlogit| vs PyTorch "
                         f"{result.max_abs_diff:.2e}, label agreement {result.label_agreement:.4f}, dev accuracy "
                         f"{100 * result.accuracy:.2f}%")
                    entry["runner_check"] = {"rows": result.rows, "max_abs_diff_vs_pytorch": result.max_abs_diff,
                                             "label_agreement_vs_pytorch": result.label_agreement, "dev_accuracy": result.accuracy}
                failure = result.failure and f"runner output does not match the PyTorch student on dev: {result.failure}"
            if failure:
                dst.unlink()
                rejected.append({"file": file_name, "artifact": art["name"], "reason": failure})
                write_json(tmp / "metadata.json", meta | {"models": kept})
                return False
            kept.append(entry)
            return True

        for options in chosen:
            for i, art in enumerate(options):
                suffix = Path(art["path"]).suffix
                if i:
                    info(f"[yellow]bundle[/]: trying the next-fastest {art['runtime']} artifact, {art['name']}")
                if add(f"model{suffix}", art, lambda dst, src=run.out / art["path"]: shutil.copy2(src, dst)):
                    if suffix == ".onnx" and run.recipe.export.ort_format:
                        add("model.ort", art, lambda dst: to_ort_format(tmp / "model.onnx", dst))
                    break
        for r in rejected:
            info(f"[yellow]not bundled[/]: {r['file']} ({r['artifact']}): {r['reason']}")
        if not kept:
            raise StageFailed("bundle: no model passed the runner check against the PyTorch student (see the lines "
                              f"above); the trained student and the artifacts in {run.out} are kept")
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
    shipped = {m["runtime"] for m in kept}
    missing = [opts[0]["runtime"] for opts in chosen if opts[0]["runtime"] not in shipped]
    if rejected:
        info(f"[yellow]bundle[/]: ships {len(kept)} model file(s); {len(rejected)} candidate file(s) failed the runner "
             "check and were replaced or left out" + (f"; no {', '.join(missing)} model passed" if missing else ""))
    record = {"bundle": str(bundle_dir), "zip": str(zip_path), "zip_bytes": zip_path.stat().st_size,
              "models": [{k: m[k] for k in ("file", "artifact", "runtime", "precision", "size_bytes", "runner_check")} for m in kept],
              "rejected": rejected, "checked_on": meta["checked_on"]}
    info(f"bundle: {bundle_dir} ({', '.join(m['file'] for m in kept)}) and {zip_path.name} ({zip_path.stat().st_size / 1e6:.1f} MB)")
    return record


def _embedding_meta(student) -> dict:
    """What an app needs to know of the vectors (targets.bundle.Embedder reads it)."""
    if getattr(student, "kind", None) == "static":
        return {"dim": student.dim, "normalized": student.normalize, "pooling": "static-mean"}
    return {"dim": student.dim, "normalized": student.normalize, "pooling": student.pooling}


def _model_meta(file_name: str, art: Artifact, measured: dict, task, input_names: list[str], num_labels: int,
                root: Path) -> dict:
    from targets.runtime import RUNTIME_OF_SUFFIX

    path = root / file_name
    if file_name.endswith((".onnx", ".ort")):  # the graph's own inputs (a static-embedding graph takes no token_type_ids)
        import onnx

        source = path if file_name.endswith(".onnx") else root / "model.onnx"  # the .ort is made from model.onnx
        graph_inputs = {i.name for i in onnx.load(str(source), load_external_data=False).graph.input}
        input_names = [n for n in input_names if n in graph_inputs]
    ins, outs = _io(art, task, input_names, num_labels)
    seq_latency = {f"seq{e['seq_len']}_{e['threads']}t": e["p50_ms"] for e in measured["latency"] if e.get("batch", 1) == 1}
    v = art.verification
    return {
        "file": file_name, "runtime": RUNTIME_OF_SUFFIX[path.suffix], "format": path.suffix.lstrip("."), "artifact": art.name,
        "precision": art.precision, "inputs": ins, "outputs": outs,
        **({"buckets": art.buckets, "signatures": [f"seq_{b}" for b in art.buckets]} if art.buckets else {}),
        "size_bytes": path.stat().st_size, "sha256": file_digest(path, None),
        "test_accuracy": measured["accuracy"], "verification": {"max_abs_diff": v.max_abs_diff, "label_agreement": v.label_agreement,
                                                                "on": f"dev ({v.rows} rows)"},
        "latency_p50_ms_on_build_machine": seq_latency,
        "quantization": {"backend": art.quantization.backend, "settings": art.quantization.settings} if art.quantization else None,
        "compute": art.compute,
        # what the runner sets for a .onnx (a .ort was saved with it applied): an app loading the .onnx sets it too
        **({"session_config": SESSION_CONFIG, "operators": _onnx_operators(path)} if file_name.endswith(".onnx") else {}),
        **({"operators": _onnx_operators(root / "model.onnx")} if file_name.endswith(".ort") else {}),
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
    if meta["task"]["postprocess"] == "embedding":
        from compress.embedding.bundle_readme import render
    else:
        from compress.bundle_readme import render
    return render(meta)
