"""Sentence-embedding evaluation (compress/embedding/evaluate.py): metrics on hand-made vectors with known
answers, the inverse-cloze set, the vendored suite, and a TF-IDF embedder end to end. numpy + sklearn only."""

from __future__ import annotations

import time

import numpy as np
import pytest

from compress.embedding.evaluate import (
    RETRIEVAL_PASSAGES, EmbeddingScores, EvalSuite, ProbeSet, RetrievalSet, TeacherVectors, build_retrieval_set,
    default_suite, distillation_passages, evaluate_embeddings, fidelity, linear_probe, relevant_ranks,
    retrieval_agreement, retrieval_metrics, retrieval_passages, split_sentences, teacher_scores,
)


# ---------------------------------------------------------------- retrieval metrics

def test_perfect_retrieval_unnormalised():
    q = np.eye(5, dtype=np.float32) * np.arange(1, 6, dtype=np.float32)[:, None]  # lengths differ: cosine ignores
    r = retrieval_metrics(q, np.eye(5, dtype=np.float32) * 3, k=10)
    assert (r.recall_at_k, r.mrr_at_k, r.k, r.queries) == (1.0, 1.0, 10, 5)


def test_rank_two_case():
    q = np.array([[1, 0], [0, 1]], np.float32)
    d = np.array([[0.8, 0.6], [1, 0]], np.float32)  # each query's own document comes second
    assert relevant_ranks(q, d).tolist() == [2, 2]
    r = retrieval_metrics(q, d, k=10)
    assert r.recall_at_k == 1.0 and r.mrr_at_k == pytest.approx(0.5)
    r1 = retrieval_metrics(q, d, k=1)
    assert r1.recall_at_k == 0.0 and r1.mrr_at_k == 0.0


def test_ties_rank_pessimistically():
    # documents 0 and 1 point the same way: each ties with the other, so each ranks 2nd (not 1st by index)
    q = np.array([[1, 0], [2, 0], [0, 1]], np.float32)
    d = np.array([[1, 0], [3, 0], [0, 1]], np.float32)
    assert relevant_ranks(q, d).tolist() == [2, 2, 1]
    # a degenerate model (every vector equal) gets the worst rank, so nothing within k
    const = np.ones((20, 4), np.float32)
    assert relevant_ranks(const, const).tolist() == [20] * 20
    assert retrieval_metrics(const, const, k=10).recall_at_k == 0.0


def test_extra_documents_are_distractors_and_bad_input_raises():
    q = np.eye(3, dtype=np.float32)
    d = np.vstack([np.eye(3), [[0.9, 0.1, 0]]]).astype(np.float32)  # a near-copy of doc 0 still scores below it
    assert relevant_ranks(q, d).tolist() == [1, 1, 1]
    d2 = np.vstack([np.eye(3), [[1, 0, 0]]]).astype(np.float32)  # an exact copy of doc 0 ties it
    assert relevant_ranks(q, d2).tolist() == [2, 1, 1]
    with pytest.raises(ValueError):
        retrieval_metrics(q, np.eye(2, 3, dtype=np.float32))  # fewer documents than queries
    with pytest.raises(ValueError):
        retrieval_metrics(q, np.eye(3, 4, dtype=np.float32))  # dims differ
    with pytest.raises(ValueError):
        retrieval_metrics(q, q, k=0)


def test_chunked_ranks_match_a_direct_computation():
    rng = np.random.default_rng(0)
    q, d = rng.normal(size=(2500, 8)).astype(np.float32), rng.normal(size=(2600, 8)).astype(np.float32)
    qn, dn = q / np.linalg.norm(q, axis=1, keepdims=True), d / np.linalg.norm(d, axis=1, keepdims=True)
    s = qn.astype(np.float64) @ dn.T.astype(np.float64)
    own = s[np.arange(2500), np.arange(2500)][:, None]
    direct = (s >= own - 1e-6 * np.maximum(1.0, np.abs(own))).sum(1)  # the tie rule: a float32 rounding apart ties
    assert np.array_equal(relevant_ranks(q, d), direct)


def test_fidelity():
    rng = np.random.default_rng(1)
    v = rng.normal(size=(50, 16)).astype(np.float32)
    assert fidelity(v, v) == pytest.approx(1.0, abs=1e-6)
    assert fidelity(v, -v) == pytest.approx(-1.0, abs=1e-6)
    assert fidelity(v, 7 * v) == pytest.approx(1.0, abs=1e-6)  # scale does not matter
    with pytest.raises(ValueError):
        fidelity(v, v[:, :8])


def test_retrieval_agreement():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(200, 16)).astype(np.float32)
    assert retrieval_agreement(a, a, k=10) == 1.0
    assert retrieval_agreement(a, a * 5, k=10) == 1.0
    wide = np.hstack([a, np.zeros((200, 4), np.float32)])  # dims may differ between the two models
    assert retrieval_agreement(a, wide, k=10) == 1.0
    b = rng.normal(size=(200, 16)).astype(np.float32)
    unrelated = retrieval_agreement(a, b, k=10)
    assert unrelated < 0.2, unrelated  # chance is ~10/199
    slightly = retrieval_agreement(a, a + 0.05 * rng.normal(size=a.shape).astype(np.float32), k=10)
    assert 0.5 < slightly < 1.0
    with pytest.raises(ValueError):
        retrieval_agreement(a[:10], a[:10], k=10)  # only 9 others


