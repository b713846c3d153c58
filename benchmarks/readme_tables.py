"""The tables in README.md and benchmarks/README.md, generated from committed results files.

    python benchmarks/readme_tables.py              # rewrite every generated block in the docs
    python benchmarks/readme_tables.py --check      # exit 1 (and print a diff) when a block differs from its file
    python benchmarks/readme_tables.py --render KIND FILE[,FILE...]   # print one block

A generated block sits between two marker comments that name what renders it and the results file(s) it
renders (paths relative to the repository root, several separated by commas):

    <!-- headline: benchmarks/results/devices_matrix/inputs/build_machine.json -->
    ... (written by this script: do not edit by hand) ...
    <!-- /headline -->

KIND is one of RENDERERS below. `headline` reads a pipeline report (`OUT/report.json`, the schema of
`bert-compress bench`) or a device results file (`OUT/bench.json`, schema bert-compress-bench) and writes the
model table: runtime, precision, size, test accuracy, p50 at seq 128 / batch 1 on 1 thread and on the most
threads measured, speed-up against the teacher in PyTorch eager measured in the same run, and under it the CPU
(model, instruction sets), the versions and the command, all taken from the file. To point the README at a new
run, commit its report.json under benchmarks/results/ and change the path in the marker; then run this script.

Only the standard library is used: the check runs anywhere the repository is checked out.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compress.run.table import STAGE_NAMES  # noqa: E402

DOCS = ("README.md", "benchmarks/README.md")
MARKER = re.compile(r"<!-- ([a-z0-9-]+): ([^>]+?) -->\n(.*?)<!-- /\1 -->", re.S)

# Scratch directories of the machines the results were made on, as the docs name them. The JSON files keep
# the paths as they were run; Markdown never shows a temp-dir path (tests/test_docs.py checks it). A path not
# listed here stays as it is, and that test fails until it is named.
PLACEHOLDERS = (
    (re.compile(r"/tmp/rep7/"), ""),  # run1.json / run2.json, committed beside their merged report
    (re.compile(r"/tmp/am_(?:task|vocab)_results\b"), "RESULTS"),
    (re.compile(r"/root/out\b"), "RESULTS"),
    (re.compile(r"/tmp/(?:full\d*|h192|h3)\b"), "OUT"),
    (re.compile(r"/tmp/(?:am_\w+|mx|tp\d+)\b"), "WORK"),
    (re.compile(r"/tmp/tiers\b"), "WORK"),
)

# /proc/cpuinfo flags -> instruction-set names, in the order they are printed
ISA = (("sse4_2", "SSE4.2"), ("avx", "AVX"), ("avx2", "AVX2"), ("fma", "FMA"), ("avx512f", "AVX-512F"),
       ("avx512bw", "AVX-512BW"), ("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI"),
       ("avx512_bf16", "AVX-512 BF16"), ("amx_int8", "AMX-INT8"), ("amx_bf16", "AMX-BF16"),
       ("asimd", "NEON (ASIMD)"), ("asimdhp", "ASIMD fp16"), ("asimddp", "ARM dot-product"), ("i8mm", "ARM i8mm"),
       ("sve", "SVE"), ("sve2", "SVE2"), ("bf16", "ARM BF16"))

RUNTIMES = {"pytorch": "PyTorch eager", "onnxruntime": "ONNX Runtime", "litert": "LiteRT", "tflite": "LiteRT",
            "executorch": "ExecuTorch"}


class DocError(Exception):
    """A marker that names an unknown renderer or a results file that is missing or cannot be rendered."""


# ---- small helpers -------------------------------------------------------------------------------------------
def public_paths(text: str) -> str:
    """Temp-dir paths of the measuring machine -> the placeholders the docs use (OUT, WORK, RESULTS)."""
    for pattern, repl in PLACEHOLDERS:
        text = pattern.sub(repl, text)
    return text


def code(command: str) -> str:
    """A command as inline Markdown code: public paths, no backticks inside."""
    return "`" + public_paths(command).replace("`", "'") + "`"


def load(path: str) -> dict:
    p = ROOT / path
    if not p.is_file():
        raise DocError(f"{path} does not exist")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DocError(f"{path} is not valid JSON ({exc})") from None


def num(x, fmt: str = "{:.1f}", none: str = "—") -> str:
    return none if x is None else fmt.format(x)


def mb(n) -> str:
    return "—" if not n else f"{n / 1e6:.1f}"


def ms(x) -> str:
    if x is None:
        return "—"
    return f"{x:.2f}" if x < 100 else f"{x:.0f}"


def ratio(a, b) -> str:
    return f"{a / b:.2f}×" if a and b else "—"


def isa_names(env: dict) -> list[str] | None:
    flags = env.get("simd") or env.get("cpu_flags")
    if not flags:
        return None
    have = set(flags)
    return [name for flag, name in ISA if flag in have]


# the widest int8 dot-product instructions first (as targets.env.INT8_ISAS): what int8 kernels run on
INT8_ISAS = (("amx_int8", "AMX"), ("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI"), ("avx512bw", "AVX-512"),
             ("avx2", "AVX2"), ("i8mm", "ARM i8mm"), ("asimddp", "ARM dot-product"), ("asimd", "ARM NEON"),
             ("sse4_1", "SSE4.1"))


def int8_isa(env: dict) -> str | None:
    flags = set(env.get("cpu_flags") or env.get("simd") or [])
    return next((name for flag, name in INT8_ISAS if flag in flags), None)


def env_line(env: dict | None, commands: list[str], extra: str = "") -> str:
    """One line under a table: the CPU (model, cores, instruction sets), OS, Python, versions, the command."""
    env = env or {}
    parts = []
    cpu = env.get("cpu")
    if cpu:
        where = ", ".join(x for x in (env.get("machine"), f"{env['cores']} cores" if env.get("cores") else None) if x)
        isa = isa_names(env)
        isa_text = ", ".join(isa) if isa else "instruction sets not recorded in this file"
        int8 = env.get("int8_isa") or int8_isa(env)
        if int8:
            isa_text += f"; int8 kernels: {int8}"
        board = f", {env['board']}" if env.get("board") else ""
        parts.append(f"CPU: {cpu} ({where}{board}; {isa_text})")
    else:
        parts.append("CPU: not recorded in this file")
    if env.get("gpu"):
        parts.append(f"GPU: {env['gpu']}")
    if env.get("emulated"):
        parts.append(f"**emulated** ({env['emulated']}): timings rank models only")
    sw = [x for x in (env.get("os"), f"Python {env['python']}" if env.get("python") else None) if x]
    versions = ", ".join(f"{k} {v}" for k, v in (env.get("versions") or {}).items() if v)
    if versions:
        sw.append(versions)
    if sw:
        parts.append("; ".join(sw))
    line = ". ".join(parts) + "."
    if extra:
        line += " " + extra
    cmds = [c for c in commands if c]
    if cmds:
        line += " Command: " + "; ".join(code(c) for c in cmds) + "."
    else:
        line += " Command: not recorded in this file."
    return line


def commands_of(doc: dict) -> list[str]:
    """The command that made the file: a top-level one (e.g. the whole run), else the bench stage's own."""
    cmd = doc.get("command")
    cmd = cmd or ((doc.get("bench") or {}).get("command") if isinstance(doc.get("bench"), dict) else None)
    return [c.strip() for c in cmd.splitlines() if c.strip()] if isinstance(cmd, str) else []


