"""BERT WordPiece tokenization in pure Python: the same ids as Hugging Face's BertTokenizerFast, no dependencies.

Steps (those of the `tokenizers` library's BertNormalizer, BertPreTokenizer, WordPiece and BERT template):
clean the text (drop NUL / U+FFFD / control characters, map whitespace to spaces), put spaces around CJK
ideographs, strip accents (NFD, drop combining marks) and lower-case when the model is uncased, split on
whitespace and around every punctuation character, then greedy longest-match WordPiece with `##`
continuations; a word with no match, or longer than 100 characters, becomes [UNK]. Then
`[CLS] A [SEP]` (`[CLS] A [SEP] B [SEP]` for pairs) with truncation to max_length, longest first.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path


class TokenizerError(Exception):
    """The tokenizer files are missing or describe a tokenizer this runner does not implement."""


def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or ch.isspace() or unicodedata.category(ch) == "Zs"


def _is_control(ch: str) -> bool:
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch).startswith("C")


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


@dataclass
class Encoding:
    input_ids: list[int]
    token_type_ids: list[int]
    attention_mask: list[int]
    truncated: bool


class WordPieceTokenizer:
    def __init__(self, vocab: dict[str, int], *, lowercase: bool = True, strip_accents: bool | None = None,
                 clean_text: bool = True, handle_chinese_chars: bool = True, unk_token: str = "[UNK]",
                 cls_token: str = "[CLS]", sep_token: str = "[SEP]", pad_token: str = "[PAD]",
                 continuing_subword_prefix: str = "##", max_input_chars_per_word: int = 100):
        self.vocab = vocab
        self.lowercase = lowercase
        self.strip_accents = lowercase if strip_accents is None else strip_accents
        self.clean_text, self.handle_chinese_chars = clean_text, handle_chinese_chars
        self.prefix, self.max_chars = continuing_subword_prefix, max_input_chars_per_word
        for token in (unk_token, cls_token, sep_token, pad_token):
            if token not in vocab:
                raise TokenizerError(f"the vocabulary has no {token} token: not a BERT WordPiece vocabulary")
        self.unk_id, self.cls_id, self.sep_id, self.pad_id = (vocab[t] for t in (unk_token, cls_token, sep_token, pad_token))

    # ---- loading -------------------------------------------------------------------------------
    @classmethod
    def from_tokenizer_json(cls, path: str | Path) -> "WordPieceTokenizer":
        try:
            spec = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise TokenizerError(f"cannot read {path}: {exc}") from None
        model, norm = spec.get("model") or {}, spec.get("normalizer") or {}
        if model.get("type") != "WordPiece" or norm.get("type") != "BertNormalizer":
            raise TokenizerError(f"{path} is a {model.get('type')} tokenizer with a {norm.get('type')} normalizer; "
                                 "this runner implements BERT WordPiece only")
        special = {t["content"] for t in spec.get("added_tokens", [])}
        post = spec.get("post_processor") or {}
        cls_tok, sep_tok = "[CLS]", "[SEP]"
        if post.get("type") == "TemplateProcessing":
            ids = [p["SpecialToken"]["id"] for p in post.get("single", []) if "SpecialToken" in p]
            if len(ids) == 2:
                cls_tok, sep_tok = ids
        pad = (spec.get("padding") or {}).get("pad_token", "[PAD]")
        return cls(model["vocab"], lowercase=norm.get("lowercase", True), strip_accents=norm.get("strip_accents"),
                   clean_text=norm.get("clean_text", True), handle_chinese_chars=norm.get("handle_chinese_chars", True),
                   unk_token=model.get("unk_token", "[UNK]"), cls_token=cls_tok, sep_token=sep_tok,
                   pad_token=pad if pad in special or pad in model["vocab"] else "[PAD]",
                   continuing_subword_prefix=model.get("continuing_subword_prefix", "##"),
                   max_input_chars_per_word=model.get("max_input_chars_per_word", 100))

    @classmethod
    def from_vocab_txt(cls, path: str | Path, lowercase: bool = True, strip_accents: bool | None = None) -> "WordPieceTokenizer":
        try:
            lines = Path(path).read_text(encoding="utf-8").split("\n")
        except OSError as exc:
            raise TokenizerError(f"cannot read {path}: {exc}") from None
        if lines and lines[-1] == "":
            lines.pop()
        return cls({tok: i for i, tok in enumerate(lines)}, lowercase=lowercase, strip_accents=strip_accents)

    # ---- the steps -------------------------------------------------------------------------------
    def normalize(self, text: str) -> str:
        out = []
        for ch in text:
            cp = ord(ch)
            if self.clean_text:
                if cp == 0 or cp == 0xFFFD or _is_control(ch):
                    continue
                if _is_whitespace(ch):
                    out.append(" ")
                    continue
            if self.handle_chinese_chars and _is_cjk(cp):
                out.append(f" {ch} ")
            else:
                out.append(ch)
        text = "".join(out)
        if self.strip_accents:
            text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
        if self.lowercase:
            text = text.lower()
        return text

    @staticmethod
    def pre_tokenize(text: str) -> list[str]:
        words, current = [], []
        for ch in text:
            if _is_whitespace(ch):
                if current:
                    words.append("".join(current))
                    current = []
            elif _is_punctuation(ch):
                if current:
                    words.append("".join(current))
                    current = []
                words.append(ch)
            else:
                current.append(ch)
        if current:
            words.append("".join(current))
        return words

    def wordpiece(self, word: str) -> list[int]:
        if len(word) > self.max_chars:
            return [self.unk_id]
        ids, start = [], 0
        while start < len(word):
            end, found = len(word), None
            while start < end:
                piece = word[start:end] if start == 0 else self.prefix + word[start:end]
                if piece in self.vocab:
                    found = self.vocab[piece]
                    break
                end -= 1
            if found is None:
                return [self.unk_id]
            ids.append(found)
            start = end
        return ids

    def token_ids(self, text: str) -> list[int]:
        return [i for word in self.pre_tokenize(self.normalize(text)) for i in self.wordpiece(word)]

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
        elif len(a) + len(b) > budget:  # longest first, as `tokenizers` does it: the shorter keeps at most half
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
