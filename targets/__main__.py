"""Torch-free runner CLI: `python -m targets predict BUNDLE "text" ...`, `embed BUNDLE "text" ...`, `ner BUNDLE
"text" ...`, `check BUNDLE`, `info BUNDLE`, `bench BUNDLE`, `profile CANDS`. predict runs classifier bundles, embed
embedding (sentence-vector) bundles, ner token-classification bundles (entities with character spans); profile times a candidates archive (`bert-compress candidates`) for `bert-compress run --budget-ms`.

Needs numpy plus onnxruntime (for .onnx / .ort), ai-edge-litert / tflite-runtime (for .tflite) or the executorch
wheel and a C++ compiler (for .pte; no torch), nothing else.
Bad input (a bundle with a missing file, a runtime that cannot load the model) is one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from targets.bench import BenchError
from targets.bundle import Bundle, BundleError, Classifier, Embedder, Tagger, task_of
from targets.vectors import cosine_matrix
from targets.profile import ProfileError
from targets.runtime import RuntimeLoadError, RuntimeMissing, missing_runtime
from targets.tokenizer import TokenizerError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m targets", description="Run a bert-compress bundle without PyTorch.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    pr = sub.add_parser("predict", help="classify texts: label and probabilities")
    pr.add_argument("bundle", help="bundle directory or .zip")
    pr.add_argument("texts", nargs="*", help="texts to classify (none: one per line on stdin)")
    pr.add_argument("--runtime", default="auto",
                    help="onnxruntime, litert, executorch, or a model file of the bundle (default: the bundle's first model)")
    pr.add_argument("--interpreter", default="auto", choices=["auto", "ai-edge-litert", "tflite-runtime"],
                    help="TFLite interpreter (auto: tflite-runtime when it can load the model, else ai-edge-litert)")
    pr.add_argument("--threads", type=int, default=0, help="CPU threads (0: the runtime's default)")
    pr.add_argument("--json", action="store_true", help="one JSON object per text (with the raw logits)")
    em = sub.add_parser("embed", help="sentence vectors of texts (an embedding bundle); with 2+ texts, their "
                                      "cosine similarities")
    em.add_argument("bundle", help="bundle directory or .zip")
    em.add_argument("texts", nargs="*", help="texts to embed (none: one per line on stdin)")
    em.add_argument("--runtime", default="auto",
                    help="onnxruntime, litert, executorch, or a model file of the bundle (default: the bundle's first model)")
    em.add_argument("--interpreter", default="auto", choices=["auto", "ai-edge-litert", "tflite-runtime"])
    em.add_argument("--threads", type=int, default=0, help="CPU threads (0: the runtime's default)")
    em.add_argument("--json", action="store_true", help="one JSON object: every text's full vector, and the "
                                                        "cosine-similarity matrix")
    nr = sub.add_parser("ner", help="entities in texts (a token-classification bundle): type, character span, text, "
                                     "score")
    nr.add_argument("bundle", help="bundle directory or .zip")
    nr.add_argument("texts", nargs="*", help="texts to tag (none: one per line on stdin)")
    nr.add_argument("--aggregation", default="first", choices=["first", "average", "max"],
                    help="how a word's pieces give its tag (Hugging Face's names; default: first, as trained)")
    nr.add_argument("--runtime", default="auto",
                    help="onnxruntime, litert, executorch, or a model file of the bundle (default: the bundle's first model)")
    nr.add_argument("--interpreter", default="auto", choices=["auto", "ai-edge-litert", "tflite-runtime"])
    nr.add_argument("--threads", type=int, default=0, help="CPU threads (0: the runtime's default)")
    nr.add_argument("--json", action="store_true", help="one JSON object per text: its entities with start, end, "
                                                        "word, entity_group and score")
    ck = sub.add_parser("check", help="re-check the bundle's models on this device's CPU against the PyTorch "
                                      "student's outputs it carries (exit 1 when one fails)")
    ck.add_argument("bundle", help="bundle directory or .zip")
    ck.add_argument("--runtime", default="all", help="onnxruntime, litert, executorch, a model file of the bundle, or all (default)")
    ck.add_argument("--rows", type=int, default=0, help="check only the first N texts (default: all)")
    ck.add_argument("--threads", type=int, default=1, help="CPU threads (default: 1)")
    ck.add_argument("--json", action="store_true", help="one JSON object per model")
    info = sub.add_parser("info", help="what a bundle holds")
    info.add_argument("bundle")
    bn = sub.add_parser("bench", help="latency matrix of the bundle's models on this device: results JSON for "
                                      "`bert-compress report`")
    bn.add_argument("bundle", help="bundle directory or .zip")
    bn.add_argument("--out", default="bench.json", help="results file to write (default: bench.json)")
    bn.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    bn.add_argument("--device", help="this device's name in reports, e.g. 'Raspberry Pi 5' (default: board or CPU)")
    bn.add_argument("--models", help="comma-separated model files of the bundle (default: all)")
    bn.add_argument("--threads", help="comma-separated thread counts (default: 1 .. the cores)")
    bn.add_argument("--seq-lens", default="16,32,64,128", help="comma-separated sequence lengths (default: 16,32,64,128)")
    bn.add_argument("--batches", default="1,8", help="comma-separated batch sizes (default: 1,8)")
    bn.add_argument("--warmup", type=int, default=5, help="untimed calls before each cell (default: 5)")
    bn.add_argument("--min-runs", type=int, default=50, help="timed calls per cell, at least (default: 50)")
    bn.add_argument("--min-seconds", type=float, default=1.0, help="timed seconds per cell, at least (default: 1)")
    bn.add_argument("--rounds", type=int, default=3,
                    help="split each cell's calls over this many rounds, each visiting every model and cell in a new "
                         "random order (default: 3)")
    bn.add_argument("--max-seconds", type=float, default=20.0, help="a slow cell stops here (default: 20)")
    bn.add_argument("--quick", action="store_true", help="smoke test: seq 32 and 128, batch 1, 1 thread, short cells")
    bn.add_argument("--in-process", action="store_true",
                    help="all models in this process (where subprocesses cannot start); peak RSS then per model only "
                         "where the OS can reset it")
    bn.add_argument("--no-gemm-peak", action="store_true", help="skip measuring the CPU's GEMM peak")
    bn.add_argument("--emulated", help="mark the timings as emulated, e.g. 'qemu-aarch64 -cpu cortex-a72'")
    bn.add_argument("--interpreter", default="auto", choices=["auto", "ai-edge-litert", "tflite-runtime"])
    pf = sub.add_parser("profile", help="time a candidates archive's student shapes on this device: a device profile "
                                        "for `bert-compress run --budget-ms MS --device-profile FILE`")
    pf.add_argument("candidates", help="candidates directory or .zip (from `bert-compress candidates`)")
    pf.add_argument("--out", default="device.json", help="profile to write (default: device.json)")
    pf.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    pf.add_argument("--seq-lens", default="32,64,128", help="comma-separated sequence lengths (default: 32,64,128; "
                                                            "three or more let the cost model place other lengths)")
    pf.add_argument("--threads", type=int, default=1, help="CPU threads the app will use (default: 1)")
    pf.add_argument("--device", help="this device's name, e.g. 'Pixel 7' (default: board or CPU)")
    pf.add_argument("--candidates", dest="names", help="comma-separated candidate names (default: all)")
    pf.add_argument("--min-seconds", type=float, help="timed seconds per cell, at least (default: 0.3)")
    pf.add_argument("--min-runs", type=int, help="timed calls per cell, at least (default: 20)")
    pf.add_argument("--emulated", help="mark the timings as emulated, e.g. 'qemu-aarch64 -cpu cortex-a72'")
    pf.add_argument("--isolate", action="store_true", help="each candidate in a fresh process (slower; default: "
                                                            "all in this one)")
    pf.add_argument("--interpreter", default="auto", choices=["auto", "ai-edge-litert", "tflite-runtime"])
    return p


def _texts(args) -> list[str]:
    texts = args.texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not texts:
        raise BundleError("no text given: pass texts as arguments or one per line on stdin")
    return texts


def _predict(args) -> int:
    texts = _texts(args)
    clf = Classifier(args.bundle, args.runtime, args.threads, args.interpreter)  # refuses an embedding bundle: use embed
    for note in clf.notes:
        print(f"note: {note}; used {clf.model.interpreter}", file=sys.stderr)
    for i, p in enumerate(clf.predict(texts)):
        if p.truncated:
            print(f"note: text {i + 1} is longer than the model's {clf.max_length} tokens: truncated to them",
                  file=sys.stderr)
        if args.json:
            print(json.dumps({"text": p.text, "label": p.label, "probabilities": p.probabilities, "logits": p.logits,
                              "tokens": p.tokens, "truncated": p.truncated, "model": clf.entry["file"]}, ensure_ascii=False))
        else:
            print(f"{p.label}\t{p.probabilities[p.label]:.4f}\t{p.text}")
    return 0


def _embed(args) -> int:
    texts = _texts(args)
    emb = Embedder(args.bundle, args.runtime, args.threads, args.interpreter)  # refuses a classifier bundle: use predict
    for note in emb.notes:
        print(f"note: {note}; used {emb.model.interpreter}", file=sys.stderr)
    vectors = emb.embed(texts)
    encodings = [emb.encode([t])[1][0] for t in texts]  # token counts and truncation, as predict reports them
    for i, e in enumerate(encodings):
        if e.truncated:
            print(f"note: text {i + 1} is longer than the model's {emb.max_length} tokens: truncated to them", file=sys.stderr)
    norms = np.linalg.norm(vectors.astype(np.float64), axis=1)
    similarity = cosine_matrix(vectors, vectors) if len(texts) > 1 else None
    if args.json:  # one document: the vectors and the matrix belong together
        print(json.dumps({"model": emb.entry["file"], "dim": emb.dim, "normalized": emb.normalized, "pooling": emb.pooling,
                          "texts": [{"text": t, "embedding": [float(x) for x in v], "norm": float(n), "tokens": len(e.input_ids),
                                     "truncated": e.truncated} for t, v, n, e in zip(texts, vectors, norms, encodings)],
                          **({"cosine_similarity": np.round(similarity, 6).tolist()} if similarity is not None else {})},
                         ensure_ascii=False))
        return 0
    for i, (t, v, n) in enumerate(zip(texts, vectors, norms)):
        head = ", ".join(f"{x:+.4f}" for x in v[:6]) + (", ..." if len(v) > 6 else "")
        print(f"[{i + 1}] dim {emb.dim}, norm {n:.4f}: [{head}]\t{t}")
    if similarity is not None:
        print("cosine similarity:")
        print("     " + "".join(f"{f'[{j + 1}]':>8}" for j in range(len(texts))))
        for i, row in enumerate(similarity):
            print(f"{f'[{i + 1}]':<5}" + "".join(f"{x:8.4f}" for x in row))
    return 0


def _ner(args) -> int:
    texts = _texts(args)
    tagger = Tagger(args.bundle, args.runtime, args.threads, args.interpreter)  # refuses other bundles: names theirs
    for note in tagger.notes:
        print(f"note: {note}; used {tagger.model.interpreter}", file=sys.stderr)
    for i, t in enumerate(tagger.tag(texts, args.aggregation)):
        if t.truncated:
            print(f"note: text {i + 1} is longer than the model's {tagger.max_length} tokens: only its start is tagged",
                  file=sys.stderr)
        if args.json:
            print(json.dumps({"text": t.text, "entities": [e.to_dict() for e in t.entities], "tokens": t.tokens,
                              "truncated": t.truncated, "aggregation": args.aggregation, "model": tagger.entry["file"]},
                             ensure_ascii=False))
            continue
        if len(texts) > 1:
            print(f"[{i + 1}] {t.text}")
        if not t.entities:
            print("(no entities)")
        for e in t.entities:
            print(f"{e.entity_group}\t{e.start}-{e.end}\t{e.score:.4f}\t{e.word}")
    return 0


def _check(args) -> int:
    from targets.check import CheckSet, check_model

    bundle = Bundle.load(args.bundle)
    checks = CheckSet.load(bundle)
    if args.rows < 0:
        raise BundleError("--rows must be 0 (all) or more")
    if args.rows:
        checks = checks.subset(args.rows)
    entries = bundle.metadata["models"] if args.runtime == "all" else [bundle.model_entry(args.runtime)]
    failed, skipped = 0, []
    for entry in entries:
        try:
            r = check_model(bundle, entry, checks, args.threads)
        except RuntimeMissing as exc:  # the file may be fine: this device lacks its runtime
            skipped.append(_skipped(entry, exc, args.json))
            continue
        failed += not r.passed
        print(json.dumps(r.as_dict()) if args.json else r.summary())
    return _ran_any(len(entries), skipped) or (1 if failed else 0)


def _skipped(entry: dict, exc: RuntimeMissing, as_json: bool) -> RuntimeMissing:
    """One line for a model whose runtime is not installed here: what to install."""
    print(json.dumps({"file": entry["file"], "skipped": str(exc), "install": exc.install}) if as_json
          else f"{entry['file']}: skipped: {exc}")
    return exc


def _ran_any(models: int, skipped: list[RuntimeMissing]) -> int:
    """0 when a model of the `models` ran; when every one was skipped, the one line of what to install (exit 2)."""
    if models and len(skipped) == models:
        raise RuntimeMissing("none of the bundle's models can run here: "
                             + "; ".join(sorted({e.install for e in skipped})), skipped[0].install)
    return 0


def _info(args) -> int:
    b = Bundle.load(args.bundle)
    m = b.metadata
    spec = m.get("embedding") if task_of(b).get("postprocess") == Embedder.POSTPROCESS else None
    what = (f"embedding dim {spec.get('dim')} ({spec.get('pooling')} pooling, "
            f"{'normalized' if spec.get('normalized') else 'not normalized'})" if isinstance(spec, dict)
            else f"labels {', '.join(b.labels)}")
    print(f"bundle {b.root}: {what}; max length {m['max_length']}; teacher {(m.get('teacher') or {}).get('checkpoint')}")
    for e in m["models"]:
        shape = f"buckets {e['buckets']}" if e.get("buckets") else "dynamic batch × sequence"
        score = e.get("test_quality", e.get("test_accuracy"))  # the task's metric on test (older bundles: test_accuracy)
        print(f"  {e['file']}: {e['runtime']}, {e['precision']}, {shape}, {e['size_bytes'] / 1e6:.2f} MB"
              + (f", test {m.get('metric', 'accuracy')} {100 * score:.2f}%" if score is not None else ""))
    return 0


def _bench(args) -> int:
    import os
    from pathlib import Path

    from targets.bench import (Grid, Timing, bench_many, best_peak, default_threads, embedding_quality, file_job,
                               gemm_peak, parse_ints, results_document, write_results)
    from targets.env import environment

    out = Path(args.out)
    if out.exists() and not args.force:
        raise BenchError(f"{out} exists: pass --force to overwrite it, or choose another --out")
    if not out.parent.is_dir() or not os.access(out.parent, os.W_OK):
        raise BenchError(f"cannot write {out}: its directory does not exist or is not writable")
    bundle = Bundle.load(args.bundle)
    meta = bundle.metadata
    entries = meta["models"]
    if args.models:
        wanted = [m.strip() for m in args.models.split(",") if m.strip()]
        unknown = [w for w in wanted if w not in {e["file"] for e in entries}]
        if unknown:
            raise BundleError(f"bundle has no model {', '.join(unknown)}; it has {', '.join(e['file'] for e in entries)}")
        entries = [e for e in entries if e["file"] in wanted]
    skipped = []
    for e in list(entries):  # a model whose runtime is not installed here: one line, the others are timed
        cause = missing_runtime(e["file"], args.interpreter)
        if cause is not None:
            skipped.append((e["file"], _skipped(e, cause, False)))
            entries.remove(e)
    _ran_any(len(entries) + len(skipped), [c for _, c in skipped])
    if args.quick:
        grid = Grid(threads=[1], seq_lens=[32, 128], batches=[1])
        timing = Timing(warmup=3, min_runs=20, min_s=0.2, max_s=5, rounds=1)
    else:
        grid = Grid(threads=parse_ints(args.threads, "--threads") if args.threads else default_threads(),
                    seq_lens=parse_ints(args.seq_lens, "--seq-lens"), batches=parse_ints(args.batches, "--batches"))
        if args.min_runs < 3 or args.min_seconds < 0 or args.max_seconds <= 0 or args.warmup < 0 or args.rounds < 1:
            raise BenchError("--min-runs must be at least 3, --rounds at least 1, --min-seconds and --warmup at least 0, "
                             "--max-seconds above 0")
        timing = Timing(warmup=args.warmup, warmup_s=min(0.2, args.min_seconds), min_runs=args.min_runs,
                        min_s=args.min_seconds, max_s=max(args.max_seconds, args.min_seconds), rounds=args.rounds)
    max_length = int(meta["max_length"])
    grid.seq_lens = [s for s in grid.seq_lens if s <= max_length] if not args.quick else [min(s, max_length) for s in grid.seq_lens]
    if not grid.seq_lens:
        raise BenchError(f"every --seq-lens value is above the bundle's max length ({max_length})")
    arch = (meta.get("student") or {}).get("architecture")
    embedding = task_of(bundle).get("postprocess") == Embedder.POSTPROCESS
    if arch and embedding:  # no pooler or classifier head: pooling is no matrix product
        arch = arch | {"head": False}
    vocab = meta["tokenizer"].get("vocab_size") or len(bundle.tokenizer().vocab)
    jobs = [file_job(bundle.model_path(e), grid, vocab, e["file"], arch, args.interpreter, isolate=not args.in_process)
            for e in entries]
    gemm_before = None if args.no_gemm_peak else gemm_peak(grid.threads)
    models = []
    timings = bench_many(jobs, timing)
    # an embedding bundle has no labels: what stands for label agreement is the mean cosine with the PyTorch
    # student's vectors, measured here after the timings (so it does not touch them)
    quality = embedding_quality(bundle, entries) if embedding else {}
    for e, timed in zip(entries, timings):
        # one artifact can ship twice (model.onnx and its model.ort twin): the file tells them apart
        name = f"{e['file']} ({e['artifact']})" if e.get("artifact") else e["file"]
        models.append({"name": name, "artifact": e.get("artifact"), "file": e["file"], "role": "artifact", "shipped": True,
                       "runtime": e["runtime"], "format": e["format"], "precision": e.get("precision"),
                       "compute": e.get("compute", "fp32"), "quality": e.get("test_quality", e.get("test_accuracy")),
                       "quality_measured_on": "the build machine (bundle metadata)", "arch": arch,
                       **quality.get(e["file"], {}), **timed})
    gemm = None if args.no_gemm_peak else best_peak(gemm_before, gemm_peak(grid.threads))
    device = environment() | {"name": args.device, "emulated": args.emulated}
    command = "python -m targets " + " ".join(args.argv)
    doc = results_document(device, models, grid, timing, command, gemm,
                           {"bundle": {"path": str(args.bundle), "recipe": meta.get("recipe"), "created": meta.get("created"),
                                       "teacher": meta.get("teacher"), "student": meta.get("student"),
                                       "skipped": [{"file": f, "reason": str(c)} for f, c in skipped]}})
    write_results(doc, out)
    ref_seq, ref_threads = (128 if 128 in grid.seq_lens else max(grid.seq_lens)), min(grid.threads)
    for m in models:
        c = next(c for c in m["latency"] if c["seq_len"] == ref_seq and c["threads"] == ref_threads and c["batch"] == grid.batches[0])
        print(f"{m['file']}\t{m['runtime']}\tseq {ref_seq}, {ref_threads} thread, batch {grid.batches[0]}: p50 {c['p50_ms']} ms, "
              f"p99 {c['p99_ms']} ms; load {m['load_s']:.3f} s; peak RSS {m['peak_rss_bytes'] / 1e6:.0f} MB")
    print(f"results: {out} (merge with `bert-compress report {out} ... --out DIR`)")
    return 0


def _profile(args) -> int:
    import shlex
    from dataclasses import replace
    from pathlib import Path

    from targets.bench import parse_ints
    from targets.env import environment
    from targets.profile import PROFILE_TIMING, Candidates, default_out_check, profile, profile_document, write_profile

    out = Path(args.out)
    default_out_check(out, args.force)
    if args.threads < 1:
        raise BenchError("--threads must be 1 or more")
    seq_lens = parse_ints(args.seq_lens, "--seq-lens")
    timing = PROFILE_TIMING
    if args.min_seconds is not None or args.min_runs is not None:
        if (args.min_seconds is not None and args.min_seconds < 0) or (args.min_runs is not None and args.min_runs < 3):
            raise BenchError("--min-seconds must be at least 0 and --min-runs at least 3")
        timing = replace(timing, min_s=timing.min_s if args.min_seconds is None else args.min_seconds,
                         min_runs=timing.min_runs if args.min_runs is None else args.min_runs)
    cands = Candidates.load(args.candidates)
    names = [n.strip() for n in args.names.split(",") if n.strip()] if args.names else None
    rows = profile(cands, seq_lens, args.threads, timing, names, args.interpreter, args.isolate)
    device = environment() | {"name": args.device, "emulated": args.emulated}
    doc = profile_document(cands, rows, seq_lens, args.threads, device, "python -m targets " + shlex.join(args.argv), timing)
    write_profile(doc, out)
    ref = str(max(seq_lens))
    fastest = min(rows, key=lambda r: r["latency"][ref]["p50_ms"])
    slowest = max(rows, key=lambda r: r["latency"][ref]["p50_ms"])
    print(f"profiled {len(rows)} candidates at seq {', '.join(map(str, seq_lens))}, {args.threads} thread(s): seq {ref} "
          f"p50 {fastest['latency'][ref]['p50_ms']} ms ({fastest['name']}) .. {slowest['latency'][ref]['p50_ms']} ms "
          f"({slowest['name']})")
    print(f"profile: {out} (use it with `bert-compress run --budget-ms MS --device-profile {out}`)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    # texts may come after the options (argparse gives its '*' positional nothing once an option intervenes)
    unknown = [e for e in extra if e.startswith("-") and len(e) > 1]
    if unknown or (extra and args.command not in ("predict", "embed", "ner")):
        parser.error(f"unrecognized arguments: {' '.join(unknown or extra)}")
    if args.command in ("predict", "embed", "ner"):
        args.texts = args.texts + extra
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return {"predict": _predict, "embed": _embed, "ner": _ner, "check": _check, "info": _info, "bench": _bench,
                "profile": _profile}[args.command](args)
    except (BundleError, RuntimeLoadError, TokenizerError, BenchError, ProfileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
