"""Evaluation of sentence-embedding models with numpy and scikit-learn only (no torch).

A model is anything that follows the embed protocol: ``embed(texts: list[str]) -> np.ndarray`` of shape
[len(texts), D]. Vectors need not be normalised; every cosine here normalises first (a zero row stays zero,
so its cosine with anything is 0).

Metrics, for one model against the teacher it was distilled from:
- fidelity: mean cosine between student and teacher vectors of the same held-out texts;
- retrieval: recall@k and MRR@k on an inverse-cloze set (Lee et al. 2019, ORQA): the query is one sentence
  of a passage, its document is the rest of that passage; "asymmetric" scores embed the queries with the
  model and the documents with the teacher (a student serving queries against a teacher-built index);
- a linear probe: logistic regression on frozen, L2-normalised vectors (does the space keep the labels).

``default_suite()`` builds all of it from the vendored Rotten Tomatoes files.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np

from compress.data.sentences import split_sentences  # noqa: F401 (part of this module's API)
from compress.embedding.ranking import ranks_of_scores

Embed = Callable[[list[str]], np.ndarray]

RETRIEVAL_PASSAGES = 500  # the last 500 unlabeled passages are reserved for retrieval; distill on the rest
MIN_QUERY_WORDS = 4  # a 1-3 word sentence ("He refuses.") is too vague to identify its passage
_CHUNK = 1024  # query rows per block, so the [rows, docs] score matrix stays small for big sets


# ---------------------------------------------------------------- sentences and the inverse-cloze set


def _sha256(obj) -> str:
    return hashlib.sha256(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RetrievalSet:
    """Query i's one relevant document is documents[i]; every other document is a distractor."""

    queries: list[str]
    documents: list[str]

    def __post_init__(self):
        if len(self.queries) != len(self.documents):
            raise ValueError(f"{len(self.queries)} queries but {len(self.documents)} documents")

    def __len__(self) -> int:
        return len(self.queries)

    def fingerprint(self) -> str:
        """sha256 of the content, for caching vectors computed on this set."""
        return _sha256({"queries": self.queries, "documents": self.documents})


def build_retrieval_set(passages: list[str], seed: int, max_pairs: int | None = None,
                        min_sentences: int = 3) -> RetrievalSet:
    """Inverse cloze task: for each passage of >= min_sentences sentences (in passage order, up to max_pairs),
    one seeded sentence is the query and the remaining sentences, in order and joined by a space, the document.

    Candidate queries are sentences of >= MIN_QUERY_WORDS words that do not occur again inside the rest of
    the passage (else the answer would be a copy); a passage with no candidate, or whose document equals an
    earlier one (ambiguous relevance), is skipped. The choice is seeded per passage by (seed, passage text),
    so a passage's pair does not depend on which other passages are in the list.
    """
    queries: list[str] = []
    documents: list[str] = []
    seen_docs: set[str] = set()
    for passage in passages:
        if max_pairs is not None and len(queries) >= max_pairs:
            break
        sents = split_sentences(passage)
        if len(sents) < min_sentences:
            continue
        candidates = []
        for i, s in enumerate(sents):
            doc = " ".join(sents[:i] + sents[i + 1:])
            if len(s.split()) >= MIN_QUERY_WORDS and s not in doc:
                candidates.append((s, doc))
        if not candidates:
            continue
        # random.Random seeds a str via sha512: stable across processes (unlike hash())
        query, doc = random.Random(f"{seed}\x00{passage}").choice(candidates)
        if doc in seen_docs:
            continue
        seen_docs.add(doc)
        queries.append(query)
        documents.append(doc)
    return RetrievalSet(queries=queries, documents=documents)


# ---------------------------------------------------------------- vector metrics

