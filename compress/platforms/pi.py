"""The Pi / desktop bundle (OUT/bundle/pi): the torch-free runner with the fastest verified ONNX and TFLite files.

It holds the chosen model files (the fastest verified ONNX artifact, the fastest verified TFLite artifact), the
tokenizer files, labels.txt, metadata.json, check.json, a README, and the runner (`runner/targets`). Every model
file is run the way a device runs it (raw text -> the runner's tokenizer -> targets runtime, one text per call)
over the dev split on this machine and compared with the PyTorch student. A file that does not agree is removed
and the next-fastest verified artifact of its runtime is tried: int8 numerics differ between CPUs (AVX2,
AVX-512 VNNI, AMX, ARM dot-product), so a choice the quantize stage made elsewhere is re-checked here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path


from compress.artifacts import Artifact
from compress.bench.record import Measured
from compress.errors import StageFailed, first_line
from compress.fsutil import file_digest, write_json, write_text
from compress.platforms.base import HOST, MOBILE, BundleInput, ModelCheck, Platform, PlatformBundle
from compress.platforms.choice import BUNDLED_RUNTIMES
from compress.progress import info
from compress.vocab import write_vocab_txt
from targets.bundle import RUNNER_FILES
from targets.runtime import SESSION_CONFIG


RUNNER_RUNTIMES = BUNDLED_RUNTIMES
"""What the pi bundle's runner runs without torch (a .pte through ExecuTorch's C++ libraries: targets.executorch_native)."""


def build(inp: BundleInput, folder: Path) -> PlatformBundle:
    import targets
    from targets.bundle import BUNDLE_FORMAT, SCHEMA_VERSION, Bundle
    from targets.check import CHECK_FILE, MEASURES, CheckSet, check_model
    from targets.tokenizer import TokenizerError, load_tokenizer

    tmp, task = folder, inp.task
    typed, tokenizer_dir = inp.typed, inp.tokenizer_dir
    measure = MEASURES[task.postprocess]  # how the runner holds this task's outputs against the student's
    checks = CheckSet(inp.texts, inp.pairs, inp.labels, inp.reference, inp.atol,
                      **{f"fp32_{measure.bar}": inp.bar(False), f"quantized_{measure.bar}": inp.bar(True)})
    width = inp.reference.shape[-1]  # labels, tags or the vector's size
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
    write_text(tmp / "labels.txt", "".join(f"{lab}\n" for lab in inp.label_names))
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
        **inp.meta,
        "labels_file": "labels.txt",
        "check_file": CHECK_FILE,
        "tokenizer": {"type": tokenizer.kind, "vocab": "vocab.txt" if wordpiece else None,
                      "tokenizer_json": "tokenizer.json", "lowercase": tokenizer.lowercase,
                      "strip_accents": tokenizer.strip_accents, "vocab_size": len(tokenizer.vocab),
                      "special_tokens": tokenizer.special_tokens, "pad_id": tokenizer.pad_id,
                      "runs_on": "pure Python (runner/targets/tokenizer.py)" if wordpiece
                      else "the Hugging Face tokenizers package (pip install tokenizers)",
                      "text_pairs": inp.pairs is not None,
                      # e.g. a static-embedding model reads word pieces only, no [CLS] / [SEP]
                      **({} if inp.kind.special_tokens else {"add_special_tokens": False})},
        "models": [],
    }

    kept, rejected = [], []

    def add(file_name: str, art: Measured) -> bool:
        """Write one model file, check it alone through the runner; keep it or remove it (and say why)."""
        dst = tmp / file_name
        shutil.copy2(inp.out / art.path, dst)
        entry = _model_meta(file_name, typed[art.name], art, task, inp.input_names, width, tmp)
        write_json(tmp / "metadata.json", meta | {"models": kept + [entry]})  # the bundle as the runner sees it
        try:
            result = check_model(Bundle.load(tmp), entry, checks)
        except Exception as exc:  # the runner cannot load or run this file: the others may still ship
            entry["runner_check"], failure = None, f"the runner failed: {type(exc).__name__}: {first_line(exc)}"
        else:
            score = getattr(result, measure.field)
            dev = "" if result.accuracy is None else f", dev accuracy {100 * result.accuracy:.2f}%"
            info(f"bundle pi/{file_name} ({art.name}) through the torch-free runner: max |Δ{measure.diff}| vs "
                 f"PyTorch {result.max_abs_diff:.2e}, {measure.name} {score:.{measure.digits}f}{dev}")
            entry["runner_check"] = {"rows": result.rows, "max_abs_diff_vs_pytorch": result.max_abs_diff,
                                     f"{measure.field}_vs_pytorch": score,
                                     **({} if result.accuracy is None else {"dev_accuracy": result.accuracy})}
            failure = result.failure and f"runner output does not match the PyTorch student on dev: {result.failure}"
        if failure:
            dst.unlink()
            rejected.append({"file": file_name, "artifact": art.name, "reason": failure})
            write_json(tmp / "metadata.json", meta | {"models": kept})
            return False
        kept.append(entry)
        return True

    for runtime in inp.candidates:
        if runtime not in RUNNER_RUNTIMES:
            continue
        options = inp.eligible(runtime, PLATFORM)  # an int8 file that passed on every instruction set a Pi / desktop has
        for i, art in enumerate(options):
            if i:
                info(f"[yellow]bundle[/] pi: trying the next-fastest {runtime} artifact, {art.name}")
            if add(f"model{Path(art.path).suffix}", art):
                break
    for r in rejected:
        info(f"[yellow]not bundled[/]: pi/{r['file']} ({r['artifact']}): {r['reason']}")
    if not kept:
        raise StageFailed("bundle: no model passed the runner check against the PyTorch student (see the lines "
                          f"above); the trained student and the artifacts in {inp.out} are kept")
    meta["models"] = kept
    meta["rejected"] = rejected
    write_json(tmp / "metadata.json", meta)
    write_text(tmp / "README.md", task.bundle_readme(meta))
    first = kept[0]
    rc = first["runner_check"]
    check = ModelCheck(
        "the bundle's runner (runner/targets: pure-Python tokenizer, " + first["runtime"] + ")", rc["rows"],
        rc[f"{measure.field}_vs_pytorch"], inp.agreement_name, inp.bar(first["precision"] != "fp32"), True,
        rc["max_abs_diff_vs_pytorch"], rc.get("dev_accuracy"))
    return PlatformBundle(
        "pi", PLATFORM.title, model_file=first["file"], artifact=first["artifact"], precision=first["precision"],
        check=check, rejected=rejected,
        details={"models": [{k: m[k] for k in ("file", "artifact", "runtime", "precision", "size_bytes", "runner_check")}
                            for m in kept]})


def runner_files(inp: BundleInput, folder: Path, file_name: str, art: Measured) -> bool:
    """metadata.json and check.json in another platform's bundle (its model `file_name`, made from `art`), in the
    runner's format: the pi bundle's runner then checks that bundle as it is (`python -m targets check`). False
    when there is no pi bundle to take them from (it is built first)."""
    from targets.bundle import Bundle
    from targets.check import CHECK_FILE

    pi = inp.built.get("pi", (None,))[0]
    if pi is None or not (pi / "metadata.json").is_file():
        return False
    meta = json.loads((pi / "metadata.json").read_text(encoding="utf-8"))
    entry = _model_meta(file_name, inp.typed[art.name], art, inp.task, inp.input_names, inp.reference.shape[-1], folder)
    if not (folder / meta["labels_file"]).is_file():
        shutil.copy2(pi / meta["labels_file"], folder / meta["labels_file"])
    shutil.copy2(pi / CHECK_FILE, folder / CHECK_FILE)
    write_json(folder / "metadata.json", meta | {"models": [entry], "rejected": []})
    Bundle.load(folder)  # what the runner will read: every file it names is here
    return True


def _model_meta(file_name: str, art: Artifact, measured: Measured, task, input_names: list[str], num_labels: int,
                root: Path) -> dict:
    from targets.runtime import RUNTIME_OF_SUFFIX, RUNTIMES

    path = root / file_name
    if file_name.endswith((".onnx", ".ort")):  # the graph's own inputs (a static-embedding graph takes no token_type_ids)
        import onnx

        source = path if file_name.endswith(".onnx") else root / "model.onnx"  # the .ort is made from model.onnx
        graph_inputs = {i.name for i in onnx.load(str(source), load_external_data=False).graph.input}
        input_names = [n for n in input_names if n in graph_inputs]
    session = RUNTIMES[art.runtime]  # what that runtime's file takes and gives (targets.runtime)
    ins, outs = session.io(input_names, list(art.outputs), task.output_shape(num_labels), art.buckets)
    seq_latency = {f"seq{e['seq_len']}_{e['threads']}t": e["p50_ms"] for e in measured.latency if e.get("batch", 1) == 1}
    v = art.verification
    return {
        "file": file_name, "runtime": RUNTIME_OF_SUFFIX[path.suffix], "format": path.suffix.lstrip("."), "artifact": art.name,
        "precision": art.precision, "inputs": ins, "outputs": outs,
        **({"buckets": art.buckets, "signatures": [f"seq_{b}" for b in art.buckets]} if art.buckets else {}),
        **session.bundle_fields(art.buckets, art.extras),
        "size_bytes": path.stat().st_size, "sha256": file_digest(path, None),
        "test_quality": measured.quality, "verification": {"max_abs_diff": v.max_abs_diff, "agreement": v.agreement,
                                                                "on": f"dev ({v.rows} rows)"},
        "latency_p50_ms_on_build_machine": seq_latency,
        # where its int8 decision was measured and held (this machine, emulated aarch64 cores)
        "quantization": {"backend": art.quantization.backend, "settings": art.quantization.settings,
                         "passed_on": art.quantization.extra.get("passed_on") or ["host"]} if art.quantization else None,
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


PLATFORM = Platform("pi", "Raspberry Pi / Linux / desktop (Python, the torch-free runner)", build, (HOST, *MOBILE))
