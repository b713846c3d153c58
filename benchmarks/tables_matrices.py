"""Tables of the benchmark scripts' matrices: quantization backends (matrix, A/B, both side by side), distillation
throughput and losses, the compression matrix and its data points, ALBERT-style students, one recipe over seeds."""

from __future__ import annotations

import re
import statistics
from pathlib import Path

from tables_common import p50_at  # noqa: F401 (compress.bench.cells: the one cell lookup)
from tables_common import RUNTIMES, DocError, code, commands_of, env_line, load, mb, ms, num, ratio


# ---- benchmarks/quantize_matrix.py ---------------------------------------------------------------------------
BASELINE = "quantize_dynamic defaults (baseline)"


def render_quantize_matrix(paths: list[str]) -> list[str]:
    if len(paths) != 1:
        raise DocError("quantize-matrix renders one file")
    doc = load(paths[0])
    threads, seqs = doc.get("threads") or [1], doc.get("seq_lens") or [128]
    grid = [(t, s) for t in threads for s in seqs]
    rows = doc.get("rows", [])
    fp32_acc = (doc.get("fp32") or {}).get("test_accuracy")

    def runs(r):
        return tuple(c.get("runs") for c in r.get("latency") or [])

    def cell(r, t, s):
        return p50_at(r.get("latency") or [], s, t)

    base = next((r for r in rows if r.get("name") == BASELINE), None)
    longest, few, many = max(seqs), min(threads), max(threads)
    vs = f"vs `quantize_dynamic` defaults, {few}t / {many}t, seq {longest}"
    lines = ["| artifact | runtime | MB | test acc % | test drop (points) | dev label agreement | "
             + " | ".join(f"p50 {t}t / seq {s}" for t, s in grid) + f" | calls per cell | {vs} |",
             "|---|---|---:|---:|---:|---:|" + "---:|" * len(grid) + "---:|---:|"]
    for r in rows:
        if r.get("error"):
            lines.append(f"| {r.get('name')} | failed: {r['error'][:80]} |" + " |" * (6 + len(grid)))
            continue
        same_run = base is not None and runs(r) == runs(base)
        up = (f"{ratio(cell(base, few, longest), cell(r, few, longest))} / {ratio(cell(base, many, longest), cell(r, many, longest))}"
              if same_run and r["runtime"] == "onnxruntime" else ("other run" if r["runtime"] == "onnxruntime" else "—"))
        calls = sorted({c for c in runs(r) if c})
        lines.append(f"| {r['name']} | {RUNTIMES.get(r['runtime'], r['runtime'])} | {mb(r.get('size_bytes'))} | "
                     f"{num(r.get('test_accuracy') and 100 * r['test_accuracy'], '{:.2f}')} | {num(r.get('test_drop_points'), '{:.2f}')} | "
                     f"{num(r.get('label_agreement_dev'), '{:.3f}')} | " + " | ".join(ms(cell(r, t, s)) for t, s in grid)
                     + f" | {', '.join(map(str, calls)) or '—'} | {up} |")
    note = (f"fp32 student test accuracy {num(fp32_acc and 100 * fp32_acc, '{:.2f}')}%; p50 of batch 1, full-length inputs. "
            "Speed-ups only between rows timed in the same run (the same calls per cell as the baseline row).")
    return lines + ["", f"From `{paths[0]}`. " + env_line(doc.get("environment"), commands_of(doc), note)]


