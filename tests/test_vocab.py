"""Task vocabulary: pruned tokenizer, id map, pruned embedding table, and a pruned student through the pipeline."""

import json

import numpy as np
import pytest
import torch

from compress import vocab
from compress.cli import main
from compress.data.readers import Example


@pytest.fixture(scope="module")
def tokenizer(tiny_teacher):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_teacher)


@pytest.fixture(scope="module")
def train_texts(tiny_data):
    return [json.loads(line)["text"] for line in (tiny_data / "train.jsonl").read_text().splitlines()]


def _pruned(tokenizer, texts):
    keep = vocab.kept_ids(tokenizer, vocab.used_token_ids(tokenizer, [Example(text=t, label=0) for t in texts]))
    return keep, vocab.pruned_tokenizer(tokenizer, keep)


def test_pruned_tokenizer_gives_the_teacher_pieces_on_the_kept_text(tokenizer, train_texts, tmp_path):
    keep, pruned = _pruned(tokenizer, train_texts)
    assert len(pruned) == len(keep) < len(tokenizer) / 3
    table = vocab.id_map(len(tokenizer), keep, tokenizer.unk_token_id)
    for name in ("pad", "cls", "sep", "unk", "mask"):
        assert keep[getattr(pruned, f"{name}_token_id")] == getattr(tokenizer, f"{name}_token_id")
    # the kept text: same pieces in the same positions, so teacher and student stay aligned
    a = tokenizer(train_texts, truncation=True, max_length=64)
    b = pruned(train_texts, truncation=True, max_length=64)
    assert [table[torch.tensor(x)].tolist() for x in a["input_ids"]] == b["input_ids"]
    assert a["token_type_ids"] == b["token_type_ids"] and a["attention_mask"] == b["attention_mask"]
    # a saved and reloaded pruned tokenizer is the same tokenizer (it ships with the student)
    vocab.save_tokenizer(pruned, tmp_path)
    from transformers import AutoTokenizer

    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again(train_texts[:8])["input_ids"] == pruned(train_texts[:8])["input_ids"]
    assert (tmp_path / "vocab.txt").read_text(encoding="utf-8").splitlines() == pruned.convert_ids_to_tokens(list(range(len(pruned))))


def test_an_albert_style_students_tokenizer_still_gives_segment_ids(tokenizer, train_texts, tmp_path):
    """Beside an ALBERT config AutoTokenizer cannot build ALBERT's SentencePiece class from WordPiece files; the class
    it falls back to must still give token_type_ids (MediaPipe's BERT models and text pairs need them)."""
    from transformers import AlbertConfig, AutoTokenizer

    _, pruned = _pruned(tokenizer, train_texts)
    vocab.save_tokenizer(pruned, tmp_path)
    AlbertConfig(vocab_size=len(pruned), embedding_size=8, hidden_size=16, num_attention_heads=2,
                 intermediate_size=32).save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    pair = again(train_texts[0], train_texts[1])
    assert pair["token_type_ids"] == pruned(train_texts[0], train_texts[1])["token_type_ids"] and 1 in pair["token_type_ids"]


def test_new_words_split_into_kept_pieces_not_unk(tokenizer, train_texts):
    _, pruned = _pruned(tokenizer, train_texts)
    word = "zxqvwunfathomablequokka"
    pieces = pruned.tokenize(word)
    assert "[UNK]" not in pieces and "".join(p.removeprefix("##") for p in pieces) == word
    assert pruned.tokenize("héllo wörld") != ["[UNK]"]


