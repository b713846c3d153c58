"""The Android ONNX Runtime bundle (OUT/bundle/android-ort): one .onnx that takes a string, the tokenizer inside
the graph as onnxruntime-extensions operators (built from the student's own tokenizer: compress.platforms.
tokenizer_graph), run by ONNX Runtime with the extensions library registered (`onnxruntime-android` +
`onnxruntime-extensions-android`; on iOS the same file, compress.platforms.ios_ort).

The model is the fastest verified ONNX artifact with the tokenizer graph in front. It is checked on the dev split
from raw text through onnxruntime + onnxruntime-extensions in Python, against the PyTorch student; a candidate
that misses the bar is dropped and the next-fastest ONNX artifact is tried.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from compress.errors import first_line
from compress.fsutil import write_json, write_text
from compress.platforms.base import BundleInput, ModelCheck, Platform, PlatformBundle, first_passing, none_passed
from compress.progress import info

MODEL_FILE = "model.onnx"


def skip_reason(inp: BundleInput) -> str | None:
    import importlib.util

    from compress.platforms.tokenizer_graph import EXTENSIONS_HINT, unsupported_tokenizer

    if not inp.kind.special_tokens:
        return "the student reads word pieces without [CLS] / [SEP] (a static-embedding model); that tokenizer is not in-graph yet"
    if inp.pairs is not None:
        return "text-pair classification: the string-in graph takes one text"
    if "onnxruntime" not in inp.candidates:
        return "no verified ONNX artifact"
    if importlib.util.find_spec("onnxruntime_extensions") is None:
        return f"onnxruntime-extensions is not installed: {EXTENSIONS_HINT}"
    return unsupported_tokenizer(inp.tokenizer_dir)


def run_texts(path: Path, texts: list[str]) -> tuple[np.ndarray, float]:
    """The string-in model on each text alone (as an app calls it): outputs and mean ms per call. A token
    classifier's rows ([tokens, tags], each text its own length) are padded with zeros to the longest."""
    from targets.runtime import OnnxModel

    model = OnnxModel(path, threads=1)
    rows, seconds = [], 0.0
    for text in texts:
        t0 = time.perf_counter()
        rows.append(model({model.text_input: np.array([text], dtype=object)})[0])
        seconds += time.perf_counter() - t0
    if rows and rows[0].ndim == 2:
        out = np.zeros((len(rows), max(len(r) for r in rows), rows[0].shape[-1]), dtype=np.float32)
        for i, r in enumerate(rows):
            out[i, :len(r)] = r
        return out, 1000 * seconds / max(1, len(texts))
    return np.stack(rows).astype(np.float32), 1000 * seconds / max(1, len(texts))


def build(inp: BundleInput, folder: Path) -> PlatformBundle:
    from compress.platforms.tokenizer_graph import (OFFSETS_OUTPUT, TEXT_INPUT, id_agreement, offset_agreement,
                                                    string_in_model)
    from compress.token_classification.metrics import max_abs_diff

    reason = skip_reason(inp)
    if reason:
        return PlatformBundle("android-ort", PLATFORM.title, skipped=reason)
    ids = id_agreement(inp.tokenizer_dir, inp.texts, inp.max_length)
    spans = offset_agreement(inp.tokenizer_dir, inp.texts, inp.max_length) if inp.task.per_token else None
    model, made_with = folder / MODEL_FILE, {}

    def attempt(art: dict) -> ModelCheck:
        made_with["mode"] = string_in_model(inp.out / art.path, inp.tokenizer_dir, inp.max_length, model)
        outputs, ms = run_texts(model, inp.texts)
        made_with["outputs"] = inp.same_shape(outputs, "the string-in model")
        agreement, bar = inp.agreement(outputs), inp.bar(inp.typed[art.name].quantization is not None, art.name, PLATFORM)
        check = ModelCheck(
            f"onnxruntime {_version('onnxruntime')} + onnxruntime-extensions {_version('onnxruntime-extensions')} (Python)",
            len(outputs), agreement, inp.agreement_name, bar, agreement >= bar, max_abs_diff(inp.reference, outputs),
            inp.dev_quality(outputs), round(ms, 3),
            [f"in-graph tokenizer: {made_with['mode']}; its ids equal Hugging Face's on {100 * ids:.2f}% of dev texts",
             f"text longer than {inp.max_length} tokens is truncated ([SEP] kept last)"]
            + ([f"in-graph ids and character offsets both equal Hugging Face's on {100 * spans:.2f}% of dev texts"]
               if spans is not None else [])
            # the int8 graph inside is the guard's file, behind a tokenizer of exact integer work
            + inp.decision_notes(art.name, PLATFORM))
        info(f"bundle android-ort/{MODEL_FILE} ({art.name} + tokenizer) from raw dev text: {inp.agreement_name} "
             f"{agreement:.4f}, max |Δ| {check.max_abs_diff:.2e}, {ms:.2f} ms per text; ids as Hugging Face's on "
             f"{100 * ids:.2f}% of dev texts")
        return check

    art, check, rejected = first_passing(inp.eligible("onnxruntime", PLATFORM), model, attempt)
    if art is None:
        return none_passed(PLATFORM, rejected)
    typed, mode, outputs = inp.typed[art.name], made_with["mode"], made_with["outputs"]
    model_file = MODEL_FILE
    if inp.ort_format:  # ONNX Runtime's own format: loads in its mobile (minimal) builds too
        model_file = _as_ort(inp, folder, outputs, check)
    if inp.task.labelled_outputs:
        write_text(folder / "labels.txt", "".join(f"{lab}\n" for lab in inp.label_names))
    made = PlatformBundle("android-ort", PLATFORM.title, model_file=model_file, artifact=art.name,
                          precision=typed.precision, string_in=True, check=check, rejected=rejected,
                          details={"text_input": TEXT_INPUT, "output": inp.task.output_names[0],
                                   "dev_ids_as_huggingface": ids, "tokenizer_mode": mode,
                                   **({"dev_offsets_as_huggingface": spans} if spans is not None else {})})
    write_json(folder / "model.json", {"file": model_file, "input": {"name": TEXT_INPUT, "dtype": "string", "shape": [1]},
                                        "output": {"name": made.details["output"], "dtype": "float32",
                                                   "shape": [1, *(["tokens"] if inp.task.per_token else []),
                                                             int(inp.reference.shape[-1])]},
                                        # every string-in graph gives the spans (a classifier's app may ignore them)
                                        "offsets": {"name": OFFSETS_OUTPUT, "dtype": "int64", "shape": ["tokens", 2],
                                                    "meaning": "each token's [start, end) in the text's "
                                                               "characters; [0, 0] for [CLS] / [SEP]"},
                                        "labels": inp.label_names if inp.task.labelled_outputs else None,
                                        "max_length": inp.max_length, "precision": typed.precision,
                                        "session_config": _session_config()})
    write_text(folder / "README.md", readme(inp, made))
    return made


