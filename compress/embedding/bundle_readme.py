"""README.md of an embedding bundle: the files, the vectors, and similarity search with them (Python, Android, iOS)."""

from __future__ import annotations


def _check(rc: dict) -> str:
    return (f"max Δ {rc.get('max_abs_diff_vs_pytorch', float('nan')):.1e}, "
            f"mean cosine {rc.get('mean_cosine_vs_pytorch', float('nan')):.5f}")


def render(meta: dict) -> str:
    from compress.bundle_readme import _model_lines, _tokenization, device_python, runtimes_of

    e, tok = meta["embedding"], meta["tokenizer"]
    static = e["pooling"] == "static-mean"
    names = sorted({i["name"] for m in meta["models"] for i in m["inputs"] if m["runtime"] == "onnxruntime"})
    tokenization = _tokenization(meta)
    if tok.get("add_special_tokens") is False:
        tokenization = tokenization + ["**This model reads word pieces only: no `[CLS]` / `[SEP]`** (`add_special_tokens`: "
                                       "false in metadata.json); `[UNK]` pieces are left out of the mean inside the model."]
    how = ("the mean of its word pieces' static vectors, a linear map into the teacher's space" if static
           else f"{e['pooling']} pooling over the encoder's token vectors")
    out = [
        "# Sentence-embedding bundle (bert-compress)",
        "",
        f"Text in, one vector of {e['dim']} floats out ({how}"
        f"{', L2-normalised: the dot product is the cosine similarity' if e['normalized'] else ''}). The vectors live "
        f"in the teacher's space (`{meta['teacher']['checkpoint']}`): they can be compared with vectors the teacher "
        "made, e.g. documents embedded on a server, queries on the phone. "
        f"Student: {meta['student']['layers']} layers × {meta['student']['hidden_size']}. Made {meta['created']} by "
        f"bert-compress {meta['versions']['bert_compress']} (recipe `{meta['recipe']}`).",
        "",
        *_model_lines(meta, "fidelity (test)", _check),
        "",
        "Fidelity: mean cosine between this model's and the teacher's vectors of held-out text. Each model was run here "
        "through the torch-free runner on the dev split and compared with the PyTorch student.",
        "",
        "## Files",
        "",
        f"- `model.onnx`: ONNX Runtime (desktop, Pi; phones: the string-in `android-ort` / `ios-ort` bundles). Inputs {', '.join(f'`{n}`' for n in names)} "
        f"int64 [batch, sequence]; output `sentence_embedding` float32 [batch, {e['dim']}] (pooling and normalisation "
        "are inside the model).",
        f"- `model.tflite` (when listed above): LiteRT, one signature per bucket, batch 1, int32 inputs; output "
        f"`output_0` float32 [1, {e['dim']}].",
        "- `tokenizer.json` (and `vocab.txt` for WordPiece); `metadata.json`: everything, machine-readable; "
        "`check.json`: dev texts and the PyTorch student's vectors, for `python -m targets check` on the device.",
        "- `runner/targets`: the Python runner (numpy + onnxruntime or ai-edge-litert; no PyTorch).",
        "",
        "## Tokenization",
        "",
        *tokenization,
        "",
        *device_python(meta, 'embed . "a gripping thriller" "a tense, suspenseful film" "a cooking show"', [
            "from targets.bundle import Embedder",
            f"emb = Embedder(\".\", runtime=\"{runtimes_of(meta)[0]}\", threads=1)",
            "docs = [\"A detective hunts a killer in 1970s San Francisco.\", \"Two chefs open a restaurant in Paris.\"]",
            "doc_vectors = emb.embed(docs)                 # once, or made by the teacher on a server",
            "for i, score in emb.search(\"a serial-killer mystery\", doc_vectors, top_k=2):",
            "    print(f\"{score:.3f}  {docs[i]}\")"], "## Python: embed and search, no PyTorch needed"),
        "",
        *_shorter_lines(e),
        "## Android (Kotlin), ONNX Runtime Mobile: a vector and cosine search",
        "",
        "Written against ONNX Runtime's documented API and **not run here** (no Android toolchain on the build machine).",
        "",
        "```kotlin",
        "import ai.onnxruntime.*",
        "import java.nio.LongBuffer",
        "",
        "val env = OrtEnvironment.getEnvironment()",
        "val session = env.createSession(context.assets.open(\"model.onnx\").readBytes(), OrtSession.SessionOptions())",
        "fun embed(ids: LongArray): FloatArray {",
        "    val shape = longArrayOf(1, ids.size.toLong())",
        "    val inputs = mapOf(",
        "        \"input_ids\" to OnnxTensor.createTensor(env, LongBuffer.wrap(ids), shape),",
        "        \"attention_mask\" to OnnxTensor.createTensor(env, LongBuffer.wrap(LongArray(ids.size) { 1L }), shape)"
        + (",\n        \"token_type_ids\" to OnnxTensor.createTensor(env, LongBuffer.wrap(LongArray(ids.size)), shape))"
           if "token_type_ids" in names else ")"),
        "    session.run(inputs).use { return (it[0].value as Array<FloatArray>)[0] }",
        "}",
        "fun cosine(a: FloatArray, b: FloatArray): Float {",
        "    var dot = 0f; var na = 0f; var nb = 0f",
        "    for (i in a.indices) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i] }",
        "    return dot / (kotlin.math.sqrt(na) * kotlin.math.sqrt(nb) + 1e-12f)",
        "}",
        "// search: docs.indices.sortedByDescending { cosine(query, docVectors[it]) }.take(5)",
        "```",
        "",
    ]
    return "\n".join(out)


def _shorter_lines(e: dict) -> list[str]:
    """How to keep a smaller index with the bundle's basis (metadata.json embedding.shorter)."""
    spec = e.get("shorter")
    if not spec:
        return []
    smaller = ", ".join(f"{e['dim'] / d:g}×" for d in spec["dims"])
    return ["## Shorter vectors for a smaller index", "",
            f"`{spec['file']}` holds a basis that turns the vectors so that their leading dimensions carry most of the "
            f"similarity; cut to {', '.join(map(str, spec['dims']))} dimensions they make an index {smaller} smaller "
            "(int8 codes or one bit a dimension shrink it 4× / 32× more). Turn the documents' vectors the same way, the "
            "teacher's too "
            "(the report's \"Shorter stored vectors\" table says what each width keeps of the ranking).", "",
            "```python",
            "# pip install safetensors   # it reads the basis",
            "short_docs = emb.shorter(doc_vectors, " + str(spec["dims"][min(1, len(spec["dims"]) - 1)]) + ")",
            "hits = emb.search(\"a serial-killer mystery\", short_docs, top_k=2)  # the query is cut the same way",
            "```", ""]