# ---- benchmarks/quantize_ab.py -------------------------------------------------------------------------------
def render_quantize_ab(paths: list[str]) -> list[str]:
    if len(paths) != 1:
        raise DocError("quantize-ab renders one file")
    doc = load(paths[0])
    runs = doc.get("runs", [])
    lines = [f"| model | seq | p50 ms per repeat | speed-up per repeat | speed-up, median of {doc.get('repeats', '?')} |",
             "|---|---:|---|---|---:|"]
    for seq in sorted({r["seq_len"] for r in runs}):
        mine = [r for r in runs if r["seq_len"] == seq]
        for name in mine[0]["p50_ms"]:
            ups = [r["speedup"][name] for r in mine]
            p50s = ", ".join("{:.2f}".format(r["p50_ms"][name]) for r in mine)
            lines.append(f"| {name} | {seq} | {p50s} | {', '.join(f'{u:.2f}×' for u in ups)} | {statistics.median(ups):.2f}× |")
    note = (f"{doc.get('threads', 1)} thread, batch 1, full-length inputs; each repeat: {doc.get('iters', '?')} calls of "
            "every model, the models called in alternation.")
    return lines + ["", f"From `{paths[0]}`. " + env_line(doc.get("environment"), commands_of(doc), note)]


# ---- the two measurements of the int8 ONNX speed-up, side by side ---------------------------------------------
def render_quantize_compare(paths: list[str]) -> list[str]:
    """quantize_ab.json (paired A/B) and quantize_matrix.json (interleaved rounds): the speed-up over the
    `quantize_dynamic` baseline of the models both measured, at 1 thread and the longest sequence."""
    if len(paths) != 2:
        raise DocError("quantize-compare takes the A/B file, then the matrix file")
    ab, mx = load(paths[0]), load(paths[1])
    seq = max(r["seq_len"] for r in ab.get("runs", []))
    mine = [r for r in ab["runs"] if r["seq_len"] == seq]
    names = [n for n in mine[0]["speedup"] if n != BASELINE]
    rows = {r["name"]: r for r in mx.get("rows", [])}

    def p50(r):
        return p50_at(r.get("latency") or [], seq, 1)

    def runs(r):
        return tuple(c.get("runs") for c in r.get("latency") or [])

    base = rows.get(BASELINE)
    head = "| method | results file | " + " | ".join(names) + " |"
    lines = [head, "|---|---|" + "---:|" * len(names)]
    ab_ups = [statistics.median([r["speedup"][n] for r in mine]) for n in names]
    lines.append(f"| paired A/B: models loaded once, called in alternation; median of {len(mine)} repeats of "
                 f"{ab.get('iters', '?')} calls each | `{paths[0]}` | " + " | ".join(f"{u:.2f}×" for u in ab_ups) + " |")
    calls = sorted({c for c in runs(base) if c}) if base else []
    mx_ups = [ratio(p50(base), p50(rows[n])) if base and n in rows and runs(rows[n]) == runs(base) else "not in the same run"
              for n in names]
    lines.append(f"| interleaved rounds: {', '.join(map(str, calls))} calls per cell, rows in a new random order each "
                 f"round; ratio of p50s | `{paths[1]}` | " + " | ".join(mx_ups) + " |")
    outs = {m.group(1) for c in commands_of(ab) + commands_of(mx) for m in [re.search(r"--out (\S+)", c)] if m}
    cpus = {(d.get("environment") or {}).get("cpu") for d in (ab, mx)}
    same = ("both files from the same OUT" if len(outs) == 1 else "from different OUTs") + (
        f" and CPU ({cpus.pop()})" if len(cpus) == 1 else ", on different CPUs")
    return lines + ["", f"Speed-up over `{BASELINE}` at 1 thread, seq {seq}, batch 1, full-length inputs; {same}. Commands: "
                    + "; ".join(code(c) for c in commands_of(ab) + commands_of(mx)) + "."]