# ---- one model table for a report.json or a bench.json -----------------------------------------------------
def _arch_name(role: str, entry: dict) -> str:
    arch = entry.get("arch") or {}
    layers, hidden = entry.get("layers") or arch.get("layers"), entry.get("hidden_size") or arch.get("hidden_size")
    shape = f", {layers} layers / {hidden}" if layers and hidden else ""
    return f"{role}{shape}"


def _precision_from_quantization(q: dict | None) -> str:
    if not q:
        return "fp32"
    s = q.get("settings") or {}
    text = " ".join(str(v) for v in s.values())
    bits = "int4" if "int4" in text else "int8"
    backend = q.get("backend", "?")
    if s.get("weight_only") or s.get("scheme") in ("int8-weight", "int4-weight"):
        return f"{bits} weights, fp32 compute ({backend})"
    return f"{bits} ({backend})"


def _precision_from_bench(m: dict) -> str:
    p = m.get("precision") or "fp32"
    found = re.match(r"quantized \((.+)\)", p)
    if not found:
        return p
    backend = found.group(1)
    return f"int8 ({backend})" if m.get("compute", "int8") == "int8" else f"int8 weights, fp32 compute ({backend})"


def models_of(doc: dict) -> list[dict]:
    """Teacher, student and artifacts of either schema as {label, role, runtime, precision, size, accuracy, latency}."""
    if doc.get("schema") == "bert-compress-bench":
        if "merged" in doc:
            raise DocError("a merged report: render one of its inputs instead")
        out = []
        for m in doc.get("models", []):
            role = m.get("role", "artifact")
            label = _arch_name(role, m) if role in ("teacher", "student") else f"`{m.get('name', '?')}`"
            out.append({"label": label + (" (bundled)" if m.get("shipped") else ""), "role": role,
                        "runtime": m.get("runtime"), "precision": _precision_from_bench(m), "size": m.get("size_bytes"),
                        "accuracy": m.get("accuracy"), "latency": m.get("latency") or []})
        return out
    bundled = {m.get("artifact") for m in (doc.get("bundle") or {}).get("models", [])}
    out = []
    for role in ("teacher", "student"):
        e = doc.get(role)
        if e:
            out.append({"label": _arch_name(role, e), "role": role, "runtime": "pytorch", "precision": "fp32",
                        "size": e.get("size_bytes"), "accuracy": e.get("accuracy"), "latency": e.get("latency") or [],
                        "interval": e.get("retained_interval")})
    for a in doc.get("artifacts", []):
        out.append({"label": f"`{a.get('name', '?')}`" + (" (bundled)" if a.get("name") in bundled else ""),
                    "role": "artifact", "runtime": a.get("runtime"),
                    "precision": a.get("precision") or _precision_from_quantization(a.get("quantization")),
                    "size": a.get("size_bytes"), "accuracy": a.get("accuracy"), "latency": a.get("latency") or [],
                    "interval": a.get("retained_interval")})
    return out


def _retained_text(acc, t_acc, interval) -> str:
    """"78.65% (96.4%, 94.1–98.7)": test accuracy, % of the teacher's and, where the file has it, its 95% bootstrap
    interval over the test rows."""
    if acc is None:
        return "—"
    if not t_acc:
        return f"{100 * acc:.2f}%"
    band = f", {100 * interval[0]:.1f}–{100 * interval[1]:.1f}" if interval else ""
    return f"{100 * acc:.2f}% ({100 * acc / t_acc:.1f}%{band})"


