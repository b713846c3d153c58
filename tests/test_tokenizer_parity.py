"""targets/tokenizer.py against the `tokenizers` library (Rust): the same ids, token type ids and truncated flag.

Property-based: >= 10,000 generated texts and pairs per tokenizer, checked in batches against Tokenizer.encode_batch:
every Unicode category and plane, control characters, whitespace of every kind, long words, typed special tokens,
Greek final sigma, combining marks, CJK, pairs truncated at small max_length. The Unicode tables the pure-Python
tokenizer carries are checked against the library on every code point.
"""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

tokenizers = pytest.importorskip("tokenizers")

from tokenizers import AddedToken as LibAddedToken  # noqa: E402
from tokenizers import decoders, models, normalizers, pre_tokenizers, processors, trainers  # noqa: E402

from compress.data.readers import default_data_dir  # noqa: E402
from compress.teacher import default_teacher_dir  # noqa: E402
from targets import tokenizer as tk  # noqa: E402
from targets.tokenizer import LibraryTokenizer, TokenizerError, WordPieceTokenizer, load_tokenizer  # noqa: E402
from tests.tokenizer_tables import CODE_POINTS, word_tokenizer  # noqa: E402

BATCH = 25
ANY_CHAR = st.characters(exclude_categories=("Cs",))  # every category, every plane; no lone surrogates (Rust has none)
MAX_LENGTHS = [3, 4, 5, 6, 7, 9, 12, 16, 33, 128, 512]
TYPED = ["[MASK]", "[SEP]", "[CLS]", "[UNK]", "[PAD]", "[mask]", "[Mask]", "[sep]", "[MASK", "MASK]", "[[MASK]]",
         "[CLS][SEP]", "[ MASK ]", "[MA\u0301SK]", "[MA\x00SK]", "##", "##ing", "[]"]
SPACES = sorted({chr(cp) for first, last in tk._ranges(tk.WHITESPACE) for cp in range(first, last + 1)}
                | set("\x1c\x1d\x1e\x1f\u200b\u180e\ufeff\u2060"))  # the last ones: whitespace to Python, not to Rust
GREEK = "ΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩΆΈΉΊΌΎΏΪΫαβσςάΐ"
CCC_ZERO = [chr(cp) for first, last in tk._ranges(tk.CCC_ZERO) for cp in range(first, last + 1)]
MARKS = CCC_ZERO + list("\u0301\u0300\u0308\u0316\u0334\u0345\u05b0\u0f71\u0f72\u302a\U0001d165\U0001d16d\u0340\u0344")
CJK_EDGES = [chr(cp + d) for first, last in tk._ranges(tk.CJK) for cp in (first, last) for d in (-1, 0, 1)]
EXTRA_TRAINING = ["Ο ΚΟΣΜΟΣ ΕΙΝΑΙ ΩΡΑΙΟΣ ο κόσμος είναι ωραίος σας ΣΑΣ", "Café naïve résumé Ångström Straße ÉCOLE",
                  "日本語のテキスト 中文 한국어", "Ｆｕｌｌｗｉｄｔｈ ﬁ İstanbul ǅ"] * 20


# ---- the tokenizers under test -----------------------------------------------------------------------------------------
def reference(path: Path):
    tok = tokenizers.Tokenizer.from_file(str(path))
    tok.no_padding()
    return tok


@pytest.fixture(scope="module")
def teacher_json() -> Path:
    path = default_teacher_dir() / "tokenizer.json"
    assert path.is_file(), f"the default teacher has no {path}"
    return path