# ---- benchmarks/distill_throughput.py ------------------------------------------------------------------------
def render_distill_throughput(paths: list[str]) -> list[str]:
    if len(paths) != 1:
        raise DocError("distill-throughput renders one file")
    doc = load(paths[0])
    lines = ["| recipe | processes | cache | train samples/s, median (rounds) | vs 1 process, no cache | cache build s | "
             "cache MB | dev accuracy |", "|---|---:|---|---:|---:|---:|---:|---:|"]
    for recipe, cells in doc.get("results", {}).items():
        base = (cells.get("1-off") or {}).get("median", {}).get("samples_per_second")
        for key, c in cells.items():
            m = c.get("median", {})
            nproc, cache = key.split("-", 1)
            rounds = ", ".join(f"{r['samples_per_second']:.0f}" for r in c.get("rounds", []))
            sps = m.get("samples_per_second")
            lines.append(f"| {recipe} | {nproc} | {cache} | {num(sps, '{:.0f}')} ({rounds}) | {ratio(sps, base)} | "
                         f"{num(m.get('cache_build_seconds') or None)} | {mb(m.get('cache_bytes'))} | {num(m.get('dev_accuracy'), '{:.3f}')} |")
    full = doc.get("full_train_cache") or {}
    if full:
        lines += ["", "Cache for the whole train split, from its row lengths: " + "; ".join(
            f"{recipe}: {f['rows']:,} rows, {f['holds']}, {f['bytes']['float16'] / 1e6:.0f} MB float16 "
            f"({f['bytes']['float32'] / 1e6:.0f} MB float32)" for recipe, f in full.items()) + "."]
    note = (f"{doc.get('rows', '?')} training rows, one epoch per stage, a fresh OUT per cell (a cached cell pays for "
            f"building its cache); median of {doc.get('rounds', '?')} interleaved rounds.")
    return lines + ["", f"From `{paths[0]}`. " + env_line(doc.get("environment"), commands_of(doc), note)]


# ---- benchmarks/distill_matrix.py (several files: seeds side by side) ----------------------------------------
def render_distill_matrix(paths: list[str]) -> list[str]:
    docs = [load(p) for p in paths]
    rows = [r for d in docs for r in d.get("rows", [])]
    seeds = sorted({r.get("seed", 42) for r in rows}, key=lambda s: (s != 42, s))
    keys = list(dict.fromkeys((r["student"], r.get("shape", ""), r["variant"]) for r in rows))
    lines = ["| student | losses | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |",
             "|---|---|" + "---:|" * (len(seeds) + 1)]
    for student, shape, variant in keys:
        mine = {r.get("seed", 42): r for r in rows if (r["student"], r.get("shape", ""), r["variant"]) == (student, shape, variant)}
        stages = " → ".join(f"{s['name']} ({s['epochs']} ep): {' + '.join(s['losses'])}" for s in next(iter(mine.values()))["stages"])
        vals = [mine[s]["pct_of_teacher"] if s in mine else None for s in seeds]
        have = [v for v in vals if v is not None]
        mean = f"{statistics.mean(have):.2f}" if len(have) > 1 else "—"
        lines.append(f"| {student} {shape} | {variant}: {stages} | " + " | ".join(num(v, "{:.2f}") for v in vals) + f" | {mean} |")
    teachers = {f"{100 * d['teacher']['test_accuracy']:.2f}%" for d in docs if d.get("teacher")}
    note = f"Test accuracy as % of the fine-tuned teacher's ({', '.join(sorted(teachers))})."
    envs = [d.get("environment") for d in docs]
    env = env_line(envs[0], [c for d in docs for c in commands_of(d)], note) if all(e == envs[0] for e in envs) else note
    return lines + ["", f"From {', '.join(f'`{p}`' for p in paths)}. " + env]


# ---- benchmarks/compression_matrix.py ---------------------------------------------------------------------------
# issue 21's targets; x_smaller applies to the LiteRT artifact
MATRIX_TARGETS = {"x_eager_teacher": 20.0, "x_onnx_teacher": 8.0, "pct_of_teacher": 98.0, "x_smaller": 30.0}