# ---------------------------------------------------------------- sentences and the inverse-cloze set

def test_split_sentences():
    assert split_sentences("One two. Three four! Five six? Seven.") == [
        "One two.", "Three four!", "Five six?", "Seven."]
    assert split_sentences('He met Dr. Smith. "Go," she said. Then he left.') == [
        "He met Dr. Smith.", '"Go," she said.', "Then he left."]
    assert split_sentences('She asked "why?" Nobody knew.') == ['She asked "why?"', "Nobody knew."]
    assert split_sentences("It cost 3.5 million. e.g. not split before lowercase.") == [
        "It cost 3.5 million. e.g. not split before lowercase."]  # needs a capital, digit or quote next
    assert split_sentences("") == []


PASSAGES = [
    "Alpha one goes here now. Beta two follows right after. Gamma three ends the story. Delta four is extra.",
    "Short. Too short. Still too short.",  # every sentence < 4 words: no candidate
    "Only two sentences in this passage. The second one is here.",
    "A man walks into town. He finds a job at the mill. The mill burns down one night. He leaves town again.",
    "Echo five starts the passage. Foxtrot six is in the middle. Golf seven closes it all off.",
]


def test_build_retrieval_set_is_deterministic_and_well_formed():
    a, b = build_retrieval_set(PASSAGES, seed=3), build_retrieval_set(PASSAGES, seed=3)
    assert a == b and a.fingerprint() == b.fingerprint()
    assert len(a) == 3  # passages 0, 3, 4 qualify
    for q, doc, p in zip(a.queries, a.documents, [PASSAGES[0], PASSAGES[3], PASSAGES[4]]):
        sents = split_sentences(p)
        assert q in sents and len(q.split()) >= 4
        assert q not in doc
        assert doc == " ".join(s for s in sents if s != q)  # the rest, in order
    assert len(build_retrieval_set(PASSAGES, seed=3, max_pairs=2)) == 2
    assert len(build_retrieval_set(PASSAGES, seed=3, min_sentences=2)) == 4
    # the chosen sentence varies with the seed and is not always the first
    picks = {tuple(build_retrieval_set(PASSAGES, seed=s).queries) for s in range(20)}
    assert len(picks) > 1
    firsts = [split_sentences(p)[0] for p in (PASSAGES[0], PASSAGES[3], PASSAGES[4])]
    assert any(q not in firsts for qs in picks for q in qs)
    assert a.fingerprint() != build_retrieval_set(PASSAGES, seed=4, max_pairs=2).fingerprint()


def test_duplicate_sentence_is_never_the_query():
    p = "The same line repeats here. Something else happens now. The same line repeats here. A final note ends it."
    for seed in range(30):
        r = build_retrieval_set([p], seed=seed)
        assert r.queries[0] not in r.documents[0]
        assert r.queries[0] != "The same line repeats here."


def test_retrieval_set_lengths_must_match():
    with pytest.raises(ValueError):
        RetrievalSet(queries=["a"], documents=[])


# ---------------------------------------------------------------- the vendored suite

def test_default_suite_sizes():
    qualifying = len(build_retrieval_set(retrieval_passages(), seed=13))
    print(f"\nICT pairs qualifying from the last {RETRIEVAL_PASSAGES} unlabeled passages: {qualifying}")
    suite = default_suite()
    assert len(suite.retrieval) == min(500, qualifying) and qualifying > 100
    assert len(suite.held_out) == 1419
    p = suite.probe
    assert len(p.train_texts) == len(p.train_labels) == 2000
    assert len(p.test_texts) == len(p.test_labels) == 1419
    assert p.label_names == ["negative", "positive"] and set(p.train_labels) == set(p.test_labels) == {0, 1}
    assert len(set(p.train_texts)) == 2000
    # retrieval passages and training passages are disjoint and together the whole file
    retr, dist = retrieval_passages(), distillation_passages()
    assert len(retr) == RETRIEVAL_PASSAGES and len(retr) + len(dist) == 1083 and not set(retr) & set(dist)
    assert default_suite().fingerprint() == suite.fingerprint()
    assert default_suite(seed=14).fingerprint() != suite.fingerprint()
    assert len(default_suite(max_pairs=50).retrieval) == 50


def test_probe_on_separable_data():
    rng = np.random.default_rng(5)
    centres = np.zeros((2, 384), np.float32)
    centres[0, 0], centres[1, 1] = 4.0, 4.0
    y_tr, y_te = rng.integers(0, 2, 2000), rng.integers(0, 2, 500)
    x_tr = (centres[y_tr] + rng.normal(size=(2000, 384))).astype(np.float32) * 0.1
    x_te = (centres[y_te] + rng.normal(size=(500, 384))).astype(np.float32) * 0.1
    r = linear_probe(x_tr, y_tr, x_te, y_te, seed=0)
    assert r.accuracy >= 0.99 and (r.train_rows, r.test_rows) == (2000, 500) and r.converged


