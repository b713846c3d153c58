"""targets.bundle on small bundles written by hand: a rebuilt zip is extracted again, metadata.json cannot point
outside the bundle, model files are checked against their recorded SHA-256, a tokenizer.json-only bundle loads."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from targets.bundle import Bundle, BundleError, Classifier

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "good", "bad", "film"]


def tiny_onnx(path: Path, weights: tuple[float, float]) -> Path:
    """logits = (sum of the input ids) · weights: an ONNX classifier whose outputs show which file ran."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Cast", ["input_ids"], ["ids"], to=TensorProto.FLOAT),
         helper.make_node("ReduceSum", ["ids", "axes"], ["total"], keepdims=1),
         helper.make_node("MatMul", ["total", "w"], ["logits"])],
        "tiny", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor("axes", TensorProto.INT64, [1], [1]), helper.make_tensor("w", TensorProto.FLOAT, [1, 2], list(weights))])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8), str(path))
    return path


def digest(path: Path) -> str:
    from compress.fsutil import file_digest  # what `bert-compress bundle` records

    return file_digest(path, None)


def make_bundle(root: Path, weights=(-1.0, 1.0), **tokenizer) -> Path:
    root.mkdir(parents=True)
    (root / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    (root / "labels.txt").write_text("negative\npositive\n")
    model = tiny_onnx(root / "model.onnx", weights)
    meta = {"format": "bert-compress-bundle", "schema_version": 1, "labels": ["negative", "positive"],
            "labels_file": "labels.txt", "max_length": 16,
            "tokenizer": {"type": "bert-wordpiece", "vocab": "vocab.txt", "tokenizer_json": None, "lowercase": True,
                          "strip_accents": None} | tokenizer,
            "models": [{"file": "model.onnx", "runtime": "onnxruntime", "format": "onnx", "sha256": digest(model)}]}
    (root / "metadata.json").write_text(json.dumps(meta))
    return root


def edit_meta(root: Path, change) -> None:
    meta = json.loads((root / "metadata.json").read_text())
    change(meta)
    (root / "metadata.json").write_text(json.dumps(meta))


def zip_bundle(root: Path, zip_path: Path, folder: str = "bundle") -> Path:
    """folder: the zip's top folder, as `bert-compress bundle` writes it; "": the files at the top (a hand-made zip)."""
    with zipfile.ZipFile(zip_path, "w") as zf:
        for p in sorted(root.rglob("*")):
            zf.write(p, Path(folder) / p.relative_to(root))
    return zip_path


def test_the_recorded_digest_is_the_one_hashlib_gives(tmp_path):
    b = make_bundle(tmp_path / "b")
    assert Bundle.load(b).metadata["models"][0]["sha256"] == hashlib.sha256((b / "model.onnx").read_bytes()).hexdigest()


def test_a_hand_made_bundle_classifies(tmp_path):
    clf = Classifier(make_bundle(tmp_path / "b"), threads=1)
    ids = [VOCAB.index(t) for t in ("[CLS]", "good", "film", "[SEP]")]
    np.testing.assert_allclose(clf.logits(["Good film"]), [[-sum(ids), sum(ids)]])
    assert clf.predict(["good film"])[0].label == "positive"


@pytest.mark.parametrize("folder", ["bundle", ""])
def test_a_zip_rebuilt_under_the_same_name_is_extracted_again(tmp_path, folder):
    zip_path = zip_bundle(make_bundle(tmp_path / "v1", weights=(-1.0, 1.0)), tmp_path / "bundle.zip", folder)
    assert Classifier(zip_path, threads=1).predict(["good film"])[0].label == "positive"
    extracted = tmp_path / "bundle.unzipped" / folder
    assert (extracted / "metadata.json").is_file()
    zip_bundle(make_bundle(tmp_path / "v2", weights=(1.0, -1.0)), tmp_path / "rebuilt.zip", folder).replace(zip_path)
    clf = Classifier(zip_path, threads=1)
    assert clf.predict(["good film"])[0].label == "negative", "served from the stale extraction of the old zip"
    assert clf.bundle.root == extracted
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith((".tmp-", ".old-"))]  # no leftovers
    # the same zip again: the extraction is reused, not redone
    stamp = (extracted / "model.onnx").stat().st_mtime_ns
    Bundle.load(zip_path)
    assert (extracted / "model.onnx").stat().st_mtime_ns == stamp


def test_an_interrupted_extraction_is_not_taken_for_a_bundle(tmp_path):
    """An extraction without the zip's digest beside it (a crash of an older runner, a hand copy): redone."""
    zip_path = zip_bundle(make_bundle(tmp_path / "v1"), tmp_path / "bundle.zip", folder="")
    half = tmp_path / "bundle.unzipped"
    half.mkdir()
    (half / "metadata.json").write_text((tmp_path / "v1" / "metadata.json").read_text())
    assert Bundle.load(zip_path).labels == ["negative", "positive"]  # the model file was missing in `half`
    assert (half / "model.onnx").is_file()


def test_a_damaged_zip_is_one_bundle_error(tmp_path):
    (tmp_path / "bundle.zip").write_bytes(b"PK not really")
    with pytest.raises(BundleError, match="cannot extract"):
        Bundle.load(tmp_path / "bundle.zip")


