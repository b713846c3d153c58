"""The embedding task end to end on a tiny sentence-transformers teacher: the student lives in the teacher's space,
OUT/student loads with sentence-transformers and gives the exported files' vectors, the guard and the report speak
fidelity / retrieval / probe, the bundle embeds through the torch-free runner; plus the task's bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from compress.cli import main
from tests.helpers import make_tiny_bert, needs_tflite, rt_rows, run_readme_as_written, write_jsonl


def make_st_teacher(path, *, pooling: str = "mean", normalize: bool = True, hidden: int = 32):
    """A tiny BERT saved the way sentence-transformers saves a model (modules.json, 1_Pooling/, Normalize)."""
    from transformers import AutoTokenizer, BertModel

    from compress.embedding.model import SentenceEncoder, save_sentence_transformer

    make_tiny_bert(path, hidden=hidden)
    model = SentenceEncoder(BertModel.from_pretrained(path, add_pooling_layer=False), pooling, normalize)
    save_sentence_transformer(model, AutoTokenizer.from_pretrained(path), path, 64)
    return path


def _passages(n: int, skip: int = 0) -> list[str]:
    from compress.embedding.evaluate import distillation_passages

    return distillation_passages()[skip:skip + n]


@pytest.fixture(scope="module")
def st_teacher(tmp_path_factory):
    return make_st_teacher(tmp_path_factory.mktemp("st") / "teacher")


@pytest.fixture(scope="module")
def text_data(tmp_path_factory):
    """Labelled snippets (for the probe) and unlabelled plot summaries (for inverse-cloze retrieval) in every split."""
    root = tmp_path_factory.mktemp("texts") / "data"
    write_jsonl(root / "train.jsonl", rt_rows("train", 120) + [{"text": t} for t in _passages(60)])
    write_jsonl(root / "dev.jsonl", rt_rows("dev", 32))
    write_jsonl(root / "test.jsonl", rt_rows("test", 32) + [{"text": t} for t in _passages(40, skip=60)])
    return root


RECIPE = """
name: tiny-embedding
task: embedding
student: {num_layers: 1, hidden_size: 16, num_attention_heads: 2, intermediate_size: 32}
distill:
  epochs: 2
  lr: 1.0e-3
  batch_size: 16
  losses: {embedding_mse: {weight: 1.0}, embedding_cosine: {weight: 1.0}, tinybert_hidden: {weight: 0.1}}
  transfer: {unlabeled: [wikipedia], max_unlabeled: 40, segment: both}
data: {max_length: 64}
export: {tflite: off, executorch: off}
quantize: {max_accuracy_drop: 100, min_label_agreement: 0.01, fallbacks: false, calibration_rows: 32,
           candidates: [{backend: ort-dynamic}]}
