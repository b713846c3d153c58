"""Entity-aware augmentation of tagged sentences (compress.token_classification.augment) and the transfer rows it
makes: mention replacement, label-wise token replacement, shuffling within segments; refused for untagged data."""

from __future__ import annotations

from collections import Counter

import pytest

from compress.distill.transfer import TransferConfig, build, general_rows, truncated
from compress.errors import UserError
from compress.recipe import GeneralConfig
from compress.tasks import get
from compress.token_classification.augment import EntityAugmenter, segments
from compress.token_classification.data import TokenExample

LABELS = ["O", "B-person", "I-person", "B-geo-loc", "I-geo-loc"]
RAW = [
    ("Barack Obama visited New York today", "B-person I-person O B-geo-loc I-geo-loc O"),
    ("Taylor Swift sang in London", "B-person I-person O O B-geo-loc"),
    ("Angela Merkel met Emmanuel Macron in Berlin", "B-person I-person O B-person I-person O B-geo-loc"),
    ("Obama flew to Los Angeles", "B-person O O B-geo-loc I-geo-loc"),
    ("the weather is nice", "O O O O"),
]
TRAIN = [TokenExample(tuple(w.split()), tuple(LABELS.index(t) for t in tags.split())) for w, tags in RAW]


def _tags(example):
    return [LABELS[i] for i in example.tags]


def test_segments_are_mentions_and_runs_of_o():
    assert segments("B-person I-person O O B-geo-loc".split()) == [(0, 2, "person"), (2, 4, "O"), (4, 5, "geo-loc")]
    # a B- right after a mention of the same type starts a new one; a stray I- after O starts one too
    assert segments("B-person B-person I-geo-loc".split()) == [(0, 1, "person"), (1, 2, "person"), (2, 3, "geo-loc")]


def _augmenter(p=1.0, seed=3):
    return EntityAugmenter([(e.words, e.tags) for e in TRAIN], LABELS, p, seed)


def test_mention_replacement_takes_a_mention_of_the_same_type_from_the_training_set():
    persons = {m for e in TRAIN for s, t, k in segments(_tags(e)) if k == "person" for m in [e.words[s:t]]}
    places = {m for e in TRAIN for s, t, k in segments(_tags(e)) if k == "geo-loc" for m in [e.words[s:t]]}
    (variants,) = _augmenter().variants(1, ["mention"])
    for e, new in zip(TRAIN, variants):
        if new is None:
            continue
        out, at = [], 0  # walk the original's segments: O runs stay, each mention is one of its type's
        for s, t, kind in segments(_tags(e)):
            if kind == "O":
                assert new[at:at + t - s] == e.words[s:t]
                at += t - s
                continue
            pool = persons if kind == "person" else places
            took = next(m for m in sorted(pool, key=len, reverse=True) if new[at:at + len(m)] == m)
            out.append(took)
            at += len(took)
        assert at == len(new) and out
    assert variants[-1] is None  # no mention in "the weather is nice": no variant of it


def test_token_replacement_keeps_each_words_tag_and_shuffle_stays_within_segments():
    words_of = {}
    for e in TRAIN:
        for w, t in zip(e.words, e.tags):
            words_of.setdefault(t, set()).add(w)
    token, shuffled = _augmenter().variants(2, ["token", "shuffle"])
    for e, new in zip(TRAIN, token):
        new = new or e.words
        assert len(new) == len(e.words) and all(w in words_of[t] for w, t in zip(new, e.tags))
    for e, new in zip(TRAIN, shuffled):
        new = new or e.words
        for s, t, _ in segments(_tags(e)):
            assert Counter(new[s:t]) == Counter(e.words[s:t])


def test_variants_are_seeded_and_p_counts():
    assert _augmenter(0.5, 1).variants(6, ["mention", "token", "shuffle"]) == _augmenter(0.5, 1).variants(6, ["mention", "token", "shuffle"])
    assert _augmenter(0.5, 1).variants(6, ["token"]) != _augmenter(0.5, 2).variants(6, ["token"])
    # p close to 0 leaves (almost) every sentence as it was: those variants are None
    rare = _augmenter(1e-6, 1).variants(3, ["mention", "token", "shuffle"])
    assert all(v is None for copy in rare for v in copy)


def test_untagged_data_is_refused_in_one_line():
    task = get("token-classification").for_labels(LABELS)
    flat = [TokenExample(e.words, (0,) * len(e.words)) for e in TRAIN]
    with pytest.raises(UserError, match="tags no entity"):
        task.entity_augmenter(flat, LABELS, 0.3, 0)
    with pytest.raises(UserError, match="augments words tagged one by one, which sequence-classification data"):
        get("sequence-classification").entity_augmenter([], [], 0.3, 0)


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from compress.teacher import default_teacher_dir

    return AutoTokenizer.from_pretrained(default_teacher_dir())


def test_build_adds_entity_variants_as_untagged_rows_and_counts_long_texts(tokenizer):
    task = get("token-classification").for_labels(LABELS)
    cfg = TransferConfig(entities={"copies": 3})
    held_out = ["Barack Obama visited Los Angeles today"]  # what mention replacement could make of row 0: dropped
    made = build(cfg, task=task, train=TRAIN, held_out=held_out, data_path="default", seed=0, teacher=None,
                 tokenizer=tokenizer, checkpoint="", labels=LABELS, max_length=9)
    rows = made.record["rows"]
    assert rows["entity_augmented"] == len(made.examples) > 0 and rows["total"] == len(TRAIN) + len(made.examples)
    assert all(set(e.tags) == {-1} for e in made.examples)  # the teacher's soft tags are their targets
    assert all(e.text.lower() != held_out[0].lower() for e in made.examples)
    assert made.record["entities"]["unchanged"] >= 3  # "the weather is nice" has no mention to replace
    longer = sum(len(tokenizer(e.text)["input_ids"]) > 9 for e in made.examples)
    assert made.record["truncated"] == longer > 0


def test_general_rows_cut_long_texts_into_sentence_runs(tmp_path, tokenizer):
    text = tmp_path / "wiki.txt"
    text.write_text("Ada Lovelace was a mathematician. She wrote the first program. She lived in London. "
                    "Her father was Lord Byron. " * 3 + "\nShort one here.\n")
    cfg = GeneralConfig(data=str(text), segment="sentences", max_rows=4)
    rows, record = general_rows(cfg, train=TRAIN, seed=0, tokenizer=tokenizer, max_length=16)
    assert len(rows) == record["rows"] == 4 and record["truncated"] == 0  # runs of ~ the training texts' 5 words
    assert all(r.text.endswith(".") and len(r.text.split()) <= 8 for r in rows)
    whole, rec = general_rows(GeneralConfig(data=str(text)), train=TRAIN, seed=0, tokenizer=tokenizer, max_length=16)
    assert rec["truncated"] == 1 == truncated(tokenizer, [r.text for r in whole], 16)


def test_the_ner_recipe_distils_on_general_text_and_entity_variants_and_quick_keeps_them_small():
    from compress.recipe import resolve_recipe

    full, quick = resolve_recipe("ner"), resolve_recipe("ner", quick=True)
    assert full.distill.general.data == ["vendored", "auto"] and full.distill.general.segment == "sentences"
    assert full.distill.transfer.entities.copies == 2 and full.student.hidden_size == 256
    assert (quick.distill.general.max_rows, quick.distill.general.epochs, quick.distill.transfer.entities.copies) == (2000, 1, 1)
