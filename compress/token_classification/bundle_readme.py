"""README.md of a token-classification bundle: the files, the tags, and entities with character spans (Python)."""

from __future__ import annotations


def _check(rc: dict) -> str:
    return (f"max Δ {rc.get('max_abs_diff_vs_pytorch', float('nan')):.1e}, "
            f"token agreement {rc.get('label_agreement_vs_pytorch', rc.get('token_agreement_vs_pytorch', float('nan'))):.4f}")


def render(meta: dict) -> str:
    from compress.bundle_readme import _model_lines, _tokenization, device_python, runtimes_of

    labels = meta["labels"]
    types = sorted({t[2:] for t in labels if t != "O"})
    names = sorted({i["name"] for m in meta["models"] for i in m["inputs"] if m["runtime"] == "onnxruntime"})
    return "\n".join([
        "# Token-classification (NER) bundle (bert-compress)",
        "",
        f"Text in, entities out: a BIO tag per word ({len(labels)} tags over {len(types)} entity types: "
        f"{', '.join(types)}), each entity with its character span in the text. Student: {meta['student']['layers']} "
        f"layers × {meta['student']['hidden_size']}, distilled from `{meta['teacher']['checkpoint']}`. Made "
        f"{meta['created']} by bert-compress {meta['versions']['bert_compress']} (recipe `{meta['recipe']}`).",
        "",
        *_model_lines(meta, "entity F1 (test)", _check),
        "",
        "Entity F1: seqeval's (conlleval rules), micro over types, on the test split. Each model was run here through "
        "the torch-free runner on the dev split and compared with the PyTorch student, token by token.",
        "",
        "## Files",
        "",
        f"- `model.onnx`: ONNX Runtime. Inputs {', '.join(f'`{n}`' for n in names)} int64 [batch, sequence]; output "
        f"`logits` float32 [batch, sequence, {len(labels)}], a tag score per word piece, tags in `labels.txt` order.",
        "- `model.tflite` (when listed above): LiteRT, one signature per bucket, batch 1, int32 inputs; output "
        f"`output_0` float32 [1, bucket, {len(labels)}] (read the first `sequence` rows).",
        "- `tokenizer.json` (and `vocab.txt` for WordPiece); `labels.txt`: the tags; `metadata.json`: everything, "
        "machine-readable; `check.json`: dev texts and the PyTorch student's logits, for `python -m targets check`.",
        "- `runner/targets`: the Python runner (numpy + onnxruntime or ai-edge-litert; no PyTorch); `runner/targets/ner.py` "
        "decodes tags into entities.",
        "",
        "## Tokenization and decoding",
        "",
        *_tokenization(meta),
        "",
        "A word (a run of letters and digits, or one punctuation character: the tokenizer's words) takes the tag of its "
        "first piece (`first`, what the model was trained on), of the mean of its pieces' probabilities (`average`) or "
        "of its most confident piece (`max`). B-TYPE starts an entity, I-TYPE continues one of the same type, O ends "
        "it; the entity's text runs from its first word's start to its last word's end (the tokenizer's character "
        "offsets, in the text as given).",
        "",
        *device_python(meta, 'ner . "Barack Obama visited the Empire State Building"', [
            "from targets.bundle import Tagger",
            f"tagger = Tagger(\".\", runtime=\"{runtimes_of(meta)[0]}\", threads=1)",
            "for e in tagger.tag([\"Barack Obama visited the Empire State Building\"])[0].entities:",
            "    print(e.entity_group, e.start, e.end, e.word, round(e.score, 3))"], "## Python: entities, no PyTorch needed"),
        "`--aggregation average` (or `max`) changes how a word's pieces give its tag; `--json` gives every entity's "
        "start, end, word, type and score.",
        "",
        "On a phone, the `android-ort` / `ios-ort` bundles take the text itself and give the tag logits and each "
        "token's character span (`offset_mapping`) from one call.",
        "",
    ])