def matrix_verdict(r: dict) -> dict:
    """One point of the compression matrix against issue 21's targets: the fastest shipped ONNX model (int8 when the
    guard kept one), the fp32 ONNX model (what the architecture alone gives), the LiteRT int8 file when kept."""
    models = {m["name"]: m for m in r["models"]}
    onnx = [m for m in r["models"] if m["runtime"] == "onnxruntime" and m["p50_ms"]]
    best = min(onnx, key=lambda m: m["p50_ms"])
    fp32 = models.get("student-onnx-fp32-ort-opt") or models.get("student-onnx-fp32")
    litert = next((m for m in r["models"] if m["runtime"] == "litert" and m["precision"] != "fp32"), None)
    litert_fp32 = next((m for m in r["models"] if m["runtime"] == "litert" and m["precision"] == "fp32"), None)
    misses = []
    t = MATRIX_TARGETS
    if best["x_eager_teacher"] < t["x_eager_teacher"]:
        misses.append(f"eager {best['x_eager_teacher']:.1f}× < {t['x_eager_teacher']:.0f}×")
    if best["x_onnx_teacher"] < t["x_onnx_teacher"]:
        misses.append(f"ONNX {best['x_onnx_teacher']:.1f}× < {t['x_onnx_teacher']:.0f}×")
    if best["pct_of_teacher"] < t["pct_of_teacher"]:
        misses.append(f"accuracy {best['pct_of_teacher']:.1f}% < {t['pct_of_teacher']:.0f}%")
    lite = litert or litert_fp32
    if lite is None or lite["x_smaller"] < t["x_smaller"]:
        misses.append("LiteRT " + (f"{lite['x_smaller']:.1f}× < {t['x_smaller']:.0f}× smaller" + ("" if litert else " (int8 rejected by the guard)")
                                   if lite else "not exported"))
    return {"best": best, "fp32": fp32, "litert": lite, "litert_int8": litert is not None, "misses": misses}


def render_compression_matrix(paths: list[str]) -> list[str]:
    docs = [load(p) for p in paths]
    lines = ["| point | shape | init | vocab | losses | epochs | seed | fastest ONNX model | p50 ms | × eager teacher | "
             "× ONNX teacher | % of teacher acc | fp32 ONNX × eager / × ONNX | LiteRT MB (× smaller) | targets missed |",
             "|---|---|---|---|---|---:|---:|---|---:|---:|---:|---:|---|---|---|"]
    for d in docs:
        for r in d["rows"]:
            v = matrix_verdict(r)
            b, f, lite = v["best"], v["fp32"], v["litert"]
            lite_cell = "—" if lite is None else f"{lite['size_bytes'] / 1e6:.2f} ({lite['x_smaller']:.1f}×)" + ("" if v["litert_int8"] else " fp32")
            lines.append(f"| {r['point']} | {r['shape']} | {r['init']} | {r['vocabulary']} | {' + '.join(r['losses'])} | "
                         f"{r['epochs']} | {r['seed']} | {b['name']} | {b['p50_ms']} | {b['x_eager_teacher']:.1f} | "
                         f"{b['x_onnx_teacher']:.1f} | {b['pct_of_teacher']:.1f} | {f['x_eager_teacher']:.1f} / {f['x_onnx_teacher']:.1f} | "
                         f"{lite_cell} | {'; '.join(v['misses']) or 'none'} |")
    teachers = sorted({f"{100 * r['teacher']['test_accuracy']:.2f}%" for d in docs for r in d["rows"]})
    note = (f"Teacher test accuracy {', '.join(teachers)}; seq 128, batch 1, 1 thread; every speed-up is against the "
            "teacher timed in the same point's bench run.")
    envs = [d.get("environment") for d in docs]
    env = env_line(envs[0], [c for d in docs for c in d.get("commands", [d.get("command")])], note) if all(e == envs[0] for e in envs) else note
    return lines + seed_spread([r for d in docs for r in d["rows"]]) + ["", f"From {', '.join(f'`{p}`' for p in paths)}. " + env]


