"""Tables of device-side and one-off measurements: repeatability, emulated ARM64 and per-ISA checks, repeated bench
runs, test tiers, embedding tiers, ExecuTorch attention, device budgets, and the index of every results file."""

from __future__ import annotations

import statistics
from pathlib import Path

from tables_common import fmt  # noqa: E402 (compress.bench.fmt)
from tables_common import (DocError, code, command_status, commands_of, env_line, environment_of, environment_status, load,
                           mb, ms, num, results_files)


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


def render_int8_decisions(paths: list[str]) -> list[str]:
    """Every int8 file of finished runs on each instruction set it was decided on (benchmarks/int8_decisions.py), then
    what the emulated measurement cost and which file each platform shipped."""
    if len(paths) != 1:
        raise DocError("int8-decisions renders one file")
    doc = load(paths[0])
    lines = ["| run | artifact | instruction set | dev drop (points) | agreement | where sure (rows) | flips (where unsure) "
             "| texts emulated | decision |", "|---|---|---|---:|---:|---:|---:|---:|---|"]
    for r in doc["runs"]:
        for f in r["files"]:
            where = "this machine" if not f["emulated"] else f"{f['instruction_set']} ({f['core']}, emulated)"
            if f.get("error"):
                lines.append(f"| {r['run']} | `{f['artifact']}` | {where} | — | — | — | — | — | not measured: {f['error']} |")
                continue
            sure = (f"{100 * f['confident_agreement']:.2f}% ({f['confident_rows']}/{f['rows']})"
                    if f.get("confident_agreement") is not None else "—")
            flips = "—" if f.get("flips") is None else f"{f['flips']} ({f['flips_where_unsure']})"
            lines.append(f"| {r['run']} | `{f['artifact']}` | {where} | {num(f['drop_points'], '{:.2f}')} | "
                         f"{num(f['agreement'], '{:.4f}')} | {sure} | {flips} | "
                         f"{f['rows_emulated'] if f['emulated'] else 'all'} | {'pass' if f['passed'] else 'fail'} |")
    names = [p["platform"] for p in doc["runs"][0]["platforms"]]
    lines += ["", "| run | emulated measurement s | quantize stage s | " + " | ".join(names) + " |",
              "|---|---:|---:|" + "---|" * len(names)]
    for r in doc["runs"]:
        shipped = {p["platform"]: f"`{p['artifact']}`" if p["artifact"] else "—" for p in r["platforms"]}
        lines.append(f"| {r['run']} | {num(r['emulated_seconds'])} | {num((r['stage_seconds'] or {}).get('quantize'))} | "
                     + " | ".join(shipped.get(n, "—") for n in names) + " |")
    return lines + ["", f"From `{paths[0]}`. Flips: dev texts whose label differs from the fp32 student's; where unsure: "
                    "of those, the ones whose fp32 top-1 / top-2 margin is within twice the file's 99th-percentile "
                    "int8 error; where sure: the agreement on the others. " + env_line(doc.get("environment"), commands_of(doc))]


def render_device_side(paths: list[str]) -> list[str]:
    """The runner's commands in a Python holding only what a bundle README's `pip` line installs
    (benchmarks/device_side.py): exit status and what each printed."""
    if len(paths) != 1:
        raise DocError("device-side renders one file")
    doc = load(paths[0])
    lines = ["| bundle | Python holds | command | exit | printed |", "|---|---|---|---:|---|"]
    for r in doc["runs"]:
        said = "<br>".join(line.replace("|", "\\|") for line in r["output"] if not line.startswith(("bench ", "GEMM peak")))
        lines.append(f"| {r['bundle']} | {', '.join(r['python_holds'])} | {code(r['command'])} | {r['exit']} | {said} |")
    return lines + ["", f"From `{paths[0]}`. " + env_line(doc.get("environment"), commands_of(doc))]


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
        return fmt.pct(x, 1)

    short = any(r.get("short128_of_full") is not None for r in doc["rows"])  # files before shorter vectors lack it
    lines = ["| tier | model | precision | p50 ms | × eager teacher | × ONNX teacher | MB | MRR@10 % of teacher | "
             "asym MRR@10 % of teacher | probe % of teacher | fidelity % |" + (" 128 dims % of full MRR@10 |" if short else ""),
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if short else "")]
    for r in doc["rows"]:
        if r["role"] == "student":
            continue
        lines.append(f"| {r['tier']} | {r['name']} | {r['precision']} | {ms(r['p50_ms'])} | {num(r['x_eager_teacher'], '{:.2f}')} | "
                     f"{num(r['x_onnx_teacher'], '{:.2f}')} | {mb(r['size_bytes'])} | {pct(r['mrr_of_teacher'])} | "
                     f"{pct(r['asym_mrr_of_teacher'])} | {pct(r['probe_of_teacher'])} | {pct(r['fidelity'])} |"
                     + (f" {pct(r.get('short128_of_full'))} |" if short else ""))
    lines += ["", "| tier | target | fastest artifact meeting the quality bars | × eager teacher | met |", "|---|---|---|---:|---|"]
    for tier, v in doc["targets"].items():
        bars = v["bars"]
        parts = [f"MRR@10 ≥ {100 * bars['mrr']:g}%"] + [f"{name} ≥ {100 * bars[key]:g}%" for key, name in
                                                       (("asym_mrr", "asym"), ("probe", "probe")) if key in bars]
        target = (f"≥ {bars['speedup']:g}× at " if bars["speedup"] > 1 else "") + ", ".join(parts)
        lines.append(f"| {tier} | {target} | {v['best_meeting_quality'] or 'none'} | {num(v['speedup'], '{:.2f}')} | "
                     f"{'yes' if v['met'] else 'no'} |")
    return lines + ["", f"Batch 1, seq 128, 1 thread, p50. From `{paths[0]}`. " + env_line(environment_of(doc), commands_of(doc))]