@pytest.fixture(scope="module")
def teacher_vocab(teacher_json, tmp_path_factory) -> Path:
    path = teacher_json.parent / "vocab.txt"
    if not path.is_file():  # the ids in order, one token a line
        vocab = json.loads(teacher_json.read_text(encoding="utf-8"))["model"]["vocab"]
        path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
        path.write_text("".join(t + "\n" for t in sorted(vocab, key=vocab.get)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def rt_texts() -> list[str]:
    lines = (default_data_dir() / "train.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines if line.strip()]


def trained_wordpiece(texts, path: Path, post_processor: str, **flags) -> Path:
    tok = tokenizers.BertWordPieceTokenizer(**flags)
    tok.train_from_iterator(texts + EXTRA_TRAINING, vocab_size=4000, show_progress=False)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = (processors.BertProcessing(("[SEP]", sep), ("[CLS]", cls)) if post_processor == "bert" else
                          processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                        special_tokens=[("[CLS]", cls), ("[SEP]", sep)]))
    tok.save(str(path))
    return path


def flagged_wordpiece(teacher_json: Path, path: Path, pre_tokenizer: bool) -> Path:
    """The teacher's vocabulary with clean_text and CJK handling off, and added tokens with every flag."""
    vocab = json.loads(teacher_json.read_text(encoding="utf-8"))["model"]["vocab"]
    tok = tokenizers.Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=12))
    tok.normalizer = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True, lowercase=True)
    if pre_tokenizer:
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                       special_tokens=[("[CLS]", 101), ("[SEP]", 102)])
    tok.add_special_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", LibAddedToken("[MASK]", lstrip=True, normalized=False)])
    tok.add_tokens([LibAddedToken("<ent>", single_word=True, normalized=False), LibAddedToken("Hello World", normalized=True),
                    LibAddedToken("naïve", single_word=True, normalized=True), LibAddedToken("☃", rstrip=True, normalized=False),
                    LibAddedToken(" x ", lstrip=True, rstrip=True, normalized=False), LibAddedToken("hello", normalized=False),
                    LibAddedToken("ΣΑΣ", normalized=True)])
    tok.save(str(path))
    return path


FLAGGED_TYPED = ["<ent>", "Hello World", "HELLO WORLD", "hello world", "naïve", "NAIVE", "☃", " x ", "x", "hello",
                 "Hello", "ΣΑΣ", "σασ", "<ent><ent>", "a<ent>", "_<ent>", "<s>", "</s>", "<mask>", " <mask>", "<pad>", "▁"]


@pytest.fixture(scope="module")
def wordpiece_files(teacher_json, rt_texts, tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("wordpiece")
    return {"teacher tokenizer.json": teacher_json,
            "cased": trained_wordpiece(rt_texts, tmp / "cased.json", "bert", lowercase=False, strip_accents=False),
            "strip_accents, cased": trained_wordpiece(rt_texts, tmp / "accents.json", "template", lowercase=False,
                                                      strip_accents=True),
            "added-token flags": flagged_wordpiece(teacher_json, tmp / "flags.json", pre_tokenizer=True),
            "no pre-tokenizer": flagged_wordpiece(teacher_json, tmp / "flags-nopre.json", pre_tokenizer=False)}


# ---- the texts ---------------------------------------------------------------------------------------------------------
def texts(words: list[str], typed: list[str]):
    word = st.sampled_from(words)
    letters = st.sampled_from([w for w in words if w.isalpha()] + ["é", "日", "Σ"])
    piece = st.one_of(
        st.text(ANY_CHAR, max_size=10),
        word, word.map(str.upper), word.map(str.title),
        st.sampled_from(typed),
        st.text(st.characters(categories=("Cc", "Cf", "Co", "Cn", "Zs", "Zl", "Zp")), min_size=1, max_size=3),
        st.text(st.sampled_from(SPACES), min_size=1, max_size=3),
        st.builds(lambda base, marks: base + "".join(marks), word | ANY_CHAR,
                  st.lists(st.sampled_from(MARKS) | st.characters(categories=("Mn", "Mc", "Me")), min_size=1, max_size=4)),
        st.text(st.sampled_from(CJK_EDGES) | st.characters(min_codepoint=0x2B800, max_codepoint=0x2B940)
                | st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), min_size=1, max_size=3),
        st.text(st.sampled_from(GREEK), min_size=1, max_size=6).map(lambda w: w + "Σ"),
        st.text(st.characters(categories=("P", "S")), min_size=1, max_size=3),
        st.builds(lambda w, n: (w * 200)[:n], letters, st.integers(90, 130)),  # words about max_input_chars_per_word long
    )
    sep = st.sampled_from(["", "", " ", "  ", "\t", "\n", "\u3000", "\xa0", "\x00"])
    return st.lists(st.tuples(piece, sep), max_size=6).map(lambda parts: "".join(p + s for p, s in parts))


