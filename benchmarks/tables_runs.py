"""Tables of pipeline reports (`OUT/report.json`) and device results (`OUT/bench.json`): the headline model table,
one row per student, stage wall times, the bundle's runner check, the platform bundles, the fastest runtime per
sequence length."""

from __future__ import annotations

import re
from pathlib import Path

from tables_common import RUNTIMES, DocError, code, commands_of, env_line, environment_of, load, mb, ms, num, ratio

from compress.bench.cells import p50_at  # noqa: E402
from compress.bench.record import BenchResults, Measured  # noqa: E402
from compress.run.table import STAGE_NAMES  # noqa: E402


# ---- one model table for a report.json or a bench.json -----------------------------------------------------
def _arch_name(role: str, entry: dict) -> str:
    arch = entry.get("arch") or {}
    layers, hidden = entry.get("layers") or arch.get("layers"), entry.get("hidden_size") or arch.get("hidden_size")
    shape = f", {layers} layers / {hidden}" if layers and hidden else ""
    return f"{role}{shape}"


def _precision_from_bench(m: dict) -> str:
    p = m.get("precision") or "fp32"
    found = re.match(r"quantized \((.+)\)", p)
    if not found:
        return p
    backend = found.group(1)
    return f"int8 ({backend})" if m.get("compute", "int8") == "int8" else f"int8 weights, fp32 compute ({backend})"


def _row(m: Measured, label: str, role: str, precision: str) -> dict:
    return {"label": label, "role": role, "runtime": m.runtime, "precision": precision, "size": m.size_bytes,
            "quality": m.quality, "latency": m.latency, "interval": m.get("retained_interval")}


def models_of(doc: dict) -> list[dict]:
    """Teacher, student and artifacts of either schema (a pipeline's report.json through its typed record
    compress.bench.record; a device's results document) as {label, role, runtime, precision, size, quality, latency}."""
    if doc.get("schema") == "bert-compress-bench":
        if "merged" in doc:
            raise DocError("a merged report: render one of its inputs instead")
        out = []
        for entry in doc.get("models", []):
            m, role = Measured.from_dict(entry, entry.get("name", "?")), entry.get("role", "artifact")
            label = _arch_name(role, entry) if role in ("teacher", "student") else f"`{m.name}`"
            out.append(_row(m, label + (" (bundled)" if entry.get("shipped") else ""), role, _precision_from_bench(entry)))
        return out
    results = BenchResults.from_dict(doc)
    bundled = {m.get("artifact") for m in (doc.get("bundle") or {}).get("models", [])}
    out = [_row(results.teacher, _arch_name("teacher", doc["teacher"]), "teacher", "fp32"),
           _row(results.student, _arch_name("student", doc["student"]), "student", "fp32")]
    for a in results.artifacts:
        out.append(_row(a, f"`{a.name}`" + (" (bundled)" if a.name in bundled else ""), "artifact", a.precision))
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
    """A row's p50 (models_of), or a report's entry's, through the one cell lookup."""
    return p50_at(model.get("latency") or [], seq, threads, batch)


def reference(models: list[dict]) -> tuple[int, list[int]]:
    """seq 128 when measured (else the longest), and the thread counts measured at it."""
    seqs = {c.get("seq_len") for m in models for c in m["latency"] if c.get("seq_len")}
    if not seqs:
        raise DocError("no latency cells in the file")
    seq = 128 if 128 in seqs else max(seqs)
    threads = sorted({c["threads"] for m in models for c in m["latency"] if c.get("seq_len") == seq and c.get("threads")})
    return seq, threads



def render_headline(paths: list[str]) -> list[str]:
    if len(paths) != 1:
        raise DocError("headline renders one file")
    doc = load(paths[0])
    models = models_of(doc)
    seq, threads = reference(models)
    one, most = (1 if 1 in threads else threads[0]), threads[-1]
    teacher = next((m for m in models if m["role"] == "teacher"), None)
    t_acc = teacher and teacher["quality"]
    t1, tn = (p50(teacher, seq, one), p50(teacher, seq, most)) if teacher else (None, None)
    cols = [f"p50 ms, {one} thread" + ("" if one == 1 else "s")]
    if most != one:
        cols.append(f"p50 ms, {most} threads")
    speed = "speed-up vs teacher" + (f", {one} / {most} threads" if most != one else "")
    lines = [f"| model | runtime | precision | MB | test accuracy (% of teacher) | {' | '.join(cols)} | {speed} |",
             "|---|---|---|---:|---:|" + "---:|" * len(cols) + "---:|"]
    for m in models:
        acc_text = _retained_text(m["quality"], t_acc, m.get("interval"))
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
            acc = best["quality"]
            acc_text = "—" if acc is None else f"{100 * acc:.2f}%" + (f" ({100 * acc / teacher['quality']:.1f}%)" if teacher and teacher["quality"] else "")
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
    results = BenchResults.from_dict(doc)
    teacher = results.teacher
    lines = ["| platform | zip | MB | × smaller than the teacher's fp32 weights | model (artifact) | test accuracy (% of teacher) "
             "| p50 ms, seq 128, 1 thread | checked from raw dev text with | dev agreement with PyTorch |",
             "|---|---|---:|---:|---|---:|---:|---|---:|"]
    for pl in platforms:
        if pl.get("skipped"):
            lines.append(f"| {pl['title']} | — | — | — | — | — | — | not built: {pl['skipped']} | — |")
            continue
        art = results.artifact(pl["artifact"])
        acc = art.quality if art else None
        check = pl.get("check") or {}
        agree = check.get("agreement")
        lines.append(f"| {pl['title']} | `{pl['platform']}.zip` | {mb(pl['zip_bytes'])} | {ratio(teacher.size_bytes, pl['zip_bytes'])} | "
                     f"`{pl['model_file']}` (`{pl['artifact']}`) | "
                     f"{_retained_text(acc, teacher.quality, art.get('retained_interval') if art else None)} | "
                     f"{ms(art.p50(128, 1)) if art else '—'} | {check.get('tool', 'not run here')} | "
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


