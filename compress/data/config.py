"""The recipe's `data` section: where the task data is and how it is read."""

from __future__ import annotations

from pydantic import Field

from compress.schema import Strict


class DataConfig(Strict):
    path: str = "default"
    """'default' (vendored Rotten Tomatoes), a directory with train/dev/test files, or one file (split 80/10/10)."""
    text_column: str = "text"
    text_pair_column: str | None = None
    label_column: str = "label"
    labels: list[str] | None = None
    """Explicit label order; default: sorted label names of the train split (numerically when all are ints)."""
    max_length: int = Field(128, ge=8)
    max_train: int | None = Field(None, ge=1)
    max_eval: int | None = Field(None, ge=1)
    """Cap on dev and test rows (the quick profile uses it)."""
    split_seed: int = 13
    fix_bio: bool = False
    """Token classification: read an I- tag that follows O or another type as B- (as conlleval does); False refuses
    such data with the line to fix."""
