"""`python -m targets.outputs FEEDS OUT_DIR MODEL...`: model files' raw outputs on token ids, one text per call at its
own length, as a device runs them (numpy and the model's runtime only).

FEEDS is an .npz of int64 `input_ids`, `attention_mask`, `token_type_ids` [rows, width] (padding: mask 0); each
MODEL's outputs go to OUT_DIR/<its file name>.npy, float32 [rows, labels] (or [rows, width, tags] for a tag per
token, zeros past a text's tokens). The build machine runs this under emulated aarch64 to take a mobile bundle's
int8 decision on the numerics of the target's instruction set (compress.quantize.arm), then compares the outputs
with the fp32 student's itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from targets.runtime import load_model


def outputs(model, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """One row per call, cut to its used length (a LiteRT / ExecuTorch model pads it to its own bucket)."""
    mask = feeds["attention_mask"]
    lengths = [int(m.nonzero()[0].max()) + 1 if m.any() else 1 for m in mask]
    out = None
    for i in sorted(range(len(mask)), key=lengths.__getitem__):  # similar shapes back to back, as the host does
        n = lengths[i]
        row = model({k: v[i:i + 1, :n] for k, v in feeds.items()})
        if out is None:
            out = np.zeros((len(mask), *((mask.shape[1],) if row.ndim == 3 else ()), row.shape[-1]), dtype=np.float32)
        if row.ndim == 3:
            out[i, :n] = row[0, :n]
        else:
            out[i] = row[0]
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print("usage: python -m targets.outputs FEEDS.npz OUT_DIR MODEL...", file=sys.stderr)
        return 2
    with np.load(argv[0], allow_pickle=False) as data:
        feeds = {k: np.asarray(data[k], dtype=np.int64) for k in data.files}
    out_dir = Path(argv[1])
    for path in argv[2:]:
        np.save(out_dir / f"{Path(path).name}.npy", outputs(load_model(path, threads=1), feeds), allow_pickle=False)
        print(f"{Path(path).name}: done", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
