"""Small helpers every stage uses."""

from __future__ import annotations

from pathlib import Path

from compress.errors import UserError


def require_absent(path: Path, force: bool, stage: str) -> None:
    if path.exists() and not force:
        raise UserError(f"{path} exists already: pass --force to redo the {stage} stage, --resume to keep it "
                        "when its settings are unchanged, or choose another --out")
