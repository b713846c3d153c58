"""Embedding bundles on the device side: a real tiny sentence-embedding model (a random BERT with masked mean pooling
and L2 normalisation, exported by the dynamo ONNX exporter, plus its ORT-dynamic int8 copy) in a bundle written by
hand in the format `bert-compress bundle` writes for the embedding task. Embedder, search, `embed`, `check`,
`bench`, and the tokenizer's add_special_tokens."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from targets.__main__ import main
from targets.bundle import RUNNER_FILES, Bundle, BundleError, Classifier, Embedder, sha256
from tests.helpers import run_torch_free

WORDS = ("a the good bad film movie great terrible cat dog sat on mat stocks fell sharply today markets rose "
         "weather is sunny rainy and very i love hate this it was ##s ##ing play").split()
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
DIM, MAX_LENGTH = 32, 32
CHECK_TEXTS = ["a good film", "the cat sat on the mat", "stocks fell sharply today", "i love this movie",
               "the weather is sunny", "it was a terrible film", "playing dogs", "markets rose and fell"]


def _pooled_module(seed: int = 0):
    import torch
    from transformers import BertConfig, BertModel

    class MeanPooled(torch.nn.Module):
        """BERT, masked mean pooling, L2 normalisation: a sentence-transformers model as one graph."""

        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=-1)

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=len(VOCAB), hidden_size=DIM, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=2 * DIM, max_position_embeddings=64)
    return MeanPooled(BertModel(cfg).eval()).eval()


def _export(module, path: Path) -> None:
    import torch

    names = ["input_ids", "attention_mask", "token_type_ids"]
    sample = {n: torch.ones(2, 8, dtype=torch.long) if n != "token_type_ids" else torch.zeros(2, 8, dtype=torch.long)
              for n in names}
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence", max=64)
    program = torch.onnx.export(module, (), kwargs=sample, dynamo=True, opset_version=18, input_names=names,
                                output_names=["sentence_embedding"], dynamic_shapes={n: {0: batch, 1: seq} for n in names},
                                verbose=False)
    program.save(str(path), external_data=False)


def torch_vectors(module, ids: list[list[int]]) -> np.ndarray:
    """The PyTorch module's vectors, one text per call (no padding)."""
    import torch

    with torch.no_grad():
        return np.concatenate([module(torch.tensor([row]), torch.ones(1, len(row), dtype=torch.long),
                                      torch.zeros(1, len(row), dtype=torch.long)).numpy() for row in ids])


def hf_ids(texts: list[str], vocab: Path, add_special_tokens: bool = True) -> list[list[int]]:
    """The ids Hugging Face's tokenizers library gives for a vocab.txt (what the runner's tokenizer must match)."""
    from tokenizers import BertWordPieceTokenizer

    tok = BertWordPieceTokenizer(str(vocab))
    tok.enable_truncation(MAX_LENGTH)
    return [tok.encode(t, add_special_tokens=add_special_tokens).ids for t in texts]