def seed_spread(rows: list[dict]) -> list[str]:
    """Points run with several seeds: the PyTorch student's test accuracy (% of the teacher's) per seed."""
    by_point: dict[str, dict[int, float]] = {}
    for r in rows:
        by_point.setdefault(r["point"], {})[r["seed"]] = r["models"][0]["pct_of_teacher"]
    several = {p: seeds for p, seeds in by_point.items() if len(seeds) > 1}
    if not several:
        return []
    lines = ["", "Over seeds (the PyTorch student's test accuracy, % of the teacher's):", "",
             "| point | seeds | % of teacher per seed | mean | range |", "|---|---|---|---:|---:|"]
    for point, seeds in several.items():
        pcts = [seeds[k] for k in sorted(seeds)]
        lines.append(f"| {point} | {', '.join(map(str, sorted(seeds)))} | {', '.join(f'{v:.2f}' for v in pcts)} | "
                     f"{sum(pcts) / len(pcts):.2f} | {max(pcts) - min(pcts):.2f} |")
    return lines


# ---- benchmarks/albert_matrix.py (several files) -------------------------------------------------------------
def render_albert(paths: list[str]) -> list[str]:
    lines = ["| results file | sharing | E | vocabulary | embedding bits | params | ONNX int8 MB | teacher fp32 / int8 file | "
             "p50 ms fp32 / int8 | SVD error | test % of teacher, fp32 / int8 | distill s |", "|---|---|---|---:|---:|---:|---:|---:|---|---:|---|---:|"]
    docs = [load(p) for p in paths]
    for path, d in zip(paths, docs):
        for r in d.get("rows", []):
            acc = f"{r['pct_of_teacher']} / {r['int8_pct_of_teacher']}" if "pct_of_teacher" in r else "not trained"
            lat = f"{ms(r.get('p50_ms_fp32'))} / {ms(r.get('p50_ms_int8'))}" if r.get("p50_ms_fp32") else "not timed"
            lines.append(f"| `{Path(path).stem}` | {r['sharing']} | {r['embedding_size']} | {r.get('vocab_size', 30522):,} | "
                         f"{r.get('embedding_bits', 8)} | {r['params']:,} | {r['onnx_int8_bytes'] / 1e6:.2f} | {r['teacher_over_int8']}× | "
                         f"{lat} | {num(r.get('svd_relative_error'), '{:.2f}')} | {acc} | {num(r.get('distill_seconds'), '{:.0f}')} |")
    teachers = {f"{d['teacher']['fp32_bytes'] / 1e6:.2f} MB fp32, test accuracy {100 * d['teacher']['test_accuracy']:.2f}%" for d in docs}
    note = (f"Teacher: {'; '.join(sorted(teachers))}. E = H is the teacher's table truncated to the student's width; "
            "p50 at seq 128, batch 1, 1 thread.")
    envs = [d.get("environment") for d in docs]
    env = env_line(envs[0], [], note).removesuffix(" Command: not recorded in this file.") if all(e == envs[0] for e in envs) else note
    return lines + ["", env + " Commands: in each file (`command`)."]