def check_parity(pairs: dict, strategy, min_texts: int, max_examples: int):
    """Batches of generated (text, pair or None) through every (ours, library's) pair: ids, type ids, truncated flag."""
    checked = []

    @settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(st.tuples(strategy, st.none() | strategy), min_size=BATCH, max_size=BATCH), st.sampled_from(MAX_LENGTHS))
    def check(cases, max_length):
        inputs = [a if b is None else (a, b) for a, b in cases]
        for name, (ours, ref) in pairs.items():
            ref.enable_truncation(max_length)
            for (a, b), want in zip(cases, ref.encode_batch(inputs)):
                if max_length < ref.num_special_tokens_to_add(b is not None):  # the library would not truncate at all
                    with pytest.raises(ValueError, match="no room"):
                        ours.encode(a, b, max_length)
                    continue
                got = ours.encode(a, b, max_length, offsets=True)
                assert (got.input_ids, got.token_type_ids, got.truncated) == (want.ids, want.type_ids, bool(want.overflowing)), \
                    (name, a, b, max_length)
                assert got.attention_mask == want.attention_mask, name
                assert got.offsets == [tuple(o) for o in want.offsets], (name, ascii(a), ascii(b), max_length)
                assert got.word_ids == want.word_ids, (name, a, b, max_length)
        checked.extend(text for case in cases for text in case if text is not None)

    check()
    assert len(checked) >= min_texts


@pytest.mark.slow
def test_wordpiece_gives_the_library_ids_on_generated_text(wordpiece_files, teacher_vocab):
    """One generated batch goes through every WordPiece tokenizer: >= 10,000 texts (a text and its pair: 2) each."""
    pairs = {name: (load_tokenizer(path), reference(path)) for name, path in wordpiece_files.items()}
    pairs["teacher vocab.txt"] = (load_tokenizer(vocab_txt=teacher_vocab),
                                  tokenizers.BertWordPieceTokenizer(str(teacher_vocab), lowercase=True))
    assert all(isinstance(ours, WordPieceTokenizer) for ours, _ in pairs.values())
    words = sorted({t for ours, _ in list(pairs.values())[:3] for t in ours.model_vocab if len(t) < 20})
    check_parity(pairs, texts(words, TYPED + FLAGGED_TYPED), min_texts=10_000, max_examples=290)


def test_wordpiece_offsets_match_the_library_on_generated_text(teacher_json, teacher_vocab):
    """Character spans (what the NER decoder cuts entities with) as the library's offsets, on 1,000 generated texts
    and pairs through the teacher's tokenizer (the slow test above checks every WordPiece tokenizer on 10,000)."""
    pairs = {"teacher": (load_tokenizer(teacher_json), reference(teacher_json))}
    words = sorted(t for t in pairs["teacher"][0].model_vocab if len(t) < 20)
    check_parity(pairs, texts(words, TYPED), min_texts=1_000, max_examples=30)


@pytest.mark.slow
def test_library_tokenizer_gives_the_library_ids_on_generated_text(roberta_json, xlmr_json):
    pairs = {"roberta bpe": (load_tokenizer(roberta_json), reference(roberta_json)),
             "xlm-r unigram": (load_tokenizer(xlmr_json), reference(xlmr_json))}
    words = sorted({t.lstrip("Ġ▁") for ours, _ in pairs.values() for t in ours.vocab} - {""})
    check_parity(pairs, texts(words, TYPED + FLAGGED_TYPED), min_texts=800, max_examples=28)


