"""Tokenizers for the runner: BERT WordPiece in pure Python, anything else through Hugging Face's `tokenizers`.

load_tokenizer() picks one; both give what the `tokenizers` library (Rust) gives, as Encoding(input_ids, token_type_ids,
attention_mask, truncated), unpadded (tests/test_tokenizer_parity.py checks it).

WordPieceTokenizer, no dependencies: a tokenizer.json with a WordPiece model, BertNormalizer, BertPreTokenizer or none, and
the BERT template (BertProcessing or TemplateProcessing); or a vocab.txt, read as tokenizers.BertWordPieceTokenizer does.
The library's steps, in its order: (1) added tokens (tokenizer.json's added_tokens; [UNK] [SEP] [CLS] [PAD] [MASK] for a
vocab.txt): normalized=false ones are found in the raw text, leftmost-longest, with single_word / lstrip / rstrip; the
text between them is normalized and searched for the normalized=true ones; (2) BertNormalizer: drop NUL, U+FFFD and
control / format / private-use characters, whitespace to ' ', spaces around CJK ideographs, strip accents (NFD, drop
non-spacing marks), lower-case each character (no Final_Sigma); (3) BertPreTokenizer: split on whitespace, isolate
punctuation; (4) WordPiece: greedy longest match with `##` continuations, [UNK] for a word with no match or longer than
max_input_chars_per_word; (5) truncation to max_length longest first as the library does it, [CLS] A [SEP] (B [SEP]: 1).
The character classes and the NFD and lower-case mappings are the library's, not unicodedata's (its Rust crates carry
other Unicode versions): tests/tokenizer_tables.py reads the tables at the end of this file off the library. On a Python
whose unicodedata is newer than UNIDATA_VERSION, characters assigned since may lower-case or decompose differently.

LibraryTokenizer: any other tokenizer.json (RoBERTa byte-level BPE, XLM-R Unigram / Metaspace, ...), run by the
`tokenizers` package, imported only then.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace


class TokenizerError(Exception):
    """The tokenizer files are missing or describe a tokenizer this runner cannot run."""


@dataclass
class Encoding:
    input_ids: list[int]
    token_type_ids: list[int]
    attention_mask: list[int]
    truncated: bool


@dataclass(frozen=True)
class AddedToken:
    """An entry of tokenizer.json's added_tokens; the defaults are the library's."""

    content: str
    id: int
    single_word: bool = False
    lstrip: bool = False
    rstrip: bool = False
    normalized: bool = True
    special: bool = False


# ---- Unicode as the library sees it --------------------------------------------------------------------------------
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
    """The tables at the end of this file, compiled on first use: character classes as regexes, mappings as dicts."""
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
        out.extend(sorted(run, key=_ccc) if nonstarters else run)
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


class AddedVocabulary:
    """The library's AddedVocabulary: split a text into normalized pieces and the ids of the added tokens in it."""

    def __init__(self, tokens: list[AddedToken], normalize):
        self.normalize = normalize
        self.raw = self._matcher({t.content: t for t in tokens if not t.normalized})
        self.normalized = self._matcher({normalize(t.content): t for t in tokens if t.normalized})

    @staticmethod
    def _matcher(tokens: dict[str, AddedToken]):
        tokens = {pattern: t for pattern, t in tokens.items() if pattern}
        # the longest alternative first: at the leftmost match the longest token wins (leftmost-longest Aho-Corasick)
        alternatives = sorted(tokens, key=len, reverse=True)
        return (re.compile("|".join(map(re.escape, alternatives))), tokens) if tokens else None

    def split(self, text: str) -> list[str | int]:
        """The pieces (normalized, not empty) and the added tokens' ids, in text order."""
        out: list[str | int] = []
        for piece in self._find(text, self.raw):
            out.extend([piece] if isinstance(piece, int) else self._find(self.normalize(piece), self.normalized))
        return out

    @staticmethod
    def _find(text: str, matcher) -> list[str | int]:
        if matcher is None:
            return [text] if text else []
        regex, tokens = matcher
        out: list[str | int] = []
        offset, spaces = 0, _unicode().spaces
        for match in regex.finditer(text):  # a discarded single_word match still consumes its characters, as there
            start, stop = match.span()
            token = tokens[match.group()]
            if token.single_word and ((start and _is_word(text[start - 1])) or (stop < len(text) and _is_word(text[stop]))):
                continue
            while token.lstrip and start > offset and text[start - 1] in spaces:  # not into what the last token took
                start -= 1
            while token.rstrip and stop < len(text) and text[stop] in spaces:
                stop += 1
            if offset < start:
                out.append(text[offset:start])
            out.append(token.id)
            offset = stop
        if offset < len(text):
            out.append(text[offset:])
        return out


