"""The budget in the report: predicted vs measured latency of the chosen student, here and on the profiled device.

The bench stage adds a `budget` block to its results when OUT/budget.json exists (bench_block); report.md shows it
(markdown); `bert-compress report OUT/bench.json device.json` matches a device's results to the profile's device and
shows that device's measured latency beside the prediction (merged_lines).
"""

from __future__ import annotations

from pathlib import Path

from compress.budget.shapes import RUNTIME_BACKEND
from compress.fsutil import read_json


DEVICE_KEYS = ("name", "cpu", "board", "machine", "int8_isa", "emulated")
"""What the report keeps of the profiled device (budget.json keeps all of it)."""


def device_label(device: dict) -> str:
    name = device.get("name") or device.get("board") or device.get("cpu") or "unknown device"
    return name + (f" ({device['emulated']})" if device.get("emulated") else "")


def _cell(entry: dict, seq: int, threads: int) -> dict | None:
    from compress.bench.cells import cell

    return cell({"latency": entry.get("latency", [])}, seq, threads)


def shipped_entry(entries: list[dict], runtime: str, seq: int, threads: int, key=lambda e: e) -> dict | None:
    """The artifact the budget was planned for: the runtime's quantizer output, else the runtime's fastest file."""
    same = [e for e in entries if e.get("runtime") == runtime and _cell(e, seq, threads)]
    planned = [e for e in same if ((e.get("quantization") or {}).get("backend") == RUNTIME_BACKEND.get(runtime))]
    pool = planned or same
    return min(pool, key=lambda e: _cell(e, seq, threads)["p50_ms"]) if pool else None


def bench_block(budget_path: Path, artifacts: list[dict]) -> dict | None:
    if not budget_path.is_file():
        return None
    plan = read_json(budget_path)
    seq, threads, runtime = plan["seq_len"], plan["threads"], plan["runtime"]
    chosen = plan["chosen"]
    block = {"budget_ms": plan["budget_ms"], "budget_mb": plan["budget_mb"], "seq_len": seq, "threads": threads,
             "runtime": runtime, "chosen": chosen["name"],
             "profile_device": {k: plan["profile_device"].get(k) for k in DEVICE_KEYS},
             "predicted_on_profile_device_ms": chosen["predicted_ms"], "measured_in_profile_ms": chosen["measured_ms"],
             "expected_ms": chosen["expected_ms"], "held_out_error": plan["held_out_error"],
             "recipes_within_budget": plan["recipes_within_budget"]}
    here = plan.get("this_machine") or {"predicted_ms": chosen["predicted_ms"], "device": "this machine (the profile's)"}
    art = shipped_entry(artifacts, runtime, seq, threads)
    if art is not None:
        measured = _cell(art, seq, threads)["p50_ms"]
        block["this_machine"] = {"artifact": art["name"], "measured_ms": measured, "predicted_ms": here.get("predicted_ms"),
                                 "size_bytes": art.get("size_bytes"), **({"note": here["note"]} if "note" in here else {})}
        if plan.get("this_machine") is None:  # the profile is this machine's: the budget must hold here
            block["met_on_profile_device"] = measured <= plan["budget_ms"]
    return block


def _pct(pred, meas) -> str:
    return "—" if not pred or not meas else f"{100 * (pred - meas) / meas:+.1f}%"


def markdown(report: dict) -> list[str]:
    b = report.get("budget")
    if not b:
        return []
    h = b.get("held_out_error") or {}
    lines = ["", f"## Latency budget: {b['budget_ms']:g} ms at seq {b['seq_len']}, {b['threads']} thread(s)"
             + (f", {b['budget_mb']:g} MB" if b.get("budget_mb") else ""), "",
             f"Chosen student `{b['chosen']}` for {b['runtime']} from the profile of {device_label(b['profile_device'])}; "
             f"the cost model's error on shapes held out of its fit: median {100 * h.get('median', 0):.1f}%, "
             f"p90 {100 * h.get('p90', 0):.1f}% ({h.get('points', 0)} cells). Recipes we ship within the budget there: "
             + (", ".join(f"`{r.removeprefix('recipe-')}`" for r in b["recipes_within_budget"]) or "none") + ".", "",
             "| where | artifact | predicted p50 (ms) | measured p50 (ms) | error | within budget |", "|---|---|---|---|---|---|",
             f"| {device_label(b['profile_device'])} (profile, untrained candidate) | — | {b['predicted_on_profile_device_ms']} | "
             f"{b['measured_in_profile_ms'] or '—'} | {_pct(b['predicted_on_profile_device_ms'], b['measured_in_profile_ms'])} | "
             f"{'yes' if b['expected_ms'] <= b['budget_ms'] else 'no'} |"]
    t = b.get("this_machine")
    if t:
        lines.append(f"| this machine (bench stage, trained student) | {t['artifact']} | {t.get('predicted_ms') or '—'} | "
                     f"{t['measured_ms']} | {_pct(t.get('predicted_ms'), t['measured_ms'])} | "
                     f"{'yes' if t['measured_ms'] <= b['budget_ms'] else 'no'} |")
    return lines


def merged_lines(docs: list[dict]) -> list[str]:
    """For `bert-compress report`: a device's measured latency of the chosen student beside the profile's prediction,
    for every merged results file made on the profiled device (same name, or same CPU and board, emulated alike)."""
    lines = []
    for doc in docs:
        b = doc.get("budget")
        if not b:
            continue
        pd = b["profile_device"]
        for other in docs:
            d = other.get("device") or {}
            if other is doc or not ((pd.get("name") and d.get("name") == pd.get("name"))
                                    or (d.get("cpu") == pd.get("cpu") and d.get("board") == pd.get("board")
                                        and bool(d.get("emulated")) == bool(pd.get("emulated")))):
                continue
            m = shipped_entry(other.get("models", []), b["runtime"], b["seq_len"], b["threads"])
            if m is None:
                continue
            measured = _cell(m, b["seq_len"], b["threads"])["p50_ms"]
            pred = b["predicted_on_profile_device_ms"]
            if not lines:
                lines = ["", "## Latency budget on the profiled device", "",
                         "| device | budget (ms) | model | predicted p50 (ms) | measured p50 (ms) | error | within budget |",
                         "|---|---|---|---|---|---|---|"]
            lines.append(f"| {device_label(other.get('device') or {})} | {b['budget_ms']:g} at seq {b['seq_len']} | {m['name']} | {pred} | {measured} | "
                         f"{_pct(pred, measured)} | {'yes' if measured <= b['budget_ms'] else 'no'} |")
    return lines