def same(got, want, what: str):
    """got == want, else the first difference in context (no assertion diff of a million characters)."""
    if got != want:
        i = next((i for i, (g, w) in enumerate(zip(got, want)) if g != w), min(len(got), len(want)))
        pytest.fail(f"{what}: ours {ascii(got[max(i - 4, 0):i + 4])}, the library's {ascii(want[max(i - 4, 0):i + 4])}; if the "
                    "library changed, run python tests/tokenizer_tables.py")


@pytest.mark.slow
def test_unicode_tables_match_the_library_on_every_code_point():
    chars = [chr(cp) for cp in CODE_POINTS]
    joined = "|".join(chars)  # '|' keeps NFD from reordering across characters
    for flags in ({}, {"strip_accents": False, "lowercase": False}, {"clean_text": False, "handle_chinese_chars": False}):
        flags = {"clean_text": True, "handle_chinese_chars": True, "strip_accents": True, "lowercase": True, **flags}
        same(tk.bert_normalize(joined, **flags), normalizers.BertNormalizer(**flags).normalize_str(joined), f"BertNormalizer{flags}")
    words = "".join(f"a{ch}" for ch in chars)
    same(tk.bert_pre_tokenize(words), [w for w, _ in pre_tokenizers.BertPreTokenizer().pre_tokenize_str(words)], "BertPreTokenizer")
    # combining classes: every mark next to one mark of each class, both ways round
    marks = [ch for ch in chars if unicodedata.combining(ch)]
    one_per_class = list({unicodedata.combining(ch): ch for ch in marks}.values()) + CCC_ZERO
    seqs = "|".join(f"a{m}{r}|a{r}{m}" for m in marks for r in one_per_class)
    same(tk._nfd(seqs), normalizers.NFD().normalize_str(seqs), "NFD")
    # single_word (`\w`), lstrip and rstrip (`\s`): T, L and R are added tokens with those flags
    lib = word_tokenizer()
    vocab = lib.get_vocab()
    ours = tk.AddedVocabulary([tk.AddedToken("T", 2, single_word=True, normalized=False),
                               tk.AddedToken("L", 3, lstrip=True, normalized=False),
                               tk.AddedToken("R", 4, rstrip=True, normalized=False)], normalize=lambda s: s)
    for probe, some in (("{}T.", chars), (".{}L", chars[:0xD800]), ("R{}.", chars[:0xD800])):  # all of \s is below U+3001
        # T after c is an added token if c is not \w; L and R take c in if it is \s
        batch = ["".join(probe.format(ch) for ch in some[i:i + 1000]) for i in range(0, len(some), 1000)]
        got = [i for text in batch for i in (p if isinstance(p, int) else vocab.get(p, 0) for p in ours.split(text))]
        same(got, [i for e in lib.encode_batch_fast(batch) for i in e.ids], f"added tokens {probe}")


# ---- the two known bugs ------------------------------------------------------------------------------------------------
def test_upper_case_greek_final_sigma_is_lowercased_per_character(teacher_json):
    # str.lower applies Final_Sigma (ΟΔΟΣ -> οδος); the Rust normalizer lower-cases each character (-> οδοσ)
    ours, ref = WordPieceTokenizer.from_tokenizer_json(teacher_json), reference(teacher_json)
    for text in ("ΟΔΥΣΣΕΥΣ", "ΣΑΣ ΑΓΑΠΩ", "ΚΟΣΜΟΣ.", "ΑΣ\u0301 ΌΣ"):
        assert ours.encode(text).input_ids == ref.encode(text).ids, text


