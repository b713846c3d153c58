"""The static tier: model2vec distillation, our numpy encode, the ONNX graph and the sentence-transformers folder agree.

The quick tests distil a tiny random BERT with its own small WordPiece vocabulary (model2vec runs one forward pass
per vocabulary token, so this takes well under a second); the slow one distils the real default teacher.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
import pytest

from compress.embedding.static import (
    distill_static,
    export_static_onnx,
    load_static,
    model2vec_gap,
    save_static,
)

WORDS = ("the a of and to in is was for on that with by he it as at from his an are were which be this has also or "
         "had not but first one their its new after who they two have her she been other when there all during into "
         "school time may years more most only over city some world would where later up such used many can state "
         "about national out known university united then made river music film game team house water light story "
         "small great early old long high public local large year day night war book road field power line area").split()
PIECES = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"[unused{i}]" for i in range(4)]
          + list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-") + ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"]
          + WORDS + ["##s", "##ed", "##ing", "##ly", "##er", "##est"])
# texts with unknown characters (€, ☃: not in the vocabulary -> [UNK]), an empty one and one of [UNK] only
ODD = ["", "€", "€ ☃ €", "the city € was ☃ old", "the", "UPPER Case Words, and punctuation!!"]


def _sentences(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 14))) for _ in range(n)]


@pytest.fixture(scope="module")
def tiny_teacher(tmp_path_factory) -> Path:
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    path = tmp_path_factory.mktemp("tiny_teacher")
    pieces = list(dict.fromkeys(PIECES))  # no duplicates: a vocab.txt with holes is a corrupt vocabulary
    tok = BertTokenizer(vocab={piece: i for i, piece in enumerate(pieces)})  # save_pretrained writes vocab.txt
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(pieces), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)
    BertModel(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def _teacher_vectors(teacher: Path, texts: list[str]) -> np.ndarray:
    """The teacher's mean-pooled, normalised vectors (as a sentence-transformers mean-pooling model gives them)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok, model = AutoTokenizer.from_pretrained(teacher), AutoModel.from_pretrained(teacher).eval()
    enc = tok(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    mean = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
    return torch.nn.functional.normalize(mean, dim=-1).numpy()


@pytest.fixture(scope="module")
def plain(tiny_teacher):
    return distill_static(str(tiny_teacher), pca_dims=16)


@pytest.fixture(scope="module")
def fit_texts():
    return _sentences(300, seed=1)


@pytest.fixture(scope="module")
def mapped(tiny_teacher, fit_texts):
    return distill_static(str(tiny_teacher), pca_dims=16, fit_texts=fit_texts,
                          teacher_vectors=_teacher_vectors(tiny_teacher, fit_texts))


def _onnx(student, path: Path, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    export_static_onnx(student, path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(["sentence_embedding"], {"input_ids": input_ids, "attention_mask": mask})[0]


def test_plain_student_is_model2vec_semantics(plain, tiny_teacher):
    from model2vec.distill import distill

    texts = _sentences(40, seed=2) + ODD
    assert plain.W is None and plain.normalize and not plain.add_special_tokens
    assert plain.embedding.dtype == np.float32 and plain.embedding.shape[1] == 16
    assert plain.unk_token_id == plain.tokenizer.token_to_id("[UNK]")
    # the distilled vocabulary has no [CLS]/[SEP]/[MASK]/[unusedN]: nothing to add, and the ids are its own
    assert all(plain.tokenizer.token_to_id(t) is None for t in ("[CLS]", "[SEP]", "[MASK]", "[unused0]"))
    assert model2vec_gap(plain, plain.source, texts) < 1e-6
    # and against a separate model2vec distillation (as model2vec's own users would run it)
    other = distill(model_name=str(tiny_teacher), pca_dims=16, quantize_to="float32")
    np.testing.assert_allclose(plain.encode(texts), other.encode(texts), atol=1e-6)
    assert np.allclose(plain.encode([""]), 0.0) and np.allclose(plain.encode(["€ ☃"]), 0.0)


@pytest.mark.parametrize("which", ["plain", "mapped"])
def test_onnx_matches_numpy_on_ragged_batches(which, request, tmp_path):
    student = request.getfixturevalue(which)
    texts = ODD + _sentences(20, seed=3)
    input_ids, mask = student.batch(texts)
    assert (mask.sum(1) != mask.shape[1]).any()  # ragged: some rows are padded
    assert (input_ids == student.unk_token_id).any()  # [UNK] reaches the graph, which must drop it
    out = _onnx(student, tmp_path / "static.onnx", input_ids, mask)
    assert out.dtype == np.float32 and out.shape == (len(texts), student.dim)
    np.testing.assert_allclose(out, student.encode(texts), atol=1e-5)
    # one batch or one sentence at a time: the padding never shows
    single = np.concatenate([_onnx(student, tmp_path / "s.onnx", *student.batch([t])) for t in texts[:8]])
    np.testing.assert_allclose(single, out[:8], atol=1e-5)


@pytest.mark.parametrize("which", ["plain", "mapped"])
def test_rows_of_only_pad_or_unk_are_finite(which, request, tmp_path):
    student = request.getfixturevalue(which)
    unk, pad = student.unk_token_id, student.pad_token_id
    input_ids = np.array([[pad, pad, pad], [unk, unk, pad], [unk, unk, unk]], dtype=np.int64)
    mask = np.array([[0, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=np.int64)
    out = _onnx(student, tmp_path / "static.onnx", input_ids, mask)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, student.encode(["", "€€", "€ ☃ €"]), atol=1e-6)
    if student.W is None:
        assert np.allclose(out, 0.0)


def test_fitted_map_beats_a_random_map(mapped, tiny_teacher, fit_texts):
    held_out = _sentences(100, seed=4)
    D = _teacher_vectors(tiny_teacher, fit_texts[:1]).shape[1]
    assert mapped.W.shape == (16, D) and mapped.b.shape == (D,) and mapped.dim == D
    assert mapped.metadata["fit_texts"] == len(fit_texts) and mapped.metadata["fit_r2"] > 0
    rng = np.random.default_rng(0)
    for texts in (fit_texts, held_out):
        target = _teacher_vectors(tiny_teacher, texts)
        fitted = (mapped.encode(texts) * target).sum(1).mean()
        means = mapped.mean_vectors(texts)
        random_map = means @ rng.standard_normal(mapped.W.shape).astype(np.float32)
        random_map /= np.maximum(np.linalg.norm(random_map, axis=1, keepdims=True), 1e-12)
        assert fitted > (random_map * target).sum(1).mean() + 0.1, texts is fit_texts
    assert abs(mapped.metadata["fit_mean_cosine"] - (mapped.encode(fit_texts) * _teacher_vectors(
        tiny_teacher, fit_texts)).sum(1).mean()) < 1e-4


@pytest.mark.parametrize("which", ["plain", "mapped"])
def test_saved_folder_loads_in_sentence_transformers_and_back(which, request, tmp_path):
    from sentence_transformers import SentenceTransformer

    student = request.getfixturevalue(which)
    texts = _sentences(20, seed=5) + ["", "the", "UPPER Case Words, and punctuation!!"]
    if student.W is None:
        texts += ["the city € was ☃ old", "€"]  # the zeroed [UNK] row: same direction as model2vec without a map
    folder = save_static(student, tmp_path / "student")
    st = SentenceTransformer(str(folder), device="cpu")
    onnx_out = _onnx(student, tmp_path / "static.onnx", *student.batch(texts))
    np.testing.assert_allclose(st.encode(texts, convert_to_numpy=True), onnx_out, atol=1e-5)
    back = load_static(folder)
    assert (back.unk_token_id, back.pad_token_id, back.normalize, back.add_special_tokens, back.max_length) == (
        student.unk_token_id, student.pad_token_id, student.normalize, student.add_special_tokens, student.max_length)
    np.testing.assert_allclose(back.encode(texts), student.encode(texts), atol=1e-6)
    assert back.metadata["pca_dims"] == 16
    if student.W is None:
        from model2vec import StaticModel

        m2v = StaticModel.from_pretrained(folder / "model2vec")
        np.testing.assert_allclose(m2v.encode(texts), student.encode(texts), atol=1e-6)
    else:
        assert not (folder / "model2vec").exists()


def test_mismatched_fit_arguments_are_refused(tiny_teacher):
    with pytest.raises(ValueError, match="together"):
        distill_static(str(tiny_teacher), 16, fit_texts=["a"])
    with pytest.raises(ValueError, match="must be"):
        distill_static(str(tiny_teacher), 16, fit_texts=["a", "b"], teacher_vectors=np.zeros((3, 32), np.float32))


@pytest.mark.slow
def test_real_teacher_distils_and_matches_model2vec(tmp_path):
    from compress.teacher import default_teacher_dir

    start = time.perf_counter()
    student = distill_static(str(default_teacher_dir()), pca_dims=256)
    seconds = time.perf_counter() - start
    V, d = student.embedding.shape
    print(f"\nreal teacher: model2vec distillation {seconds:.1f} s, table {V} x {d} float32 "
          f"({student.embedding.nbytes / 2**20:.1f} MiB)")
    assert d == 256 and V == student.metadata["vocab_size"]
    texts = ["A man is playing a guitar.", "What is the capital of France?", "", "naïve café €", "x" * 3000,
             " ".join(["word"] * 700)] + _sentences(50, seed=6)
    assert model2vec_gap(student, student.source, texts) < 1e-5
    input_ids, mask = student.batch(texts)
    np.testing.assert_allclose(_onnx(student, tmp_path / "static.onnx", input_ids, mask), student.encode(texts),
                               atol=1e-5)


@pytest.mark.parametrize("weights", ["zipf", "counts"])
def test_model2vecs_trainer_fits_table_weights_and_map(tiny_teacher, fit_texts, mapped, weights, tmp_path):
    """student.static_fit: trained (model2vec's StaticModelForSimilarity): the head becomes the map, the learned token
    weights are folded into the table; its ONNX graph agrees with its encode, and (same start) it fits the teacher's
    vectors of the texts at least as well as the closed-form map."""
    targets = _teacher_vectors(tiny_teacher, fit_texts)
    trained = distill_static(str(tiny_teacher), pca_dims=16, fit_texts=fit_texts, teacher_vectors=targets,
                             fit="trained", weights=weights, seed=3)
    assert trained.W.shape == (16, 32) and trained.normalize and trained.metadata["fit"] == "trained"
    assert trained.metadata["weights"] == weights and trained.metadata["ridge"] is None
    if weights == "zipf":  # the same table to start from: training it too fits at least as well as the map alone
        assert trained.metadata["fit_mean_cosine"] >= mapped.metadata["fit_mean_cosine"] - 0.01
    else:  # the counted weights replace model2vec's Zipf ones
        assert trained.metadata["sif_coefficient"] is None
    texts = _sentences(20, seed=5) + ODD
    ids, mask = trained.batch(texts)
    assert np.allclose(_onnx(trained, tmp_path / "s.onnx", ids, mask), trained.encode(texts), atol=1e-5)


def test_counted_weights_favour_rare_pieces(plain):
    from compress.embedding.static import counted_sif

    texts = ["the film the film the film", "a rare zeppelin"]
    w = counted_sif(plain, texts)
    the = plain.token_ids(["the"])[0][0]
    zep = plain.token_ids(["zeppelin"])[0][0]
    assert w.shape == (len(plain.embedding),) and w[the] < w[zep] <= 1.0