def render_embedding_variants(paths: list[str]) -> list[str]:
    """benchmarks/embedding_losses.py: each recipe variant over its seeds (mean / min): retrieval, asymmetric retrieval,
    the probe and fidelity as shares of the teacher, 128-dimension vectors as a share of the student's own full MRR@10,
    the fastest artifact's speed-up, and the static runs' model2vec peer."""
    def pct(x):
        return fmt.pct(x, 1)

    lines = ["| variant | base recipe | seeds | MRR@10 % of teacher (mean / min) | asym MRR@10 % (mean / min) | "
             "probe % (mean / min) | fidelity (mean) | 128 dims % of full (mean / min) | × eager teacher (min) | "
             "model2vec peer MRR@10 % |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for path in paths:
        doc = load(path)
        bases = doc.get("base_recipe")
        for variant, v in doc["summary"].items():
            rows = [r for r in doc["rows"] if r["variant"] == variant]
            peers = [r.get("references", {}).get("model2vec-onnx-fp32", {}).get("mrr_of_teacher") for r in rows]
            peers = [x for x in peers if x is not None]
            speed = [r["x_eager_teacher"] for r in rows if r.get("x_eager_teacher")]

            def both(key, v=v):
                mean, low = v.get(f"{key}_mean"), v.get(f"{key}_min")
                return "—" if mean is None else f"{pct(mean)} / {pct(low)}"

            short = [r["short128_of_full"] for r in rows if r.get("short128_of_full") is not None]
            short_cell = (f"{pct(statistics.mean(short))} / {pct(min(short))}"
                          + (f" ({len(short)} seeds)" if len(short) < len(rows) else "")) if short else "—"
            base = bases.get(variant) if isinstance(bases, dict) else bases
            lines.append(f"| {variant} | `{base}` | {len(rows)} | {both('mrr_of_teacher')} | {both('asym_mrr_of_teacher')} | "
                         f"{both('probe_of_teacher')} | {num(v.get('fidelity_mean'), '{:.3f}')} | {short_cell} | "
                         f"{num(min(speed) if speed else None, '{:.1f}')} | {pct(statistics.mean(peers)) if peers else '—'} |")
    return lines + ["", "The PyTorch student on the test texts; speed-up: the fastest artifact against the eager teacher, "
                    "seq 128, batch 1, 1 thread, in the same run. From " + ", ".join(f"`{p}`" for p in paths) + ". "
                    + env_line(environment_of(load(paths[0])), [c for p in paths for c in commands_of(load(p))])]




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


def render_embedding_shorter(paths: list[str]) -> list[str]:
    """benchmarks/embedding_losses.py: retrieval with shorter stored vectors (compress.embedding.shorter) per width and
    storage, as a share of the same student's full-width float32 MRR@10, over each variant's seeds (mean / min)."""
    from compress.embedding.shorter import index_mb

    per: dict[str, dict[str, list[float]]] = {}
    docs = [load(p) for p in paths]
    for doc in docs:
        for r in doc["rows"]:
            for key, share in (r.get("shorter_of_full") or {}).items():
                per.setdefault(r["variant"], {}).setdefault(key, []).append(share)
    if not per:
        raise DocError("no shorter-vector scores in " + ", ".join(paths))
    variants = list(per)
    keys = list(dict.fromkeys(k for v in per.values() for k in v))
    lines = ["| dims | storage | index of 100k docs (MB) | " + " | ".join(f"{v}: % of full (mean / min)" for v in variants) + " |",
             "|---:|---|---:|" + "---:|" * len(variants)]
    for key in keys:
        dims, storage = key.split("/")
        cells = [f"{fmt.pct(statistics.mean(per[v][key]), 1)} / {fmt.pct(min(per[v][key]), 1)}" if key in per[v] else "—"
                 for v in variants]
        lines.append(f"| {dims} | {storage} | {num(index_mb(int(dims), storage), '{:.1f}')} | " + " | ".join(cells) + " |")
    seeds = {v: max(len(x) for x in per[v].values()) for v in variants}
    return lines + ["", "Seeds: " + ", ".join(f"{v} {n}" for v, n in seeds.items()) + ". Binary: the float query against "
                    "the documents' bits. From " + ", ".join(f"`{p}`" for p in paths) + ". "
                    + env_line(environment_of(docs[0]), [c for doc in docs for c in commands_of(doc)])]