def p50(model: dict, seq: int, threads: int, batch: int = 1):
    for c in model["latency"]:
        if c.get("seq_len") == seq and c.get("threads") == threads and c.get("batch", 1) == batch:
            return c.get("p50_ms")
    return None


def reference(models: list[dict]) -> tuple[int, list[int]]:
    """seq 128 when measured (else the longest), and the thread counts measured at it."""
    seqs = {c.get("seq_len") for m in models for c in m["latency"] if c.get("seq_len")}
    if not seqs:
        raise DocError("no latency cells in the file")
    seq = 128 if 128 in seqs else max(seqs)
    threads = sorted({c["threads"] for m in models for c in m["latency"] if c.get("seq_len") == seq and c.get("threads")})
    return seq, threads


def environment_of(doc: dict) -> dict | None:
    return doc.get("environment") or doc.get("device")


def render_headline(paths: list[str]) -> list[str]:
    if len(paths) != 1:
        raise DocError("headline renders one file")
    doc = load(paths[0])
    models = models_of(doc)
    seq, threads = reference(models)
    one, most = (1 if 1 in threads else threads[0]), threads[-1]
    teacher = next((m for m in models if m["role"] == "teacher"), None)
    t_acc = teacher and teacher["accuracy"]
    t1, tn = (p50(teacher, seq, one), p50(teacher, seq, most)) if teacher else (None, None)
    cols = [f"p50 ms, {one} thread" + ("" if one == 1 else "s")]
    if most != one:
        cols.append(f"p50 ms, {most} threads")
    speed = "speed-up vs teacher" + (f", {one} / {most} threads" if most != one else "")
    lines = [f"| model | runtime | precision | MB | test accuracy (% of teacher) | {' | '.join(cols)} | {speed} |",
             "|---|---|---|---:|---:|" + "---:|" * len(cols) + "---:|"]
    for m in models:
        acc_text = _retained_text(m["accuracy"], t_acc, m.get("interval"))
        a1, an = p50(m, seq, one), p50(m, seq, most)
        cells = [ms(a1)] + ([ms(an)] if most != one else [])
        ups = [ratio(t1, a1)] + ([ratio(tn, an)] if most != one else [])
        lines.append(f"| {m['label']} | {RUNTIMES.get(m['runtime'], m['runtime'] or '—')} | {m['precision']} | {mb(m['size'])} | "
                     f"{acc_text} | {' | '.join(cells)} | {' / '.join(ups)} |")
    note = (f"p50 of batch 1 at sequence length {seq}, full-length inputs; test accuracy on the test split"
            + ("; % of the teacher with its 95% paired bootstrap interval over the test rows"
               if any(m.get("interval") for m in models) else "") + "; the teacher runs in PyTorch eager fp32 in the same run.")
    return lines + ["", f"From `{paths[0]}`. " + env_line(environment_of(doc), commands_of(doc), note)]


# ---- one row per student (reports of several recipes) --------------------------------------------------------
def render_students(paths: list[str]) -> list[str]:
    lines = ["| results file | recipe | student | teacher p50 ms | fastest artifact | its p50 ms | speed-up vs teacher | "
             "test accuracy (% of teacher) | MB |", "|---|---|---|---:|---|---:|---:|---:|---:|"]
    envs, cmds = [], []
    for path in paths:
        doc = load(path)
        models = models_of(doc)
        seq, threads = reference(models)
        one = 1 if 1 in threads else threads[0]
        teacher = next((m for m in models if m["role"] == "teacher"), None)
        student = next((m for m in models if m["role"] == "student"), None)
        timed = [(p50(m, seq, one), m) for m in models if m["role"] == "artifact" and p50(m, seq, one)]
        t_ms = p50(teacher, seq, one) if teacher else None
        if timed:
            a_ms, best = min(timed, key=lambda t: t[0])
            acc = best["accuracy"]
            acc_text = "—" if acc is None else f"{100 * acc:.2f}%" + (f" ({100 * acc / teacher['accuracy']:.1f}%)" if teacher and teacher["accuracy"] else "")
            best_text, a_text, up, size = best["label"], ms(a_ms), ratio(t_ms, a_ms), mb(best["size"])
        else:
            best_text = a_text = up = acc_text = size = "—"
        recipe = doc.get("recipe") or (doc.get("run") or {}).get("recipe") or "—"
        shape = student["label"].removeprefix("student, ") if student else "—"
        lines.append(f"| `{Path(path).name}` | `{recipe}` | {shape} | {ms(t_ms)} | {best_text} | {a_text} | {up} | {acc_text} | {size} |")
        envs.append(environment_of(doc))
        cmds.append(commands_of(doc))
    lines += ["", f"p50 of batch 1 at sequence length {seq}, {one} thread, full-length inputs; the teacher in PyTorch eager "
              "fp32, timed in the same run as the artifact."]
    if all(e == envs[0] for e in envs):
        commands = "; ".join(f"`{Path(p).name}`: " + (" ; ".join(code(c) for c in cs) or "not recorded")
                             for p, cs in zip(paths, cmds))
        lines += ["", env_line(envs[0], [], "").removesuffix(" Command: not recorded in this file.") + f" Commands: {commands}."]
    else:
        lines += [""] + [f"- `{Path(p).name}`: " + env_line(e, c) for p, e, c in zip(paths, envs, cmds)]
    return lines


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
        return next((c.get("p50_ms") for c in r.get("latency") or [] if c.get("threads") == t and c.get("seq_len") == s), None)

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
        return next((c["p50_ms"] for c in r.get("latency") or [] if c.get("threads") == 1 and c.get("seq_len") == seq), None)

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


