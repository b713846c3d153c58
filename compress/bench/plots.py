"""PNG plots of benchmark results: accuracy vs latency (Pareto front marked), latency vs sequence length, size.

Input: results documents (schema bert-compress-bench), one per device run. matplotlib's Agg backend (no screen).
"""

from __future__ import annotations

from pathlib import Path

from compress.bench.results import cell, device_key, device_label, pareto_front, quality, quality_label, reference_cell


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
    drawn, ylabel = False, "test accuracy (%)"
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
        # every point named; neighbours in latency get labels on four levels so near-equal points stay readable
        for j, (name, ms, acc) in enumerate(sorted(points, key=lambda p: p[1])):
            ax.annotate(name.replace("student-", ""), (ms, acc), fontsize=6, xytext=(6, (-14, -5, 4, 13)[j % 4]),
                        textcoords="offset points", arrowprops={"arrowstyle": "-", "lw": 0.4, "alpha": 0.5})
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
    return _save(fig, plt, path)


def plot_latency_vs_seq(docs: list[dict], path: Path) -> Path | None:
    plt = _pyplot()
    docs = one_per_device(docs)
    cols = min(2, len(docs))
    rows = -(-len(docs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7 * cols, 4.6 * rows), squeeze=False)
    for ax in axes.flat[len(docs):]:
        ax.set_visible(False)
    for ax, doc in zip(axes.flat, docs):
        threads = min(doc["grid"]["threads"])
        for m in doc["models"]:
            pts = sorted((c["seq_len"], c["p50_ms"]) for c in m["latency"] if c["threads"] == threads and c["batch"] == 1)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", ms=3, lw=1.2,
                        label=f"{m['name']} ({m['runtime']})")
                ax.annotate(m["name"].replace("student-", ""), pts[-1], fontsize=5, xytext=(3, 0),
                            textcoords="offset points", va="center")  # each line named at its end, not only in the legend
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        from matplotlib.ticker import FuncFormatter

        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda y, _: f"{y:g}" if str(f"{y:g}")[0] in "25" else ""))
        seqs = sorted(doc["grid"]["seq_lens"])
        ax.set_xticks(seqs, [str(s) for s in seqs])
        ax.set_xlabel("sequence length (tokens)")
        ax.set_ylabel("p50 latency, batch 1 (ms)")
        emulated = " — EMULATED, relative only" if doc["device"].get("emulated") else ""
        ax.set_title(f"{device_label(doc)}, {threads} thread{emulated}", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6)
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
