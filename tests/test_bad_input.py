"""Bad input through the CLI: one line naming the problem, exit code 2, no traceback, nothing written."""

import json
import subprocess
import sys

import pytest

from compress.cli import main


def _gpt2_checkpoint(path):
    from transformers import GPT2Config

    GPT2Config(n_layer=1, n_embd=16, n_head=2).save_pretrained(path)
    return path


CASES = {
    "missing teacher": (lambda t: ["--teacher", str(t / "nope")], "does not exist"),
    "teacher without config": (lambda t: ["--teacher", str(t)], "has no config.json"),
    "non-BERT teacher": (lambda t: ["--teacher", str(_gpt2_checkpoint(t / "gpt2"))], "is a 'gpt2' model"),
    "teacher without weights": (lambda t: ["--teacher", str(_no_weights(t))], "has no weights"),
    "truncated teacher weights": (lambda t: ["--teacher", str(_truncated(t))], "model.safetensors is damaged or incomplete"),
    "missing data": (lambda t: ["--data", str(t / "nope.csv")], "does not exist"),
    "empty data": (lambda t: ["--data", str(_file(t / "train.jsonl", ""))], "is empty"),
    "unknown column": (lambda t: ["--data", str(_file(t / "d.csv", "review,label\nok,pos\n"))], "no text column 'text'"),
    "unknown recipe": (lambda t: ["--recipe", "nope"], "unknown recipe 'nope'"),
    "max length above positions": (lambda t: ["--recipe", str(_file(t / "r.yaml", "data: {max_length: 1024}\nbench: {seq_lens: [32]}"))],
                                   "above what teacher default can embed"),
    "missing unlabeled text": (lambda t: ["--unlabeled", str(t / "nope.txt")], "does not exist"),
    "empty unlabeled text": (lambda t: ["--unlabeled", str(_file(t / "u.txt", "\n  \n"))], "holds no text"),
    "binary unlabeled text": (lambda t: ["--unlabeled", str(_bytes(t / "u.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00"))],
                              "looks binary"),
    "unlabeled without a text column": (lambda t: ["--unlabeled", str(_file(t / "u.csv", "review,stars\ngood,5\n"))],
                                        "no text column 'text'; columns found: review, stars"),
    "unlabeled folder without text files": (lambda t: ["--unlabeled", str(_folder(t / "empty"))], "holds no .txt"),
}


def _bytes(path, data: bytes):
    path.write_bytes(data)
    return path


def _folder(path):
    path.mkdir()
    (path / "notes.pdf").write_bytes(b"%PDF")
    return path


def _file(path, text):
    path.write_text(text)
    return path


def _truncated(t):
    from tests.helpers import make_tiny_bert

    path = make_tiny_bert(t / "cut")
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # a copy that stopped half way
    return path


def _no_weights(t):
    from transformers import BertConfig

    BertConfig(num_hidden_layers=1, hidden_size=16, num_attention_heads=2, intermediate_size=32).save_pretrained(t / "bare")
    return t / "bare"


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, capsys):
    make_args, message = CASES[case]
    out = tmp_path / "out"
    code = main(["run", *make_args(tmp_path), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not out.exists(), "nothing may be written for bad input"


def test_tokenizer_that_does_not_fit_the_weights(tmp_path, tiny_teacher, tiny_recipe, capsys):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(tiny_teacher, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["vocab_size"] = 100
    (bad / "config.json").write_text(json.dumps(cfg))
    assert main(["run", "--teacher", str(bad), "--recipe", str(tiny_recipe), "--out", str(tmp_path / "o")]) == 2
    assert "does not belong to these weights" in capsys.readouterr().err


def test_unwritable_out(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["run", "--out", str(blocker / "sub")]) == 2
    assert "is a file" in capsys.readouterr().err


def test_subprocess_shows_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "compress", "run", "--data", str(tmp_path / "none.csv"), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"bert-compress: error: data path {tmp_path / 'none.csv'} does not exist: "
                                                "give a directory with train/dev/test files or one file"]


@pytest.mark.parametrize(
    "recipe_text, message",
    [
        ("distill: {layer_map: {strategy: explicit, pairs: [[1, 9]]}}", r"pair \[1, 9\] is out of range"),
        ("student: {num_layers: 2, num_attention_heads: 6}\ndistill: {losses: {tinybert_attention: {}}}",
         "same number of heads: student 6, teacher 12"),
        ("student: {num_layers: 2, hidden_size: 192}\ndistill: {projection: none, losses: {tinybert_hidden: {}}}",
         "projection is 'none'"),
        ("student: {num_layers: 2, hidden_size: 192}", "hidden_cosine needs equal hidden sizes"),
        ("distill: {losses: {focal: {}}}", "unknown loss 'focal'"),
        ("distill: {losses: {hard_ce: {weight: -2}}}", "greater than or equal to 0"),
        ("student: {num_layers: 7}", "more than the teacher's 6 layers"),
        ("student: {num_layers: 2, hidden_size: 200}", "hidden size 200 is not divisible by its 12 attention heads"),
        ("distill: {general: {data: nowhere.txt}}", "unlabeled text nowhere.txt does not exist"),
        ("distill: {transfer: {entities: {copies: 2}}}",  # sentiment rows have no tag per word to augment
         "distill.transfer.entities augments words tagged one by one, which sequence-classification data does not have"),
    ],
)
def test_impossible_distillation_plans_fail_before_writing(tmp_path, capsys, recipe_text, message):
    recipe = _file(tmp_path / "r.yaml", recipe_text)
    out = tmp_path / "out"
    assert main(["run", "--recipe", str(recipe), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err or __import__("re").search(message, err), err
    assert len(err.splitlines()) == 1 and not out.exists()


def test_out_where_no_folder_can_be_made(capsys):
    """/proc takes no new folder, though os.access says it is writable for root."""
    assert main(["run", "--out", "/proc/bert-compress-nope/out"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bert-compress: error: cannot write to /proc") and len(err.splitlines()) == 1