# ---- repeatability of two runs of one device ------------------------------------------------------------------
def render_repeatability(paths: list[str]) -> list[str]:
    if len(paths) != 2:
        raise DocError("repeatability compares two files")
    a, b = (load(p) for p in paths)
    changes = {"p50_ms": [], "p90_ms": [], "p99_ms": []}
    for ma in a.get("models", []):
        mb_ = next((m for m in b.get("models", []) if m.get("name") == ma.get("name") and m.get("file") == ma.get("file")), None)
        for ca in (ma.get("latency") or []) if mb_ else []:
            cb = next((c for c in mb_["latency"] if (c["seq_len"], c["threads"], c.get("batch", 1)) == (ca["seq_len"], ca["threads"], ca.get("batch", 1))), None)
            if cb:
                for k in changes:
                    changes[k].append(abs(cb[k] / ca[k] - 1))
    cells = len(changes["p50_ms"])
    if not cells:
        raise DocError("the two files share no latency cells")
    lines = ["| percentile | cells within ±10% | median change | largest change |", "|---|---:|---:|---:|"]
    for k, v in changes.items():
        lines.append(f"| {k.removesuffix('_ms')} | {sum(x <= 0.10 for x in v)}/{cells} | {100 * statistics.median(v):.1f}% | {100 * max(v):.1f}% |")
    peaks = [((d.get("gemm_peak") or {}).get("gflop_s") or {}).get("fp32", {}).get("1") for d in (a, b)]
    peak = f" fp32 GEMM peak on 1 thread: {peaks[0]} and {peaks[1]} GFLOP/s in the two runs." if all(peaks) else ""
    return lines + ["", f"From {', '.join(f'`{p}`' for p in paths)}.{peak} "
                    + env_line(a.get("device"), commands_of(a) + commands_of(b))]


# ---- bert-compress arm64 ---------------------------------------------------------------------------------------
def render_arm64_check(paths: list[str]) -> list[str]:
    if len(paths) != 1:
        raise DocError("arm64-check renders one file")
    doc = load(paths[0])
    lines = [f"| emulated CPU | model | texts within {doc.get('atol')} of x86 | max abs Δlogit vs x86 | labels equal to x86 | passed |",
             "|---|---|---:|---:|---:|---|"]
    for cpu, c in (doc.get("cpus") or {}).items():
        for model, k in (c.get("checks") or {}).items():
            lines.append(f"| {cpu} | {model} | {k.get('texts_within_atol')}/{doc.get('texts')} | {num(k.get('max_abs_diff_vs_x86'), '{:.1e}')} | "
                         f"{num(k.get('label_agreement_vs_x86') and 100 * k['label_agreement_vs_x86'], '{:.0f}%')} | {'yes' if k.get('passed') else 'no'} |")
    emulators = ", ".join("`{}`".format(c.get("emulator")) for c in (doc.get("cpus") or {}).values())
    return lines + ["", f"From `{paths[0]}`: the bundle's runner under {emulators} against the same runner on x86. Command: "
                    + "; ".join(code(c) for c in commands_of(doc)) + "."]


# ---- pipeline reports: stage wall times, the bundle's runner check ------------------------------------------
STAGES = STAGE_NAMES


def render_stage_seconds(paths: list[str]) -> list[str]:
    lines = ["| results file | recipe | " + " | ".join(f"{s} s" for s in STAGES) + " |", "|---|---|" + "---:|" * len(STAGES)]
    envs = []
    for path in paths:
        doc = load(path)
        secs = doc.get("stage_seconds") or {}
        lines.append(f"| `{Path(path).name}` | `{doc.get('recipe', '—')}` | " + " | ".join(num(secs.get(s), "{:.0f}") for s in STAGES) + " |")
        envs.append(environment_of(doc))
    note = ("Wall time of each stage as the report records it (a stage that did not run in that OUT is —; "
            "a finished stage reused by a later command keeps its first time).")
    env = env_line(envs[0], [], note).removesuffix(" Command: not recorded in this file.") if all(e == envs[0] for e in envs) else note
    return lines + ["", env + " Commands: in each file."]


def render_bundle_check(paths: list[str]) -> list[str]:
    lines = ["| results file | bundle file | artifact | runtime | MB | dev rows | max abs Δlogit vs PyTorch | "
             "labels equal to PyTorch | dev accuracy |", "|---|---|---|---|---:|---:|---:|---:|---:|"]
    for path in paths:
        doc = load(path)
        bundle = doc.get("bundle")
        if not bundle:
            raise DocError(f"{path} has no bundle section")
        for m in bundle.get("models", []):
            rc = m.get("runner_check") or {}
            lines.append(f"| `{Path(path).name}` | {m.get('file')} | `{m.get('artifact')}` | {RUNTIMES.get(m.get('runtime'), m.get('runtime'))} | "
                         f"{mb(m.get('size_bytes'))} | {rc.get('rows', '—')} | {num(rc.get('max_abs_diff_vs_pytorch'), '{:.2e}')} | "
                         f"{num(rc.get('label_agreement_vs_pytorch') and 100 * rc['label_agreement_vs_pytorch'], '{:.2f}%')} | "
                         f"{num(rc.get('dev_accuracy') and 100 * rc['dev_accuracy'], '{:.2f}%')} |")
        for r in bundle.get("rejected", []):
            lines.append(f"| `{Path(path).name}` | {r.get('file')} | `{r.get('artifact')}` | not bundled: {r.get('reason')} | | | | | |")
    return lines + ["", "Raw dev text through the bundle's own runner (its tokenizer, then the runtime), one text per call, "
                    "against the PyTorch student; zipped bundle size: " + "; ".join(
                        f"`{Path(p).name}` {mb((load(p).get('bundle') or {}).get('zip_bytes'))} MB" for p in paths) + "."]


