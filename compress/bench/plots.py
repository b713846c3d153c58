"""PNG plots of benchmark results: accuracy vs latency (Pareto front marked), latency vs sequence length, size.

Input: results documents (schema bert-compress-bench), one per device run. matplotlib's Agg backend (no screen).
"""

from __future__ import annotations

from pathlib import Path

from compress.bench.cells import cell
from compress.bench.results import device_key, device_label, pareto_front, quality, quality_label, reference_cell


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


MARKERS = "osD^vP*Xh"


def one_per_device(docs: list[dict], emulated: bool = True) -> list[dict]:
    """The first run of each device (repeats add nothing to a plot); emulated ones only when asked."""
    seen, out = set(), []
    for doc in docs:
        if (emulated or not doc["device"].get("emulated")) and device_key(doc) not in seen:
            seen.add(device_key(doc))
            out.append(doc)
    return out


def plot_pareto(docs: list[dict], path: Path) -> Path | None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5.5))
    drawn, ylabel, labels = False, "test accuracy (%)", []
    for i, doc in enumerate(one_per_device(docs, emulated=False)):  # emulated latencies are not latencies
        seq, threads = reference_cell(doc)
        points = [(m["name"], cell(m, seq, threads, 1)["p50_ms"], 100 * quality(doc, m))
                  for m in doc["models"] if quality(doc, m) is not None and cell(m, seq, threads, 1)]
        ylabel = quality_label(doc)
        if not points:
            continue
        drawn = True
        label = device_label(doc)
        ax.scatter([p[1] for p in points], [p[2] for p in points], marker=MARKERS[i % len(MARKERS)], s=36, alpha=0.6,
                   label=f"{label}: seq {seq}, {threads} thread")
        front = sorted(pareto_front([(p[1], p[2]) for p in points]))
        ax.plot([p[0] for p in front], [p[1] for p in front], "-", lw=1.5)
        ax.scatter([p[0] for p in front], [p[1] for p in front], marker=MARKERS[i % len(MARKERS)], s=90,
                   facecolors="none", edgecolors="black", linewidths=1.2)
        labels += [(name.replace("student-", ""), ms, acc) for name, ms, acc in points]
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xscale("log")
    from matplotlib.ticker import FuncFormatter

    plain = FuncFormatter(lambda x, _: f"{x:g}")  # 6, 10, 20 ms: not 6×10⁰
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(plain)
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel("p50 latency, batch 1 (ms, log scale)")
    ax.set_ylabel(ylabel)
    what = ylabel.split(" (")[0]
    ax.set_title(f"{what[0].upper() + what[1:]} vs latency (circled and joined: the Pareto front; emulated devices left out)",
                 fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    place_labels(fig, ax, labels, fontsize=6)  # every point named, no label over another or over a point
    return _save(fig, plt, path)


def place_labels(fig, ax, items: list[tuple[str, float, float]], fontsize: float = 6) -> None:
    """Annotate each (text, x, y) at the first nearby spot (tried outwards, right then left, above then below) where
    its box covers no label placed before it and no other point; a line joins label and point."""
    fig.canvas.draw()  # the final transforms: positions are decided in pixels
    scale = fig.dpi / 72
    pts = [ax.transData.transform((x, y)) for _, x, y in items]
    radius = 5 * scale
    taken: list[tuple[float, float, float, float]] = []

    def free(box) -> bool:
        x0, y0, x1, y1 = box
        if any(x0 < b[2] and b[0] < x1 and y0 < b[3] and b[1] < y1 for b in taken):
            return False
        return not any(x0 - radius < px < x1 + radius and y0 - radius < py < y1 + radius for px, py in pts)

    offsets = [(dx, dy) for step in range(8) for dy in (4 + 11 * step, -12 - 11 * step) for dx in (7, -7)]
    for (text, x, y), (px, py) in sorted(zip(items, pts), key=lambda t: t[1][0]):
        w, h = len(text) * fontsize * 0.55 * scale, fontsize * 1.25 * scale
        for dx, dy in offsets:
            left = px + dx * scale if dx > 0 else px + dx * scale - w
            box = (left, py + dy * scale - h / 2, left + w, py + dy * scale + h / 2)
            if free(box):
                break
        taken.append(box)
        ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize, va="center",
                    ha="left" if dx > 0 else "right", arrowprops={"arrowstyle": "-", "lw": 0.4, "alpha": 0.5})


