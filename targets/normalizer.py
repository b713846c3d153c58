"""Unicode as the `tokenizers` library (Rust) sees it, for the pure-Python BERT tokenizer (targets.tokenizer): its
character classes, NFD and lower-case mappings (the tables of targets/unicode_tables.py, read off the library by
tests/tokenizer_tables.py), BertNormalizer and BertPreTokenizer."""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from types import SimpleNamespace

from targets.unicode_tables import (CCC_ZERO, CJK, LOWER, NFD, NONSPACING, PUNCTUATION, REMOVED, WHITESPACE, WORD_EXTRA,
                                    WORD_NOT)


def _ranges(table: str):
    """A table's 'XXXX-YYYY ZZZZ' (hex) as (first, last) pairs."""
    for item in table.split():
        first, _, last = item.partition("-")
        yield int(first, 16), int(last or first, 16)


def _mapping(table: str) -> dict[int, str]:
    """A table's 'A-B>T' (A..B onto T.., one by one) and 'A>T.U' (A onto the text T U) items."""
    out = {}
    for item in table.split():
        source, target = item.split(">")
        (first, last), chars = next(_ranges(source)), [int(t, 16) for t in target.split(".")]
        for cp in range(first, last + 1):
            out[cp] = "".join(map(chr, chars)) if len(chars) > 1 else chr(chars[0] + cp - first)
    return out


def _class(table: str) -> str:
    """A table as the inside of a regex character class."""
    return "".join(f"\\U{first:08X}-\\U{last:08X}" for first, last in _ranges(table))


@functools.lru_cache(maxsize=None)
def _unicode() -> SimpleNamespace:
    """The tables of targets/unicode_tables.py, compiled on first use: character classes as regexes, mappings as dicts."""
    def one_of(*tables):
        inside = "".join(_class(t) for t in tables)
        return re.compile(f"[{inside}]" if inside else "(?!)")

    punct, space, nfd = _class(PUNCTUATION), _class(WHITESPACE), _mapping(NFD)
    return SimpleNamespace(
        removed=one_of(REMOVED), whitespace=one_of(WHITESPACE), cjk=one_of(CJK), nonspacing=one_of(NONSPACING),
        spaces="".join(chr(cp) for first, last in _ranges(WHITESPACE) for cp in range(first, last + 1)),
        words=re.compile(f"[{punct}]|[^{punct}{space}]+"),  # a punctuation character, or a run of neither
        lower=_mapping(LOWER), nfd=nfd, ccc_zero=one_of(CCC_ZERO),
        nfd_special=one_of(CCC_ZERO, " ".join(f"{cp:X}" for cp in nfd)),
        word_extra=one_of(WORD_EXTRA), word_not=one_of(WORD_NOT))


def word_category(ch: str) -> bool:
    """Python's part of the regex crate's `\\w` (Alphabetic, marks, Nd, Pc, joiners); WORD_EXTRA / WORD_NOT do the rest."""
    cat = unicodedata.category(ch)
    return cat[0] in "LM" or cat in ("Nd", "Nl", "Pc")


@functools.lru_cache(maxsize=None)
def _is_word(ch: str) -> bool:
    u = _unicode()
    return bool(u.word_extra.match(ch)) or (not u.word_not.match(ch) and word_category(ch))


@functools.lru_cache(maxsize=None)
def _lower(ch: str) -> str:
    return _unicode().lower.get(ord(ch)) or ch.lower()


def _nfd(text: str) -> str:
    u = _unicode()
    if not u.nfd_special.search(text):  # nothing the library's NFD treats differently from unicodedata's
        return unicodedata.normalize("NFD", text)
    chars = "".join(u.nfd.get(ord(ch)) or unicodedata.normalize("NFD", ch) for ch in text)
    out = []  # canonical ordering with the library's combining classes: each run of non-starters sorted, stably
    for nonstarters, run in itertools.groupby(chars, lambda ch: _ccc(ch) > 0):
        out.extend(sorted(run, key=_ccc) if nonstarters else run)  # noqa: B031 (one branch reads it)
    return "".join(out)


@functools.lru_cache(maxsize=None)
def _ccc(ch: str) -> int:
    return 0 if _unicode().ccc_zero.match(ch) else unicodedata.combining(ch)


def bert_normalize(text: str, *, clean_text: bool = True, handle_chinese_chars: bool = True, strip_accents: bool = True,
                   lowercase: bool = True) -> str:
    """The library's BertNormalizer (strip_accents resolved already: None means `lowercase` there)."""
    u = _unicode()
    if clean_text:  # drop first: \x0b \x0c \x85 are control characters and whitespace, and the library drops them
        text = u.whitespace.sub(" ", u.removed.sub("", text))
    if handle_chinese_chars:
        text = u.cjk.sub(r" \g<0> ", text)
    if strip_accents:
        text = u.nonspacing.sub("", _nfd(text))
    if lowercase:  # per character: str.lower would turn a word-final Σ into ς, the library into σ
        text = text.lower() if text.isascii() else "".join(map(_lower, text))
    return text


def bert_pre_tokenize(text: str) -> list[str]:
    """The library's BertPreTokenizer: split on whitespace, each punctuation character on its own."""
    return _unicode().words.findall(text)


def bert_normalize_aligned(text: str, *, clean_text: bool = True, handle_chinese_chars: bool = True,
                           strip_accents: bool = True, lowercase: bool = True) -> tuple[str, list[int]]:
    """bert_normalize(text) and, for each of its characters, the index in `text` it is aligned to, as the library
    aligns them: a character's replacements keep its index; canonical reordering moves the characters, not the
    indices (a mark that moves takes the index of the place it moves to)."""
    u = _unicode()
    chars = [(ch, i) for i, ch in enumerate(text)]
    if clean_text:
        chars = [(" " if u.whitespace.match(ch) else ch, i) for ch, i in chars if not u.removed.match(ch)]
    if handle_chinese_chars:
        chars = [(c, i) for ch, i in chars for c in ((" ", ch, " ") if u.cjk.match(ch) else (ch,))]
    if strip_accents:
        chars = [(d, i) for ch, i in chars for d in (u.nfd.get(ord(ch)) or unicodedata.normalize("NFD", ch))]
        k = 0
        while k < len(chars):  # each run of non-starters sorted by combining class, stably; indices stay put
            end = k
            while end < len(chars) and _ccc(chars[end][0]) > 0:
                end += 1
            if end - k > 1:
                moved = sorted((c for c, _ in chars[k:end]), key=_ccc)
                chars[k:end] = [(c, i) for c, (_, i) in zip(moved, chars[k:end])]
            k = end + 1 if end == k else end
        chars = [(ch, i) for ch, i in chars if not u.nonspacing.match(ch)]
    if lowercase:
        chars = [(c, i) for ch, i in chars for c in _lower(ch)]
    return "".join(c for c, _ in chars), [i for _, i in chars]