def render_platforms(paths: list[str]) -> list[str]:
    """The platform bundles of one pipeline report: what each holds, its size against the teacher's fp32 weights,
    its model's test accuracy and latency (bench matrix), and the check its platform's library ran on dev."""
    if len(paths) != 1:
        raise DocError("platforms renders one file")
    doc = load(paths[0])
    platforms = (doc.get("bundle") or {}).get("platforms")
    if not platforms:
        raise DocError(f"{paths[0]} has no bundle.platforms section")
    teacher = doc["teacher"]
    artifacts = {a["name"]: a for a in doc["artifacts"]}
    lines = ["| platform | zip | MB | × smaller than the teacher's fp32 weights | model (artifact) | test accuracy (% of teacher) "
             "| p50 ms, seq 128, 1 thread | checked from raw dev text with | dev agreement with PyTorch |",
             "|---|---|---:|---:|---|---:|---:|---|---:|"]
    for pl in platforms:
        if pl.get("skipped"):
            lines.append(f"| {pl['title']} | — | — | — | — | — | — | not built: {pl['skipped']} | — |")
            continue
        art = artifacts.get(pl["artifact"], {})
        acc = art.get("accuracy")
        check = pl.get("check") or {}
        agree = check.get("agreement")
        lines.append(f"| {pl['title']} | `{pl['platform']}.zip` | {mb(pl['zip_bytes'])} | {ratio(teacher['size_bytes'], pl['zip_bytes'])} | "
                     f"`{pl['model_file']}` (`{pl['artifact']}`) | "
                     f"{_retained_text(acc, teacher['accuracy'], art.get('retained_interval'))} | "
                     f"{ms(p50(art, 128, 1)) if art else '—'} | {check.get('tool', 'not run here')} | "
                     f"{num(agree and 100 * agree, '{:.2f}%')} ({check.get('agreement_name', '—')}) |")
    rows = doc.get("string_in") or []
    if rows:
        lines += ["", "| string-in ONNX | threads | seq | ids in p50 ms | string in p50 ms | tokenizer ms |", "|---|---:|---:|---:|---:|---:|"]
        for r in rows:
            for c in r["text_latency"]:
                plain = next((x for x in r["plain_latency"] if (x["threads"], x["seq_len"]) == (c["threads"], c["seq_len"])), None)
                if plain and c["seq_len"] in (32, 128):
                    lines.append(f"| `{r['artifact']}` + tokenizer | {c['threads']} | {c['seq_len']} | {ms(plain['p50_ms'])} | "
                                 f"{ms(c['p50_ms'])} | {ms(c['p50_ms'] - plain['p50_ms'])} |")
    env = environment_of(doc)
    return lines + ["", env_line(env, commands_of(doc))]


def render_isa_check(paths: list[str]) -> list[str]:
    """`python -m targets check` of one bundle on several (real or emulated) CPUs, and the bundle stage run on each."""
    if len(paths) != 1:
        raise DocError("isa-check renders one file")
    doc = load(paths[0])
    lines = ["| where | int8 instruction set | bundle file | artifact | texts | max abs Δlogit vs PyTorch | "
             "labels equal to PyTorch | passes the bar |", "|---|---|---|---|---:|---:|---:|---|"]
    for run in doc.get("checks", []):
        for r in run.get("results", []):
            lines.append(f"| {run.get('where')} | {r.get('int8_isa')} | {r.get('file')} | `{r.get('artifact')}` | {r.get('rows')} | "
                         f"{num(r.get('max_abs_diff'), '{:.2e}')} | {num(100 * r['label_agreement'], '{:.2f}%')} | "
                         f"{'yes' if r.get('passed') else 'no: ' + str(r.get('failure'))} |")
    stage = doc.get("bundle_stage")
    if stage:
        lines += ["", f"The bundle stage itself, run {stage.get('where')} on the same OUT (exit {stage.get('exit_code')}):", "",
                  "| bundle file | artifact | labels equal to PyTorch | kept |", "|---|---|---:|---|"]
        for m in stage.get("models", []):
            rc = m.get("runner_check") or {}
            lines.append(f"| {m.get('file')} | `{m.get('artifact')}` | "
                         f"{num(rc.get('label_agreement_vs_pytorch') and 100 * rc['label_agreement_vs_pytorch'], '{:.2f}%')} | yes |")
        for r in stage.get("rejected", []):
            lines.append(f"| {r.get('file')} | `{r.get('artifact')}` | — | no: {r.get('reason')} |")
    emu = doc.get("emulator") or {}
    return lines + ["", f"From `{paths[0]}`. Bar: the recipe's `quantize.min_label_agreement` "
                    f"({doc.get('bar')}). Emulator: {emu.get('version')}, `-cpu {emu.get('cpu')}`. "
                    + env_line(doc.get("environment"), commands_of(doc))]


