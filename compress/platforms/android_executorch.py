"""The Android ExecuTorch bundle (OUT/bundle/android-executorch): the fastest verified .pte (XNNPACK delegate), the
tokenizer files, labels and a Kotlin snippet for ExecuTorch's Android library (`org.pytorch.executorch`).

A .pte takes token ids, not text: the app tokenizes (vocab.txt, the BERT WordPiece rules named in the README) and
feeds int64 `input_ids` and `attention_mask` of shape [1, L]. The model is checked on the dev split from raw text
the way the app runs it: the runner's tokenizer (targets/tokenizer.py, what the README's rules describe), then
ExecuTorch's runtime (its Python bindings here, the same C++ runtime and XNNPACK kernels the AAR holds), one text
per call, against the PyTorch student; a candidate that misses the bar is dropped and the next-fastest .pte tried.
"""

from __future__ import annotations

import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

from compress.fsutil import write_json, write_text
from compress.platforms.pi import runner_files
from compress.platforms.base import BundleInput, ModelCheck, Platform, PlatformBundle, first_passing, none_passed
from compress.progress import info

MODEL_FILE = "model.pte"


def skip_reason(inp: BundleInput) -> str | None:
    if "executorch" not in inp.candidates:
        return "no verified ExecuTorch .pte (export.executorch is off, or executorch is not installed: pip install 'bert-compress[executorch]')"
    if not inp.kind.transformer:
        return f"{inp.kind.not_a_transformer}: no .pte export"
    return None


def run_texts(path: Path, inp: BundleInput) -> tuple[np.ndarray, float, int]:
    """The .pte on each dev text alone, tokenized by the runner's tokenizer: outputs (token rows padded with zeros to
    the longest), mean ms per call (tokenizer included) and how many texts were truncated."""
    from targets.runtime import ExecuTorchModel
    from targets.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(inp.tokenizer_dir / "tokenizer.json")
    model = ExecuTorchModel(path, threads=1)
    rows, seconds, truncated = [], 0.0, 0
    pairs = inp.pairs or [None] * len(inp.texts)
    for text, pair in zip(inp.texts, pairs):
        t0 = time.perf_counter()
        enc = tokenizer.encode(text, pair, max_length=inp.max_length)
        feeds = {"input_ids": np.array([enc.input_ids]), "attention_mask": np.array([enc.attention_mask]),
                 "token_type_ids": np.array([enc.token_type_ids])}
        rows.append(model(feeds)[0])
        seconds += time.perf_counter() - t0
        truncated += enc.truncated
    ms = 1000 * seconds / max(1, len(rows))
    if rows and rows[0].ndim == 2:  # [tokens, tags] per text
        width = max(inp.reference.shape[1], max(len(r) for r in rows))
        out = np.zeros((len(rows), width, rows[0].shape[-1]), dtype=np.float32)
        for i, r in enumerate(rows):
            out[i, :len(r)] = r
        return out[:, :inp.reference.shape[1]], ms, truncated
    return np.stack(rows).astype(np.float32), ms, truncated


