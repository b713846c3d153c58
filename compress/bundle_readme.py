"""README.md of an app bundle: what the files are and how an Android / iOS app or a Pi calls the model."""

from __future__ import annotations


def test_quality(entry: dict) -> float:
    """The task's metric on test as the bundle's metadata holds it (`test_accuracy` in bundles of earlier versions)."""
    return entry.get("test_quality", entry.get("test_accuracy"))


def _classifier_check(rc: dict) -> str:
    return (f"max Δlogit {rc.get('max_abs_diff_vs_pytorch', float('nan')):.1e}, "
            f"labels {100 * rc.get('label_agreement_vs_pytorch', float('nan')):.2f}%")


def _model_lines(meta: dict, quality: str = "test accuracy", check=_classifier_check) -> list[str]:
    """The bundle's model files; `quality` names what `test_quality` holds, `check` words the runner check."""
    lines = [f"| file | runtime | precision | inputs | MB | {quality} | runner check (dev) |", "|---|---|---|---|---:|---:|---|"]
    for m in meta["models"]:
        shape = f"[1, bucket] int32, buckets {m['buckets']}" if m.get("buckets") else "[batch, sequence] int64"
        lines.append(f"| `{m['file']}` | {m['runtime']} | {m['precision']} | {shape} | {m['size_bytes'] / 1e6:.2f} | "
                     f"{100 * test_quality(m):.2f}% | {check(m.get('runner_check', {}))} |")
    return lines


def _tokenization(meta: dict) -> list[str]:
    tok = meta["tokenizer"]
    specials = ", ".join(f"`{k}` = {v}" for k, v in tok["special_tokens"].items())
    if tok["type"] != "bert-wordpiece":  # byte-level BPE, Unigram, ...: no small pure-Python port
        return [f"A {tok['type']} tokenizer (special tokens {specials}), defined by `tokenizer.json`. Run it with the "
                "Hugging Face `tokenizers` library (`pip install tokenizers`: wheels for Linux x86-64 and aarch64, "
                "macOS, Windows; the runner uses it for this bundle), or a port of `tokenizer.json` on the phone. "
                f"At most {meta['max_length']} ids; `attention_mask` is 1 for every id."]
    return [
        f"BERT WordPiece, {'uncased: lower-case and strip accents' if tok['lowercase'] else 'cased'}. Clean the text "
        "(drop control characters, whitespace to spaces), put spaces around CJK characters, split on whitespace "
        "and around each punctuation character, then greedy longest-match word pieces (`##` marks a piece inside "
        "a word; a word with no match is `[UNK]`); special tokens typed in the text are matched as themselves. "
        f"Ids: `[CLS]` + pieces + `[SEP]` ({specials}), at most "
        f"{meta['max_length']} ids (cut the pieces, keep `[SEP]`). `attention_mask` is 1 for every id, "
        "`token_type_ids` 0. `runner/targets/tokenizer.py` is the reference to port (pure Python, no "
        "dependencies; a property-based test checks it gives exactly the Hugging Face tokenizer's ids)."]


# what each runtime needs on the device, as the README's `pip` line installs it (tests/test_bundle_readme.py runs every
# block in an environment holding exactly these packages)
DEVICE_INSTALL = {
    "onnxruntime": ["pip install numpy onnxruntime"],
    "litert": ["pip install numpy ai-edge-litert"],
    "executorch": ["pip install numpy", "pip install --no-deps executorch   # no torch; the runner builds a small C++ "
                                        "library with g++ once"],
}


def runtimes_of(meta: dict) -> list[str]:
    """The bundle's runtimes, its first model's first (what a command without --runtime runs)."""
    return list(dict.fromkeys(m["runtime"] for m in meta["models"]))