def default_seeds_rows(result: dict) -> list[str]:
    """One recipe's run over seeds (benchmarks/default_seeds.py): per seed what the teacher reached, what the student
    was distilled on, what the shipped model keeps of the teacher (with its bootstrap interval), its speed-ups
    measured in that run's bench, and the run's wall time; then mean and min."""
    rows = result["rows"]
    quality = rows[0].get("quality_name", "test acc")
    words = "test accuracy" if quality == "test acc" else f"test {quality}"
    lines = [f"| seed | teacher {quality} % | teacher dev curve % | rows distilled on | distill steps (stopped by) | "
             "student fp32 % of teacher (95% interval) | shipped model | shipped % of teacher (95% interval) | "
             "× eager teacher | × ONNX teacher | × smaller | wall s |",
             "|---:|---:|---|---:|---|---|---|---|---:|---:|---:|---:|"]
    for r in rows:
        iv, siv = r["shipped_pct_interval"], r["student_pct_interval"]
        lines.append(
            f"| {r['seed']} | {100 * r['teacher_test_accuracy']:.2f} | "
            f"{' → '.join(f'{100 * d:.1f}' for d in r['teacher_dev_curve']) or '—'} | {r['rows_distilled']['total']:,} | "
            f"{', '.join(f'{n:,} ({w})' for n, w in zip(r['distill_steps'], r['distill_stopped']))} | "
            f"{r['student_pct_of_teacher']:.2f}" + (f" ({siv[0]:.1f}–{siv[1]:.1f})" if siv else "") + f" | `{r['shipped']}` | "
            f"{r['shipped_pct_of_teacher']:.2f}" + (f" ({iv[0]:.1f}–{iv[1]:.1f})" if iv else "")
            + f" | {r['x_eager_teacher']} | {r['x_onnx_teacher']} | {r['x_smaller']} | {r['wall_seconds']:.0f} |")
    pcts = [r["shipped_pct_of_teacher"] for r in rows]
    return lines + ["", f"Shipped model, % of the teacher's {words}: mean {statistics.mean(pcts):.2f}, min {min(pcts):.2f}; "
                    f"× the eager teacher: min {min(r['x_eager_teacher'] for r in rows)}; × the ONNX Runtime fp32 teacher: "
                    f"min {min(r['x_onnx_teacher'] for r in rows)} (seq {rows[0]['seq_len']}, batch 1, {rows[0]['threads']} "
                    f"thread, the teacher timed in each run's own bench); slowest run {max(r['wall_seconds'] for r in rows):.0f} s "
                    f"({rows[0]['wall_from']})."]


def render_default_seeds(paths: list[str]) -> list[str]:
    out = []
    for path in paths:
        d = load(path)
        out += default_seeds_rows(d) + ["", f"From `{path}` (reports: {', '.join(f'`{r}`' for r in d['reports'])}). "
                                        + env_line(d["environment"], [d["command"], d["summary_command"]])]
    return out