def write_meta(root: Path, meta: dict) -> None:
    (root / "metadata.json").write_text(json.dumps(meta))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(bundle dir, the torch module): model.onnx (fp32) and model.int8.onnx (ORT dynamic), check.json with the
    module's vectors on CHECK_TEXTS, and the runner copy in runner/targets."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = tmp_path_factory.mktemp("embedding") / "bundle"
    root.mkdir()
    module = _pooled_module()
    _export(module, root / "model.onnx")
    quantize_dynamic(str(root / "model.onnx"), str(root / "model.int8.onnx"), weight_type=QuantType.QInt8)
    (root / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    (root / "labels.txt").write_text("")
    reference = torch_vectors(module, hf_ids(CHECK_TEXTS, root / "vocab.txt"))
    (root / "check.json").write_text(json.dumps({
        "source": "the dev split; sentence embeddings of the PyTorch student", "texts": CHECK_TEXTS, "pairs": None,
        "labels": [], "reference_logits": reference.astype(float).tolist(),
        "bars": {"fp32": {"atol": 1e-4, "min_cosine": 0.9999}, "quantized": {"min_cosine": 0.9}}}))
    ins = [{"name": n, "dtype": "int64", "shape": ["batch", "sequence"]} for n in ("input_ids", "attention_mask", "token_type_ids")]
    outs = [{"name": "sentence_embedding", "dtype": "float32", "shape": ["batch", DIM]}]
    models = [{"file": f, "runtime": "onnxruntime", "format": "onnx", "artifact": art, "precision": prec, "inputs": ins,
               "outputs": outs, "size_bytes": (root / f).stat().st_size, "sha256": sha256(root / f), "quantization": q}
              for f, art, prec, q in (("model.onnx", "onnx-fp32", "fp32", None),
                                      ("model.int8.onnx", "ort-dynamic", "int8", {"backend": "ort-dynamic", "settings": {}}))]
    write_meta(root, {
        "format": "bert-compress-bundle", "schema_version": 1,
        "task": {"name": "embedding", "outputs": ["sentence_embedding"], "postprocess": "embedding"},
        "embedding": {"dim": DIM, "normalized": True, "pooling": "mean"},
        "labels": [], "labels_file": "labels.txt", "check_file": "check.json", "max_length": MAX_LENGTH,
        "tokenizer": {"type": "bert-wordpiece", "vocab": "vocab.txt", "tokenizer_json": None, "lowercase": True,
                      "strip_accents": None, "vocab_size": len(VOCAB), "pad_id": 0},
        "teacher": {"checkpoint": "tiny"},
        "student": {"layers": 2, "hidden_size": DIM, "architecture": {"layers": 2, "hidden_size": DIM, "heads": 2,
                                                                      "intermediate_size": 2 * DIM, "vocab_size": len(VOCAB)}},
        "models": models})
    runner = root / "runner" / "targets"  # as the bundle stage copies it
    runner.mkdir(parents=True)
    src = Path(__file__).resolve().parents[1] / "targets"
    for name in RUNNER_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, runner / name)
    return root, module


@pytest.fixture
def bundle_copy(built, tmp_path):
    """A copy of the bundle a test may change."""
    dst = tmp_path / "bundle"
    shutil.copytree(built[0], dst, ignore=shutil.ignore_patterns("runner"))
    return dst


