"""A per-operator cost model of a student's latency, fitted to a device profile.

latency(shape, seq) ≈ Σ_k c_k · f_k(shape, seq) with non-negative costs c_k for what a BERT forward pass does:
dense matrix products (Q, K, V, output, FFN, the ALBERT projection, the head), attention products (QKᵀ and
softmax·V, quadratic in the length), softmax and per-element work (layer norms, GELU, adds), per-layer and
per-head operator overhead, and a fixed per-call cost. Fitted by non-negative least squares on relative error
(each row divided by its measured latency), so a 1 ms shape counts as much as a 30 ms one. Non-negative costs keep
every prediction monotone in the shape: a bigger student is never predicted faster.

`held_out_error` refits without each shape in turn and predicts it: the error on shapes the fit has not seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FEATURES = ("dense_macs", "attention_macs", "softmax_elements", "hidden_elements", "ffn_elements", "layers",
            "layer_heads", "call")


def features(arch: dict, seq: int) -> np.ndarray:
    L, H, FF = arch["layers"], arch["hidden_size"], arch["intermediate_size"]
    A = arch.get("heads") or max(1, H // 64)
    E = arch.get("embedding_size") or H
    C = arch.get("num_labels", 2)
    head = (H * H + H * C) if arch.get("head", True) else 0
    dense = seq * L * (4 * H * H + 2 * H * FF) + (seq * E * H if E != H else 0) + head
    return np.array([dense / 1e6, L * 2 * seq * seq * H / 1e6, L * A * seq * seq / 1e6, seq * L * H / 1e6,
                     seq * L * FF / 1e6, L, L * A, 1.0], dtype=np.float64)


@dataclass
class LatencyModel:
    coef: np.ndarray
    rows: int
    fit_error: dict = field(default_factory=dict)
    """median / p90 / max relative error on the rows it was fitted to"""

    def predict(self, arch: dict, seq: int) -> float:
        return float(features(arch, seq) @ self.coef)

    def as_dict(self) -> dict:
        return {"kind": "per-operator cost model (NNLS on relative error)", "features": list(FEATURES),
                "coefficients_ms": [float(x) for x in self.coef], "rows": self.rows, "fit_error": self.fit_error}


def points(profile: dict, names: set[str] | None = None) -> list[tuple[str, dict, int, float]]:
    """(candidate, arch, seq, p50 ms) of every profiled cell."""
    out = []
    for r in profile["candidates"]:
        if names is not None and r["name"] not in names:
            continue
        for seq, cell in r["latency"].items():
            out.append((r["name"], r["arch"], int(seq), float(cell["p50_ms"])))
    return out


def fit(pts: list[tuple[str, dict, int, float]]) -> LatencyModel:
    from scipy.optimize import nnls

    X = np.stack([features(a, s) for _, a, s, _ in pts])
    y = np.array([t for *_, t in pts])
    scale = X.max(axis=0)
    scale[scale == 0] = 1.0
    w = 1.0 / y  # relative error
    c, _ = nnls((X / scale) * w[:, None], y * w)
    model = LatencyModel(c / scale, len(pts))
    model.fit_error = error_stats([(model.predict(a, s), t) for _, a, s, t in pts])
    return model


def error_stats(pairs: list[tuple[float, float]]) -> dict:
    rel = np.array([abs(p - t) / t for p, t in pairs])
    return {"median": round(float(np.median(rel)), 4), "p90": round(float(np.percentile(rel, 90)), 4),
            "max": round(float(rel.max()), 4), "points": int(len(rel))}


def held_out_error(profile: dict) -> dict:
    """Leave one shape out: fit on every other candidate, predict the held-out one at every profiled length.
    Candidates of the same shape (a recipe that is also a grid point) are held out together."""
    pts = points(profile)
    by_shape: dict[str, list] = {}
    for p in pts:
        by_shape.setdefault(_shape_key(p[1]), []).append(p)
    pairs, per = [], []
    for key, held in by_shape.items():
        rest = [p for p in pts if _shape_key(p[1]) != key]
        if len(rest) < len(FEATURES):
            continue
        m = fit(rest)
        for name, arch, seq, t in held:
            pred = m.predict(arch, seq)
            pairs.append((pred, t))
            per.append({"candidate": name, "seq_len": seq, "measured_ms": t, "predicted_ms": round(pred, 4),
                        "error": round((pred - t) / t, 4)})
    if not pairs:
        return {"note": f"too few shapes to hold any out (needs more than {len(FEATURES)} cells besides it)"}
    return error_stats(pairs) | {"method": "leave one shape out", "shapes": len(by_shape), "cells": per}


def _shape_key(arch: dict) -> str:
    return "/".join(str(arch.get(k)) for k in ("layers", "hidden_size", "heads", "intermediate_size", "embedding_size"))