bench: {seq_lens: [32, 16], threads: [1], warmup: 1, runs: 3, min_seconds: 0, rounds: 1, isolate: false}
"""


def _pipeline(tmp_path_factory, name: str, recipe_text: str, teacher, data):
    """A whole `bert-compress run` of a recipe on the tiny teacher and data; returns OUT."""
    root = tmp_path_factory.mktemp(name)
    recipe = root / "recipe.yaml"
    recipe.write_text(recipe_text)
    out = root / "out"
    assert main(["run", "--teacher", str(teacher), "--data", str(data), "--recipe", str(recipe), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def embedded(tmp_path_factory, st_teacher, text_data):
    return _pipeline(tmp_path_factory, "emb", RECIPE, st_teacher, text_data)


def _texts():
    return ["a gripping, beautifully acted thriller", "the plot makes no sense at all", "A detective hunts a killer. "
            "He finds a clue in the old house.", "ok"]  # (an empty text is refused by the runner: test_embedder.py)


@pytest.mark.slow  # builds a whole pipeline (its fixture runs every stage)
def test_student_loads_with_sentence_transformers_and_matches_the_exports(embedded):
    from sentence_transformers import SentenceTransformer

    from targets.bundle import Embedder

    st = SentenceTransformer(str(embedded / "student"), device="cpu")
    assert st.get_sentence_embedding_dimension() == 32  # the teacher's size: the projection is part of the student
    modules = [type(m).__name__ for m in st]
    assert modules[-2:] == ["Dense", "Normalize"] and "Pooling" in modules
    texts = _texts()
    expected = st.encode(texts, convert_to_numpy=True)
    # The pi bundle ships the fastest verified file, fp32 on one CPU and int8 on another: an fp32 file must give
    # sentence-transformers' vectors, an int8 one the same directions.
    models = json.loads((embedded / "bundle" / "pi" / "metadata.json").read_text())["models"]
    assert models
    for model in models:
        got = Embedder(embedded / "bundle" / "pi", runtime=model["file"]).embed(texts)
        assert got.shape == (len(texts), 32)
        if model["precision"].startswith("fp32"):
            np.testing.assert_allclose(got, expected, atol=1e-5)
        else:
            assert (got * expected).sum(axis=1).min() > 0.99, model
    np.testing.assert_allclose(np.linalg.norm(expected, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow  # builds a whole pipeline (its fixture runs every stage)
def test_the_embedding_bundle_readme_runs_as_written(embedded, tmp_path):
    """Its shell blocks in a Python holding only what their `pip` lines install, its Python blocks (search, shorter
    vectors) in the first block's, from the bundle's folder."""
    shutil.copytree(embedded / "bundle" / "pi", tmp_path / "pi")
    said = run_readme_as_written(tmp_path / "pi", tmp_path)
    assert "model.onnx: pass" in said[0] and "cosine similarity" in said[0]
    assert any("San Francisco" in out or "Paris" in out for out in said)  # the search printed its hits


@pytest.mark.slow  # builds a whole pipeline (its fixture runs every stage)
def test_onnx_outputs_the_pooled_normalised_sentence_embedding(embedded):
    import onnx

    model = onnx.load(str(embedded / "export" / "model.onnx"))
    out = model.graph.output
    assert [o.name for o in out] == ["sentence_embedding"]
    dims = [d.dim_param or d.dim_value for d in out[0].type.tensor_type.shape.dim]
    assert len(dims) == 2 and dims[1] == 32 and isinstance(dims[0], str)


@pytest.mark.slow  # builds a whole pipeline (its fixture runs every stage)
def test_records_and_report_speak_the_embedding_metrics(embedded):
    report = json.loads((embedded / "report.json").read_text())
    assert report["task"] == "embedding"
    ev = report["data"]["evaluation"]
    assert ev["retrieval_pairs"] >= 20 and ev["probe"]["labels"] == ["negative", "positive"]
    rows = [report["teacher"], report["student"], *report["artifacts"], *report["references"]]
    assert [r["name"] for r in report["references"]] == ["teacher-onnx-fp32"]
    for row in rows:
        e = row["embedding"]
        assert e["dim"] == 32 and 0 <= e["mrr@10"] <= e["recall@10"] <= 1 and 0 <= e["probe_accuracy"] <= 1
        assert row["quality"] == e["fidelity"]  # `quality` holds the task metric
    assert report["teacher"]["embedding"]["fidelity"] == 1.0
    onnx_teacher = report["references"][0]["embedding"]
    assert onnx_teacher["fidelity"] > 0.9999 and onnx_teacher["mrr@10"] == pytest.approx(report["teacher"]["embedding"]["mrr@10"], abs=1e-6)
    q = json.loads((embedded / "stages" / "quantize.json").read_text())
    assert q["metric"] == "fidelity" and "mean cosine" in q["artifacts"][0]["quantization"]["reason"]
    assert q["artifacts"][0]["verification"]["agreement_name"] == "mean cosine"
    md = (embedded / "report.md").read_text()
    assert "## Embedding quality" in md and "asym MRR@10" in md and "teacher-onnx-fp32 (reference)" in md
    # shorter stored vectors: every width and storage, scored for the teacher and the student alike
    short = report["student"]["embedding"]["shorter"]
    assert list(short) == [f"{d}/{s}" for d in (32, 16, 8) for s in ("float32", "int8", "binary")]
    assert short["32/float32"]["mrr@10"] == pytest.approx(report["student"]["embedding"]["mrr@10"], abs=1e-9)
    assert short["8/binary"]["index_mb"] == 0.1 and "asym_mrr@10" in short["16/int8"]
    assert set(report["teacher"]["embedding"]["shorter"]) == set(short)
    assert "### Shorter stored vectors" in md and "| 16 | int8 | 1.6 |" in md
    bench = json.loads((embedded / "bench.json").read_text())
    assert bench["task"] == "embedding" and {m["role"] for m in bench["models"]} >= {"teacher", "student", "artifact", "reference"}


@pytest.mark.slow  # builds a whole pipeline (its fixture runs every stage)
def test_shorter_basis_is_fitted_on_the_cached_teacher_vectors_of_the_training_rows(embedded, st_teacher):
    """The basis reads the teacher cache's vectors instead of embedding again: its first rows are the run's training
    rows in order (the transfer rows follow), and the saved basis is the one fitted on the teacher's vectors."""
    import yaml
    from sentence_transformers import SentenceTransformer

    from compress.embedding.shorter import FIT_ROWS, ShorterVectors
    from compress.recipe import build_recipe
    from compress.tasks import get as get_task

    recipe = build_recipe(yaml.safe_load((embedded / "recipe.yaml").read_text()), "recipe.yaml")
    texts = [e.text for e in get_task("embedding").load_data(recipe.data).train]  # sentences of long texts too
    cached = np.load(embedded / "cache" / "teacher" / "task" / "sentence_embedding.npy").astype(np.float32)
    assert len(cached) > len(texts)
    teacher = SentenceTransformer(str(st_teacher), device="cpu").encode(texts, normalize_embeddings=True)
    # row i is text i (the cache may hold a bf16 teacher's vectors; a tiny random teacher's vectors all lie close,
    # so the check is against the rows shifted by one)
    own = cached[:len(texts)] / np.linalg.norm(cached[:len(texts)], axis=1, keepdims=True)
    aligned, shifted = (own * teacher).sum(1).mean(), (own * np.roll(teacher, 1, axis=0)).sum(1).mean()
    assert aligned > 0.995 and aligned > shifted + 0.02
    saved = ShorterVectors.load(embedded / "student")
    assert saved.fitted_on == min(FIT_ROWS, len(texts))
    fresh = ShorterVectors.fit(teacher, list(saved.dims))  # every row: the tiny training set is under FIT_ROWS
    # the same turn up to the cache's rounding: its leading 8 dimensions keep as much of the vectors as the best 8 do
    kept = [float(np.square(teacher @ b.basis[:, :8]).sum()) for b in (saved, fresh)]
    assert kept[0] == pytest.approx(kept[1], rel=1e-2)


