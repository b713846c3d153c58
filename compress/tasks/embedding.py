"""Sentence embeddings: one vector per text, in the teacher's vector space (semantic search, deduplication, RAG).

The teacher is a sentence-transformers checkpoint (pooling and normalisation read from its modules.json) or any
BERT-family encoder with the recipe's `embedding.pooling`; it needs no fine-tuning. Data is any text, no labels.
The metric is fidelity to the teacher (mean cosine between the model's and the teacher's vectors of the same
texts): it picks the best distillation epoch and guards quantization; retrieval and a linear probe are measured
by the bench stage (compress.embedding.evaluate).
"""

from __future__ import annotations

from compress.metrics import mean_cosine
from compress.tasks.base import Task

CLASSIFIER_ONLY = ("distilbert_soft", "hard_ce", "tinybert_prediction")


def pooling_of(location: str, spec: str, cfg):
    """The teacher's pooling: what its modules.json says, the recipe's `embedding` settings on top."""
    from compress.embedding.model import Pooling, read_pooling
    from compress.errors import UserError

    declared = read_pooling(location, spec)
    if cfg.pooling == "auto" and declared is None:
        raise UserError(f"teacher {spec} has no modules.json, so its pooling cannot be read: set embedding.pooling "
                        "(mean, cls, max or mean_sqrt_len_tokens) in the recipe")
    mode = declared.mode if cfg.pooling == "auto" else cfg.pooling
    normalize = (declared.normalize if declared is not None else True) if cfg.normalize == "auto" else cfg.normalize == "on"
    changed = declared is None or mode != declared.mode or normalize != declared.normalize
    return Pooling(mode, normalize, "recipe" if changed else "modules.json")


class Embedding(Task):
    name = "embedding"
    description = "a vector per text in the teacher's space (sentence-transformers models; cosine search)"
    head = "pooling"
    loss_outputs = frozenset({"sentence_embedding", "hidden_states", "attention_scores", "qkv"})
    has_labels = False
    metric_name = "fidelity"
    output_names = ("sentence_embedding",)
    postprocess = "embedding"
    metric = staticmethod(mean_cosine)
    agreement = staticmethod(mean_cosine)
    agreement_name = "mean cosine"
    targets_from_teacher = True
    default_recipe = "embedding"
    default_losses = {"embedding_mse": {"weight": 1.0}, "embedding_cosine": {"weight": 1.0}}
    quality_column = "fidelity"
    quality_axis = "retrieval MRR@10 (%)"
    kept_words = "fidelity {kept}% (mean cosine to the teacher)"
    agreement_column = "cosine"
    output_unit = "vector"
    runner_columns = "mean cosine | — |"
    transformers_js_pipeline = "feature-extraction"
    transformers_js_output = "sentence_embedding"
    mediapipe_api = "TextEmbedder"
    labelled_outputs = False

    def has_head(self, source, labels) -> bool:
        return True  # pooling is the head; it is read (or chosen) and never trained on the teacher

    def check_inputs(self, source, recipe) -> None:
        """The pooling must be readable (or chosen) and fit the teacher; a static table cannot be wider than it."""
        from compress.errors import UserError

        from compress.embedding.shorter import resolve_dims

        pooling_of(source.location, source.spec, recipe.embedding)
        hidden = source.config.hidden_size
        resolve_dims(recipe.embedding.truncate_dims, hidden)
        if recipe.student.kind == "static" and recipe.student.pca_dims is not None and recipe.student.pca_dims > hidden:
            raise UserError(f"student.pca_dims {recipe.student.pca_dims} is more than the teacher's {hidden} "
                            f"dimensions: use at most {hidden}, or null to keep them all")

    def load_model(self, location: str, labels, spec: str, recipe=None):
        from compress.embedding.model import load_encoder

        return load_encoder(location, spec, pooling_of(location, spec, recipe.embedding))

    def load_timed_teacher(self, spec: dict):
        from compress.embedding.model import Pooling, load_encoder

        return load_encoder(spec["path"], spec["path"], Pooling(**spec["pooling"]))  # the pooling the bench recorded

    def train_loss(self, model, batch):
        raise NotImplementedError("an embedding teacher is never fine-tuned")  # has_head is always True

    def load_data(self, cfg):
        from compress.embedding.data import load_texts

        return load_texts(cfg)

    def load_student(self, directory):
        from compress.embedding.static_encoder import StaticEncoder, is_static

        if is_static(directory):
            from compress.embedding.static import load_static

            return StaticEncoder(load_static(directory)).eval()
        from compress.embedding.model import load_sentence_encoder

        return load_sentence_encoder(directory)

    def save_student(self, model, tokenizer, directory, max_length: int) -> None:
        from compress.embedding.model import save_sentence_transformer

        save_sentence_transformer(model, tokenizer, directory, max_length)

    def student_files(self, run, directory, teacher_outputs=None) -> None:
        """The basis that turns the vectors so their leading dimensions carry the ranking (compress.embedding.shorter),
        fitted on the teacher's vectors of up to FIT_ROWS training texts."""
        from compress.embedding.shorter import fit_for_run

        fit_for_run(run, directory, teacher_outputs)

    def quality(self, run):
        from compress.embedding.quality import EmbeddingQuality

        return EmbeddingQuality(run)

    def dev_quality(self, outputs, labels) -> float | None:
        return None  # no labels: the check's agreement (mean cosine) is its quality

    def ranked_quality(self, model) -> float | None:
        # retrieval MRR@10: what search on the device gets, which a static model without the teacher's space has too
        return (model.get("embedding") or {}).get("mrr@10")

    def kept_sentence(self, pct: str, interval: str) -> str:
        return f"fidelity to the teacher **{pct}%** (mean cosine on held-out text)."

    def runner_cells(self, check: dict, pct) -> str:
        return f"{check['mean_cosine_vs_pytorch']:.6f} | — |"

    def outputs_in_words(self, label_names: list[str], tokens_axis: str = "L") -> str:
        return "the sentence vector"

    def bundle_metadata(self, student, student_dir=None) -> dict:
        """What an app needs to know of the vectors (targets.bundle.Embedder reads it)."""
        from compress.embedding.shorter import FILE, STORAGE, ShorterVectors
        from compress.student.kind import kind_of

        pooling = student.pooling if kind_of(student).transformer else f"{kind_of(student).name}-mean"
        spec = {"dim": student.dim, "normalized": student.normalize, "pooling": pooling}
        shorter = ShorterVectors.load(student_dir) if student_dir is not None else None
        if shorter is not None:
            spec["shorter"] = {"file": FILE, "dims": list(shorter.dims), "storage": list(STORAGE)}
        return {"embedding": spec}

    def bundle_files(self, student_dir):
        from compress.embedding.shorter import FILE, META

        return [student_dir / name for name in (FILE, META) if (student_dir / name).is_file()]

    def bundle_readme(self, meta: dict) -> str:
        from compress.embedding.bundle_readme import render

        return render(meta)

    def report_sections(self, report: dict, results, seq: int, threads: int) -> list[str]:
        from compress.embedding.report import embedding_section

        return embedding_section(report, results, seq, threads)

    def output_shape(self, width: int) -> list:
        return ["batch", width]


TASK = Embedding()
