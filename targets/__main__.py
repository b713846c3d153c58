"""Torch-free runner CLI: `python -m targets predict BUNDLE "text" ...`, `python -m targets info BUNDLE`.

Needs numpy plus onnxruntime (for .onnx / .ort) or ai-edge-litert / tflite-runtime (for .tflite), nothing else.
Bad input (a bundle with a missing file, a runtime that cannot load the model) is one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from targets.bundle import Bundle, BundleError, Classifier
from targets.runtime import RuntimeLoadError
from targets.tokenizer import TokenizerError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m targets", description="Run a bert-compress bundle without PyTorch.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    pr = sub.add_parser("predict", help="classify texts: label and probabilities")
    pr.add_argument("bundle", help="bundle directory or .zip")
    pr.add_argument("texts", nargs="*", help="texts to classify (none: one per line on stdin)")
    pr.add_argument("--runtime", default="auto",
                    help="onnxruntime, litert, or a model file of the bundle (default: the bundle's first model)")
    pr.add_argument("--interpreter", default="auto", choices=["auto", "ai-edge-litert", "tflite-runtime"],
                    help="TFLite interpreter (auto: tflite-runtime when it can load the model, else ai-edge-litert)")
    pr.add_argument("--threads", type=int, default=0, help="CPU threads (0: the runtime's default)")
    pr.add_argument("--json", action="store_true", help="one JSON object per text")
    info = sub.add_parser("info", help="what a bundle holds")
    info.add_argument("bundle")
    return p


def _predict(args) -> int:
    texts = args.texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not texts:
        raise BundleError("no text given: pass texts as arguments or one per line on stdin")
    clf = Classifier(args.bundle, args.runtime, args.threads, args.interpreter)
    for note in clf.notes:
        print(f"note: {note}; used {clf.model.interpreter}", file=sys.stderr)
    for i, p in enumerate(clf.predict(texts)):
        if p.truncated:
            print(f"note: text {i + 1} is longer than the model's {clf.max_length} tokens: truncated to them",
                  file=sys.stderr)
        if args.json:
            print(json.dumps({"text": p.text, "label": p.label, "probabilities": p.probabilities, "tokens": p.tokens,
                              "truncated": p.truncated, "model": clf.entry["file"]}, ensure_ascii=False))
        else:
            print(f"{p.label}\t{p.probabilities[p.label]:.4f}\t{p.text}")
    return 0


def _info(args) -> int:
    b = Bundle.load(args.bundle)
    m = b.metadata
    print(f"bundle {b.root}: labels {', '.join(b.labels)}; max length {m['max_length']}; teacher {m['teacher']['checkpoint']}")
    for e in m["models"]:
        shape = f"buckets {e['buckets']}" if e.get("buckets") else "dynamic batch × sequence"
        acc = e.get("test_accuracy")
        print(f"  {e['file']}: {e['runtime']}, {e['precision']}, {shape}, {e['size_bytes'] / 1e6:.2f} MB"
              + (f", test accuracy {100 * acc:.2f}%" if acc is not None else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    # texts may come after the options (argparse gives its '*' positional nothing once an option intervenes)
    unknown = [e for e in extra if e.startswith("-") and len(e) > 1]
    if unknown or (extra and args.command != "predict"):
        parser.error(f"unrecognized arguments: {' '.join(unknown or extra)}")
    if args.command == "predict":
        args.texts = args.texts + extra
    try:
        return {"predict": _predict, "info": _info}[args.command](args)
    except (BundleError, RuntimeLoadError, TokenizerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