@pytest.mark.slow  # builds a whole pipeline (its fixture runs every stage)
def test_bundle_embeds_and_checks_itself(embedded):
    from targets.bundle import Bundle, Embedder
    from targets.check import CheckSet, check_model

    meta = json.loads((embedded / "bundle" / "pi" / "metadata.json").read_text())
    assert meta["task"] == {"name": "embedding", "outputs": ["sentence_embedding"], "postprocess": "embedding"}
    assert meta["embedding"] == {"dim": 32, "normalized": True, "pooling": "mean", "shorter": {
        "file": "shorter_vectors.safetensors", "dims": [16, 8], "storage": ["float32", "int8", "binary"]}}
    readme = (embedded / "bundle" / "pi" / "README.md").read_text()
    assert "Sentence-embedding bundle" in readme and "emb.search(" in readme and "emb.shorter(" in readme
    emb = Embedder(embedded / "bundle" / "pi")
    hits = emb.search("the plot makes no sense at all", _texts()[:3], top_k=1)
    assert hits[0][0] == 1
    # shorter vectors: at full width the turn keeps every cosine; cut, the query is cut the same way by search
    docs = emb.embed(_texts())
    full = emb.shorter(docs, 32)
    np.testing.assert_allclose(full @ full.T, docs @ docs.T, atol=1e-5)
    short = emb.shorter(docs, 16)
    assert emb.shorter_dims == [16, 8] and short.shape == (len(docs), 16)
    assert [i for i, _ in emb.search(_texts()[0], short, top_k=None)][0] == 0  # a text is its own nearest
    with pytest.raises(ValueError, match="not one of this bundle's widths"):
        emb.shorter(docs, 24)
    for platform in ("android-ort", "web"):  # every bundle carries the basis
        assert (embedded / "bundle" / platform / "shorter_vectors.safetensors").is_file(), platform
    bundle = Bundle.load(embedded / "bundle" / "pi")
    checks = CheckSet.load(bundle)
    results = [check_model(bundle, m, checks) for m in bundle.metadata["models"]]
    assert results and all(r.passed and r.mean_cosine > 0.99 for r in results)


