"""A bundle (or candidates) zip extracted beside itself, once per content: BUNDLE.zip -> BUNDLE.unzipped/."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

ZIP_DIGEST_FILE = ".bundle-zip-sha256"
"""In BUNDLE.unzipped/: the SHA-256 of the zip it was extracted from."""


class ArchiveError(Exception):
    """The zip cannot be read or extracted."""


def sha256(path: Path) -> str:
    """SHA-256 of a file, lowercase hex (as compress.fsutil.file_digest(path, None) records it)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def unzipped(path: Path) -> Path:
    """Extract a bundle zip next to itself (BUNDLE.zip -> BUNDLE.unzipped/), keyed on the zip's SHA-256: a zip
    rebuilt under the same name is extracted again. Extraction goes to a temporary folder that is then renamed
    into place, so a crash or a concurrent reader never sees half a bundle."""
    target = path.with_suffix(".unzipped")
    try:
        digest = sha256(path)
    except OSError as exc:
        raise ArchiveError(f"cannot read {path}: {exc}") from None
    if _extracted_from(target) != digest:
        tmp = None
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}.", dir=path.parent))
            with zipfile.ZipFile(path) as zf:
                zf.extractall(tmp)
            (tmp / ZIP_DIGEST_FILE).write_text(digest + "\n", encoding="utf-8")
            _swap_in(tmp, target, digest)
        except (zipfile.BadZipFile, OSError) as exc:
            raise ArchiveError(f"cannot extract {path}: {exc}") from None
        finally:
            if tmp is not None and tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    inner = [p for p in target.iterdir() if p.is_dir() and (p / "metadata.json").is_file()]
    return inner[0] if not (target / "metadata.json").is_file() and len(inner) == 1 else target


def _extracted_from(target: Path) -> str | None:
    try:
        return (target / ZIP_DIGEST_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return None


def _swap_in(tmp: Path, target: Path, digest: str) -> None:
    """Replace `target` (a stale extraction, or nothing) by the folder `tmp`."""
    old = target.with_name(f".old-{target.name}.{os.getpid()}.{os.urandom(4).hex()}")
    try:
        os.replace(target, old)
    except FileNotFoundError:
        old = None
    try:
        os.replace(tmp, target)
    except OSError:
        if _extracted_from(target) != digest:  # not another process that extracted the same zip meanwhile
            raise
    if old is not None and old.is_dir():
        shutil.rmtree(old, ignore_errors=True)
    elif old is not None:
        old.unlink(missing_ok=True)
