"""Data readers: every format, text pairs, label order, and each bad case with its message."""

import json

import pytest

from compress.data import load_task_data
from compress.errors import UserError
from compress.recipe import DataConfig

ROWS = [("good film", "pos"), ("bad film", "neg"), ("great", "pos"), ("awful", "neg"), ("fine", "pos"),
        ("dull", "neg"), ("lovely", "pos"), ("boring", "neg"), ("superb", "pos"), ("weak", "neg")]


def write(path, rows, fmt, header=("sentence", "verdict")):
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(dict(zip(header, r))) + "\n" for r in rows))
    else:
        sep = "\t" if fmt == "tsv" else ","
        path.write_text(sep.join(header) + "\n" + "".join(sep.join(r) + "\n" for r in rows))
    return path


def put(directory, name, text):
    (directory / name).write_text(text)
    return directory


CFG = dict(text_column="sentence", label_column="verdict")


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl"])
def test_directory_of_splits_in_each_format(tmp_path, fmt):
    for split in ("train", "dev", "test"):
        write(tmp_path / f"{split}.{fmt}", ROWS, fmt)
    data = load_task_data(DataConfig(path=str(tmp_path), **CFG))
    assert data.labels == ["neg", "pos"]
    assert len(data.train) == len(data.dev) == len(data.test) == len(ROWS)
    assert data.train[0].text == "good film" and data.train[0].label == 1


def test_validation_name_is_accepted_for_dev(tmp_path):
    write(tmp_path / "train.csv", ROWS, "csv")
    write(tmp_path / "validation.csv", ROWS[:4], "csv")
    write(tmp_path / "test.csv", ROWS[:4], "csv")
    assert len(load_task_data(DataConfig(path=str(tmp_path), **CFG)).dev) == 4


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl"])
def test_single_file_is_split_stratified_and_deterministically(tmp_path, fmt):
    rows = [(f"text {i}", "pos" if i % 2 else "neg") for i in range(100)]
    f = write(tmp_path / f"all.{fmt}", rows, fmt)
    a = load_task_data(DataConfig(path=str(f), **CFG))
    b = load_task_data(DataConfig(path=str(f), **CFG))
    assert (len(a.train), len(a.dev), len(a.test)) == (80, 10, 10)
    assert a.train == b.train and a.test == b.test
    assert sum(e.label for e in a.test) == 5  # stratified: half of each label
    texts = [e.text for e in a.train + a.dev + a.test]
    assert len(set(texts)) == 100


def test_missing_dev_and_test_are_carved_from_train(tmp_path):
    rows = [(f"text {i}", "pos" if i % 2 else "neg") for i in range(50)]
    write(tmp_path / "train.jsonl", rows, "jsonl")
    data = load_task_data(DataConfig(path=str(tmp_path), **CFG))
    assert len(data.train) == 40 and len(data.dev) + len(data.test) == 10 and data.dev and data.test
    assert {e.label for e in data.dev} == {0, 1}
    assert data.notes and "carved" in data.notes[0]


def test_text_pair_column(tmp_path):
    rows = [("a cat", "a feline", "same"), ("a dog", "a car", "diff")] * 3
    write(tmp_path / "train.tsv", rows, "tsv", header=("s1", "s2", "y"))
    data = load_task_data(DataConfig(path=str(tmp_path), text_column="s1", text_pair_column="s2", label_column="y"))
    assert data.train[0].text_pair == "a feline"