@pytest.mark.slow  # builds a whole pipeline (its fixture runs every stage)
def test_teacher_cache_holds_the_sentence_vectors(embedded):
    meta = json.loads((embedded / "cache" / "teacher" / "task" / "meta.json").read_text())
    assert meta["plan"]["sentence_embedding"] is True and meta["plan"]["logits"] is False
    # the transfer set (Wikipedia segments and whole extracts) is distilled on too: its vectors are in the cache
    distill = json.loads((embedded / "stages" / "distill.json").read_text())
    rows = distill["data"]["transfer"]["rows"]
    assert rows["unlabeled"] == 40 and meta["rows"] == rows["total"]
    vectors = np.load(embedded / "cache" / "teacher" / "task" / "sentence_embedding.npy")
    assert vectors.dtype == np.float16 and np.allclose(np.linalg.norm(vectors.astype(np.float32), axis=1), 1, atol=2e-3)


def test_detected_from_modules_json_when_the_data_has_no_labels(tmp_path, st_teacher):
    from compress.tasks import detect_task

    txt = tmp_path / "texts.txt"
    txt.write_text("one text\nanother text\n")
    assert detect_task(str(st_teacher), str(txt)) == "embedding"
    assert detect_task(None, None) is None  # the default run stays a classifier
    labelled = write_jsonl(tmp_path / "l.jsonl", rt_rows("train", 3))
    assert detect_task(str(st_teacher), str(labelled)) is None
    bare = make_tiny_bert(tmp_path / "bare")
    assert detect_task(str(bare), str(txt)) is None


def test_bare_encoder_with_a_chosen_pooling(tmp_path):
    from compress.embedding.model import read_pooling
    from compress.recipe import resolve_recipe
    from compress.tasks.embedding import pooling_of

    bare = make_tiny_bert(tmp_path / "bare")
    assert read_pooling(str(bare), "bare") is None
    cfg = resolve_recipe("embedding", overrides={"embedding": {"pooling": "cls"}}).embedding
    p = pooling_of(str(bare), "bare", cfg)
    assert (p.mode, p.normalize, p.source) == ("cls", True, "recipe")


def _bad_pooling(t):
    path = make_st_teacher(t / "st")
    (path / "1_Pooling" / "config.json").unlink()
    return path


def _wrong_width_pooling(t):
    path = make_st_teacher(t / "st")
    cfg = json.loads((path / "1_Pooling" / "config.json").read_text())
    key = "embedding_dimension" if "embedding_dimension" in cfg else "word_embedding_dimension"
    (path / "1_Pooling" / "config.json").write_text(json.dumps(cfg | {key: 64}))
    return path