# ---- BERT WordPiece in pure Python -----------------------------------------------------------------------------------
def _read_json(path: str | Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TokenizerError(f"cannot read {path}: {exc}") from None


def _bert_specials(post: dict | None) -> tuple[str, str] | None:
    """(CLS, SEP) of a post-processor that is the BERT template, else None."""
    post = post or {}
    if post.get("type") == "BertProcessing":
        return post["cls"][0], post["sep"][0]
    if post.get("type") != "TemplateProcessing":
        return None

    def spell(items):  # [("[CLS]", 0), ("$A", 0), ...]
        return [("$" + i["Sequence"]["id"], i["Sequence"]["type_id"]) if "Sequence" in i else
                (i["SpecialToken"]["id"], i["SpecialToken"]["type_id"]) for i in items]

    single, specials = spell(post.get("single", [])), post.get("special_tokens", {})
    cls, sep = (single[0][0], single[-1][0]) if single else ("", "")
    tokens = [specials.get(name, {}).get("tokens", []) for name in (cls, sep)]
    if (single != [(cls, 0), ("$A", 0), (sep, 0)] or spell(post.get("pair", [])) != single + [("$B", 1), (sep, 1)]
            or any(len(t) != 1 for t in tokens)):
        return None
    return tokens[0][0], tokens[1][0]


def _not_bert_wordpiece(spec: dict) -> str | None:
    """What in a tokenizer.json the pure-Python tokenizer does not implement, or None."""
    model, norm = spec.get("model") or {}, spec.get("normalizer") or {}
    if model.get("type") != "WordPiece" or norm.get("type") != "BertNormalizer":
        return f"a {model.get('type')} model with a {norm.get('type')} normalizer"
    if (spec.get("pre_tokenizer") or {}).get("type") not in (None, "BertPreTokenizer"):
        return f"a {spec['pre_tokenizer'].get('type')} pre-tokenizer"
    if _bert_specials(spec.get("post_processor")) is None:
        return f"a {(spec.get('post_processor') or {}).get('type')} post-processor, not [CLS] A [SEP] (B [SEP])"
    return None


class WordPieceTokenizer:
    kind = "bert-wordpiece"

    def __init__(self, vocab: dict[str, int], *, lowercase: bool = True, strip_accents: bool | None = None,
                 clean_text: bool = True, handle_chinese_chars: bool = True, unk_token: str = "[UNK]",
                 cls_token: str = "[CLS]", sep_token: str = "[SEP]", pad_token: str = "[PAD]",
                 continuing_subword_prefix: str = "##", max_input_chars_per_word: int = 100,
                 added_tokens: list[AddedToken] | None = None, pre_tokenize_words: bool = True):
        """added_tokens None: those BertWordPieceTokenizer adds, [UNK] [SEP] [CLS] [PAD] [MASK] where in the vocab."""
        self.lowercase = lowercase
        self.strip_accents = lowercase if strip_accents is None else strip_accents
        self.clean_text, self.handle_chinese_chars = clean_text, handle_chinese_chars
        self.prefix, self.max_chars, self.pre_tokenize_words = continuing_subword_prefix, max_input_chars_per_word, pre_tokenize_words
        if added_tokens is None:
            added_tokens = [AddedToken(t, vocab[t], normalized=False, special=True)
                            for t in (unk_token, sep_token, cls_token, pad_token, "[MASK]") if t in vocab]
        self.model_vocab = vocab  # what WordPiece matches; added tokens only ever come from the added vocabulary
        self.vocab = {**vocab, **{t.content: t.id for t in added_tokens}}
        self.special_tokens = {t.content: t.id for t in added_tokens if t.special}
        self.added = AddedVocabulary(added_tokens, self.normalize)
        for token in (unk_token, cls_token, sep_token, pad_token):
            if token not in self.vocab:
                raise TokenizerError(f"the vocabulary has no {token} token: not a BERT WordPiece vocabulary")
        self.unk_id = vocab.get(unk_token, self.vocab[unk_token])  # WordPiece's own, as the library's model uses
        self.cls_id, self.sep_id, self.pad_id = (self.vocab[t] for t in (cls_token, sep_token, pad_token))

    # ---- loading -------------------------------------------------------------------------------
    @classmethod
    def from_tokenizer_json(cls, path: str | Path) -> "WordPieceTokenizer":
        spec = _read_json(path)
        reason = _not_bert_wordpiece(spec)
        if reason is not None:
            raise TokenizerError(f"{path} has {reason}: this runner implements BERT WordPiece only "
                                 "(load_tokenizer runs other tokenizers through the tokenizers package)")
        return cls._from_spec(spec)

    @classmethod
    def _from_spec(cls, spec: dict) -> "WordPieceTokenizer":
        model, norm = spec["model"], spec["normalizer"]
        vocab = model["vocab"]
        added, next_id = {}, len(vocab)  # ids as the library gives them: the vocab's, else new ones after it
        for entry in spec.get("added_tokens") or []:
            content = entry["content"]
            if not content:
                continue
            token_id = added[content].id if content in added else vocab.get(content)
            if token_id is None:
                token_id, next_id = next_id, next_id + 1
            flags = {k: bool(entry.get(k, getattr(AddedToken, k))) for k in ("single_word", "lstrip", "rstrip", "normalized", "special")}
            added[content] = AddedToken(content, token_id, **flags)
        cls_tok, sep_tok = _bert_specials(spec["post_processor"])
        pad = (spec.get("padding") or {}).get("pad_token", "[PAD]")
        return cls(vocab, lowercase=norm.get("lowercase", True), strip_accents=norm.get("strip_accents"),
                   clean_text=norm.get("clean_text", True), handle_chinese_chars=norm.get("handle_chinese_chars", True),
                   unk_token=model.get("unk_token", "[UNK]"), cls_token=cls_tok, sep_token=sep_tok,
                   pad_token=pad if pad in vocab or pad in added else "[PAD]",
                   continuing_subword_prefix=model.get("continuing_subword_prefix", "##"),
                   max_input_chars_per_word=model.get("max_input_chars_per_word", 100), added_tokens=list(added.values()),
                   pre_tokenize_words=spec.get("pre_tokenizer") is not None)

    @classmethod
    def from_vocab_txt(cls, path: str | Path, lowercase: bool = True, strip_accents: bool | None = None) -> "WordPieceTokenizer":
        try:
            lines = Path(path).read_text(encoding="utf-8").split("\n")
        except (OSError, ValueError) as exc:
            raise TokenizerError(f"cannot read {path}: {exc}") from None
        if lines and lines[-1] == "":
            lines.pop()
        spaces = _unicode().spaces  # the library reads each line trim_end()-ed; a repeated token keeps its last line
        return cls({tok.rstrip(spaces): i for i, tok in enumerate(lines)}, lowercase=lowercase, strip_accents=strip_accents)

    # ---- the steps -------------------------------------------------------------------------------
    def normalize(self, text: str) -> str:
        return bert_normalize(text, clean_text=self.clean_text, handle_chinese_chars=self.handle_chinese_chars,
                              strip_accents=self.strip_accents, lowercase=self.lowercase)

    def wordpiece(self, word: str) -> list[int]:
        if len(word) > self.max_chars:
            return [self.unk_id]
        ids, start = [], 0
        while start < len(word):
            end, found = len(word), None
            while start < end:
                piece = word[start:end] if start == 0 else self.prefix + word[start:end]
                if piece in self.model_vocab:
                    found = self.model_vocab[piece]
                    break
                end -= 1
            if found is None:
                return [self.unk_id]
            ids.append(found)
            start = end
        return ids

    def token_ids(self, text: str) -> list[int]:
        ids: list[int] = []
        for piece in self.added.split(text):
            if isinstance(piece, int):
                ids.append(piece)
            else:
                for word in (bert_pre_tokenize(piece) if self.pre_tokenize_words else [piece]):
                    ids.extend(self.wordpiece(word))
        return ids

    def encode(self, text: str, text_pair: str | None = None, max_length: int = 512) -> Encoding:
        a = self.token_ids(text)
        b = self.token_ids(text_pair) if text_pair is not None else None
        budget = max_length - (3 if b is not None else 2)
        if budget < 0:
            raise ValueError(f"max_length {max_length} leaves no room for the special tokens")
        truncated = False
        if b is None:
            if len(a) > budget:
                a, truncated = a[:budget], True
        elif len(a) + len(b) > budget:  # longest first, as the library does it: the shorter keeps at most half
            truncated = True
            short = min(len(a), len(b), budget // 2)
            if len(a) > len(b):  # on a tie the second text counts as the longer one
                a, b = a[: budget - short], b[:short]
            else:
                a, b = a[:short], b[: budget - short]
        ids = [self.cls_id] + a + [self.sep_id]
        types = [0] * len(ids)
        if b is not None:
            ids += b + [self.sep_id]
            types += [1] * (len(b) + 1)
        return Encoding(ids, types, [1] * len(ids), truncated)


# ---- everything else, through the library --------------------------------------------------------------------------
class LibraryTokenizer:
    """A tokenizer.json run by the `tokenizers` package (a Rust wheel): its ids, type ids and truncation exactly."""

    def __init__(self, path: str | Path):
        spec = _read_json(path)
        model = spec.get("model") or {}
        self.kind = str(model.get("type") or "unknown").lower()
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise TokenizerError(f"{path} is a {model.get('type')} tokenizer: it needs the tokenizers package: "
                                 "pip install tokenizers") from None
        try:
            self._tok = Tokenizer.from_file(str(path))
        except Exception as exc:  # the library raises plain Exceptions for a file it cannot parse
            raise TokenizerError(f"cannot load {path}: {exc}") from None
        self._tok.no_padding()  # Encoding is unpadded; truncation is set per call
        self._max_length = None
        self.vocab = self._tok.get_vocab(with_added_tokens=True)
        added = spec.get("added_tokens") or []
        self.special_tokens = {t["content"]: self.vocab[t["content"]] for t in added if t.get("special")}
        padding = spec.get("padding")
        pads = [self.vocab[t["content"]] for t in added if t["content"] in ("<pad>", "[PAD]")]
        self.pad_id = padding["pad_id"] if padding else (pads[0] if pads else 0)
        self.cls_id, self.sep_id = self._cls_sep(spec.get("post_processor"))
        self.unk_id = model.get("unk_id") if "unk_id" in model else self.vocab.get(model.get("unk_token") or "")
        norm = spec.get("normalizer") or {}
        bert = norm.get("type") == "BertNormalizer"
        self.lowercase = norm.get("lowercase", True) if bert else None
        self.strip_accents = (self.lowercase if norm.get("strip_accents") is None else norm["strip_accents"]) if bert else None

    def _cls_sep(self, post: dict | None) -> tuple[int | None, int | None]:
        """The ids a single text starts and ends with (<s> </s>, [CLS] [SEP]), None where it has none."""
        post = post or {}
        if "cls" in post:  # BertProcessing, RobertaProcessing
            return post["cls"][1], post["sep"][1]
        single = post.get("single") or [{}]
        ids = [post["special_tokens"][i["SpecialToken"]["id"]]["ids"][0] if "SpecialToken" in i else None
               for i in (single[0], single[-1])]
        found = [self._cls_sep(sub) for sub in post.get("processors", [])]  # a Sequence: the first that has them
        return next((f for f in found if f != (None, None)), (ids[0], ids[1]))

    def encode(self, text: str, text_pair: str | None = None, max_length: int = 512) -> Encoding:
        if max_length < self._tok.num_special_tokens_to_add(text_pair is not None):
            raise ValueError(f"max_length {max_length} leaves no room for the special tokens")
        if max_length != self._max_length:
            self._tok.enable_truncation(max_length)  # longest first, from the right, as transformers truncates
            self._max_length = max_length
        enc = self._tok.encode(text, text_pair)
        return Encoding(enc.ids, enc.type_ids, enc.attention_mask, bool(enc.overflowing))


def load_tokenizer(tokenizer_json: Path | None = None, vocab_txt: Path | None = None, *, lowercase: bool = True,
                   strip_accents: bool | None = None) -> WordPieceTokenizer | LibraryTokenizer:
    """A tokenizer.json: pure Python if it is BERT WordPiece, else the library. Only a vocab.txt: BERT WordPiece with
    these lowercase / strip_accents (None: as lowercase)."""
    if tokenizer_json is not None:
        spec = _read_json(tokenizer_json)
        return WordPieceTokenizer._from_spec(spec) if _not_bert_wordpiece(spec) is None else LibraryTokenizer(tokenizer_json)
    if vocab_txt is not None:
        return WordPieceTokenizer.from_vocab_txt(vocab_txt, lowercase, strip_accents)
    raise TokenizerError("no tokenizer: give a tokenizer.json or a vocab.txt")


# ---- generated by tests/tokenizer_tables.py: do not edit below this line ---------------------------------------------
# Read off tokenizers 0.23.3 on every code point; Python's unicodedata was 14.0.0.
# Ranges are hexadecimal code points. LOWER and NFD hold only what differs from that unicodedata.
TOKENIZERS_VERSION = '0.23.3'
UNIDATA_VERSION = '14.0.0'
# clean_text drops these: NUL, U+FFFD and the unicode_categories crate's Cc/Cf/Co (Unicode 8: no Cn), not \t\n\r
REMOVED = (
    "0000-0008 000B-000C 000E-001F 007F-009F 00AD 0600-0605 061C 06DD 070F 180E 200B-200F 202A-202E 2060-2064 2066-206F E000-F8FF "
    "FEFF FFF9-FFFB FFFD 110BD 1BCA0-1BCA3 1D173-1D17A E0001 E0020-E007F F0000-FFFFD 100000-10FFFD"
)
# Rust char::is_whitespace (= regex \s): ' ' after clean_text, split on by the pre-tokenizer, lstrip/rstrip
WHITESPACE = "0009-000D 0020 0085 00A0 1680 2000-200A 2028-2029 202F 205F 3000"
# BertPreTokenizer isolates these: ASCII punctuation and the crate's P*
PUNCTUATION = (
    "0021-002F 003A-0040 005B-0060 007B-007E 00A1 00A7 00AB 00B6-00B7 00BB 00BF 037E 0387 055A-055F 0589-058A 05BE 05C0 05C3 05C6 "
    "05F3-05F4 0609-060A 060C-060D 061B 061E-061F 066A-066D 06D4 0700-070D 07F7-07F9 0830-083E 085E 0964-0965 0970 0AF0 0DF4 0E4F "
    "0E5A-0E5B 0F04-0F12 0F14 0F3A-0F3D 0F85 0FD0-0FD4 0FD9-0FDA 104A-104F 10FB 1360-1368 1400 166D-166E 169B-169C 16EB-16ED "
    "1735-1736 17D4-17D6 17D8-17DA 1800-180A 1944-1945 1A1E-1A1F 1AA0-1AA6 1AA8-1AAD 1B5A-1B60 1BFC-1BFF 1C3B-1C3F 1C7E-1C7F "
    "1CC0-1CC7 1CD3 2010-2027 2030-2043 2045-2051 2053-205E 207D-207E 208D-208E 2308-230B 2329-232A 2768-2775 27C5-27C6 27E6-27EF "
    "2983-2998 29D8-29DB 29FC-29FD 2CF9-2CFC 2CFE-2CFF 2D70 2E00-2E2E 2E30-2E42 3001-3003 3008-3011 3014-301F 3030 303D 30A0 30FB "
    "A4FE-A4FF A60D-A60F A673 A67E A6F2-A6F7 A874-A877 A8CE-A8CF A8F8-A8FA A8FC A92E-A92F A95F A9C1-A9CD A9DE-A9DF AA5C-AA5F "
    "AADE-AADF AAF0-AAF1 ABEB FD3E-FD3F FE10-FE19 FE30-FE52 FE54-FE61 FE63 FE68 FE6A-FE6B FF01-FF03 FF05-FF0A FF0C-FF0F FF1A-FF1B "
    "FF1F-FF20 FF3B-FF3D FF3F FF5B FF5D FF5F-FF65 10100-10102 1039F 103D0 1056F 10857 1091F 1093F 10A50-10A58 10A7F 10AF0-10AF6 "
    "10B39-10B3F 10B99-10B9C 11047-1104D 110BB-110BC 110BE-110C1 11140-11143 11174-11175 111C5-111C9 111CD 111DB 111DD-111DF "
    "11238-1123D 112A9 114C6 115C1-115D7 11641-11643 1173C-1173E 12470-12474 16A6E-16A6F 16AF5 16B37-16B3B 16B44 1BC9F 1DA87-1DA8B"
)
# handle_chinese_chars puts spaces around these (the library skips U+2B820-2B91F)
CJK = "3400-4DBF 4E00-9FFF F900-FAFF 20000-2A6DF 2A700-2B81F 2B920-2CEAF 2F800-2FA1F"
# strip_accents drops these after NFD: the crate's Mn
NONSPACING = (
    "0300-033F 0342 0345-036F 0483-0487 0591-05BD 05BF 05C1-05C2 05C4-05C5 05C7 0610-061A 064B-065F 0670 06D6-06DC 06DF-06E4 "
    "06E7-06E8 06EA-06ED 0711 0730-074A 07A6-07B0 07EB-07F3 0816-0819 081B-0823 0825-0827 0829-082D 0859-085B 08E3-0902 093A 093C "
    "0941-0948 094D 0951-0957 0962-0963 0981 09BC 09C1-09C4 09CD 09E2-09E3 0A01-0A02 0A3C 0A41-0A42 0A47-0A48 0A4B-0A4D 0A51 "
    "0A70-0A71 0A75 0A81-0A82 0ABC 0AC1-0AC5 0AC7-0AC8 0ACD 0AE2-0AE3 0B01 0B3C 0B3F 0B41-0B44 0B4D 0B56 0B62-0B63 0B82 0BC0 0BCD "
    "0C00 0C3E-0C40 0C46-0C47 0C4A-0C4D 0C55-0C56 0C62-0C63 0C81 0CBC 0CBF 0CC6 0CCC-0CCD 0CE2-0CE3 0D01 0D41-0D44 0D4D 0D62-0D63 "
    "0DCA 0DD2-0DD4 0DD6 0E31 0E34-0E3A 0E47-0E4E 0EB1 0EB4-0EB9 0EBB-0EBC 0EC8-0ECD 0F18-0F19 0F35 0F37 0F39 0F71-0F72 0F74 0F77 "
    "0F79-0F7E 0F80 0F82-0F84 0F86-0F87 0F8D-0F92 0F94-0F97 0F99-0F9C 0F9E-0FA1 0FA3-0FA6 0FA8-0FAB 0FAD-0FB8 0FBA-0FBC 0FC6 "
    "102D-1030 1032-1037 1039-103A 103D-103E 1058-1059 105E-1060 1071-1074 1082 1085-1086 108D 109D 135D-135F 1712-1714 1732-1734 "
    "1752-1753 1772-1773 17B4-17B5 17B7-17BD 17C6 17C9-17D3 17DD 180B-180D 18A9 1920-1922 1927-1928 1932 1939-193B 1A17-1A18 1A1B "
    "1A56 1A58-1A5E 1A60 1A62 1A65-1A6C 1A73-1A7C 1A7F 1AB0-1ABD 1B00-1B03 1B34 1B36-1B3A 1B3C 1B42 1B6B-1B73 1B80-1B81 1BA2-1BA5 "
    "1BA8-1BA9 1BAB-1BAD 1BE6 1BE8-1BE9 1BED 1BEF-1BF1 1C2C-1C33 1C36-1C37 1CD0-1CD2 1CD4-1CE0 1CE2-1CE8 1CED 1CF4 1CF8-1CF9 "
    "1DC0-1DF5 1DFC-1DFF 20D0-20DC 20E1 20E5-20F0 2CEF-2CF1 2D7F 2DE0-2DFF 302A-302D 3099-309A A66F A674-A67D A69E-A69F A6F0-A6F1 "
    "A802 A806 A80B A825-A826 A8C4 A8E0-A8F1 A926-A92D A947-A951 A980-A982 A9B3 A9B6-A9B9 A9BC A9E5 AA29-AA2E AA31-AA32 AA35-AA36 "
    "AA43 AA4C AA7C AAB0 AAB2-AAB4 AAB7-AAB8 AABE-AABF AAC1 AAEC-AAED AAF6 ABE5 ABE8 ABED FB1E FE00-FE0F FE20-FE2F 101FD 102E0 "
    "10376-1037A 10A01-10A03 10A05-10A06 10A0C-10A0F 10A38-10A3A 10A3F 10AE5-10AE6 11001 11038-11046 1107F-11081 110B3-110B6 "
    "110B9-110BA 11100-11102 11127-1112B 1112D 11130-11134 11173 11180-11181 111B6-111BE 111CA-111CC 1122F-11231 11234 11236-11237 "
    "112DF 112E3-112EA 11300-11301 1133C 11340 11366-1136C 11370-11374 114B3-114B8 114BA 114BF-114C0 114C2-114C3 115B2-115B5 "
    "115BC-115BD 115BF-115C0 115DC-115DD 11633-1163A 1163D 1163F-11640 116AB 116AD 116B0-116B5 116B7 1171D-1171F 11722-11725 "
    "11727-1172B 16AF0-16AF4 16B30-16B36 16F8F-16F92 1BC9D-1BC9E 1D167-1D169 1D17B-1D182 1D185-1D18B 1D1AA-1D1AD 1D242-1D244 "
    "1DA00-1DA36 1DA3B-1DA6C 1DA75 1DA84 1DA9B-1DA9F 1DAA1-1DAAF 1E8D0-1E8D6 E0100-E01EF"
)
# marks unicodedata gives a combining class that the library's NFD (Unicode ~12) does not know
CCC_ZERO = (
    "07FD 0898-089F 08CA-08D3 09FE 0C3C 0D3B-0D3C 0EBA 1715 1ABF-1ACE 1DF6-1DFA A82C 10D24-10D27 10EAB-10EAC 10F46-10F50 10F82-10F85 "
    "11070 1133B 1145E 11839-1183A 1193D-1193E 11943 119E0 11A34 11A47 11A99 11D42 11D44-11D45 11D97 16FF0-16FF1 1E130-1E136 1E2AE "
    "1E2EC-1E2EF"
)
# regex \w (single_word) beyond word_category()
WORD_EXTRA = (
    "0897 0CF3 0ECE 1C89-1C8A 200C-200D 24B6-24E9 A7CB-A7CD A7DA-A7DC 105C0-105F3 10D40-10D65 10D69-10D6D 10D6F-10D85 10EC2-10EC4 "
    "10EFC-10EFF 1123F-11241 11380-11389 1138B 1138E 11390-113B5 113B7-113C0 113C2 113C5 113C7-113CA 113CC-113D3 113E1-113E2 "
    "116D0-116E3 11BC0-11BE0 11BF0-11BF9 11F00-11F10 11F12-11F3A 11F3E-11F42 11F50-11F5A 1342F 13440-13455 13460-143FA 16100-16139 "
    "16D40-16D6C 16D70-16D79 18CFF 1B132 1B155 1CCF0-1CCF9 1DF25-1DF2A 1E030-1E06D 1E08F 1E4D0-1E4F9 1E5D0-1E5FA 1F130-1F149 "
    "1F150-1F169 1F170-1F189 2B739 2EBF0-2EE5D 31350-323AF"
)
# not regex \w though word_category() says so
WORD_NOT = ""
# Rust's to_lowercase where it differs from str.lower of the character
LOWER = "1C89>1C8A A7CB>0264 A7CC>A7CD A7CE>A7CF A7D2>A7D3 A7D4>A7D5 A7DA>A7DB A7DC>019B 10D50-10D65>10D70 16EA0-16EB8>16EBB"
# the library's NFD of a character where it differs from unicodedata's
NFD = "11938>11938"
