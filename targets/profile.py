"""Device profiles: time a candidates archive's untrained students on this device, torch-free.

`bert-compress candidates --out CANDS` writes CANDS/ (and CANDS.zip): candidates.json plus one model file per
candidate shape, quantized as the pipeline ships them, and this runner. Latency does not depend on the weights'
values, so `python -m targets profile CANDS --out device.json` on the phone or Pi times every shape in minutes; the
profile then steers `bert-compress run --budget-ms MS --device-profile device.json` to the student that fits.

A profile names what it was made for (the archive's `identity`: teacher, task, runtime, vocabulary) and the device it
was made on; the build machine refuses a profile of another teacher, task or runtime.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from targets.bench import BenchError, Grid, Timing, bench_many, file_job, write_results

CANDIDATES_FORMAT = "bert-compress-candidates"
PROFILE_FORMAT = "bert-compress-device-profile"
SCHEMA_VERSION = 1
CANDIDATES_FILE = "candidates.json"
# a profile's cells are short: many shapes, each a few hundred calls; rounds interleave the shapes so a slow
# spell of the device touches every shape a little instead of a few a lot
PROFILE_TIMING = Timing(warmup=3, warmup_s=0.05, min_runs=20, min_s=0.3, max_s=10.0, rounds=2)


class ProfileError(Exception):
    """A candidates archive or profile that cannot be used: missing files, another format, bad settings."""


@dataclass
class Candidates:
    root: Path
    metadata: dict

    @classmethod
    def load(cls, path: str | Path) -> "Candidates":
        from targets.archive import ArchiveError, sha256, unzipped

        root = Path(path)
        if root.is_file() and root.suffix == ".zip":
            try:
                root = unzipped(root)
            except ArchiveError as exc:
                raise ProfileError(str(exc)) from None
        meta_path = root / CANDIDATES_FILE
        if not root.is_dir() or not meta_path.is_file():
            raise ProfileError(f"{path} is not a candidates archive (no {CANDIDATES_FILE}): make one with "
                               "`bert-compress candidates --out CANDS`")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ProfileError(f"{meta_path} is not valid JSON ({exc}): make the archive again") from None
        if not isinstance(meta, dict) or meta.get("format") != CANDIDATES_FORMAT:
            raise ProfileError(f"{meta_path} is not a {CANDIDATES_FORMAT} file")
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise ProfileError(f"{root} is candidates schema {meta.get('schema_version')}; this runner reads "
                               f"{SCHEMA_VERSION}: make the archive with the same bert-compress version as the runner")
        entries = meta.get("candidates")
        if not isinstance(entries, list) or not entries:
            raise ProfileError(f"{meta_path} lists no candidates: make the archive again")
        for e in entries:
            f = root / str(e.get("file"))
            if not f.is_file():
                raise ProfileError(f"candidates archive {root} is missing {e.get('file')}: copy the whole archive (or its .zip)")
            if e.get("sha256") and sha256(f) != e["sha256"]:
                raise ProfileError(f"{e['file']} does not match its SHA-256 in {CANDIDATES_FILE}: copy the archive again")
        return cls(root, meta)


def profile(cands: Candidates, seq_lens: list[int], threads: int, timing: Timing = PROFILE_TIMING,
            names: list[str] | None = None, interpreter: str = "auto", isolate: bool = False) -> list[dict]:
    """One row per candidate: its shape, file size and p50 / p90 latency per sequence length (batch 1)."""
    meta = cands.metadata
    entries = meta["candidates"]
    if names:
        unknown = sorted(set(names) - {e["name"] for e in entries})
        if unknown:
            raise ProfileError(f"the archive has no candidate {', '.join(unknown)}")
        entries = [e for e in entries if e["name"] in names]
    max_length = int(meta["identity"]["max_length"])
    too_long = [s for s in seq_lens if s > max_length]
    if too_long:
        raise ProfileError(f"--seq-lens {too_long} are above the candidates' max length {max_length}")
    grid = Grid(threads=[threads], seq_lens=seq_lens, batches=[1])
    vocab = int(meta["identity"]["vocab_size"])
    jobs = [file_job(cands.root / e["file"], grid, vocab, e["name"], e["arch"], interpreter, isolate=isolate, quiet=True)
            for e in entries]
    timed = bench_many(jobs, timing)
    rows = []
    for e, t in zip(entries, timed):
        cells = {str(c["seq_len"]): {"p50_ms": c["p50_ms"], "p90_ms": c["p90_ms"], "runs": c["runs"]} for c in t["latency"]}
        rows.append({"name": e["name"], "kind": e.get("kind", "grid"), "shape": e["shape"], "arch": e["arch"],
                     "size_bytes": e["size_bytes"], "latency": cells, "load_s": t.get("load_s")})
    return rows


def profile_document(cands: Candidates, rows: list[dict], seq_lens: list[int], threads: int, device: dict,
                     command: str, timing: Timing) -> dict:
    from dataclasses import asdict
    from datetime import datetime, timezone

    meta = cands.metadata
    return {"format": PROFILE_FORMAT, "schema_version": SCHEMA_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "command": command,
            "identity": meta["identity"], "archive_digest": meta.get("digest"), "archive_command": meta.get("command"),
            "device": device,
            "threads": threads, "batch": 1, "seq_lens": seq_lens, "timing": asdict(timing), "candidates": rows}


def load_profile(path: str | Path) -> dict:
    """A profile, checked for its format, version and rows (ProfileError, one line, otherwise)."""
    path = Path(path)
    if not path.is_file():
        raise ProfileError(f"device profile {path} does not exist: make one with `python -m targets profile CANDS --out {path.name}`")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProfileError(f"device profile {path} is not valid JSON ({str(exc)[:80]}): make it again with "
                           "`python -m targets profile`") from None
    if not isinstance(doc, dict) or doc.get("format") != PROFILE_FORMAT:
        raise ProfileError(f"{path} is not a device profile (format {PROFILE_FORMAT}): pass the file "
                           "`python -m targets profile` wrote")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise ProfileError(f"device profile {path} is schema {doc.get('schema_version')}; this version reads "
                           f"{SCHEMA_VERSION}: profile the device again")
    rows = doc.get("candidates")
    ok = isinstance(rows, list) and rows and isinstance(doc.get("identity"), dict) and isinstance(doc.get("seq_lens"), list)
    if ok:
        for r in rows:
            try:
                ok &= all(float(c["p50_ms"]) > 0 for c in r["latency"].values()) and set(r["latency"]) == {str(s) for s in doc["seq_lens"]}
                ok &= all(isinstance(r["arch"][k], int) for k in ("layers", "hidden_size", "intermediate_size"))
                ok &= int(r["size_bytes"]) > 0
            except (KeyError, TypeError, ValueError, AttributeError):
                ok = False
            if not ok:
                break
    if not ok:
        raise ProfileError(f"device profile {path} is damaged (a candidate without its shape, size or a positive latency "
                           "per sequence length): profile the device again")
    return doc


def write_profile(doc: dict, out: Path) -> None:
    write_results(doc, out)


def default_out_check(out: Path, force: bool) -> None:
    if out.exists() and not force:
        raise BenchError(f"{out} exists: pass --force to overwrite it, or choose another --out")
    if not out.parent.is_dir() or not os.access(out.parent, os.W_OK):
        raise BenchError(f"cannot write {out}: its directory does not exist or is not writable")