def _recipe(t, text):
    (t / "r.yaml").write_text(text)
    return str(t / "r.yaml")


BAD = {
    "pooling cannot be read": (lambda t: ["--task", "embedding", "--teacher", str(_bad_pooling(t))], "its pooling cannot be read"),
    "pooling of another width": (lambda t: ["--task", "embedding", "--teacher", str(_wrong_width_pooling(t))],
                                 "do not belong to these weights"),
    "bare encoder, no pooling": (lambda t: ["--task", "embedding", "--teacher", str(make_tiny_bert(t / "b"))],
                                 "set embedding.pooling"),
    "empty text file": (lambda t: ["--task", "embedding", "--data", str(_file(t / "e.txt", "\n\n"))], "holds no text"),
    "classifier loss": (lambda t: ["--task", "embedding", "--recipe", "default"], "an embedding model does not give"),
    "hard_ce in an embedding recipe": (
        lambda t: ["--recipe", _recipe(t, "task: embedding\ndistill: {losses: {hard_ce: {weight: 1.0}}}")], "hard_ce"),
    "static student for a classifier": (lambda t: ["--recipe", _recipe(t, "student: static")], "set task: embedding"),
    "truncation wider than the vector": (
        lambda t: ["--recipe", _recipe(t, "task: embedding\nembedding: {truncate_dims: [512]}")], "more than the vector's 384"),
    "truncation not a multiple of 8": (
        lambda t: ["--recipe", _recipe(t, "task: embedding\nembedding: {truncate_dims: [12]}")], "not a multiple of 8"),
    "static table wider than the teacher": (
        lambda t: ["--recipe", _recipe(t, "task: embedding\nstudent: {kind: static, pca_dims: 999}")], "is more than the teacher's"),
    "unknown task": (lambda t: ["--task", "nope"], "unknown task 'nope'"),
}