def build(inp: BundleInput, folder: Path) -> PlatformBundle:
    import shutil

    from compress.token_classification.metrics import max_abs_diff

    reason = skip_reason(inp)
    if reason:
        return PlatformBundle("android-executorch", PLATFORM.title, skipped=reason)
    model = folder / MODEL_FILE

    def attempt(art: dict) -> ModelCheck:
        shutil.copy2(inp.out / art.path, model)
        outputs, ms, truncated = run_texts(model, inp)
        outputs = inp.same_shape(outputs, "the .pte through the runner's tokenizer")
        agreement, bar = inp.agreement(outputs), inp.bar(inp.typed[art.name].quantization is not None, art.name, PLATFORM)
        check = ModelCheck(f"executorch {version('executorch')} runtime (Python bindings, XNNPACK) + the runner's "
                           "tokenizer", len(outputs), agreement, inp.agreement_name, bar, agreement >= bar,
                           max_abs_diff(inp.reference, outputs), inp.dev_quality(outputs), round(ms, 3),
                           [f"{truncated} dev text(s) longer than {inp.max_length} tokens truncated ([SEP] kept last)",
                            *inp.decision_notes(art.name, PLATFORM)])  # the very file the guard measured there
        info(f"bundle android-executorch/{MODEL_FILE} ({art.name}) from raw dev text: {inp.agreement_name} "
             f"{agreement:.4f}, max |Δ| {check.max_abs_diff:.2e}, {ms:.2f} ms per text")
        return check

    art, check, rejected = first_passing(inp.eligible("executorch", PLATFORM), model, attempt)
    if art is None:
        return none_passed(PLATFORM, rejected)
    typed = inp.typed[art.name]
    shutil.copy2(inp.tokenizer_dir / "tokenizer.json", folder / "tokenizer.json")
    if (inp.tokenizer_dir / "vocab.txt").is_file():
        shutil.copy2(inp.tokenizer_dir / "vocab.txt", folder / "vocab.txt")
    if inp.task.labelled_outputs:
        write_text(folder / "labels.txt", "".join(f"{lab}\n" for lab in inp.label_names))
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in inp.input_names]
    methods = ["forward"] if not typed.buckets else [f"seq_{b}" for b in typed.buckets]
    spec = {"file": MODEL_FILE, "runtime": f"executorch {version('executorch')} (XNNPACK delegate)",
            "methods": methods, "buckets": typed.buckets,
            "inputs": [{"name": n, "dtype": "int64", "shape": [1, "L"]} for n in names],
            "sequence": (f"any L from 2 to {inp.max_length} (dynamic axis)" if not typed.buckets else
                         f"pad to the smallest bucket of {typed.buckets} that holds the text (zeros, mask 0)"),
            "output": {"name": inp.task.output_names[0], "dtype": "float32",
                       "shape": [1, *(["L"] if inp.task.per_token else []), int(inp.reference.shape[-1])]},
            "labels": inp.label_names if inp.task.labelled_outputs else None, "max_length": inp.max_length,
            "precision": typed.precision, "portable_ops": typed.extras.get("portable_ops") or {},
            "tokenizer": {"vocab": "vocab.txt" if (folder / "vocab.txt").is_file() else None,
                          "tokenizer_json": "tokenizer.json"}}
    write_json(folder / "model.json", spec)
    spec["runner_check"] = runner_files(inp, folder, MODEL_FILE, art)  # metadata.json + check.json: `python -m targets check`
    made = PlatformBundle("android-executorch", PLATFORM.title, model_file=MODEL_FILE, artifact=art.name,
                          precision=typed.precision, check=check, rejected=rejected,
                          details={"methods": methods, "inputs": names, "portable_ops": typed.extras.get("portable_ops") or {}})
    write_text(folder / "README.md", readme(inp, made, spec))
    return made


def readme(inp: BundleInput, made: PlatformBundle, spec: dict) -> str:
    from compress.bundle_readme import DEVICE_INSTALL
    from compress.platforms.snippets import executorch_snippet

    c = made.check
    out = inp.task.outputs_in_words(inp.label_names, "L")
    portable = spec["portable_ops"]
    return "\n".join([
        "# Android bundle: ExecuTorch (XNNPACK)",
        "",
        f"`{MODEL_FILE}` ({made.precision}) is an ExecuTorch program; XNNPACK runs its matmuls, and "
        + ("the operators it does not take run on ExecuTorch's portable kernels: "
           + ", ".join(f"{k} ×{v}" for k, v in portable.items()) if portable else "every operator runs in XNNPACK")
        + f". Method{'s' if len(spec['methods']) > 1 else ''} {', '.join(f'`{m}`' for m in spec['methods'])}: inputs "
        + ", ".join(f"`{i['name']}`" for i in spec["inputs"]) + f" (int64, [1, L]; {spec['sequence']}); output {out}.",
        "",
        "The app tokenizes: BERT WordPiece with `vocab.txt` (lowercase, accents stripped, punctuation split, `[CLS]` "
        f"first, `[SEP]` last, at most {inp.max_length} tokens: longer text is truncated with `[SEP]` kept last), mask all ones. `tokenizer.json` is the same tokenizer "
        "for the Hugging Face `tokenizers` library. `model.json` names inputs, output, labels and methods.",
        "",
        f"Checked here: {c.tool} on the {c.rows} dev texts, raw strings in: {c.agreement_name} with the PyTorch student "
        f"{100 * c.agreement:.2f}%" + (f", dev score {100 * c.dev_quality:.2f}%" if c.dev_quality is not None else "")
        + f", max abs Δ {c.max_abs_diff:.1e}; {c.ms_per_text:.2f} ms per text on the build machine (one thread).",
        "",
        *(["Check it on a Linux machine or a Pi with the `pi` bundle's runner (unzipped beside this folder; g++ builds "
           "its small ExecuTorch library once, no torch): `metadata.json` and `check.json` here are in the runner's "
           "format (the app needs neither).", "", "```sh", *DEVICE_INSTALL["executorch"],
           "PYTHONPATH=../pi/runner python -m targets check .", "```", ""]
          if spec["runner_check"] else []),
        *executorch_snippet(MODEL_FILE, spec["methods"], [i["name"] for i in spec["inputs"]], inp.task),
        "",
    ])


PLATFORM = Platform("android-executorch", "Android (ExecuTorch, XNNPACK)", build)