def test_special_tokens_typed_in_the_text_are_matched(teacher_json, teacher_vocab):
    ours, ref = WordPieceTokenizer.from_tokenizer_json(teacher_json), reference(teacher_json)
    vocab = tokenizers.BertWordPieceTokenizer(str(teacher_vocab))
    from_vocab = WordPieceTokenizer.from_vocab_txt(teacher_vocab)
    for text in ("hello [MASK] world", "[CLS]x[SEP]", "a[PAD]b[UNK]", "[mask] [Mask] [MASK", "[[MASK]]", "[SEP][SEP] a"):
        assert ours.encode(text).input_ids == ref.encode(text).ids, text
        assert from_vocab.encode(text).input_ids == vocab.encode(text).ids, text


def test_wordpiece_attributes_and_limits(teacher_json, teacher_vocab):
    ours = load_tokenizer(teacher_json)
    assert (ours.kind, ours.cls_id, ours.sep_id, ours.pad_id, ours.unk_id) == ("bert-wordpiece", 101, 102, 0, 100)
    assert ours.special_tokens == {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103}
    assert (ours.lowercase, ours.strip_accents) == (True, True) and len(ours.vocab) == 30522
    assert load_tokenizer(vocab_txt=teacher_vocab, lowercase=False).special_tokens == ours.special_tokens
    assert ours.encode("a b c", max_length=2).input_ids == [101, 102]
    with pytest.raises(ValueError, match="no room"):
        ours.encode("a", "b", max_length=2)


def test_vocab_txt_is_read_as_the_library_reads_it(teacher_vocab, tmp_path):
    # CRLF line ends and trailing blanks are trimmed (Rust's trim_end); a repeated token keeps its last line
    lines = teacher_vocab.read_text(encoding="utf-8").splitlines()
    lines[2000:2003] = [lines[2000] + " \t", lines[2001] + "\u3000", lines[2000]]
    path = tmp_path / "vocab.txt"
    path.write_bytes("\r\n".join(lines).encode("utf-8"))
    text = " ".join(lines[1990:2010]) + " Café ÉCOLE naïve"
    for lowercase, strip_accents in ((True, None), (False, None), (False, True), (True, False)):
        ours = load_tokenizer(vocab_txt=path, lowercase=lowercase, strip_accents=strip_accents)
        ref = tokenizers.BertWordPieceTokenizer(str(path), lowercase=lowercase, strip_accents=strip_accents)
        assert ours.encode(text, text[::-1]).input_ids == ref.encode(text, text[::-1]).ids, (lowercase, strip_accents)