# ---------------------------------------------------------------- end to end with a TF-IDF embedder

@pytest.fixture(scope="module")
def suite() -> EvalSuite:
    return default_suite()


def _tfidf_embedder(docs: list[str], max_features: int = 4096):
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(sublinear_tf=True, max_features=max_features).fit(docs)
    return lambda texts: vec.transform(texts).toarray().astype(np.float32)


def test_tfidf_through_evaluate_embeddings(suite):
    embed = _tfidf_embedder(suite.retrieval.documents)
    t0 = time.perf_counter()
    scores = evaluate_embeddings(embed, suite, None)
    seconds = time.perf_counter() - t0
    print(f"\nTF-IDF (no teacher), {seconds:.2f}s: {scores.to_dict()}")
    chance = 10 / len(suite.retrieval)
    assert scores.recall_at_k > 5 * chance and scores.mrr_at_k > 0.2
    assert scores.mrr_at_k <= scores.recall_at_k
    assert scores.fidelity is None and scores.asym_recall_at_k is None and scores.asym_mrr_at_k is None
    assert 0.6 < scores.probe_accuracy < 1.0 and scores.probe_converged
    assert scores.retrieval_pairs == len(suite.retrieval) and scores.dim == 4096


def test_teacher_row_student_row_and_relative(suite):
    teacher_embed = _tfidf_embedder(suite.retrieval.documents)
    t0 = time.perf_counter()
    t_scores, tv = teacher_scores(teacher_embed, suite)
    print(f"\nTF-IDF as teacher, {time.perf_counter() - t0:.2f}s: {t_scores.to_dict()}")
    assert t_scores.fidelity == 1.0
    assert (t_scores.asym_recall_at_k, t_scores.asym_mrr_at_k) == (t_scores.recall_at_k, t_scores.mrr_at_k)
    assert all(v == pytest.approx(1.0) for v in t_scores.relative_to(t_scores).values())
    assert tv == tv and np.array_equal(tv.held_out, TeacherVectors.compute(teacher_embed, suite).held_out)

    rng = np.random.default_rng(0)

    def noisy(texts):  # a "student": the teacher's vectors plus noise, same dims
        v = teacher_embed(texts)
        return v + 0.02 * rng.normal(size=v.shape).astype(np.float32)

    t0 = time.perf_counter()
    s = evaluate_embeddings(noisy, suite, tv)
    print(f"noisy student, {time.perf_counter() - t0:.2f}s: {s.to_dict()}")
    rel = s.relative_to(t_scores)
    print(f"relative to teacher: {rel}")
    assert 0.0 < s.fidelity < 1.0
    assert s.asym_recall_at_k is not None and s.asym_mrr_at_k is not None
    assert s.mrr_at_k < t_scores.mrr_at_k and 0 < rel["mrr@10"] < 1
    assert set(rel) == {"fidelity", "recall@10", "mrr@10", "asym_recall@10", "asym_mrr@10", "probe_accuracy"}

    # a student in a different space: no fidelity, no asymmetric retrieval, the rest still measured
    other = evaluate_embeddings(_tfidf_embedder(suite.retrieval.documents, max_features=1000), suite, tv)
    assert other.dim == 1000 and other.fidelity is None and other.asym_recall_at_k is None
    assert other.recall_at_k is not None and other.probe_accuracy is not None
    assert other.relative_to(t_scores)["fidelity"] is None


def test_optional_parts_and_wrong_teacher(suite):
    small = EvalSuite(held_out=suite.held_out[:50])
    embed = _tfidf_embedder(suite.held_out[:50], max_features=300)
    s = evaluate_embeddings(embed, small, None)
    assert isinstance(s, EmbeddingScores)
    assert (s.recall_at_k, s.probe_accuracy, s.fidelity) == (None, None, None)
    with pytest.raises(ValueError):
        evaluate_embeddings(embed, small, TeacherVectors.compute(embed, EvalSuite(held_out=suite.held_out[:40])))
    with pytest.raises(ValueError):
        evaluate_embeddings(lambda texts: np.zeros((1, 3), np.float32), small, None)  # wrong row count
    with pytest.raises(ValueError):
        ProbeSet(train_texts=["a"], train_labels=[], test_texts=[], test_labels=[], label_names=[])


def test_scores_a_rounding_apart_tie():
    """The same document scored a few float32 ulps lower (another batch row, a basis turn) still ties: pessimistic."""
    from compress.embedding.ranking import ranks_of_scores

    scores = np.array([[0.5, np.float32(0.5) - np.float32(3e-8), 0.1], [0.2, 0.9, 0.9 - 1e-3]], dtype=np.float32)
    assert ranks_of_scores(scores).tolist() == [2, 1]  # row 0: the near-equal document ties; row 1: 1e-3 does not