@pytest.mark.parametrize("entry, value", [
    ("model", "/etc/passwd"), ("model", "../outside.onnx"), ("model", "sub/../../outside.onnx"), ("model", "C:\\model.onnx"),
    ("vocab", "/etc/passwd"), ("vocab", "../vocab.txt"), ("tokenizer_json", "../tokenizer.json"), ("labels_file", "../labels.txt"),
])
def test_paths_outside_the_bundle_are_refused(tmp_path, entry, value):
    b = make_bundle(tmp_path / "b")
    for name in ("outside.onnx", "vocab.txt", "tokenizer.json", "labels.txt"):  # so that "is missing" cannot be the reason
        shutil.copy(b / ("vocab.txt" if name == "tokenizer.json" else "model.onnx" if name == "outside.onnx" else name), tmp_path / name)

    def change(meta):
        if entry == "model":
            meta["models"][0]["file"] = value
        elif entry == "labels_file":
            meta["labels_file"] = value
        else:
            meta["tokenizer"][entry] = value

    edit_meta(b, change)
    with pytest.raises(BundleError) as err:
        Bundle.load(b)
    name = {"model": "models[0] file", "labels_file": "labels_file"}.get(entry, f"tokenizer {entry}")
    assert f"{name} '{value}' points outside the bundle" in str(err.value)


def test_a_symlink_leading_out_of_the_bundle_is_refused(tmp_path):
    b = make_bundle(tmp_path / "b")
    (tmp_path / "secret.txt").write_text("negative\npositive\n")
    (b / "labels.txt").unlink()
    os.symlink(tmp_path / "secret.txt", b / "labels.txt")
    with pytest.raises(BundleError, match=r"labels_file 'labels.txt' is a link to .*secret.txt, outside the bundle"):
        Bundle.load(b)
    (b / "labels.txt").unlink()  # a link within the bundle is fine
    (b / "data").mkdir()
    (b / "data" / "labels.txt").write_text("negative\npositive\n")
    os.symlink(b / "data" / "labels.txt", b / "labels.txt")
    assert Bundle.load(b).labels == ["negative", "positive"]


def test_a_changed_model_file_is_refused_by_name(tmp_path):
    b = make_bundle(tmp_path / "b")
    tiny_onnx(b / "model.onnx", (5.0, 5.0))  # a valid model, but not the one the bundle recorded
    bundle = Bundle.load(b)  # loading metadata does not read the models
    with pytest.raises(BundleError) as err:
        Classifier(bundle, threads=1)
    assert str(err.value) == ("model.onnx does not match its SHA-256 in metadata.json: the file is damaged or was "
                              "changed; copy the bundle again")
    with pytest.raises(BundleError, match="model.onnx does not match its SHA-256"):
        bundle.model_entry("onnxruntime")


def test_a_second_model_is_checked_on_its_own(tmp_path):
    """Two models, one damaged: the intact one runs, the damaged one is named; a missing one is named too."""
    b = make_bundle(tmp_path / "b")
    shutil.copy(b / "model.onnx", b / "model2.onnx")
    edit_meta(b, lambda m: m["models"].append(m["models"][0] | {"file": "model2.onnx", "runtime": "onnxruntime-2"}))
    with open(b / "model2.onnx", "ab") as fh:
        fh.write(b"\0")
    bundle = Bundle.load(b)
    assert Classifier(bundle, runtime="model.onnx", threads=1).entry["file"] == "model.onnx"
    with pytest.raises(BundleError, match="^model2.onnx does not match its SHA-256"):
        Classifier(bundle, runtime="model2.onnx", threads=1)
    (b / "model2.onnx").unlink()
    with pytest.raises(BundleError, match=r"is missing model2.onnx: copy the whole bundle"):
        Bundle.load(b)
    with pytest.raises(BundleError, match=r"is missing model2.onnx"):
        bundle.model_entry("model2.onnx")


def test_a_bundle_without_digests_is_accepted(tmp_path):
    """Bundles written before digests were recorded: their models run unchecked."""
    b = make_bundle(tmp_path / "b")
    edit_meta(b, lambda m: m["models"][0].pop("sha256"))
    tiny_onnx(b / "model.onnx", (1.0, -1.0))
    assert Classifier(b, threads=1).predict(["good film"])[0].label == "negative"


@pytest.mark.parametrize("kind", ["WordPiece", "WordLevel"])
def test_a_tokenizer_json_only_bundle_loads(tmp_path, kind):
    """A null vocab (a non-WordPiece tokenizer ships only tokenizer.json) is not required to exist; the bundle's
    tokenizer is targets.tokenizer.load_tokenizer's: pure Python for BERT WordPiece, the library otherwise."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    from targets.tokenizer import LibraryTokenizer, WordPieceTokenizer

    vocab = {t: i for i, t in enumerate(VOCAB)}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]") if kind == "WordPiece" else models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                       special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    b = make_bundle(tmp_path / "b", vocab=None, tokenizer_json="tokenizer.json")
    tok.save(str(b / "tokenizer.json"))
    (b / "vocab.txt").unlink()
    clf = Classifier(b, threads=1)
    assert type(clf.tokenizer) is (WordPieceTokenizer if kind == "WordPiece" else LibraryTokenizer)
    ids = [VOCAB.index(t) for t in ("[CLS]", "good", "film", "[SEP]")]
    np.testing.assert_allclose(clf.logits(["Good film"]), [[-sum(ids), sum(ids)]])
    edit_meta(b, lambda m: m["tokenizer"].update(tokenizer_json=None))
    with pytest.raises(BundleError, match="names no tokenizer file"):
        Bundle.load(b)