def render_bench_repeats(paths: list[str]) -> list[str]:
    if len(paths) != 1:
        raise DocError("bench-repeats renders one file")
    doc = load(paths[0])
    runs = doc.get("runs", [])
    lines = ["| run | artifact | its p50 ms | teacher p50 ms | speed-up | test accuracy, % of teacher |", "|---:|---|---:|---:|---:|---:|"]
    for i, r in enumerate(runs, 1):
        lines.append(f"| {i} | `{r.get('best_artifact')}` | {ms(r.get('artifact_p50_ms'))} | {ms(r.get('teacher_p50_ms'))} | "
                     f"{num(r.get('speedup'), '{:.2f}×')} | {num(r.get('accuracy_retained') and 100 * r['accuracy_retained'], '{:.2f}')} |")
    ups = [r["speedup"] for r in runs if r.get("speedup")]
    med = f"median speed-up {statistics.median(ups):.2f}× over {len(ups)} runs. " if ups else ""
    return lines + ["", f"From `{paths[0]}`: seq 128, batch 1, 1 thread; {med}Command: "
                    + "; ".join(code(c) for c in commands_of(doc)) + ". The file records no environment."]


# ---- every results file: its command and environment ----------------------------------------------------------
# Results files that record no CPU, and why. tests/test_docs.py requires every other results JSON to carry one.
ENVIRONMENT_NOT_RECORDED = {
    # compares outputs (no timings); the emulated CPUs are in bench-cortex-a72/a76.json beside it, the x86
    # side is ../inputs/build_machine.json
    "benchmarks/results/devices_matrix/arm64/arm64_check.json": "output check only; the emulated CPUs are in bench-cortex-*.json beside it",
    "benchmarks/results/executorch_issue24_arm64/arm64_check.json": "output check only; the emulated CPUs are in bench-cortex-*.json beside it",
    # a copy of OUT/bundle/metadata.json, which records library versions but no CPU
    "benchmarks/results/devices_tinybert3_h192_bundle_metadata.json": "a bundle's metadata.json: library versions, no CPU",
    # four report summaries copied by hand; the last run's full report is devices_tinybert3_h192_report.json
    "benchmarks/results/devices_tinybert3_h192_bench_repeats.json": "summaries of four runs; the last run's report is devices_tinybert3_h192_report.json",
}


def results_files(root: str = "benchmarks/results") -> list[str]:
    return sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / root).rglob("*.json"))


def command_status(doc: dict) -> str:
    if doc.get("command_source"):
        return "added from the docs"
    if commands_of(doc):
        return "stored"
    if isinstance(doc.get("merged"), list) and all(commands_of(d) for d in doc["merged"]):
        return "in each merged input"
    return "none"


def environment_status(path: str, doc: dict) -> str:
    envs = [environment_of(doc)] if environment_of(doc) else [d.get("device") for d in doc.get("merged", []) if isinstance(d, dict)]
    envs = [e for e in envs if e]
    if not envs:
        return "none: " + ENVIRONMENT_NOT_RECORDED.get(path, "not recorded")
    cpus = ", ".join(dict.fromkeys(e.get("cpu") or "?" for e in envs))
    flags = all(isa_names(e) for e in envs)
    gpu = next((e["gpu"] for e in envs if e.get("gpu")), None)
    return f"{cpus}{f' + {gpu}' if gpu else ''}; " + ("instruction sets and versions" if flags else "versions; no instruction-set flags")


def render_test_tiers(paths: list[str]) -> list[str]:
    """benchmarks/test_tiers.py: the wall time of the quick loop and of the whole suite on one machine."""
    if len(paths) != 1:
        raise DocError("test-tiers renders one file")
    doc = load(paths[0])
    lines = ["| tier | command | tests | wall time |", "|---|---|---|---:|"]
    for name, t in doc.get("tiers", {}).items():
        counts = ", ".join(f"{n} {k}" for k, n in t.get("counts", {}).items())
        lines.append(f"| {name} | {code(t.get('command'))} | {counts} | {num(t.get('wall_seconds'), '{:.0f}')} s |")
    extra = "with the tflite extra installed" if doc.get("tflite_extra") else "without the tflite extra"
    return lines + ["", f"From `{paths[0]}`, {extra}. " + env_line(environment_of(doc), commands_of(doc))]


