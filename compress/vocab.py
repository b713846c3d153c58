"""Task vocabulary: keep only the word pieces the task's text uses (TextPruner-style vocabulary pruning).

A 30k-piece table is most of a small student's bytes (30,522 × E), yet one task's text uses about half of it.
We keep the special tokens, every piece the training text (and the general-distillation text) produces, and
every single-character piece (`a`, `##a`, ...), renumbered in the teacher's order, and write a tokenizer whose
vocabulary is exactly those pieces.

Why that tokenizer gives the same pieces as the teacher's on the kept text: WordPiece is greedy longest-match
first. For a word of that text the teacher's longest match is kept, and the pruned vocabulary (a subset)
has no longer one, so every step picks the same piece. On new text a word whose pieces were dropped splits
into smaller kept pieces (single characters at worst) instead of becoming [UNK].

During distillation the teacher reads the teacher's ids and the student reads the same sequence through
`id_map` (teacher id -> student id), so the two stay aligned position by position.
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

import torch

from compress.data.readers import Example
from compress.errors import UserError

# new id -> teacher id, saved beside the student so the mapping can be traced and rebuilt
KEPT_IDS_FILE = "vocab_teacher_ids.json"


def _wordpiece(tokenizer) -> dict:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    spec = json.loads(backend.to_str()) if backend is not None else None
    if not spec or (spec.get("model") or {}).get("type") != "WordPiece":
        raise UserError(
            "student.vocabulary 'task' needs a WordPiece tokenizer (BERT, ELECTRA, ...); this teacher's tokenizer is "
            f"{(spec or {}).get('model', {}).get('type', type(tokenizer).__name__)}: use student.vocabulary 'full'"
        )
    return spec


def check_prunable(tokenizer) -> None:
    _wordpiece(tokenizer)


def used_token_ids(tokenizer, examples: list[Example]) -> set[int]:
    """Every id the tokenizer gives for these texts (no truncation: a later, longer max_length sees more)."""
    used: set[int] = set()
    for field in ("text", "text_pair"):
        texts = [getattr(e, field) for e in examples if getattr(e, field)]
        for start in range(0, len(texts), 2048):
            for ids in tokenizer(texts[start : start + 2048], add_special_tokens=False)["input_ids"]:
                used.update(ids)
    return used


def kept_ids(tokenizer, used: set[int]) -> list[int]:
    """Teacher ids to keep, in the teacher's order: special tokens, used pieces, single characters."""
    spec = _wordpiece(tokenizer)
    prefix = spec["model"].get("continuing_subword_prefix", "##")
    chars = {i for t, i in tokenizer.get_vocab().items() if len(t) == 1 or (t.startswith(prefix) and len(t) == len(prefix) + 1)}
    special = set(tokenizer.all_special_ids) | {t["id"] for t in spec.get("added_tokens", [])}
    return sorted(special | used | chars)


def pruned_tokenizer(tokenizer, keep: list[int]):
    """The same tokenizer (normalizer, pre-tokenizer, special tokens, settings) over the kept pieces only."""
    spec = _wordpiece(tokenizer)
    new_id = {old: new for new, old in enumerate(keep)}
    vocab = spec["model"]["vocab"]
    spec["model"]["vocab"] = {tok: new_id[old] for tok, old in sorted(vocab.items(), key=lambda kv: kv[1]) if old in new_id}
    for added in spec.get("added_tokens", []):
        added["id"] = new_id[added["id"]]
    post = spec.get("post_processor") or {}
    for processor in [post] + list(post.get("processors", [])):
        for special in (processor.get("special_tokens") or {}).values():
            special["ids"] = [new_id[i] for i in special["ids"]]
        for key in ("cls", "sep"):  # BertProcessing stores [token, id]
            if isinstance(processor.get(key), list):
                processor[key][1] = new_id[processor[key][1]]
    if spec.get("padding"):
        spec["padding"]["pad_id"] = new_id[spec["padding"]["pad_id"]]
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        (Path(tmp) / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False))
        write_vocab_txt(spec["model"]["vocab"], Path(tmp))
        pruned = type(tokenizer).from_pretrained(tmp)
    pruned.model_max_length = tokenizer.model_max_length
    if len(pruned) != len(keep):
        raise RuntimeError(f"pruned tokenizer has {len(pruned)} pieces, expected {len(keep)}")
    return pruned


def save_tokenizer(tokenizer, directory: Path) -> None:
    """save_pretrained, plus vocab.txt for WordPiece (transformers 5 writes only tokenizer.json; apps want both)."""
    tokenizer.save_pretrained(directory)
    # AutoTokenizer picks the class by the model's type: for an ALBERT-style student that is a SentencePiece class
    # it cannot build from WordPiece files, and the generic one it falls back to drops token_type_ids. The names
    # stored here are read by any class, so the student takes the inputs the teacher's tokenizer gave.
    config = Path(directory) / "tokenizer_config.json"
    if config.is_file():
        settings = json.loads(config.read_text())
        settings["model_input_names"] = list(tokenizer.model_input_names)
        config.write_text(json.dumps(settings, indent=2, ensure_ascii=False) + "\n")
    backend = getattr(tokenizer, "backend_tokenizer", None)
    spec = json.loads(backend.to_str()) if backend is not None else {}
    if (spec.get("model") or {}).get("type") == "WordPiece":
        write_vocab_txt(spec["model"]["vocab"], Path(directory))


def write_vocab_txt(vocab: dict[str, int], directory: Path) -> None:
    """vocab.txt: one piece per line, line number = id (what BERT tokenizers and our torch-free runner read)."""
    words = sorted(vocab, key=vocab.get)
    (directory / "vocab.txt").write_text("".join(w + "\n" for w in words), encoding="utf-8")


def id_map(old_vocab_size: int, keep: list[int], unk_id: int) -> torch.Tensor:
    """teacher id -> student id; a dropped piece maps to the student's [UNK]."""
    table = torch.full((old_vocab_size,), keep.index(unk_id), dtype=torch.long)
    table[torch.tensor(keep)] = torch.arange(len(keep))
    return table


def with_kept_rows(model, keep: list[int]):
    """A copy of `model` whose word-embedding table has only the kept rows (the source a student is built from)."""
    model = copy.deepcopy(model)
    old = model.get_input_embeddings()
    rows = torch.tensor(keep)
    new = torch.nn.Embedding(len(keep), old.embedding_dim)
    new.weight.data.copy_(old.weight.data[rows])
    pad = model.config.pad_token_id
    if pad is not None:
        model.config.pad_token_id = keep.index(pad)
        new.padding_idx = model.config.pad_token_id
    model.set_input_embeddings(new)
    model.config.vocab_size = len(keep)
    return model
