"""The device tokenizer (targets/tokenizer.py, pure Python) against Hugging Face's: the same ids on the whole dev
split, on odd text, on pairs with truncation, and on a pruned task vocabulary; non-WordPiece tokenizers refused
by the WordPiece reader."""

import json
from pathlib import Path

import pytest

EDGE_TEXTS = [
    "Café naïve résumé", "日本語のテキスト", "ｆｕｌｌｗｉｄｔｈ", "tab\tnew\nline\u00a0nbsp", "zero\u200bwidth",
    "emoji 😀👍🏽", "a" * 120, "ﬁ ligature", "İstanbul ǅ", "x\x00y\ufffdz", "Straße", "«quotes» — dash…",
    "$100 & 50% #tag @user", "\u2028sep\u2029", "", "   ", "don't", "U.S.A.", "3.14159",
]


def _hf_ids(tok, text, pair=None, max_length=128):
    enc = tok(text, pair, truncation=True, max_length=max_length)
    return enc["input_ids"], enc["token_type_ids"]


def test_wordpiece_tokenizer_gives_hugging_face_ids_on_the_whole_dev_split():
    from transformers import AutoTokenizer

    from compress.data import load_task_data
    from compress.recipe import build_recipe
    from compress.teacher import resolve_teacher
    from targets.tokenizer import WordPieceTokenizer

    location = resolve_teacher("default").location
    hf = AutoTokenizer.from_pretrained(location)
    ours = WordPieceTokenizer.from_tokenizer_json(Path(location) / "tokenizer.json")
    from_vocab = WordPieceTokenizer.from_vocab_txt(Path(location) / "vocab.txt", lowercase=True)
    dev = load_task_data(build_recipe({}, "test").data).dev
    assert len(dev) > 1000
    for e in dev:
        ids, _ = _hf_ids(hf, e.text)
        assert ours.encode(e.text, max_length=128).input_ids == ids, e.text
        assert from_vocab.encode(e.text, max_length=128).input_ids == ids, e.text
    for text in EDGE_TEXTS:  # pairs, truncation (longest first), odd characters
        for pair in (None, "a second, longer sentence for the pair"):
            for max_length in (8, 16, 128):
                ids, types = _hf_ids(hf, text, pair, max_length)
                got = ours.encode(text, pair, max_length)
                assert (got.input_ids, got.token_type_ids) == (ids, types), (text, pair, max_length)


def test_wordpiece_tokenizer_matches_a_pruned_task_vocabulary(tmp_path):
    from transformers import AutoTokenizer

    from compress import vocab
    from compress.data import load_task_data
    from compress.recipe import build_recipe
    from compress.teacher import resolve_teacher
    from targets.tokenizer import WordPieceTokenizer

    hf = AutoTokenizer.from_pretrained(resolve_teacher("default").location)
    data = load_task_data(build_recipe({}, "test").data)
    keep = vocab.kept_ids(hf, vocab.used_token_ids(hf, data.train[:500]))
    vocab.save_tokenizer(vocab.pruned_tokenizer(hf, keep), tmp_path)
    pruned = AutoTokenizer.from_pretrained(tmp_path)
    ours = WordPieceTokenizer.from_tokenizer_json(tmp_path / "tokenizer.json")
    for e in data.dev[:400]:
        assert ours.encode(e.text, max_length=128).input_ids == _hf_ids(pruned, e.text)[0]


def test_tokenizer_refuses_a_non_wordpiece_tokenizer(tmp_path):
    from targets.tokenizer import TokenizerError, WordPieceTokenizer

    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps({"model": {"type": "BPE", "vocab": {}}, "normalizer": None}))
    with pytest.raises(TokenizerError, match="BERT WordPiece only"):
        WordPieceTokenizer.from_tokenizer_json(path)
