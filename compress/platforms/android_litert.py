"""The Android LiteRT bundle (OUT/bundle/android-litert): one .tflite with TFLite metadata that MediaPipe Tasks'
`TextClassifier` / `TextEmbedder` (and the TFLite Task Library) load and call with a string.

The model is the shipped LiteRT artifact re-made for the task libraries (compress.platforms.tflite_task: one
signature at the run's max_length, probabilities out for a classifier, the same quantization), with the vocabulary
and labels inside the file. It is checked by MediaPipe itself on the dev split from raw text, against the PyTorch
student and against the runner's bucketed file: a candidate that misses the bar is dropped and the next-fastest
LiteRT artifact is tried. iOS runs the same file (compress.platforms.ios_litert).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from compress.fsutil import write_text
from compress.platforms.base import BundleInput, ModelCheck, Platform, PlatformBundle, first_passing, none_passed
from compress.progress import info

MODEL_FILE = "model.tflite"


def skip_reason(inp: BundleInput) -> str | None:
    """Why this model cannot have a task-library .tflite (None: it can)."""
    import importlib.util

    from compress.export.tflite import TFLITE_EXTRA, litert_torch_available
    from compress.platforms.tflite_task import MEDIAPIPE_HINT, unsupported_tokenizer
    from targets.tokenizer import load_tokenizer

    if not inp.kind.transformer:
        return f"{inp.kind.not_a_transformer} for the TFLite task libraries"
    if inp.task.mediapipe_api is None:
        return inp.task.mediapipe_unsupported
    if inp.pairs is not None:
        return "text-pair classification: MediaPipe's TextClassifier takes one text"
    if "litert" not in inp.candidates:
        return "no verified TFLite artifact (export.tflite is off, or litert-torch could not convert the student)"
    reason = unsupported_tokenizer(load_tokenizer(inp.tokenizer_dir / "tokenizer.json"))
    if reason:
        return reason
    if not litert_torch_available():
        return f"litert-torch is not installed ({TFLITE_EXTRA})"
    if importlib.util.find_spec("mediapipe") is None:
        return f"mediapipe (its metadata writers) is not installed: {MEDIAPIPE_HINT}"
    if "token_type_ids" not in inp.input_names:
        return "the student takes no token_type_ids; MediaPipe's BERT models take ids, mask and segment ids"
    return None


def _runner_outputs(inp: BundleInput):
    """The pi bundle's LiteRT file through the runner (bucketed signatures, the runner's tokenizer), on dev."""
    from targets.bundle import open_model

    pi = inp.built.get("pi", (None,))[0]
    if pi is None or not (pi / "model.tflite").is_file():
        return None
    return open_model(pi, runtime="litert", threads=1).outputs(inp.texts, None)


def build(inp: BundleInput, folder: Path) -> PlatformBundle:
    from compress.platforms.mediapipe_check import run_mediapipe
    from compress.platforms.tflite_task import convert_single, quantize_like, write_metadata
    from targets.bundle import softmax

    reason = skip_reason(inp)
    if reason:
        return PlatformBundle("android-litert", PLATFORM.title, skipped=reason)
    vocab = inp.tokenizer_dir / "vocab.txt"
    if not vocab.is_file():
        from compress.vocab import write_vocab_txt

        import json

        write_vocab_txt(json.loads((inp.tokenizer_dir / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"], folder)
        vocab = folder / "vocab.txt"
    runner = _runner_outputs(inp)
    width = inp.reference.shape[-1]
    model = folder / MODEL_FILE
    embedder = inp.task.mediapipe_api == "TextEmbedder"  # else a TextClassifier: softmax scores over the labels
    with tempfile.TemporaryDirectory() as work:
        fp32 = convert_single(inp.student, embedder, inp.max_length, Path(work) / "single-fp32.tflite")
        info(f"bundle android-litert: one signature [1, {inp.max_length}] int32, "
             f"{'sentence vector' if embedder else 'probabilities'} out (litert-torch)")

        def attempt(art: dict) -> ModelCheck:
            typed = inp.typed[art.name]
            quantized = quantize_like(fp32, typed.quantization, Path(work) / f"{art.name}.tflite")
            write_metadata(quantized, vocab, None if embedder else inp.label_names, model)
            outputs, ms, tool = run_mediapipe(model, inp.texts, embedder, width)
            inp.same_shape(outputs, tool)
            # MediaPipe's tokenizer lower-cases ASCII only and strips no accents (see readme()): the bar is for the
            # texts it reads as the student's tokenizer does; the agreement on every text is a note beside it
            ascii_rows = np.array([t.isascii() for t in inp.texts])
            every = inp.agreement(outputs)
            agreement = inp.agreement(outputs[ascii_rows], inp.reference[ascii_rows]) if ascii_rows.any() else every
            bar = inp.bar(typed.quantization is not None, art.name, PLATFORM)
            notes = [f"text longer than {inp.max_length} tokens is truncated",
                     f"{inp.agreement_name} on all {len(inp.texts)} texts {every:.4f}; the bar applies to the "
                     f"{int(ascii_rows.sum())} ASCII-only texts, which MediaPipe tokenizes as the student does"]
            if runner is not None:
                notes.append(f"{inp.agreement_name} with the runner's bucketed {art.name}: {inp.agreement(outputs, runner):.4f}")
            expected = inp.reference if embedder else softmax(inp.reference)  # a TextClassifier's scores: probabilities
            check = ModelCheck(tool, len(outputs), agreement, f"{inp.agreement_name} (ASCII texts)", bar, agreement >= bar,
                               float(abs(outputs - expected).max()), inp.dev_quality(outputs), ms, notes)
            if typed.quantization is not None and typed.quantization.decided_on(PLATFORM.instruction_sets):
                # this re-made file's own numerics where the phone runs it (the guard measured the bucketed one)
                check.emulated = inp.on_arm(quantized, expected, PLATFORM)
                for name, d in (check.emulated or {}).items():
                    check.notes.append(f"on {name} (emulated {d.get('core')}): " + (
                        f"not measured: {d['error']}" if "error" in d else
                        f"{inp.agreement_name} {d['agreement']:.4f} ({d['rows_emulated']} texts run there)"))
                    check.passed = check.passed and d.get("passed", True)  # an unmeasured set: this check decides
            accuracy = f", dev accuracy {100 * check.dev_quality:.2f}%" if check.dev_quality is not None else ""
            info(f"bundle android-litert/{MODEL_FILE} ({art.name}) through {tool}: {inp.agreement_name} "
                 f"{agreement:.4f} on the ASCII-only texts, {every:.4f} on all{accuracy}, {ms:.2f} ms per text")
            return check

        art, check, rejected = first_passing(inp.eligible("litert", PLATFORM), model, attempt)
    if art is None:
        return none_passed(PLATFORM, rejected)
    typed = inp.typed[art.name]
    (folder / "vocab.txt").unlink(missing_ok=True)  # inside the model's metadata now
    write_text(folder / "README.md", readme(inp, check, typed.precision))
    return PlatformBundle("android-litert", PLATFORM.title, model_file=MODEL_FILE, artifact=art.name,
                          precision=typed.precision, string_in=True, check=check, rejected=rejected,
                          details={"fixed_length": inp.max_length})  # every call pads to it


def readme(inp: BundleInput, check: ModelCheck, precision: str, platform: str = "android") -> str:
    from compress.platforms.snippets import litert_snippet

    what = inp.task.mediapipe_api
    embedder = what == "TextEmbedder"
    return "\n".join([
        f"# {'Android' if platform == 'android' else 'iOS'} bundle: MediaPipe Tasks {what} (LiteRT)",
        "",
        f"`{MODEL_FILE}` ({precision}) takes a string: the WordPiece vocabulary"
        + ("" if embedder else " and the labels") + " are inside the file as TFLite metadata, so "
        f"MediaPipe Tasks' `{what}` (and the TFLite Task Library's BERT APIs) tokenize for you. "
        f"Texts longer than {inp.max_length} tokens are truncated (the model's fixed input length).",
        "",
        (f"Outputs: one vector of {inp.reference.shape[-1]} floats per text." if embedder else
         f"Outputs: one score per label ({', '.join(inp.label_names)}), the softmax probabilities."),
        "",
        f"Checked here: {check.tool} on the {check.rows} dev texts, raw strings in: {check.agreement_name} with the "
        f"PyTorch student {100 * check.agreement:.2f}%" + (f", dev accuracy {100 * check.dev_quality:.2f}%"
                                                           if check.dev_quality is not None else "")
        + f"; {check.ms_per_text:.2f} ms per text on the build machine. "
        "MediaPipe's own BERT tokenizer gives the Hugging Face tokenizer's ids for English text, but it lower-cases "
        "ASCII only, strips no accents and reads `[SEP]` typed in a text as plain characters: \"naïve café\", "
        "\"ΟΔΟΣ\" become `[UNK]` where the student saw \"naive cafe\", \"οδος\" pieces; such texts may score "
        "differently.",
        "",
        *litert_snippet(platform, what, MODEL_FILE),
        "",
    ])


PLATFORM = Platform("android-litert", "Android (MediaPipe Tasks, LiteRT)", build)
