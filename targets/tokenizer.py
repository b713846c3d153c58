"""Tokenizers for the runner: BERT WordPiece in pure Python, anything else through Hugging Face's `tokenizers`.

load_tokenizer() picks one; both give what the `tokenizers` library (Rust) gives, as Encoding(input_ids, token_type_ids,
attention_mask, truncated), unpadded, and with encode(..., offsets=True) each token's character span and word index
(the library's offset_mapping and word_ids: what a token classifier's entities are cut with); tests/
test_tokenizer_parity.py checks all of it.

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

import json
import re
from dataclasses import dataclass
from pathlib import Path

# the Unicode side (character classes, BertNormalizer, BertPreTokenizer): its own module, its names read from here too
from targets.normalizer import (_ccc, _class, _is_word, _lower, _mapping, _nfd, _ranges, _unicode,  # noqa: F401
                                bert_normalize, bert_normalize_aligned, bert_pre_tokenize, word_category)
from targets.unicode_tables import (CCC_ZERO, CJK, LOWER, NFD, NONSPACING, PUNCTUATION, REMOVED, WHITESPACE,  # noqa: F401
                                    WORD_EXTRA, WORD_NOT)


class TokenizerError(Exception):
    """The tokenizer files are missing or describe a tokenizer this runner cannot run."""


@dataclass
class Encoding:
    input_ids: list[int]
    token_type_ids: list[int]
    attention_mask: list[int]
    truncated: bool
    offsets: list[tuple[int, int]] | None = None
    """Each token's character span [start, end) in the text it came from ((0, 0) for special tokens), as the
    library's offset_mapping; None unless encode(..., offsets=True). A pair's second text's spans are in that text."""
    word_ids: list[int | None] | None = None
    """Each token's word (the pre-tokenizer's: a run of letters and digits, or one punctuation character), counted per
    text, None for special tokens, as the library's word_ids(); with offsets only."""


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

    def split_spans(self, text: str, normalize_aligned) -> list[tuple[str | int, list[int] | tuple[int, int]]]:
        """split() with where each part came from: (normalized piece, the original index of each of its characters)
        or (added token id, its (start, end) in `text`)."""
        out: list = []
        for piece, start, _ in self._find(text, self.raw, spans=True):
            if isinstance(piece, int):
                out.append((piece, (start, _)))
                continue
            normalized, origin = normalize_aligned(piece)
            for part, a, b in self._find(normalized, self.normalized, spans=True):
                if isinstance(part, int):
                    out.append((part, (start + origin[a], start + origin[b - 1] + 1)))
                else:
                    out.append((part, [start + o for o in origin[a:b]]))
        return out

    @staticmethod
    def _find(text: str, matcher, spans: bool = False) -> list:
        """The parts of `text` (strings between added tokens, and the tokens' ids); spans: (part, start, end)."""
        if matcher is None:
            return ([(text, 0, len(text))] if spans else [text]) if text else []
        regex, tokens = matcher
        out: list = []
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
                out.append((text[offset:start], offset, start) if spans else text[offset:start])
            out.append((token.id, start, stop) if spans else token.id)  # the span takes the stripped spaces too
            offset = stop
        if offset < len(text):
            out.append((text[offset:], offset, len(text)) if spans else text[offset:])
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
    add_special_tokens = True  # encode's default; False for models run on word pieces alone (load_tokenizer sets it)

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
        return [i for i, _, _ in self.wordpiece_spans(word)]

    def wordpiece_spans(self, word: str) -> list[tuple[int, int, int]]:
        """(id, start, end) of each piece within `word`; one [UNK] over the whole word where WordPiece gives up."""
        if len(word) > self.max_chars:
            return [(self.unk_id, 0, len(word))]
        out, start = [], 0
        while start < len(word):
            end, found = len(word), None
            while start < end:
                piece = word[start:end] if start == 0 else self.prefix + word[start:end]
                if piece in self.model_vocab:
                    found = self.model_vocab[piece]
                    break
                end -= 1
            if found is None:
                return [(self.unk_id, 0, len(word))]
            out.append((found, start, end))
            start = end
        return out

    def normalize_aligned(self, text: str) -> tuple[str, list[int]]:
        """normalize(text), and for each of its characters the index in `text` it is aligned to (as the library
        aligns them: targets.normalizer.bert_normalize_aligned). Should the two normalizations ever differ (a newer
        Unicode in Python than in the tables), the characters are mapped in proportion."""
        normalized, origin = bert_normalize_aligned(text, clean_text=self.clean_text, lowercase=self.lowercase,
                                                    handle_chinese_chars=self.handle_chinese_chars,
                                                    strip_accents=self.strip_accents)
        whole = self.normalize(text)
        if normalized == whole:
            return normalized, origin
        return whole, [min(len(text) - 1, k * len(text) // max(len(whole), 1)) for k in range(len(whole))]

    def token_spans(self, text: str) -> tuple[list[int], list[tuple[int, int]], list[int]]:
        """token_ids(text), each token's (start, end) in `text` and its word index."""
        ids: list[int] = []
        spans: list[tuple[int, int]] = []
        words: list[int] = []
        word = -1
        for part, where in self.added.split_spans(text, self.normalize_aligned):
            if isinstance(part, int):
                word += 1
                ids.append(part)
                spans.append(where)
                words.append(word)
                continue
            found = (_unicode().words.finditer(part) if self.pre_tokenize_words else [re.match(r"(?s).*", part)])
            for m in found:
                if not m.group():
                    continue
                word += 1
                for token, a, b in self.wordpiece_spans(m.group()):
                    ids.append(token)
                    spans.append((where[m.start() + a], where[m.start() + b - 1] + 1))
                    words.append(word)
        return ids, spans, words

    def token_ids(self, text: str) -> list[int]:
        ids: list[int] = []
        for piece in self.added.split(text):
            if isinstance(piece, int):
                ids.append(piece)
            else:
                for word in (bert_pre_tokenize(piece) if self.pre_tokenize_words else [piece]):
                    ids.extend(self.wordpiece(word))
        return ids

    def encode(self, text: str, text_pair: str | None = None, max_length: int = 512,
               add_special_tokens: bool | None = None, offsets: bool = False) -> Encoding:
        """add_special_tokens False: the word pieces alone, no [CLS] / [SEP] (None: the tokenizer's default).
        offsets: also each token's character span (Encoding.offsets)."""
        specials = self.add_special_tokens if add_special_tokens is None else add_special_tokens
        if offsets:
            a, a_spans, a_words = self.token_spans(text)
            b, b_spans, b_words = self.token_spans(text_pair) if text_pair is not None else (None, [], [])
        else:
            a, a_spans, b_spans, a_words, b_words = self.token_ids(text), [], [], [], []
            b = self.token_ids(text_pair) if text_pair is not None else None
        budget = max_length - ((3 if b is not None else 2) if specials else 0)
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
        cls, sep = ([self.cls_id], [self.sep_id]) if specials else ([], [])
        ids = cls + a + sep
        types = [0] * len(ids)
        spans = [(0, 0)] * len(cls) + a_spans[:len(a)] + [(0, 0)] * len(sep)
        words = [None] * len(cls) + a_words[:len(a)] + [None] * len(sep)
        if b is not None:  # without special tokens the library still gives the second text type id 1
            ids += b + sep
            types += [1] * (len(b) + len(sep))
            spans += b_spans[:len(b)] + [(0, 0)] * len(sep)
            words += b_words[:len(b)] + [None] * len(sep)
        return Encoding(ids, types, [1] * len(ids), truncated, spans if offsets else None, words if offsets else None)


# ---- everything else, through the library --------------------------------------------------------------------------
class LibraryTokenizer:
    """A tokenizer.json run by the `tokenizers` package (a Rust wheel): its ids, type ids and truncation exactly."""

    add_special_tokens = True  # encode's default, as WordPieceTokenizer's

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

    def encode(self, text: str, text_pair: str | None = None, max_length: int = 512,
               add_special_tokens: bool | None = None, offsets: bool = False) -> Encoding:
        specials = self.add_special_tokens if add_special_tokens is None else add_special_tokens
        if specials and max_length < self._tok.num_special_tokens_to_add(text_pair is not None):
            raise ValueError(f"max_length {max_length} leaves no room for the special tokens")
        if max_length != self._max_length:
            self._tok.enable_truncation(max_length)  # longest first, from the right, as transformers truncates
            self._max_length = max_length
        enc = self._tok.encode(text, text_pair, add_special_tokens=specials)
        return Encoding(enc.ids, enc.type_ids, enc.attention_mask, bool(enc.overflowing),
                        [tuple(o) for o in enc.offsets] if offsets else None, list(enc.word_ids) if offsets else None)


def load_tokenizer(tokenizer_json: Path | None = None, vocab_txt: Path | None = None, *, lowercase: bool = True,
                   strip_accents: bool | None = None, add_special_tokens: bool = True) -> WordPieceTokenizer | LibraryTokenizer:
    """A tokenizer.json: pure Python if it is BERT WordPiece, else the library. Only a vocab.txt: BERT WordPiece with
    these lowercase / strip_accents (None: as lowercase). add_special_tokens: encode's default."""
    if tokenizer_json is not None:
        spec = _read_json(tokenizer_json)
        tok = WordPieceTokenizer._from_spec(spec) if _not_bert_wordpiece(spec) is None else LibraryTokenizer(tokenizer_json)
    elif vocab_txt is not None:
        tok = WordPieceTokenizer.from_vocab_txt(vocab_txt, lowercase, strip_accents)
    else:
        raise TokenizerError("no tokenizer: give a tokenizer.json or a vocab.txt")
    tok.add_special_tokens = bool(add_special_tokens)
    return tok