def _as_ort(inp: BundleInput, folder: Path, outputs: np.ndarray, check: ModelCheck) -> str:
    """The checked string-in model in ONNX Runtime's format (model.ort) in place of the .onnx, when it converts and
    gives the same outputs on dev; otherwise the .onnx stays and the check says why."""
    from compress.export.ort_format import to_ort_format

    dst = folder / "model.ort"
    try:
        to_ort_format(folder / MODEL_FILE, dst)
        again, _ = run_texts(dst, inp.texts)
    except Exception as exc:  # noqa: BLE001 - the .onnx is checked and ships
        dst.unlink(missing_ok=True)
        check.notes.append(f"no model.ort: {first_line(exc)}")
        return MODEL_FILE
    diff = float(np.abs(again - outputs).max())
    if diff > 1e-5:
        dst.unlink()
        check.notes.append(f"no model.ort: it differs from the checked .onnx by {diff:.1e} on dev")
        return MODEL_FILE
    (folder / MODEL_FILE).unlink()
    check.notes.append(f"ONNX Runtime format (.ort), saved with the session config applied; outputs equal the checked "
                       f".onnx's on dev (max abs Δ {diff:.1e})")
    return "model.ort"


def _session_config() -> dict:
    from targets.runtime import SESSION_CONFIG

    return SESSION_CONFIG


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def readme(inp: BundleInput, made: PlatformBundle, platform: str = "android") -> str:
    from compress.platforms.snippets import ort_snippet

    c = made.check
    out = inp.task.outputs_in_words(inp.label_names, "tokens") + (
        "; a second output `offset_mapping`, int64 [tokens, 2], is each token's [start, end) character span in the "
        "text ([0, 0] for [CLS] / [SEP]): " + ("the spans cut the entity out of the text" if inp.task.per_token else
                                              "where each token came from; ask only for the first output to skip it"))
    return "\n".join([
        f"# {'Android' if platform == 'android' else 'iOS'} bundle: ONNX Runtime, string in",
        "",
        f"`{made.model_file}` ({made.precision}) takes the text itself: input `{made.details['text_input']}`, a string "
        f"tensor of shape [1]; output `{made.details['output']}`, {out}. The BERT tokenizer runs inside the graph as "
        "onnxruntime-extensions operators, so register the extensions library with the session (below). One text "
        f"per call; texts longer than {inp.max_length} tokens are truncated (`[SEP]` kept last, as in training).",
        "",
        f"Checked here: {c.tool} on the {c.rows} dev texts, raw strings in: {c.agreement_name} with the PyTorch "
        f"student {100 * c.agreement:.2f}%" + (f", dev accuracy {100 * c.dev_quality:.2f}%" if c.dev_quality is not None else "")
        + f", max abs Δ {c.max_abs_diff:.1e}; {c.ms_per_text:.2f} ms per text on the build machine (one thread). "
        f"The in-graph token ids equal Hugging Face's on {100 * made.details['dev_ids_as_huggingface']:.2f}% of the dev texts. "
        "`model.json` names the input, output, labels and the session config entry below.",
        "",
        *ort_snippet(platform, inp.task, made.model_file, made.details["text_input"], made.details["output"]),
        "",
    ])


PLATFORM = Platform("android-ort", "Android (ONNX Runtime + extensions)", build)