def render_embedding_tiers(paths: list[str]) -> list[str]:
    """benchmarks/embedding_tiers.py: each embedding model's latency beside its retrieval and probe quality, as shares
    of the teacher measured in the same run, and whether the issue's targets hold."""
    if len(paths) != 1:
        raise DocError("embedding-tiers renders one file")
    doc = load(paths[0])

    def pct(x):
        return "—" if x is None else f"{100 * x:.1f}"

    lines = ["| tier | model | precision | p50 ms | × eager teacher | × ONNX teacher | MB | MRR@10 % of teacher | "
             "asym MRR@10 % of teacher | probe % of teacher | fidelity % |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in doc["rows"]:
        if r["role"] == "student":
            continue
        lines.append(f"| {r['tier']} | {r['name']} | {r['precision']} | {ms(r['p50_ms'])} | {num(r['x_eager_teacher'], '{:.2f}')} | "
                     f"{num(r['x_onnx_teacher'], '{:.2f}')} | {mb(r['size_bytes'])} | {pct(r['mrr_of_teacher'])} | "
                     f"{pct(r['asym_mrr_of_teacher'])} | {pct(r['probe_of_teacher'])} | {pct(r['fidelity'])} |")
    lines += ["", "| tier | target | fastest artifact meeting the quality bars | × eager teacher | met |", "|---|---|---|---:|---|"]
    for tier, v in doc["targets"].items():
        bars = v["bars"]
        target = (f"≥ {bars['speedup']:g}× at ≥ {100 * bars['mrr']:g}% MRR@10 and probe"
                  + (f", asym ≥ {100 * bars['asym_mrr']:g}%" if "asym_mrr" in bars else ""))
        lines.append(f"| {tier} | {target} | {v['best_meeting_quality'] or 'none'} | {num(v['speedup'], '{:.2f}')} | "
                     f"{'yes' if v['met'] else 'no'} |")
    return lines + ["", f"Batch 1, seq 128, 1 thread, p50. From `{paths[0]}`. " + env_line(environment_of(doc), commands_of(doc))]


def render_runtimes_by_length(paths: list[str]) -> list[str]:
    """Which runtime is fastest at each sequence length (batch 1, 1 thread): the fastest file of each runtime, from a
    pipeline report (this CPU, every artifact) and from emulated-ARM64 bench files of its bundle (one file per
    runtime). Emulated rows rank runtimes on that core; their milliseconds are not the chip's."""
    names = ("onnxruntime", "litert", "executorch")
    lines = ["| device | seq | " + " | ".join(RUNTIMES[r] for r in names) + " | fastest | ExecuTorch vs fastest other |",
             "|---|---:|" + "---|" * len(names) + "---|---:|"]
    notes = []
    for path in paths:
        doc = load(path)
        env = environment_of(doc) or {}
        name = str(env.get("name") or env.get("cpu"))
        device = ((name if "emulated" in name else f"{name} (emulated)") if env.get("emulated") else
                  f"{env.get('cpu') or 'build machine'} (build machine)")
        models = [m for m in models_of(doc) if m["role"] == "artifact" and m["runtime"] in names]
        seqs = sorted({c.get("seq_len") for m in models for c in m["latency"] if c.get("seq_len")})
        for seq in seqs:
            best = {}
            for m in models:
                t = p50(m, seq, 1)
                if t is not None and (m["runtime"] not in best or t < best[m["runtime"]][0]):
                    best[m["runtime"]] = (t, m["label"].replace(" (bundled)", ""))
            if not best:
                continue
            fastest = min(best, key=lambda r: best[r][0])
            others = [best[r][0] for r in best if r != "executorch"]
            vs = ratio(min(others), best["executorch"][0]) if "executorch" in best and others else "—"
            cells = [f"{ms(best[r][0])} ({best[r][1]})" if r in best else "—" for r in names]
            lines.append(f"| {device} | {seq} | " + " | ".join(cells) + f" | {RUNTIMES[fastest]} | {vs} |")
        notes.append(f"`{path}`: " + env_line(env, commands_of(doc)))
    return lines + ["", "p50 ms, batch 1, 1 thread; each runtime's fastest file. \"ExecuTorch vs fastest other\": the "
                    "other runtimes' best p50 over ExecuTorch's (above 1: ExecuTorch is faster). " + " ".join(notes)]


def render_executorch_attention(paths: list[str]) -> list[str]:
    """benchmarks/executorch_attention.py: one student lowered to .pte with SDPA and with eager attention."""
    if len(paths) != 1:
        raise DocError("executorch-attention renders one file")
    doc = load(paths[0])
    variants = doc["variants"]
    seqs = list(next(iter(variants.values()))["p50_ms"])
    lines = ["| attention | " + " | ".join(f"p50 ms, seq {s}" for s in seqs) + " | XNNPACK calls | left on portable kernels |",
             "|---|" + "---:|" * len(seqs) + "---:|---|"]
    for v in variants.values():
        ops = ", ".join(f"{k} ×{n}" for k, n in v["portable_ops"].items())
        lines.append(f"| {v['label']} | " + " | ".join(ms(v["p50_ms"][s]) for s in seqs) + f" | {v['delegate_calls']} | {ops} |")
    t = doc.get("timing", {})
    return lines + ["", f"From `{paths[0]}`: {doc.get('interpreter')}, batch {t.get('batch')}, {t.get('threads')} thread, "
                    f"{t.get('rounds')} interleaved rounds of {t.get('runs_per_round')} calls per cell; the two files' outputs "
                    f"differ by at most {num(doc.get('max_abs_diff_between_variants'), '{:.1e}')}. "
                    + env_line(doc.get("environment"), commands_of(doc))]


def render_files(paths: list[str]) -> list[str]:
    lines = ["| file | command | environment |", "|---|---|---|"]
    for root in paths:
        for path in results_files(root):
            doc = load(path)
            lines.append(f"| `{Path(path).relative_to(root).as_posix()}` | {command_status(doc)} | {environment_status(path, doc)} |")
    return lines


def render_budget(paths: list[str]) -> list[str]:
    """benchmarks/budget_matrix.py: the cost model's error on held-out shapes per profile, and each budget's chosen
    student against the shipped recipes the same profile puts within the budget."""
    if len(paths) != 1:
        raise DocError("budget renders one file")
    doc = load(paths[0])
    lines = ["| profile (device) | shapes | lengths | held-out median error | p90 | max | ≤ 15% median |",
             "|---|---:|---|---:|---:|---:|---|"]
    for device, m in doc.get("cost_model", {}).items():
        h = m["held_out"]
        lines.append(f"| {device} | {h['shapes']} | {', '.join(map(str, m['seq_lens']))} | {100 * h['median']:.1f}% | "
                     f"{100 * h['p90']:.1f}% | {100 * h['max']:.1f}% | {'yes' if m['meets_target'] else 'no'} |")
    if doc.get("budgets"):
        lines += ["", "| budget (seq 128, 1 thread) | chosen student | expected ms | measured ms (shipped int8, trained) | "
                      "within budget | student test acc | shipped recipes within budget: test acc | at least every recipe |",
                  "|---|---|---:|---:|---|---:|---|---|"]
        for key, b in doc["budgets"].items():
            shipped = b.get("shipped") or {}
            recipes = ", ".join(f"`{name}` {100 * r['student_test_accuracy']:.2f}%" for name, r in b["recipes_within_budget"].items())
            measured = shipped.get("measured_ms")
            lines.append(f"| {key.replace(' (', ' ms (', 1) if ' (' in key else key + ' ms'} | `{b['chosen']['name']}` | {b['chosen']['expected_ms']:.3f} | {num(measured, '{:.3f}')} | "
                         f"{'yes' if measured is not None and measured <= b['budget_ms'] else 'no'} | "
                         f"{100 * b['student_test_accuracy']:.2f}% | {recipes or 'none'} | "
                         f"{'yes' if b['at_least_every_recipe_within_budget'] else 'no'} |")
    return lines + ["", f"From `{paths[0]}`. " + env_line(environment_of(doc), commands_of(doc))]


def default_seeds_rows(result: dict) -> list[str]:
    """One recipe's run over seeds (benchmarks/default_seeds.py): per seed what the teacher reached, what the student
    was distilled on, what the shipped model keeps of the teacher (with its bootstrap interval), its speed-ups
    measured in that run's bench, and the run's wall time; then mean and min."""
    rows = result["rows"]
    lines = ["| seed | teacher test acc % | teacher dev curve % | rows distilled on | distill steps (stopped by) | "
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
    return lines + ["", f"Shipped model, % of the teacher's test accuracy: mean {statistics.mean(pcts):.2f}, min {min(pcts):.2f}; "
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


RENDERERS = {
    "budget": render_budget,
    "headline": render_headline,
    "students": render_students,
    "quantize-matrix": render_quantize_matrix,
    "quantize-ab": render_quantize_ab,
    "quantize-compare": render_quantize_compare,
    "distill-throughput": render_distill_throughput,
    "distill-matrix": render_distill_matrix,
    "compression-matrix": render_compression_matrix,
    "data-matrix": render_data_matrix,
    "default-seeds": render_default_seeds,
    "albert": render_albert,
    "repeatability": render_repeatability,
    "arm64-check": render_arm64_check,
    "stage-seconds": render_stage_seconds,
    "bundle-check": render_bundle_check,
    "platforms": render_platforms,
    "bench-repeats": render_bench_repeats,
    "isa-check": render_isa_check,
    "test-tiers": render_test_tiers,
    "embedding-tiers": render_embedding_tiers,
    "files": render_files,
    "runtimes-by-length": render_runtimes_by_length,
    "executorch-attention": render_executorch_attention,
}


# ---- the docs ---------------------------------------------------------------------------------------------------
def render(kind: str, spec: str) -> str:
    if kind not in RENDERERS:
        raise DocError(f"unknown table kind '{kind}' (known: {', '.join(RENDERERS)})")
    paths = [p.strip() for p in spec.split(",") if p.strip()]
    try:
        return "\n".join(RENDERERS[kind](paths)) + "\n"
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise DocError(f"{kind}: cannot render {spec}: {type(exc).__name__} {exc}") from None


def regenerate(text: str) -> str:
    def block(m: re.Match) -> str:
        kind, spec = m.group(1), m.group(2)
        return f"<!-- {kind}: {spec} -->\n{render(kind, spec)}<!-- /{kind} -->"

    return MARKER.sub(block, text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 when a doc's tables differ from their files")
    ap.add_argument("--render", nargs=2, metavar=("KIND", "FILES"), help="print one block")
    ap.add_argument("docs", nargs="*", default=list(DOCS), help=f"docs to process (default: {' '.join(DOCS)})")
    args = ap.parse_args(argv)
    try:
        if args.render:
            print(render(*args.render), end="")
            return 0
        stale = []
        for doc in args.docs:
            path = ROOT / doc
            old = path.read_text(encoding="utf-8")
            new = regenerate(old)
            if new == old:
                continue
            if args.check:
                stale.append(doc)
                sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True), doc, f"{doc} (from its results files)"))
            else:
                path.write_text(new, encoding="utf-8")
                print(f"rewrote {doc}")
    except DocError as exc:
        print(f"readme_tables: error: {exc}", file=sys.stderr)
        return 2
    if stale:
        print(f"readme_tables: {', '.join(stale)} differ from their results files: run python benchmarks/readme_tables.py",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