def test_model_with_kept_rows_gives_the_teacher_logits(tiny_teacher, tokenizer, train_texts):
    from transformers import BertForSequenceClassification

    teacher = BertForSequenceClassification.from_pretrained(tiny_teacher, num_labels=2).eval()
    keep, _ = _pruned(tokenizer, train_texts)
    pruned = vocab.with_kept_rows(teacher, keep).eval()
    assert pruned.config.vocab_size == len(keep) and teacher.config.vocab_size == len(tokenizer)
    enc = tokenizer(train_texts[:16], padding=True, return_tensors="pt")
    table = vocab.id_map(teacher.config.vocab_size, keep, tokenizer.unk_token_id)
    with torch.no_grad():
        want = teacher(**enc).logits
        got = pruned(**(dict(enc) | {"input_ids": table[enc["input_ids"]]})).logits
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_non_wordpiece_tokenizer_is_refused(tmp_path, tiny_teacher, tiny_data, capsys):
    """A tokenizer that is not WordPiece (here a WordLevel one) cannot be pruned this way: one line, exit 2."""
    import shutil

    bad = tmp_path / "wordlevel"
    shutil.copytree(tiny_teacher, bad)
    spec = json.loads((bad / "tokenizer.json").read_text())
    spec["model"] = {"type": "WordLevel", "vocab": spec["model"]["vocab"], "unk_token": "[UNK]"}
    (bad / "tokenizer.json").write_text(json.dumps(spec))
    cfg = json.loads((bad / "tokenizer_config.json").read_text())
    (bad / "tokenizer_config.json").write_text(json.dumps(cfg | {"tokenizer_class": "PreTrainedTokenizerFast"}))
    recipe = tmp_path / "r.yaml"
    recipe.write_text("student: {num_layers: 1, vocabulary: task}\n")
    out = tmp_path / "out"
    code = main(["run", "--teacher", str(bad), "--data", str(tiny_data), "--recipe", str(recipe), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "needs a WordPiece tokenizer" in err and len(err.splitlines()) == 1
    assert not out.exists()


@pytest.mark.slow
def test_task_vocabulary_student_end_to_end(tmp_path, tiny_teacher, tiny_data):
    """ALBERT-style student with the task vocabulary: trained, saved with its own tokenizer, exported, verified."""
    recipe = tmp_path / "albert-task.yaml"
    recipe.write_text("""
teacher: {epochs: 1, lr: 1.0e-3, batch_size: 16}
student: {num_layers: 2, embedding_size: 8, sharing: all, vocabulary: task}
data: {max_length: 64}
export: {executorch: off}
distill:
  batch_size: 16
  stages:
    - {name: intermediate, epochs: 1, lr: 1.0e-3, losses: {tinybert_embedding: {}, tinybert_hidden: {}, tinybert_attention: {}}}
    - {name: prediction, epochs: 1, losses: {distilbert_soft: {}, hard_ce: {}}}
bench: {seq_lens: [16], threads: [1], warmup: 1, runs: 3, min_seconds: 0, rounds: 1, isolate: false}
""")
    out = tmp_path / "out"
    assert main(["run", "--teacher", str(tiny_teacher), "--data", str(tiny_data), "--recipe", str(recipe), "--out", str(out)]) == 0
    from transformers import AutoTokenizer

    from compress.student.albert import load_student

    student, tok = load_student(out / "student"), AutoTokenizer.from_pretrained(out / "student")
    kept = json.loads((out / "student" / vocab.KEPT_IDS_FILE).read_text())
    record = json.loads((out / "stages/distill.json").read_text())["build"]
    assert record["vocabulary"] == "task" and record["pieces"] == len(kept) == len(tok) == student.config.vocab_size
    assert record["teacher_pieces"] == 30522 and len(kept) < 30522 / 3
    # the embedding table was initialised from the kept teacher rows (SVD of those rows only)
    assert student.albert.embeddings.word_embeddings.weight.shape == (len(kept), 8)
    report = json.loads((out / "report.json").read_text())
    fp32 = report["artifacts"][0]
    assert fp32["agreement"] >= 0.999 and fp32["size_bytes"] < 30522 * 8 * 4
    # accuracy in the report is the student reading its own tokenizer's ids
    from compress.data.batching import encode
    from compress.data.readers import read_rows  # noqa: F401  (the reader the pipeline uses)
    from compress.evaluate import accuracy, predict_logits

    rows = [json.loads(x) for x in (tiny_data / "test.jsonl").read_text().splitlines()]
    labels = report["data"]["labels"]
    enc = encode(tok, [Example(text=r["text"], label=labels.index(str(r["label"]))) for r in rows], 64)
    assert report["student"]["quality"] == pytest.approx(accuracy(predict_logits(student, enc), enc.labels))
    assert np.isfinite(fp32["quality"])