def test_embedder_gives_the_torch_modules_vectors(built):
    root, module = built
    texts = ["a good film", "the dog sat on the mat today", "unknownword sunny", "playing", "film"]
    emb = Embedder(root)
    assert (emb.dim, emb.normalized, emb.pooling) == (DIM, True, "mean")
    vectors = emb.embed(texts)
    assert vectors.dtype == np.float32 and vectors.shape == (len(texts), DIM)
    ids = hf_ids(texts, root / "vocab.txt")
    assert [emb.tokenizer.encode(t, None, MAX_LENGTH).input_ids for t in texts] == ids
    np.testing.assert_allclose(vectors, torch_vectors(module, ids), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(emb.embed(texts, batch_size=4), vectors, atol=1e-5)  # padded rows: the mask holds
    np.testing.assert_array_equal(emb.embed("a good film"), vectors[:1])  # a lone string is one text
    assert emb.embed([]).shape == (0, DIM)
    with pytest.raises(BundleError, match="text 2 is empty or only whitespace: there is nothing to embed"):
        emb.embed(["a good film", " \n"])  # a vector of no words means nothing: refused, not zeros


def test_search_ranks_the_near_duplicate_first(built):
    emb = Embedder(built[0])
    docs = ["stocks fell sharply today", "the cat sat on the mat", "i love this movie", "the weather is rainy"]
    hits = emb.search("the cat sat on a mat", docs, top_k=2)
    assert len(hits) == 2 and hits[0][0] == 1 and hits[0][1] > hits[1][1]
    vectors = emb.embed(docs)
    by_vectors, by_texts = emb.search("the cat sat on a mat", vectors, top_k=None), emb.search("the cat sat on a mat", docs, None)
    assert [i for i, _ in by_vectors] == [i for i, _ in by_texts]
    assert [s for _, s in by_vectors] == pytest.approx([s for _, s in by_texts])
    scaled = emb.search("the cat sat on a mat", vectors * 3.0, top_k=1)  # cosine: the vectors' lengths do not count
    assert scaled[0][0] == 1 and scaled[0][1] == pytest.approx(hits[0][1], abs=1e-5)
    with pytest.raises(ValueError, match="shape"):
        emb.search("x", np.zeros((2, DIM + 1), dtype=np.float32))


def test_embed_cli(built, capsys, monkeypatch):
    root = built[0]
    assert main(["embed", str(root), "a good film", "a good movie", "stocks fell"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"[1] dim {DIM}, norm 1.0000: [") and out[0].endswith("\ta good film")
    assert out[3] == "cosine similarity:" and len(out) == 4 + 1 + 3
    assert out[5].split()[:2] == ["[1]", "1.0000"]
    assert main(["embed", str(root), "--json", "a good film", "stocks fell"]) == 0
    doc = json.loads(capsys.readouterr().out)
    vectors = Embedder(root).embed(["a good film", "stocks fell"])
    assert [t["text"] for t in doc["texts"]] == ["a good film", "stocks fell"] and doc["dim"] == DIM
    np.testing.assert_allclose([t["embedding"] for t in doc["texts"]], vectors, atol=1e-6)
    assert doc["cosine_similarity"][0][1] == pytest.approx(float(vectors[0] @ vectors[1]), abs=1e-5)
    assert main(["embed", str(root), "--json", "only one"]) == 0
    assert "cosine_similarity" not in json.loads(capsys.readouterr().out)
    monkeypatch.setattr("sys.stdin", io.StringIO("first\n\nsecond\n"))
    assert main(["embed", str(root), "--runtime", "model.int8.onnx"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2 + 1 + 1 + 2


def test_embed_and_predict_bad_input_is_one_line_and_exit_2(built, tmp_path, capsys, monkeypatch):
    root = built[0]
    classifier = tmp_path / "classifier"
    shutil.copytree(root, classifier, ignore=shutil.ignore_patterns("runner"))
    meta = json.loads((root / "metadata.json").read_text())
    write_meta(classifier, {**meta, "task": {"name": "sequence-classification", "outputs": ["logits"],
                                             "postprocess": "softmax-labels"}, "labels": ["neg", "pos"]})
    (classifier / "labels.txt").write_text("neg\npos\n")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))

    def fails(args, message):
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err

    fails(["embed", str(tmp_path / "nowhere"), "x"], "not a bundle directory")
    fails(["embed", str(classifier), "x"], "not an embedding model: use Classifier (`python -m targets predict")
    fails(["embed", str(root)], "no text given")
    fails(["embed", str(root), "--runtime", "litert", "x"], "has no model for 'litert'")
    fails(["predict", str(root), "x"], "not a classifier: use Embedder (`python -m targets embed")
    r = run_torch_free(root, "embed", str(root), "a good film", "the cat")  # the bundle's own runner copy, no torch
    assert r.returncode == 0 and "cosine similarity:" in r.stdout, r.stderr
    r = run_torch_free(root, "predict", str(root), "x")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "use Embedder" in r.stderr, r.stderr


def test_classifier_and_embedder_refuse_each_others_bundles(built, tmp_path):
    from tests.test_bundle_files import make_bundle

    with pytest.raises(BundleError, match="embedding model.*not a classifier: use Embedder"):
        Classifier(built[0])
    with pytest.raises(BundleError, match="not an embedding model: use Classifier"):
        Embedder(make_bundle(tmp_path / "clf"))  # a classifier bundle written by hand (tests/test_bundle_files.py)


def test_check_passes_and_fails_on_a_perturbed_reference(built, bundle_copy, capsys):
    from targets.check import CheckSet, check_model

    root = built[0]
    bundle = Bundle.load(root)
    checks = CheckSet.load(bundle)
    assert (checks.fp32_min_cosine, checks.quantized_min_cosine, checks.fp32_min_label_agreement) == (0.9999, 0.9, None)
    fp32, int8 = (check_model(bundle, e, checks) for e in bundle.metadata["models"])
    assert fp32.passed and fp32.max_abs_diff < 1e-5 and fp32.mean_cosine > 0.99999, fp32
    assert int8.passed and 0.9 < int8.mean_cosine < 1.0 and fp32.label_agreement is None and fp32.accuracy is None, int8
    assert main(["check", str(root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("model.onnx: pass: max |Δ| vs PyTorch")
    assert "mean cosine 1.000000 over 8 texts (" in lines[0], lines
    assert main(["check", str(root), "--json", "--rows", "3"]) == 0
    assert [json.loads(x)["rows"] for x in capsys.readouterr().out.splitlines()] == [3, 3]

    doc = json.loads((bundle_copy / "check.json").read_text())  # a reference a little off: fp32 fails on max |Δ|
    doc["reference_logits"][0][0] += 1e-2
    (bundle_copy / "check.json").write_text(json.dumps(doc))
    assert main(["check", str(bundle_copy), "--runtime", "model.onnx"]) == 1
    assert "FAIL" in (out := capsys.readouterr().out) and "max |Δ| 1.00e-02 above the tolerance" in out, out
    rng = np.random.default_rng(0)  # another model's vectors: the cosine bar fails the int8 file too
    doc["reference_logits"] = rng.standard_normal((len(CHECK_TEXTS), DIM)).tolist()
    (bundle_copy / "check.json").write_text(json.dumps(doc))
    assert main(["check", str(bundle_copy), "--runtime", "model.int8.onnx"]) == 1
    assert "mean cosine" in (out := capsys.readouterr().out) and "below 0.9" in out, out
    del doc["bars"]["quantized"]["min_cosine"]  # a classifier's bars on an embedding bundle: refused, one line
    doc["bars"]["quantized"]["min_label_agreement"] = 0.9
    (bundle_copy / "check.json").write_text(json.dumps(doc))
    assert main(["check", str(bundle_copy)]) == 2
    assert "bars.quantized.min_cosine" in capsys.readouterr().err


def test_checkset_writes_the_embedding_bars_it_reads(built, tmp_path):
    from targets.check import CHECK_FILE, CheckSet

    bundle = Bundle.load(built[0])
    checks = CheckSet.load(bundle)
    checks.write(tmp_path / CHECK_FILE)
    doc = json.loads((tmp_path / CHECK_FILE).read_text())
    assert doc["bars"] == {"fp32": {"atol": 1e-4, "min_cosine": 0.9999}, "quantized": {"min_cosine": 0.9}}
    assert doc["labels"] == [] and "sentence embeddings" in doc["source"]
    # a classifier's set, built positionally as the bundle stage builds it, writes what it always wrote
    clf = CheckSet(["x"], None, np.array([1]), np.zeros((1, 2), np.float32), 1e-4, 0.999, 0.9)
    clf.write(tmp_path / "clf.json")
    assert json.loads((tmp_path / "clf.json").read_text())["bars"] == {"fp32": {"atol": 1e-4, "min_label_agreement": 0.999},
                                                                       "quantized": {"min_label_agreement": 0.9}}


def test_a_classifier_bundle_is_still_checked_by_label_agreement(tmp_path):
    from targets.check import CHECK_FILE, CheckSet, check_model
    from tests.test_bundle_files import make_bundle

    root = make_bundle(tmp_path / "clf")  # logits = (sum of ids) · (-1, 1): "good film" is positive
    texts = ["good film", "a film"]
    logits = Classifier(root, threads=1).logits(texts)
    CheckSet(texts, None, np.array([1, 1]), logits, 1e-4, 0.999, 0.9).write(root / CHECK_FILE)
    bundle = Bundle.load(root)
    r = check_model(bundle, bundle.metadata["models"][0], CheckSet.load(bundle))
    assert r.passed and r.label_agreement == 1.0 and r.accuracy == 1.0 and r.mean_cosine is None, r
    assert r.summary().startswith("model.onnx: pass: max |Δlogit| vs PyTorch 0.00e+00, label agreement 1.0000 over 2 "
                                  "texts, accuracy 100.00% (")


def test_add_special_tokens_false_is_honoured(bundle_copy, tmp_path):
    from targets.tokenizer import LibraryTokenizer, WordPieceTokenizer, load_tokenizer

    meta = json.loads((bundle_copy / "metadata.json").read_text())
    meta["tokenizer"]["add_special_tokens"] = False  # a static-embedding model: word pieces alone
    write_meta(bundle_copy, meta)
    bundle = Bundle.load(bundle_copy)
    texts = ["a good film", "playing dogs", "the cat sat on the mat"]
    ids = [bundle.tokenizer().encode(t).input_ids for t in texts]
    assert ids == hf_ids(texts, bundle_copy / "vocab.txt", add_special_tokens=False)
    assert all(2 not in row and 3 not in row for row in ids)  # no [CLS] (2), no [SEP] (3)
    emb = Embedder(bundle)
    feeds, _ = emb.encode(texts[:1])
    assert feeds["input_ids"].tolist() == [ids[0]]
    np.testing.assert_allclose(emb.embed(["a good film"]), torch_vectors(_pooled_module(), ids[:1]), atol=1e-5)
    assert emb.outputs([""]).shape == (1, DIM)  # no ids at all: one padding column, masked (embed refuses it)

    # both tokenizers, on the same tokenizer.json: the same ids, type ids and truncation without special tokens
    from tokenizers import BertWordPieceTokenizer

    BertWordPieceTokenizer(str(bundle_copy / "vocab.txt")).save(str(tmp_path / "tokenizer.json"))
    pure = load_tokenizer(tmp_path / "tokenizer.json", add_special_tokens=False)
    library = LibraryTokenizer(tmp_path / "tokenizer.json")
    assert isinstance(pure, WordPieceTokenizer) and pure.add_special_tokens is False and library.add_special_tokens is True
    for text, pair, max_length in (("a good film", None, 32), ("a good film and a bad movie", "the cat sat", 5),
                                   ("the cat", "stocks fell sharply today", 4), ("a good film", None, 2)):
        a, b = pure.encode(text, pair, max_length), library.encode(text, pair, max_length, add_special_tokens=False)
        assert (a.input_ids, a.token_type_ids, a.truncated) == (b.input_ids, b.token_type_ids, b.truncated), (text, pair)
        assert len(a.input_ids) <= max_length
        with_specials = pure.encode(text, pair, max_length, add_special_tokens=True)
        assert with_specials.input_ids[0] == 2 and with_specials.input_ids[-1] == 3


def test_bench_and_info_on_an_embedding_bundle(built, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BERT_COMPRESS_QUIET", "1")
    root, out = built[0], tmp_path / "bench.json"
    assert main(["bench", str(root), "--quick", "--in-process", "--no-gemm-peak", "--out", str(out),
                 "--models", "model.int8.onnx"]) == 0
    doc = json.loads(out.read_text())
    (m,) = doc["models"]
    assert m["file"] == "model.int8.onnx" and 0.9 < m["mean_cosine_vs_pytorch"] <= 1.0 and m["latency"]
    assert "first 8 texts of check.json" in m["mean_cosine_measured_on"]
    capsys.readouterr()
    assert main(["info", str(root)]) == 0
    assert f"embedding dim {DIM} (mean pooling, normalized)" in capsys.readouterr().out