def device_python(meta: dict, command: str, code: list[str], heading: str) -> list[str]:
    """The Python section of a pi bundle's README: a shell block for the first model's runtime (`command` run with
    it, `check`, `bench`), one per other runtime (`command` with --runtime), then `code`; all run from the bundle's
    folder as written, each block needing only what its `pip` line installs."""
    first, *others = runtimes_of(meta)
    cmd = "PYTHONPATH=runner python -m targets"
    if meta["tokenizer"]["type"] != "bert-wordpiece":  # the runner tokenizes with Hugging Face tokenizers then
        install = {r: [line.replace("pip install numpy", "pip install numpy tokenizers", 1) for line in lines]
                   for r, lines in DEVICE_INSTALL.items()}
    else:
        install = DEVICE_INSTALL
    lines = [heading, "",
             "Run these from this folder: the runner is in `runner/` (no install); each block needs only what its `pip` "
             "line installs. `check` and `bench` go through every model whose runtime is installed and name the others "
             "with what to install (exit 0 when every model that ran passed, 1 when one failed, 2 for bad input).", "",
             "```sh", *install[first], f"{cmd} {command}",
             f"{cmd} check .   # every model whose runtime is here, on this CPU (int8 numerics differ by CPU)",
             f"{cmd} bench . --quick --out bench.json   # latency on this device, for `bert-compress report`", "```", ""]
    for runtime in others:
        file = next(m["file"] for m in meta["models"] if m["runtime"] == runtime)
        head, tail = command.split(" ", 1)
        lines += [f"`{file}`:", "", "```sh", *install[runtime], f"{cmd} {head} --runtime {runtime} {tail}", "```", ""]
    return lines + ["In Python (from this folder, after the first block's `pip` line):", "", "```python",
                    "import sys", "sys.path.insert(0, \"runner\")   # the runner ships in the bundle", *code, "```"]


