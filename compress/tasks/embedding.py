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


def _has_head(source, labels) -> bool:
    return True  # pooling is the head; it is read (or chosen) and never trained on the teacher


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


def _check_inputs(source, recipe) -> None:
    """The pooling must be readable (or chosen) and fit the teacher; a static table cannot be wider than it."""
    from compress.errors import UserError

    pooling_of(source.location, source.spec, recipe.embedding)
    hidden = source.config.hidden_size
    if recipe.student.kind == "static" and recipe.student.pca_dims is not None and recipe.student.pca_dims > hidden:
        raise UserError(f"student.pca_dims {recipe.student.pca_dims} is more than the teacher's {hidden} dimensions: "
                        f"use at most {hidden}, or null to keep them all")


def _load_model(location: str, labels, spec: str, recipe):
    from compress.embedding.model import load_encoder

    return load_encoder(location, spec, pooling_of(location, spec, recipe.embedding))


def _train_loss(model, batch):
    raise NotImplementedError("an embedding teacher is never fine-tuned")  # _has_head is always True


def _load_data(cfg):
    from compress.embedding.data import load_texts

    return load_texts(cfg)


def _load_student(directory):
    from compress.embedding.static_encoder import StaticEncoder, is_static

    if is_static(directory):
        from compress.embedding.static import load_static

        return StaticEncoder(load_static(directory)).eval()
    from compress.embedding.model import load_sentence_encoder

    return load_sentence_encoder(directory)


def _save_student(model, tokenizer, directory, max_length: int) -> None:
    from compress.embedding.model import save_sentence_transformer

    save_sentence_transformer(model, tokenizer, directory, max_length)


def _quality(run):
    from compress.embedding.quality import EmbeddingQuality

    return EmbeddingQuality(run)


TASK = Task(
    name="embedding",
    description="a vector per text in the teacher's space (sentence-transformers models; cosine search)",
    head="pooling",
    has_head=_has_head,
    load_model=_load_model,
    train_loss=_train_loss,
    load_data=_load_data,
    loss_outputs=frozenset({"sentence_embedding", "hidden_states", "attention_scores", "qkv"}),
    has_labels=False,
    metric_name="fidelity",
    metric=mean_cosine,
    output_names=("sentence_embedding",),
    output_shape=lambda dim: ["batch", dim],
    postprocess="embedding",
    agreement=mean_cosine,
    agreement_name="mean cosine",
    targets_from_teacher=True,
    default_recipe="embedding",
    default_losses={"embedding_mse": {"weight": 1.0}, "embedding_cosine": {"weight": 1.0}},
    load_student=_load_student,
    save_student=_save_student,
    quality=_quality,
    check_inputs=_check_inputs,
)