# ---- LibraryTokenizer ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def roberta_json(rt_texts, tmp_path_factory) -> Path:
    """RoBERTa-style: byte-level BPE, <s> A </s></s> B </s>, <mask> with lstrip."""
    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok.train_from_iterator(rt_texts[:3000], trainers.BpeTrainer(vocab_size=600, special_tokens=specials, show_progress=False,
                                                                 initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.add_special_tokens([LibAddedToken("<mask>", lstrip=True, normalized=False)])
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    path = tmp_path_factory.mktemp("roberta") / "tokenizer.json"
    tok.save(str(path))
    return path


@pytest.fixture(scope="module")
def xlmr_json(rt_texts, tmp_path_factory) -> Path:
    """XLM-R-style: Unigram, NFKC, Metaspace, <s> A </s> </s> B </s>."""
    tok = tokenizers.Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(rt_texts[:2000], trainers.UnigramTrainer(vocab_size=400, unk_token="<unk>", show_progress=False,
                                                                     special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"]))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
                                                       special_tokens=[("<s>", 0), ("</s>", 2)])
    path = tmp_path_factory.mktemp("xlmr") / "tokenizer.json"
    tok.save(str(path))
    return path


def assert_same_as_library(ours, ref, texts: list[str]):
    for max_length in (5, 16, 64):  # pairs of real sentences, truncated longest first
        ref.enable_truncation(max_length)
        for a, b in zip(texts, texts[1:] + [None]):
            want, got = ref.encode(a, b), ours.encode(a, b, max_length)
            assert (got.input_ids, got.token_type_ids, got.truncated) == (want.ids, want.type_ids, bool(want.overflowing))


def test_library_tokenizer_roberta_bpe(roberta_json, rt_texts):
    ours, ref = load_tokenizer(roberta_json), reference(roberta_json)
    assert isinstance(ours, LibraryTokenizer) and ours.kind == "bpe"
    assert (ours.cls_id, ours.sep_id, ours.pad_id, ours.unk_id) == (0, 2, 1, None)
    assert ours.special_tokens == {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4}
    assert (ours.lowercase, ours.strip_accents) == (None, None) and ours.vocab == ref.get_vocab(with_added_tokens=True)
    enc = ours.encode("a fine film", "a second one", max_length=512)
    assert set(enc.token_type_ids) == {0} and enc.input_ids[:1] == [0] and not enc.truncated  # RoBERTa: all type 0
    assert_same_as_library(ours, ref, rt_texts[-120:])


def test_library_tokenizer_xlmr_unigram(xlmr_json, rt_texts):
    ours, ref = load_tokenizer(xlmr_json), reference(xlmr_json)
    assert isinstance(ours, LibraryTokenizer) and ours.kind == "unigram"
    assert (ours.cls_id, ours.sep_id, ours.pad_id, ours.unk_id) == (0, 2, 1, 3)
    assert ours.encode("a fine film " * 20, "and a second one", max_length=16).truncated
    assert_same_as_library(ours, ref, rt_texts[-120:])
    with pytest.raises(ValueError, match="no room"):
        ours.encode("a", "b", max_length=3)


def test_library_tokenizer_pad_id_from_padding(xlmr_json, tmp_path):
    tok = tokenizers.Tokenizer.from_file(str(xlmr_json))
    tok.enable_padding(pad_id=3, pad_token="<unk>", length=64)
    tok.save(str(tmp_path / "tokenizer.json"))
    ours = load_tokenizer(tmp_path / "tokenizer.json")
    assert ours.pad_id == 3 and len(ours.encode("film").input_ids) < 64  # encodings come back unpadded


def test_load_tokenizer_picks_the_implementation(teacher_json, teacher_vocab, roberta_json, tmp_path):
    assert isinstance(load_tokenizer(teacher_json, teacher_vocab), WordPieceTokenizer)
    assert isinstance(load_tokenizer(vocab_txt=teacher_vocab), WordPieceTokenizer)
    assert load_tokenizer(flagged_wordpiece(teacher_json, tmp_path / "nopre.json", pre_tokenizer=False)).pre_tokenize_words is False
    spec = json.loads(teacher_json.read_text(encoding="utf-8"))
    for change in ({"pre_tokenizer": {"type": "Whitespace"}}, {"post_processor": None}, {"normalizer": None}):
        (tmp_path / "tokenizer.json").write_text(json.dumps({**spec, **change}), encoding="utf-8")
        assert isinstance(load_tokenizer(tmp_path / "tokenizer.json"), LibraryTokenizer), change
        with pytest.raises(TokenizerError, match="BERT WordPiece only"):
            WordPieceTokenizer.from_tokenizer_json(tmp_path / "tokenizer.json")
    with pytest.raises(TokenizerError, match="give a tokenizer.json or a vocab.txt"):
        load_tokenizer()


def test_library_tokenizer_without_the_package(roberta_json, monkeypatch):
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # import tokenizers now raises ImportError
    with pytest.raises(TokenizerError, match="needs the tokenizers package: pip install tokenizers"):
        load_tokenizer(roberta_json)


def test_targets_tokenizer_imports_neither_torch_nor_transformers(teacher_json, roberta_json):
    code = (f"import sys; from targets.tokenizer import load_tokenizer; load_tokenizer({str(teacher_json)!r}).encode('a');"
            "assert 'tokenizers' not in sys.modules, 'WordPiece needs no Rust wheel';"
            f"load_tokenizer({str(roberta_json)!r}).encode('a'); assert not {{'torch', 'transformers'}} & set(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