def render(meta: dict) -> str:
    labels = meta["labels"]
    tok = meta["tokenizer"]
    onnx = next((m for m in meta["models"] if m["runtime"] == "onnxruntime"), None)
    tfl = next((m for m in meta["models"] if m["runtime"] == "litert"), None)
    pte = next((m for m in meta["models"] if m["runtime"] == "executorch"), None)
    buckets = tfl["buckets"] if tfl else [meta["max_length"]]
    ort_file = next((m["file"] for m in meta["models"] if m["file"].endswith(".ort")), onnx["file"] if onnx else "model.ort")
    out = [
        "# Text classifier bundle (bert-compress)",
        "",
        f"Labels (index order of the logits): {', '.join(f'{i} = `{lab}`' for i, lab in enumerate(labels))}. "
        f"Teacher: `{meta['teacher']['checkpoint']}` ({100 * test_quality(meta['teacher']):.2f}% test accuracy); "
        f"student {meta['student']['layers']} layers × {meta['student']['hidden_size']}. Made {meta['created']} "
        f"by bert-compress {meta['versions']['bert_compress']} (recipe `{meta['recipe']}`).",
        "",
        *_model_lines(meta),
        "",
        "Each model was run here through the torch-free runner (`runner/targets`, pure-Python tokenizer) on the "
        "dev split and compared with the PyTorch student; `metadata.json` has every number, the inputs and "
        "outputs, SHA-256 sums and the library versions.",
        "",
        "## Files",
        "",
        "- `model.onnx`: ONNX Runtime (desktop, server, Pi; for a phone app take the string-in `android-ort` / "
        "`ios-ort` bundle instead). Inputs `input_ids`, `attention_mask`, `token_type_ids`, "
        "int64, shape [batch, sequence]; output `logits` float32 [batch, labels]. An app that loads `model.onnx` "
        "itself should add the session config entries in `metadata.json` (`session_config`: ONNX Runtime's "
        "SkipLayerNorm fusion off, its CPU kernel is the slow path).",
        "- `model.tflite`: LiteRT (TensorFlow Lite). One signature per sequence bucket "
        f"({', '.join(f'`seq_{b}`' for b in buckets)}): batch 1, int32 inputs of exactly that length. Pad the "
        "tokens to the smallest bucket that holds them (pad id "
        f"{tok.get('pad_id', tok['special_tokens'].get('[PAD]', 0))} with attention_mask 0); output `output_0` float32 [1, labels].",
        *([f"- `{pte['file']}`: ExecuTorch (XNNPACK delegate; operators XNNPACK does not take run on ExecuTorch's "
            "portable kernels, listed in `metadata.json`). Method "
            + ", ".join(f"`{m}`" for m in pte.get("methods", ["forward"]))
            + ": batch 1, int64 inputs " + ", ".join(f"`{i['name']}`" for i in pte["inputs"])
            + " of the text's own length; output "
            "float32 [1, labels]. The runner calls ExecuTorch's C++ libraries from the `executorch` wheel through a small "
            "library it compiles once with g++ (`runner/targets/pte_native.cc`): no PyTorch."] if pte else []),
        (f"- `vocab.txt` (one word piece per line, line number = id; {tok['vocab_size']:,} pieces) and "
         "`tokenizer.json` (Hugging Face tokenizers format, the same vocabulary)." if tok.get("vocab") else
         f"- `tokenizer.json`: the tokenizer in Hugging Face tokenizers format ({tok['type']}, {tok['vocab_size']:,} tokens)."),
        "- `labels.txt`: one label per line, in logit order. `metadata.json`: everything above, machine-readable.",
        "- `check.json`: the dev texts and the PyTorch student's logits on them, with the bars the build used: "
        "`python -m targets check` runs every model on them on the device's own CPU (int8 kernels differ between "
        "AVX2, AVX-512 VNNI, AMX and ARM dot-product CPUs, and so do their int8 logits).",
        "- `runner/targets`: the Python runner (numpy + onnxruntime, ai-edge-litert or executorch; no PyTorch).",
        "",
        "## Tokenization (what the app must do before calling the model)",
        "",
        *_tokenization(meta),
        "",
        *device_python(meta, 'predict . "a gripping, beautifully acted film"', [
            "from targets.bundle import Classifier",
            f"clf = Classifier(\".\", runtime=\"{runtimes_of(meta)[0]}\", threads=1)",
            "print(clf.predict([\"a gripping, beautifully acted film\"])[0])"], "## Python (a Pi, a server): no PyTorch needed"),
        "",
        "The snippets below were written against the runtimes' documented APIs and **were not run here** "
        "(no Android or iOS toolchain on the build machine). `ids` are the token ids from the tokenizer.",
        "",
        "## Android (Kotlin), ONNX Runtime Mobile",
        "",
        "```kotlin",
        "// build.gradle: implementation(\"com.microsoft.onnxruntime:onnxruntime-android:<version>\")",
        "import ai.onnxruntime.*",
        "import java.nio.LongBuffer",
        "",
        "val env = OrtEnvironment.getEnvironment()",
        f"val session = env.createSession(context.assets.open(\"{ort_file}\").readBytes(), OrtSession.SessionOptions())",
        "fun classify(ids: LongArray): FloatArray {",
        "    val shape = longArrayOf(1, ids.size.toLong())",
        "    val inputs = mapOf(",
        "        \"input_ids\" to OnnxTensor.createTensor(env, LongBuffer.wrap(ids), shape),",
        "        \"attention_mask\" to OnnxTensor.createTensor(env, LongBuffer.wrap(LongArray(ids.size) { 1L }), shape),",
        "        \"token_type_ids\" to OnnxTensor.createTensor(env, LongBuffer.wrap(LongArray(ids.size)), shape))",
        "    session.run(inputs).use { result ->",
        "        return (result[0].value as Array<FloatArray>)[0]  // logits, labels.txt order",
        "    }",
        "}",
        "```",
        "",
        "## Android (Kotlin), LiteRT",
        "",
        "```kotlin",
        "// build.gradle: implementation(\"com.google.ai.edge.litert:litert:<version>\")",
        "import org.tensorflow.lite.Interpreter",
        "import org.tensorflow.lite.support.common.FileUtil",
        "",
        "val interpreter = Interpreter(FileUtil.loadMappedFile(context, \"model.tflite\"))",
        f"val buckets = intArrayOf({', '.join(map(str, buckets))})",
        "fun classify(ids: IntArray): FloatArray {",
        "    val bucket = buckets.first { it >= ids.size }",
        "    val padded = IntArray(bucket).also { ids.copyInto(it) }",
        "    val mask = IntArray(bucket) { if (it < ids.size) 1 else 0 }",
        "    val inputs = mapOf<String, Any>(\"input_ids\" to arrayOf(padded), \"attention_mask\" to arrayOf(mask),",
        "                                    \"token_type_ids\" to arrayOf(IntArray(bucket)))",
        f"    val logits = Array(1) {{ FloatArray({len(labels)}) }}",
        "    interpreter.runSignature(inputs, mapOf<String, Any>(\"output_0\" to logits), \"seq_$bucket\")",
        "    return logits[0]",
        "}",
        "```",
        "",
        "## iOS (Swift), ONNX Runtime Mobile",
        "",
        "```swift",
        "// Podfile: pod 'onnxruntime-objc'",
        "import onnxruntime_objc",
        "",
        "let env = try ORTEnv(loggingLevel: .warning)",
        f"let session = try ORTSession(env: env, modelPath: Bundle.main.path(forResource: \"{ort_file.rsplit('.', 1)[0]}\", "
        f"ofType: \"{ort_file.rsplit('.', 1)[1]}\")!, sessionOptions: nil)",
        "func classify(_ ids: [Int64]) throws -> [Float] {",
        "    let shape: [NSNumber] = [1, NSNumber(value: ids.count)]",
        "    func tensor(_ v: [Int64]) throws -> ORTValue {",
        "        try ORTValue(tensorData: NSMutableData(data: v.withUnsafeBytes { Data($0) }), elementType: .int64, shape: shape)",
        "    }",
        "    let out = try session.run(withInputs: [\"input_ids\": tensor(ids),",
        "                                           \"attention_mask\": tensor([Int64](repeating: 1, count: ids.count)),",
        "                                           \"token_type_ids\": tensor([Int64](repeating: 0, count: ids.count))],",
        "                              outputNames: [\"logits\"], runOptions: nil)",
        "    let data = try out[\"logits\"]!.tensorData() as Data",
        "    return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }",
        "}",
        "```",
        "",
        "## iOS (Swift), LiteRT",
        "",
        "```swift",
        "// Podfile: pod 'TensorFlowLiteSwift'",
        "import TensorFlowLite",
        "",
        "let interpreter = try Interpreter(modelPath: Bundle.main.path(forResource: \"model\", ofType: \"tflite\")!)",
        f"let buckets = [{', '.join(map(str, buckets))}]",
        "func classify(_ ids: [Int32]) throws -> [Float] {",
        "    let bucket = buckets.first { $0 >= ids.count }!",
        "    let padded = ids + [Int32](repeating: 0, count: bucket - ids.count)",
        "    let mask = [Int32](repeating: 1, count: ids.count) + [Int32](repeating: 0, count: bucket - ids.count)",
        "    let runner = try interpreter.signatureRunner(with: \"seq_\\(bucket)\")",
        "    try runner.allocateTensors()",
        "    try runner.invoke(with: [\"input_ids\": padded.withUnsafeBytes { Data($0) },",
        "                             \"attention_mask\": mask.withUnsafeBytes { Data($0) },",
        "                             \"token_type_ids\": Data(count: bucket * 4)])",
        "    let out = try runner.output(named: \"output_0\")",
        "    return out.data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }",
        "}",
        "```",
        "",
    ]
    text = "\n".join(out)
    inputs = {i["name"] for m in meta["models"] for i in m["inputs"]}
    return text if "token_type_ids" in inputs else _without_token_types(text)


# the snippets' code with the token_type_ids input left out (RoBERTa-style models have none)
_TOKEN_TYPE_EDITS = (
    (', shape),\n        "token_type_ids" to OnnxTensor.createTensor(env, LongBuffer.wrap(LongArray(ids.size)), shape))', ", shape))"),
    ('"attention_mask" to arrayOf(mask),\n                                    "token_type_ids" to arrayOf(IntArray(bucket)))',
     '"attention_mask" to arrayOf(mask))'),
    ('count: ids.count)),\n                                           "token_type_ids": tensor([Int64](repeating: 0, count: ids.count))],',
     "count: ids.count))],"),
    ('mask.withUnsafeBytes { Data($0) },\n                             "token_type_ids": Data(count: bucket * 4)])',
     "mask.withUnsafeBytes { Data($0) }])"),
    ("Inputs `input_ids`, `attention_mask`, `token_type_ids`,", "Inputs `input_ids`, `attention_mask`,"),
)


def _without_token_types(text: str) -> str:
    for old, new in _TOKEN_TYPE_EDITS:
        assert old in text, old  # the snippets above changed: keep these edits in step with them
        text = text.replace(old, new)
    return text