def test_numeric_labels_sort_numerically(tmp_path):
    rows = [{"text": f"t{i}", "label": i % 11} for i in range(44)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = load_task_data(DataConfig(path=str(tmp_path)))
    assert data.labels == [str(i) for i in range(11)]


def test_explicit_label_order_is_kept(tmp_path):
    for split in ("train", "dev", "test"):
        write(tmp_path / f"{split}.csv", ROWS, "csv")
    data = load_task_data(DataConfig(path=str(tmp_path), labels=["pos", "neg"], **CFG))
    assert data.labels == ["pos", "neg"] and data.train[0].label == 0


def test_default_data_is_vendored():
    data = load_task_data(DataConfig())
    assert data.labels == ["negative", "positive"]
    assert (len(data.train), len(data.dev), len(data.test)) == (10124, 1209, 1419)


def _bad(tmp_path, setup, message, **cfg):
    target = setup(tmp_path)
    with pytest.raises(UserError, match=message):
        load_task_data(DataConfig(path=str(target), **(CFG | cfg)))


@pytest.mark.parametrize(
    "setup, message, cfg",
    [
        (lambda p: p / "missing", "does not exist", {}),
        (lambda p: put(p, "train.csv", ""), "is empty", {}),
        (lambda p: write(p / "train.csv", ROWS, "csv") and p, "no text column 'text'", {"text_column": "text"}),
        (lambda p: write(p / "train.csv", ROWS, "csv") and p, "no label column 'label'", {"label_column": "label"}),
        (lambda p: write(p / "train.csv", [("x", "")] + ROWS, "csv") and p, "row 1 has no value in column 'verdict'", {}),
        (lambda p: write(p / "train.csv", [("x", "pos")] * 10, "csv") and p, "only one label", {}),
        (lambda p: (write(p / "train.csv", ROWS, "csv"), write(p / "dev.csv", [("x", "meh")], "csv")) and p,
         r"dev has labels never seen in train: \['meh'\]", {}),
        (lambda p: put(p, "train.jsonl", '{"sentence": "a", "verdict": "pos"}\n{oops\n'), "train.jsonl:2: not valid JSON", {}),
        (lambda p: put(p, "train.jsonl", '["a", "pos"]\n'), "expected a JSON object", {}),
        (lambda p: put(p, "data.xlsx", "x") / "data.xlsx", "unsupported file type", {}),
        (lambda p: put(p, "dev.csv", "a,b\n"), "no train file", {}),
        (lambda p: (write(p / "train.csv", ROWS, "csv"), write(p / "train.jsonl", ROWS, "jsonl")) and p, "several train files", {}),
        (lambda p: put(p, "train.csv", "sentence,verdict\na,pos,extra\n"), "more fields than the header", {}),
        (lambda p: write(p / "train.csv", ROWS, "csv") and p, r"labels \['neg'\] are not in data.labels", {"labels": ["pos"]}),
    ],
)
def test_bad_data_gives_one_clear_error(tmp_path, setup, message, cfg):
    _bad(tmp_path, setup, message, **cfg)


def test_non_utf8_file(tmp_path):
    (tmp_path / "train.csv").write_bytes("sentence,verdict\ncaf\xe9,pos\n".encode("latin-1"))
    with pytest.raises(UserError, match="not UTF-8"):
        load_task_data(DataConfig(path=str(tmp_path), **CFG))


def test_unlabeled_text_formats_and_errors(tmp_path):
    from compress.data.unlabeled import load_unlabeled

    assert len(load_unlabeled("default")) == 1083
    (tmp_path / "u.txt").write_text("one\n\n two \n")
    assert [e.text for e in load_unlabeled(str(tmp_path / "u.txt"))] == ["one", "two"]
    (tmp_path / "u.jsonl").write_text('{"plot": "a"}\n{"plot": "b"}\n')
    assert [e.text for e in load_unlabeled(str(tmp_path / "u.jsonl"), "plot", max_rows=1)] == ["a"]
    with pytest.raises(UserError, match="no text column 'text'; columns found: plot"):
        load_unlabeled(str(tmp_path / "u.jsonl"))
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(UserError, match="holds no text"):
        load_unlabeled(str(tmp_path / "empty.txt"))
    with pytest.raises(UserError, match="unsupported file type"):
        load_unlabeled(str(put(tmp_path, "u.md", "x") / "u.md"))