def _spread(values: list[float], gap: float) -> list[float]:
    """Label positions (log10 units) near `values`, in the same order, at least `gap` apart: labels at a line's end
    must not cover each other when lines end close together."""
    import math

    order = sorted(range(len(values)), key=lambda i: values[i])
    pos = [math.log10(values[i]) for i in order]
    for _ in range(50):  # push neighbours apart symmetrically until no pair is closer than the gap
        moved = False
        for k in range(1, len(pos)):
            if pos[k] - pos[k - 1] < gap:
                shift = (gap - (pos[k] - pos[k - 1])) / 2
                pos[k - 1] -= shift
                pos[k] += shift
                moved = True
        if not moved:
            break
    out = [0.0] * len(values)
    for k, i in enumerate(order):
        out[i] = 10 ** pos[k]
    return out


def plot_latency_vs_seq(docs: list[dict], path: Path) -> Path | None:
    import math

    from matplotlib.ticker import FuncFormatter

    plt = _pyplot()
    docs = one_per_device(docs)
    cols = min(2, len(docs))
    rows = -(-len(docs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(8 * cols, 6.2 * rows), squeeze=False)
    for ax in axes.flat[len(docs):]:
        ax.set_visible(False)
    colors = list(plt.cm.tab10.colors) + list(plt.cm.Dark2.colors)  # 18 lines before a colour repeats
    for ax, doc in zip(axes.flat, docs):
        ax.set_prop_cycle(color=colors)
        threads = min(doc["grid"]["threads"])
        ends = []
        for m in doc["models"]:
            pts = sorted((c["seq_len"], c["p50_ms"]) for c in m["latency"] if c["threads"] == threads and c["batch"] == 1)
            if pts:
                line, = ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", ms=3, lw=1.2,
                                label=f"{m['name']} ({m['runtime']})")
                ends.append((pts[-1], m["name"].replace("student-", ""), line.get_color()))
        if ends:  # each line named at its end (not only in the legend), labels spread so none covers another
            lows = [y for (_, y), _, _ in ends]
            span = math.log10(max(lows) / min(lows)) if len(lows) > 1 else 1.0
            placed = _spread(lows, max(0.04, 0.03 * max(span, 1.0)))
            for ((x, y), name, color), ly in zip(ends, placed):
                ax.annotate(name, (x, y), xytext=(x * 1.18, ly), textcoords="data", fontsize=6, va="center", color=color,
                            arrowprops={"arrowstyle": "-", "color": color, "lw": 0.5, "alpha": 0.6})
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda y, _: f"{y:g}" if f"{y:.0e}"[0] in "25" else ""))
        seqs = sorted(doc["grid"]["seq_lens"])
        ax.set_xticks(seqs, [str(s) for s in seqs])
        ax.set_xlim(seqs[0] / 1.15, seqs[-1] * 2.6)  # room on the right for the end labels
        ax.set_xlabel("sequence length (tokens)")
        ax.set_ylabel("p50 latency, batch 1 (ms)")
        emulated = " — EMULATED, relative only" if doc["device"].get("emulated") else ""
        ax.set_title(f"{device_label(doc)}, {threads} thread{emulated}", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)  # below: hides nothing
    return _save(fig, plt, path)


def plot_sizes(docs: list[dict], path: Path) -> Path | None:
    plt = _pyplot()
    sizes = {}
    for doc in docs:
        for m in doc["models"]:
            if m.get("size_bytes"):
                sizes.setdefault(f"{m['name']} ({m.get('format', m['runtime'])})", m["size_bytes"] / 1e6)
    if not sizes:
        return None
    names = sorted(sizes, key=sizes.get)
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(names) + 1.2))
    ax.barh(names, [sizes[n] for n in names], color="#4c72b0")
    for y, n in enumerate(names):
        ax.text(sizes[n], y, f" {sizes[n]:.1f}", va="center", fontsize=7)
    ax.set_xlabel("MB on disk")
    ax.set_title("Size per model")
    ax.tick_params(axis="y", labelsize=7)
    return _save(fig, plt, path)


def _save(fig, plt, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path


PLOTS = {"pareto.png": plot_pareto, "latency_vs_seq.png": plot_latency_vs_seq, "size.png": plot_sizes}


def write_plots(docs: list[dict], out_dir: Path) -> list[Path]:
    return [p for name, fn in PLOTS.items() if (p := fn(docs, out_dir / name))]