def _file(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, capsys):
    make_args, message = BAD[case]
    out = tmp_path / "out"
    code = main(["run", *make_args(tmp_path), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert not out.exists(), "nothing may be written for bad input"


STATIC_RECIPE = """
name: tiny-static
task: embedding
student: {kind: static, pca_dims: 16, static_fit: trained, static_weights: counts}
data: {max_length: 64}
export: {tflite: off, executorch: off}
quantize: {max_accuracy_drop: 100, min_label_agreement: 0.01, fallbacks: false, calibration_rows: 32,
           candidates: [{backend: ort-dynamic}]}
bench: {seq_lens: [32, 16], threads: [1], warmup: 1, runs: 3, min_seconds: 0, rounds: 1, isolate: false}
"""


@pytest.fixture(scope="module")
def static_run(tmp_path_factory, st_teacher, text_data):
    return _pipeline(tmp_path_factory, "static", STATIC_RECIPE, st_teacher, text_data)


@pytest.mark.slow  # builds a whole pipeline (its fixture runs every stage)
def test_static_tier_runs_through_the_pipeline(static_run):
    """model2vec's table trained by its own trainer with counted weights, and the map it learned: a Gather/mean ONNX
    the runner runs, equal to sentence-transformers' load of OUT/student; model2vec's own (plain) distillation is the
    peer row."""
    import onnx
    from sentence_transformers import SentenceTransformer

    from targets.bundle import Embedder

    ops = {n.op_type for n in onnx.load(str(static_run / "export" / "model.onnx")).graph.node}
    assert "Gather" in ops and not ops & {"Attention", "Softmax", "LayerNormalization"}
    texts = _texts()  # (sentence-transformers' StaticEmbedding counts [UNK] pieces in the mean)
    st = SentenceTransformer(str(static_run / "student"), device="cpu")
    import onnxruntime as ort

    from compress.embedding.static import load_static

    expected = st.encode(texts, convert_to_numpy=True)
    ids, mask = load_static(static_run / "student").batch(texts)
    fp32 = ort.InferenceSession(str(static_run / "export" / "model.onnx")).run(None, {"input_ids": ids, "attention_mask": mask})[0]
    np.testing.assert_allclose(fp32, expected, atol=1e-5)
    emb = Embedder(static_run / "bundle" / "pi", runtime="model.onnx")  # the fastest verified file: int8 here
    got = emb.embed(texts)
    assert (got * expected).sum(-1).min() > 0.999
    meta = json.loads((static_run / "bundle" / "pi" / "metadata.json").read_text())
    assert meta["tokenizer"]["add_special_tokens"] is False and meta["embedding"]["pooling"] == "static-mean"
    assert [i["name"] for i in meta["models"][0]["inputs"]] == ["input_ids", "attention_mask"]
    report = json.loads((static_run / "report.json").read_text())
    refs = {r["name"]: r for r in report["references"]}
    assert set(refs) == {"teacher-onnx-fp32", "model2vec-onnx-fp32"}
    assert refs["model2vec-onnx-fp32"]["embedding"]["dim"] == 16  # PCA space: no asymmetric retrieval there
    assert refs["model2vec-onnx-fp32"]["embedding"]["asym_mrr@10"] is None
    assert report["student"]["embedding"]["dim"] == 32 and report["student"]["embedding"]["asym_mrr@10"] is not None
    build = json.loads((static_run / "stages" / "distill.json").read_text())["build"]
    assert (build["fit"], build["weights"], build["sif_coefficient"]) == ("trained", "counts", None)
    assert "model2vec-onnx-fp32" in (static_run / "report.md").read_text()


@pytest.mark.slow
def test_default_teacher_quick_embedding_run(tmp_path):
    """`bert-compress run --task embedding --quick` on all-MiniLM-L6-v2: OUT/student loads with sentence-transformers
    and gives the exported ONNX file's vectors; the bundle re-checks itself."""
    import onnxruntime as ort
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer

    from targets.bundle import Bundle
    from targets.check import CheckSet, check_model

    out = tmp_path / "out"
    assert main(["run", "--task", "embedding", "--quick", "--out", str(out)]) == 0
    texts = _texts()[:3]
    st = SentenceTransformer(str(out / "student"), device="cpu")
    assert st.get_sentence_embedding_dimension() == 384
    feeds = AutoTokenizer.from_pretrained(out / "student")(texts, padding=True, return_tensors="np")
    session = ort.InferenceSession(str(out / "export" / "model.onnx"))
    names = {i.name for i in session.get_inputs()}
    got = session.run(["sentence_embedding"], {k: v.astype(np.int64) for k, v in feeds.items() if k in names})[0]
    np.testing.assert_allclose(got, st.encode(texts, convert_to_numpy=True), atol=1e-5)
    bundle = Bundle.load(out / "bundle" / "pi")
    checks = CheckSet.load(bundle)
    assert all(check_model(bundle, m, checks).passed for m in bundle.metadata["models"])
    report = json.loads((out / "report.json").read_text())
    assert report["teacher"]["embedding"]["mrr@10"] > 0.3  # the real teacher retrieves: the suite is not noise


@pytest.mark.slow  # builds a whole pipeline (its fixture runs every stage)
@pytest.mark.parametrize("raw", [{"backend": "nncf"}, {"backend": "torchao", "scheme": "int8-dynamic"}], ids=["nncf", "torchao"])
def test_every_quantizer_takes_the_embedding_student(embedded, tmp_path, raw):
    """NNCF on the ONNX file, torchao on the PyTorch student: both give vectors close to the fp32 student's."""
    from transformers import AutoTokenizer

    from compress.data.batching import encode
    from compress.data.readers import Example
    from compress.evaluate import predict_logits
    from compress.export.verify import device_logits
    from compress.metrics import mean_cosine
    from compress.quantize import Context, parse_candidate
    from compress.tasks import load_any_student
    from targets.runtime import load_model

    tok = AutoTokenizer.from_pretrained(embedded / "student")
    enc = encode(tok, [Example(t, -1) for t in [e["text"] for e in rt_rows("dev", 32)]], 64)
    backend, settings = parse_candidate(raw)
    ctx = Context({"onnxruntime": embedded / "export" / "model.onnx"}, enc, embedded / "student", tmp_path)
    dst = backend.quantize(settings, ctx, tmp_path / ("q.onnx" if backend.runtime == "onnxruntime" else "q.pt"))
    reference = predict_logits(load_any_student(embedded / "student"), enc)
    if backend.runtime == "pytorch":
        from compress.quantize.torchao_ptq import load

        got = predict_logits(load(dst, settings, embedded / "student"), enc, batch_size=1)
    else:
        got = device_logits(load_model(dst), enc)
    assert got.shape == reference.shape and mean_cosine(got, reference) > 0.9


def _string_in_vectors(path, texts):
    import onnxruntime as ort
    from onnxruntime_extensions import get_library_path

    options = ort.SessionOptions()
    options.register_custom_ops_library(get_library_path())
    session = ort.InferenceSession(str(path), options)
    return np.concatenate([session.run(["sentence_embedding"], {"text": np.array([t], dtype=object)})[0] for t in texts])


@pytest.mark.slow  # builds a whole pipeline (its fixture runs every stage)
def test_embedding_platform_bundles_take_strings(embedded):
    """The string-in ONNX of an embedding student (tokenizer in the graph) gives the vectors of the artifact it wraps
    fed Hugging Face's ids; without a TFLite export the LiteRT bundles are skipped with that reason."""
    import onnxruntime as ort
    from transformers import AutoTokenizer

    report = json.loads((embedded / "report.json").read_text())
    platforms = {p["platform"]: p for p in report["bundle"]["platforms"]}
    assert platforms["android-litert"]["skipped"].startswith("no verified TFLite artifact")
    p = platforms["android-ort"]
    assert p["skipped"] is None and p["check"]["agreement_name"] == "mean cosine" and p["check"]["passed"]
    texts = _texts()
    got = _string_in_vectors(embedded / "bundle" / "android-ort" / p["model_file"], texts)
    plain = ort.InferenceSession(str(embedded / next(a["path"] for a in report["artifacts"] if a["name"] == p["artifact"])))
    tok = AutoTokenizer.from_pretrained(embedded / "student")
    for text, row in zip(texts, got):
        enc = tok(text, truncation=True, max_length=64, return_tensors="np")
        names = [i.name for i in plain.get_inputs()]
        np.testing.assert_allclose(row, plain.run(None, {n: enc[n].astype(np.int64) for n in names})[0][0], atol=1e-5)
    web = platforms["web"]
    assert web["skipped"] is None and (embedded / "bundle/web/onnx/model.onnx").is_file()
    if web["check"] is not None:  # transformers.js installed: AutoModel's sentence_embedding checked on dev
        assert web["check"]["passed"] and web["check"]["agreement_name"] == "mean cosine"


@pytest.mark.slow
@needs_tflite
def test_mediapipe_text_embedder_reads_the_android_litert_model(tmp_path_factory, st_teacher, text_data):
    """With a TFLite export, the embedding student's task-library .tflite: MediaPipe's TextEmbedder embeds raw strings
    as the same file does fed Hugging Face's ids."""
    from ai_edge_litert.interpreter import Interpreter
    from transformers import AutoTokenizer

    from compress.platforms.mediapipe_check import run_mediapipe

    out = _pipeline(tmp_path_factory, "emb-tflite", RECIPE.replace("export: {tflite: off, executorch: off}",
                                                                   "export: {tflite: on, executorch: off, tflite_buckets: [32, 64]}"),
                    st_teacher, text_data)
    p = next(x for x in json.loads((out / "report.json").read_text())["bundle"]["platforms"] if x["platform"] == "android-litert")
    assert p["skipped"] is None and p["check"]["tool"].startswith("MediaPipe Tasks TextEmbedder") and p["check"]["passed"]
    model = out / "bundle" / "android-litert" / "model.tflite"
    texts = _texts()[:3]
    got, _, _ = run_mediapipe(model, texts, embedding=True, width=32)
    runner = Interpreter(model_path=str(model)).get_signature_runner()
    tok = AutoTokenizer.from_pretrained(out / "student")
    for text, row in zip(texts, got):
        enc = tok(text, truncation=True, max_length=64, padding="max_length", return_tensors="np")
        expected = next(iter(runner(**{k: enc[k].astype(np.int32) for k in ("input_ids", "attention_mask", "token_type_ids")}).values()))[0]
        np.testing.assert_allclose(row, expected, atol=1e-5)


def test_the_batch_structure_losses_distil_an_embedding_student(tmp_path, st_teacher, text_data):
    """embedding_batch_kl and embedding_asymmetric alone train a student through the teacher cache (finetune + distill
    only: no export or bench), and the student's vectors move towards the teacher's ranking."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE.replace(
        "losses: {embedding_mse: {weight: 1.0}, embedding_cosine: {weight: 1.0}, tinybert_hidden: {weight: 0.1}}",
        "losses: {embedding_batch_kl: {temperature: 0.1}, embedding_asymmetric: {weight: 1.0}}"))
    out = tmp_path / "out"
    args = ["--teacher", str(st_teacher), "--data", str(text_data), "--recipe", str(recipe), "--out", str(out)]
    assert main(["finetune", *args]) == 0
    assert main(["distill", "--out", str(out)]) == 0
    record = json.loads((out / "stages" / "distill.json").read_text())
    history = record["stages"][0]["history"]
    terms = history[-1]["loss_terms"]
    assert set(terms) == {"embedding_batch_kl", "embedding_asymmetric"} and all(np.isfinite(v) for v in terms.values())
    assert history[-1]["train_loss"] < history[0]["train_loss"] or len(history) == 1
    assert 0 < record["dev_quality"] <= 1  # fidelity: the mean cosine to the teacher's vectors on dev


@pytest.mark.slow  # two distillations
def test_a_shared_teacher_vector_cache_is_reused_and_refused_for_other_text(st_teacher, text_data, tmp_path, capsys):
    """The teacher's vectors are cached per teacher and text: a second run with the same ones reuses them, a run with
    other text (here: more transfer rows) is refused in one line, and the shared cache is left as it was."""
    shared = tmp_path / "vectors"

    def distill(name: str, rows: int) -> int:
        recipe = tmp_path / f"{name}.yaml"
        recipe.write_text(RECIPE.replace("epochs: 2", "epochs: 1").replace("max_unlabeled: 40", f"max_unlabeled: {rows}")
                          .replace("  transfer:", f"  teacher_cache: {{path: '{shared}'}}\n  transfer:"))
        args = ["--recipe", str(recipe), "--teacher", str(st_teacher), "--data", str(text_data), "--out", str(tmp_path / name)]
        assert main(["finetune", *args]) == 0
        return main(["distill", "--out", str(tmp_path / name)])

    assert distill("first", 20) == 0
    meta = shared / "task" / "meta.json"
    stamp = meta.stat().st_mtime_ns
    capsys.readouterr()
    assert distill("again", 20) == 0
    assert "teacher cache 'task': reusing" in capsys.readouterr().err and meta.stat().st_mtime_ns == stamp
    assert distill("more-text", 30) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith("was built from other data (the tokenised rows differ): point distill.teacher_cache.path at "
                            "another directory, or delete it to rebuild it for this run")
    assert meta.stat().st_mtime_ns == stamp and not (tmp_path / "more-text" / "student").exists()