def data_matrix_rows(rows: list[dict], steps: int | None = None) -> list[str]:
    """Compression-matrix points distilled on other data (issue 34): the distilled student's test accuracy as % of
    the teacher's per seed (with its bootstrap interval), mean and min, and what the rows cost."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if r.get("data"):
            groups.setdefault((r["point"].partition("+")[0], r["data"]), []).append(r)
    if not groups:
        return []
    lines = ["| point | data | rows distilled on | seeds | % of teacher per seed (95% interval) | mean | min | "
             "dev accuracy % (mean) | distill s (mean) |", "|---|---|---:|---|---|---:|---:|---:|---:|"]
    for (base, data), rs in groups.items():
        pcts = [r["student"]["pct_of_teacher"] for r in rs]
        per_seed = ", ".join(f"{r['student']['pct_of_teacher']:.2f}" + (
            f" ({r['student']['pct_interval'][0]:.1f}–{r['student']['pct_interval'][1]:.1f})"
            if r["student"].get("pct_interval") else "") for r in rs)
        lines.append(f"| {base} | {data} | {rs[0]['rows_distilled']:,} | {', '.join(str(r['seed']) for r in rs)} | {per_seed} | "
                     f"{sum(pcts) / len(pcts):.2f} | {min(pcts):.2f} | "
                     f"{100 * sum(r['dev_accuracy'] for r in rs) / len(rs):.2f} | "
                     f"{sum(r['stage_seconds']['distill'] for r in rs) / len(rs):.0f} |")
    return lines


def render_data_matrix(paths: list[str]) -> list[str]:
    docs = [load(p) for p in paths]
    rows = [r for d in docs for r in d["rows"]]
    teachers = sorted({f"{100 * r['teacher']['test_accuracy']:.2f}%" for r in rows if r.get("data")})
    note = f"Teacher test accuracy {', '.join(teachers)}; the student in PyTorch fp32 on the test split."
    env = env_line(docs[0].get("environment"), [c for d in docs for c in d.get("commands", [d.get("command")])], note)
    return data_matrix_rows(rows) + ["", f"From {', '.join(f'`{p}`' for p in paths)}. " + env]


def render_ner_variants(paths: list[str]) -> list[str]:
    """benchmarks/ner_matrix.py: each variant of the `ner` recipe over its seeds: the student's shape and rows, its test
    entity F1 as a share of the teacher fine-tuned in the same run (mean / min), the shipped file's share and speed-up
    against the eager teacher, and the int8 files' worst distance from their fp32 student in F1 points."""
    lines = ["| variant | student | rows: general / tagged + variants | seeds | teacher entity F1 % (mean) | "
             "student entity F1 % (mean / min) | student % of teacher (mean / min) | shipped % of teacher (mean / min) | "
             "int8 − fp32, F1 points (worst) | × eager teacher, shipped (min) | distill s (mean) |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for path in paths:
        doc = load(path)
        for variant, v in doc["summary"].items():
            rows = [r for r in doc["rows"] if r["variant"] == variant]
            shape = rows[0]["student_shape"]
            worst = min(d for r in rows for d in r["int8_minus_fp32_points"].values())
            distill = statistics.mean(r["stage_seconds"]["distill"] for r in rows)
            lines.append(
                f"| {variant} | {shape['layers']} × {shape['hidden_size']}, {shape['heads']} heads, FFN "
                f"{shape['intermediate_size']} | {rows[0]['rows']['general'] or 0:,} / {rows[0]['rows']['task']:,} | "
                f"{len(rows)} | {100 * v['teacher_f1_mean']:.1f} | {100 * v['student_f1_mean']:.1f} / "
                f"{100 * v['student_f1_min']:.1f} | {100 * v['student_of_teacher_mean']:.1f} / "
                f"{100 * v['student_of_teacher_min']:.1f} | {100 * v['shipped_of_teacher_mean']:.1f} / "
                f"{100 * v['shipped_of_teacher_min']:.1f} | {worst:+.2f} | {v['x_eager_teacher_min']:.1f} | {distill:.0f} |")
    return lines + ["", "Test split (239 tweets, 174 entities: one entity is about half a point of F1); each run's "
                    "teacher fine-tuned with the run's seed; speed-up at seq 128, batch 1, 1 thread, in the run's own "
                    "bench. From " + ", ".join(f"`{p}`" for p in paths) + ". "
                    + env_line(load(paths[0]).get("environment"), [c for p in paths for c in commands_of(load(p))])]


def render_ner_types(paths: list[str]) -> list[str]:
    """benchmarks/ner_matrix.py: test entity F1 per type (mean over seeds) of each variant's student and the teacher."""
    doc = load(paths[0])
    types = sorted(doc["rows"][0]["teacher_types"])
    support = doc["rows"][0].get("support") or {}
    lines = ["| model | " + " | ".join(f"{t} ({support[t]})" if t in support else t for t in types) + " |",
             "|---|" + "---:|" * len(types)]
    teacher = {t: statistics.mean(r["teacher_types"][t] for r in doc["rows"]) for t in types}
    lines.append("| teacher | " + " | ".join(f"{100 * teacher[t]:.1f}" for t in types) + " |")
    for variant in doc["summary"]:
        rows = [r for r in doc["rows"] if r["variant"] == variant]
        lines.append(f"| {variant} | " + " | ".join(f"{100 * statistics.mean(r['types'][t] for r in rows):.1f}" for t in types) + " |")
    return lines + ["", f"Entity F1 % per type on test (its gold entities in brackets), the PyTorch students, mean over seeds "
                    f"{', '.join(str(s) for s in dict.fromkeys(r['seed'] for r in doc['rows']))}. From `{paths[0]}`."]