def _as_matrix(x, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array [n, D], got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: contains NaN or inf")
    return a


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, in float64 (sums of 384 float32 products are stable enough that exact
    ties stay ties). Zero rows stay zero."""
    a = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    return a / np.where(norms > 0, norms, 1.0)


@dataclass(frozen=True)
class RetrievalScores:
    recall_at_k: float
    mrr_at_k: float
    k: int
    queries: int


def relevant_ranks(query_vecs: np.ndarray, doc_vecs: np.ndarray) -> np.ndarray:
    """1-based rank of document i for query i under cosine similarity.

    Tie rule (compress.embedding.ranking): rank = 1 + #{j != i : s_ij >= s_ii}.
    """
    q = l2_normalize(_as_matrix(query_vecs, "query_vecs"))
    d = l2_normalize(_as_matrix(doc_vecs, "doc_vecs"))
    if q.shape[1] != d.shape[1]:
        raise ValueError(f"query dim {q.shape[1]} != document dim {d.shape[1]}")
    if d.shape[0] < q.shape[0]:
        raise ValueError(f"{q.shape[0]} queries need at least as many documents, got {d.shape[0]}")
    n = q.shape[0]
    ranks = np.empty(n, dtype=np.int64)
    for start in range(0, n, _CHUNK):
        rows = np.arange(start, min(start + _CHUNK, n))
        ranks[rows] = ranks_of_scores(q[rows] @ d.T, rows)
    return ranks


def retrieval_metrics(query_vecs: np.ndarray, doc_vecs: np.ndarray, k: int = 10) -> RetrievalScores:
    """recall@k: share of queries whose document ranks <= k; MRR@k: mean of 1/rank, 0 beyond k.
    Documents beyond the number of queries are pure distractors. Ties: see relevant_ranks."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    ranks = relevant_ranks(query_vecs, doc_vecs)
    if ranks.size == 0:
        raise ValueError("no queries")
    hit = ranks <= k
    return RetrievalScores(recall_at_k=float(hit.mean()), mrr_at_k=float(np.where(hit, 1.0 / ranks, 0.0).mean()),
                           k=k, queries=int(ranks.size))


def fidelity(student_vecs: np.ndarray, teacher_vecs: np.ndarray) -> float:
    """Mean row-wise cosine between two embeddings of the same texts (1.0: same directions; a zero row counts 0)."""
    s = l2_normalize(_as_matrix(student_vecs, "student_vecs"))
    t = l2_normalize(_as_matrix(teacher_vecs, "teacher_vecs"))
    if s.shape != t.shape:
        raise ValueError(f"shapes differ: {s.shape} vs {t.shape}")
    if s.shape[0] == 0:
        raise ValueError("no rows")
    return float(np.einsum("ij,ij->i", s, t).mean())


def _top_k_neighbours(vecs: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    s = vecs[rows] @ vecs.T
    s[np.arange(len(rows)), rows] = -np.inf  # a text is not its own neighbour
    # stable sort on -score: equal scores keep index order, so ties break to the lower index
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


def retrieval_agreement(a_vecs: np.ndarray, b_vecs: np.ndarray, k: int = 10) -> float:
    """Mean |topk_a ∩ topk_b| / k over texts, where topk_x are a text's k cosine-nearest other texts under
    model x (dims may differ). 1.0: e.g. a quantized model retrieves exactly what the fp32 one does.
    Ties break to the lower index in both models."""
    a = l2_normalize(_as_matrix(a_vecs, "a_vecs"))
    b = l2_normalize(_as_matrix(b_vecs, "b_vecs"))
    n = a.shape[0]
    if b.shape[0] != n:
        raise ValueError(f"row counts differ: {n} vs {b.shape[0]}")
    if not 1 <= k < n:
        raise ValueError(f"k must be in [1, {n - 1}] for {n} texts, got {k}")
    overlap = np.empty(n, dtype=np.float64)
    for start in range(0, n, _CHUNK):
        rows = np.arange(start, min(start + _CHUNK, n))
        ta, tb = _top_k_neighbours(a, rows, k), _top_k_neighbours(b, rows, k)
        # both lists hold distinct indices, so matches between them count the intersection
        overlap[rows] = (ta[:, :, None] == tb[:, None, :]).sum(axis=(1, 2)) / k
    return float(overlap.mean())


# ---------------------------------------------------------------- linear probe

PROBE_MAX_ITER = 5000  # lbfgs on 2k x 384 normalised rows converges in well under 1k; headroom for wide inputs


@dataclass(frozen=True)
class ProbeScores:
    accuracy: float
    train_rows: int
    test_rows: int
    converged: bool = True


def linear_probe(train_vecs: np.ndarray, train_labels, test_vecs: np.ndarray, test_labels, seed: int) -> ProbeScores:
    """Logistic regression (lbfgs, C=1.0) on frozen L2-normalised vectors; accuracy on the test rows.
    C is fixed rather than tuned so every model is probed the same way."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    xtr, xte = l2_normalize(_as_matrix(train_vecs, "train_vecs")), l2_normalize(_as_matrix(test_vecs, "test_vecs"))
    ytr, yte = np.asarray(train_labels), np.asarray(test_labels)
    if len(ytr) != len(xtr) or len(yte) != len(xte):
        raise ValueError("each vector needs exactly one label")
    if len(np.unique(ytr)) < 2:
        raise ValueError("the probe needs at least two classes in its training rows")
    clf = LogisticRegression(C=1.0, solver="lbfgs", max_iter=PROBE_MAX_ITER, random_state=seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(xtr, ytr)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    acc = float((clf.predict(xte) == yte).mean())
    return ProbeScores(accuracy=acc, train_rows=len(ytr), test_rows=len(yte), converged=converged)


# ---------------------------------------------------------------- suite, teacher vectors, scores

@dataclass(frozen=True)
class ProbeSet:
    """Labelled texts for the linear probe; labels are ints indexing label_names."""

    train_texts: list[str]
    train_labels: list[int]
    test_texts: list[str]
    test_labels: list[int]
    label_names: list[str]

    def __post_init__(self):
        if len(self.train_texts) != len(self.train_labels) or len(self.test_texts) != len(self.test_labels):
            raise ValueError("each probe text needs exactly one label")


@dataclass(frozen=True)
class EvalSuite:
    """What one model is evaluated on. retrieval / probe are None when the data has no passages / labels."""

    held_out: list[str]
    retrieval: RetrievalSet | None = None
    probe: ProbeSet | None = None

    def fingerprint(self) -> str:
        r, p = self.retrieval, self.probe
        return _sha256({"held_out": self.held_out, "retrieval": None if r is None else asdict(r),
                        "probe": None if p is None else asdict(p)})


def _embed_groups(embed: Embed, groups: list[list[str]]) -> list[np.ndarray]:
    """One embed call over the distinct texts of all groups (held-out and probe-test texts often coincide),
    then each group's rows picked back out."""
    index: dict[str, int] = {}
    for g in groups:
        for t in g:
            index.setdefault(t, len(index))
    texts = list(index)
    vecs = _as_matrix(embed(texts), "embed(texts)") if texts else np.zeros((0, 0), np.float32)
    if vecs.shape[0] != len(texts):
        raise ValueError(f"embed returned {vecs.shape[0]} rows for {len(texts)} texts")
    return [vecs[[index[t] for t in g]] for g in groups]


@dataclass(frozen=True)
class TeacherVectors:
    """The teacher's vectors for one suite (computed once, reused for every student)."""

    held_out: np.ndarray
    queries: np.ndarray | None
    documents: np.ndarray | None
    suite_fingerprint: str

    @classmethod
    def compute(cls, embed: Embed, suite: EvalSuite) -> "TeacherVectors":
        r = suite.retrieval
        held, q, d = _embed_groups(embed, [suite.held_out, r.queries if r else [], r.documents if r else []])
        return cls(held_out=held, queries=q if r else None, documents=d if r else None,
                   suite_fingerprint=suite.fingerprint())

    @property
    def dim(self) -> int:
        return int(self.held_out.shape[1])


@dataclass(frozen=True)
class EmbeddingScores:
    """One model's row. None: not measurable (no teacher, dims differ from the teacher's, no labels...)."""

    dim: int
    k: int
    fidelity: float | None
    recall_at_k: float | None
    mrr_at_k: float | None
    asym_recall_at_k: float | None
    asym_mrr_at_k: float | None
    probe_accuracy: float | None
    retrieval_pairs: int = 0
    probe_converged: bool | None = None
    shorter: dict | None = None
    """Retrieval with shorter stored vectors: "dims/storage" -> MRR@k, asymmetric MRR@k, index size
    (compress.embedding.shorter.shorter_scores); None when not measured."""

    def to_dict(self) -> dict:
        k = self.k
        return {"dim": self.dim, "fidelity": self.fidelity, f"recall@{k}": self.recall_at_k, f"mrr@{k}": self.mrr_at_k,
                f"asym_recall@{k}": self.asym_recall_at_k, f"asym_mrr@{k}": self.asym_mrr_at_k,
                "probe_accuracy": self.probe_accuracy, "retrieval_pairs": self.retrieval_pairs,
                "probe_converged": self.probe_converged} | ({"shorter": self.shorter} if self.shorter is not None else {})

    def relative_to(self, teacher: "EmbeddingScores") -> dict[str, float | None]:
        """Each metric as a share of the teacher's (mrr 0.97 = 97% of the teacher's MRR). Asymmetric scores are
        compared with the teacher's symmetric ones, which is what its asymmetric row equals."""
        if teacher.k != self.k:
            raise ValueError(f"k differs: {self.k} vs teacher {teacher.k}")
        pairs = {"fidelity": (self.fidelity, teacher.fidelity),
                 f"recall@{self.k}": (self.recall_at_k, teacher.recall_at_k),
                 f"mrr@{self.k}": (self.mrr_at_k, teacher.mrr_at_k),
                 f"asym_recall@{self.k}": (self.asym_recall_at_k, teacher.recall_at_k),
                 f"asym_mrr@{self.k}": (self.asym_mrr_at_k, teacher.mrr_at_k),
                 "probe_accuracy": (self.probe_accuracy, teacher.probe_accuracy)}
        return {name: (None if mine is None or ref is None or ref == 0 else mine / ref)
                for name, (mine, ref) in pairs.items()}


def _score(suite: EvalSuite, held: np.ndarray, q: np.ndarray, d: np.ndarray, ptr: np.ndarray, pte: np.ndarray,
           teacher: TeacherVectors | None, k: int, seed: int, shorter=None) -> EmbeddingScores:
    dim = int(held.shape[1]) if held.size else int(q.shape[1])
    same_dim = teacher is not None and teacher.dim == dim  # cosine across different spaces means nothing
    fid = fidelity(held, teacher.held_out) if same_dim and len(suite.held_out) else None
    rec = mrr = arec = amrr = short = None
    pairs = 0
    if suite.retrieval is not None and len(suite.retrieval):
        sym = retrieval_metrics(q, d, k)
        rec, mrr, pairs = sym.recall_at_k, sym.mrr_at_k, sym.queries
        if same_dim and teacher.documents is not None:
            asym = retrieval_metrics(q, teacher.documents, k)
            arec, amrr = asym.recall_at_k, asym.mrr_at_k
        if shorter is not None and len(shorter.basis) == dim:
            from compress.embedding.shorter import shorter_scores

            short = shorter_scores(shorter, q, d, teacher.documents if same_dim else None, k)
    acc = conv = None
    if suite.probe is not None:
        p = linear_probe(ptr, suite.probe.train_labels, pte, suite.probe.test_labels, seed)
        acc, conv = p.accuracy, p.converged
    return EmbeddingScores(dim=dim, k=k, fidelity=fid, recall_at_k=rec, mrr_at_k=mrr, asym_recall_at_k=arec,
                           asym_mrr_at_k=amrr, probe_accuracy=acc, retrieval_pairs=pairs, probe_converged=conv,
                           shorter=short)


def _suite_groups(suite: EvalSuite) -> list[list[str]]:
    r, p = suite.retrieval, suite.probe
    return [suite.held_out, r.queries if r else [], r.documents if r else [],
            p.train_texts if p else [], p.test_texts if p else []]


def evaluate_embeddings(embed: Embed, suite: EvalSuite, teacher: TeacherVectors | None, *, k: int = 10,
                        seed: int = 0, shorter=None) -> EmbeddingScores:
    """Score one model: all its texts are embedded in one embed() call (batching is the embedder's business),
    then fidelity/asymmetric retrieval against the teacher's vectors, symmetric retrieval and the probe; with a
    `shorter` basis (compress.embedding.shorter.ShorterVectors), retrieval with shorter stored vectors too."""
    if teacher is not None and teacher.suite_fingerprint != suite.fingerprint():
        raise ValueError("teacher vectors were computed on a different suite")
    held, q, d, ptr, pte = _embed_groups(embed, _suite_groups(suite))
    return _score(suite, held, q, d, ptr, pte, teacher, k, seed, shorter)


def teacher_scores(embed: Embed, suite: EvalSuite, *, k: int = 10, seed: int = 0,
                   shorter=None) -> tuple[EmbeddingScores, TeacherVectors]:
    """The teacher's own row (vs itself: fidelity 1.0, asymmetric = symmetric) and its vectors for the
    students, from a single embed() call. Fidelity is set to 1.0 by definition: computed, a zero row (e.g.
    TF-IDF of out-of-vocabulary text) would count 0 against the teacher's own vectors."""
    held, q, d, ptr, pte = _embed_groups(embed, _suite_groups(suite))
    r = suite.retrieval
    tv = TeacherVectors(held_out=held, queries=q if r else None, documents=d if r else None,
                        suite_fingerprint=suite.fingerprint())
    row = _score(suite, held, q, d, ptr, pte, tv, k, seed, shorter)
    return (replace(row, fidelity=1.0) if row.fidelity is not None else row), tv


# ---------------------------------------------------------------- the vendored Rotten Tomatoes suite

def _data_dir() -> Path:
    return Path(str(resources.files("compress") / "data" / "rotten_tomatoes"))


def _read_jsonl(name: str) -> list[dict]:
    with open(_data_dir() / name, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _unlabeled_passages() -> list[str]:
    return [row["text"] for row in _read_jsonl("unlabeled.jsonl")]


def retrieval_passages() -> list[str]:
    """The LAST RETRIEVAL_PASSAGES passages of unlabeled.jsonl (file order): reserved for the ICT retrieval set."""
    return _unlabeled_passages()[-RETRIEVAL_PASSAGES:]


def distillation_passages() -> list[str]:
    """unlabeled.jsonl passages NOT used for retrieval (the first ones, file order): safe to train on."""
    return _unlabeled_passages()[:-RETRIEVAL_PASSAGES]


def default_suite(seed: int = 13, max_pairs: int = 500, probe_train_rows: int = 2000) -> EvalSuite:
    """Suite from the vendored files: ICT retrieval on retrieval_passages() (up to max_pairs; fewer when fewer
    passages qualify), held-out = test.jsonl texts, probe train = a seeded sample of probe_train_rows
    train.jsonl rows (kept in file order), probe test = all test.jsonl rows; label ids follow sorted names."""
    train, test = _read_jsonl("train.jsonl"), _read_jsonl("test.jsonl")
    names = sorted({row["label"] for row in train})
    label_id = {n: i for i, n in enumerate(names)}
    picked = sorted(random.Random(seed).sample(range(len(train)), min(probe_train_rows, len(train))))
    probe = ProbeSet(train_texts=[train[i]["text"] for i in picked],
                     train_labels=[label_id[train[i]["label"]] for i in picked],
                     test_texts=[row["text"] for row in test],
                     test_labels=[label_id[row["label"]] for row in test],
                     label_names=names)
    retrieval = build_retrieval_set(retrieval_passages(), seed=seed, max_pairs=max_pairs)
    return EvalSuite(held_out=[row["text"] for row in test], retrieval=retrieval, probe=probe)
