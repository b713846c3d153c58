"""The app snippets of the platform bundles' READMEs: strings in, answers out, a few lines each (Kotlin, Swift).

They were written against the libraries' documented APIs. None of them runs here (no Android or iOS toolchain on
the build machine): each README says so, and says which check did run (the same file through the same library's
Python or Node build)."""

from __future__ import annotations

NOT_RUN = ("This snippet was **not run here** (no {os} toolchain on the build machine); the model file itself was "
           "checked with the same library's {other} build, as written above.")


def litert_snippet(platform: str, api: str, model_file: str) -> list[str]:
    """api: the MediaPipe Tasks API that runs the file (TextClassifier or TextEmbedder)."""
    embedding = api == "TextEmbedder"
    stem, ext = model_file.rsplit(".", 1)
    if platform == "android":
        if embedding:
            body = ["import com.google.mediapipe.tasks.core.BaseOptions",
                    "import com.google.mediapipe.tasks.text.textembedder.TextEmbedder",
                    "",
                    "val embedder = TextEmbedder.createFromOptions(context, TextEmbedder.TextEmbedderOptions.builder()",
                    f"    .setBaseOptions(BaseOptions.builder().setModelAssetPath(\"{model_file}\").build()).build())",
                    "val a = embedder.embed(\"a gripping, beautifully acted film\").embeddingResult().embeddings()[0]",
                    "val b = embedder.embed(\"a moving story, wonderfully played\").embeddingResult().embeddings()[0]",
                    "val similarity = TextEmbedder.cosineSimilarity(a, b)",
                    "embedder.close()"]
        else:
            body = ["import com.google.mediapipe.tasks.core.BaseOptions",
                    "import com.google.mediapipe.tasks.text.textclassifier.TextClassifier",
                    "",
                    "val classifier = TextClassifier.createFromOptions(context, TextClassifier.TextClassifierOptions.builder()",
                    f"    .setBaseOptions(BaseOptions.builder().setModelAssetPath(\"{model_file}\").build()).build())",
                    "val result = classifier.classify(\"a gripping, beautifully acted film\")",
                    "val top = result.classificationResult().classifications()[0].categories().maxBy { it.score() }",
                    "println(\"${top.categoryName()} ${top.score()}\")",
                    "classifier.close()"]
        return ["## Kotlin (Android)", "", "```kotlin",
                "// build.gradle: implementation(\"com.google.mediapipe:tasks-text:<version>\"); put the .tflite in assets/",
                *body, "```", "", NOT_RUN.format(os="Android", other="Python")]
    if embedding:
        body = ["let embedder = try TextEmbedder(modelPath: path)",
                "let a = try embedder.embed(text: \"a gripping, beautifully acted film\").embeddingResult.embeddings[0]",
                "let b = try embedder.embed(text: \"a moving story, wonderfully played\").embeddingResult.embeddings[0]",
                "let similarity = try TextEmbedder.cosineSimilarity(embedding1: a, embedding2: b)"]
    else:
        body = ["let classifier = try TextClassifier(modelPath: path)",
                "let result = try classifier.classify(text: \"a gripping, beautifully acted film\")",
                "let top = result.classificationResult.classifications[0].categories.max { $0.score < $1.score }!",
                "print(top.categoryName ?? \"\", top.score)"]
    return ["## Swift (iOS)", "", "```swift", "// Podfile: pod 'MediaPipeTasksText'", "import MediaPipeTasksText", "",
            f"let path = Bundle.main.path(forResource: \"{stem}\", ofType: \"{ext}\")!", *body, "```", "",
            NOT_RUN.format(os="iOS", other="Python")]


def _kotlin_ort_session(model_file: str) -> list[str]:
    """The Gradle lines, imports and session of the string-in ONNX model (the extensions registered)."""
    return ["// build.gradle: implementation(\"com.microsoft.onnxruntime:onnxruntime-android:<version>\")",
            "//               implementation(\"com.microsoft.onnxruntime:onnxruntime-extensions-android:<version>\")",
            "import ai.onnxruntime.*",
            "import ai.onnxruntime.extensions.OrtxPackage",
            "",
            "val env = OrtEnvironment.getEnvironment()",
            "val options = OrtSession.SessionOptions().apply {",
            "    registerCustomOpLibrary(OrtxPackage.getLibraryPath())  // the tokenizer's operators",
            "    addConfigEntry(\"optimization.disable_specified_optimizers\", \"SkipLayerNormFusion\")",
            "}",
            f"val session = env.createSession(context.assets.open(\"{model_file}\").readBytes(), options)"]


def ort_snippet(platform: str, task, model_file: str, text_input: str, output: str) -> list[str]:
    """task: what the outputs are (labelled_outputs: scores over labels, else a vector; per_token: a token
    classifier's string-in model, tag logits per token and each token's character span)."""
    embedding, tokens = not task.labelled_outputs, task.per_token
    stem, ext = model_file.rsplit(".", 1)
    what = "vector" if embedding else "logits, labels.txt order"
    if platform == "android" and tokens:
        return ["## Kotlin (Android)", "", "```kotlin", *_kotlin_ort_session(model_file),
                "val tags = context.assets.open(\"labels.txt\").bufferedReader().readLines()",
                "// (tag of each token, its [start, end) in the text); [CLS] / [SEP] have the span [0, 0]",
                "fun tagTokens(text: String): List<Pair<String, LongArray>> =",
                "    OnnxTensor.createTensor(env, arrayOf(text), longArrayOf(1)).use { input ->",
                f"        session.run(mapOf(\"{text_input}\" to input)).use {{ result ->",
                f"            val logits = (result.get(\"{output}\").get().value as Array<Array<FloatArray>>)[0]",
                "            val spans = result.get(\"offset_mapping\").get().value as Array<LongArray>",
                "            logits.indices.map { k -> tags[logits[k].indices.maxBy { logits[k][it] }] to spans[k] }",
                "        }",
                "    }",
                "// entities: a word's first token decides its tag; B-TYPE starts one, I-TYPE continues it, O ends it",
                "```", "", NOT_RUN.format(os="Android", other="Python")]
    if tokens:
        return ["## Swift (iOS)", "", "```swift",
                "// Podfile: pod 'onnxruntime-objc'; pod 'onnxruntime-extensions-c'",
                "import onnxruntime_objc",
                "",
                "let env = try ORTEnv(loggingLevel: .warning)",
                "let options = try ORTSessionOptions()",
                "try options.registerCustomOps(functionPointer: RegisterCustomOps)  // onnxruntime_extensions.h",
                f"let session = try ORTSession(env: env, modelPath: Bundle.main.path(forResource: \"{stem}\", ofType: \"{ext}\")!,",
                "                             sessionOptions: options)",
                "// tag logits [tokens × tags] (labels.txt order) and each token's [start, end) character span",
                "func tagTokens(_ text: String) throws -> (logits: [Float], spans: [Int64]) {",
                "    let input = try ORTValue(tensorStringData: [text], shape: [1])",
                f"    let out = try session.run(withInputs: [\"{text_input}\": input], outputNames: [\"{output}\", \"offset_mapping\"], runOptions: nil)",
                f"    let logits = try out[\"{output}\"]!.tensorData() as Data",
                "    let spans = try out[\"offset_mapping\"]!.tensorData() as Data",
                "    return (logits.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) },",
                "            spans.withUnsafeBytes { Array($0.bindMemory(to: Int64.self)) })",
                "}",
                "```", "", NOT_RUN.format(os="iOS", other="Python")]
    if platform == "android":
        return ["## Kotlin (Android)", "", "```kotlin", *_kotlin_ort_session(model_file),
                "fun run(text: String): FloatArray =",
                "    OnnxTensor.createTensor(env, arrayOf(text), longArrayOf(1)).use { input ->",
                f"        session.run(mapOf(\"{text_input}\" to input)).use {{ result ->",
                f"            (result.get(\"{output}\").get().value as Array<FloatArray>)[0]  // {what}",
                "        }",
                "    }",
                "```", "", NOT_RUN.format(os="Android", other="Python")]
    return ["## Swift (iOS)", "", "```swift",
            "// Podfile: pod 'onnxruntime-objc'; pod 'onnxruntime-extensions-c'",
            "import onnxruntime_objc",
            "",
            "let env = try ORTEnv(loggingLevel: .warning)",
            "let options = try ORTSessionOptions()",
            "try options.registerCustomOps(functionPointer: RegisterCustomOps)  // onnxruntime_extensions.h: the tokenizer",
            "try options.addConfigEntry(withKey: \"optimization.disable_specified_optimizers\", value: \"SkipLayerNormFusion\")",
            f"let session = try ORTSession(env: env, modelPath: Bundle.main.path(forResource: \"{stem}\", ofType: \"{ext}\")!,",
            "                             sessionOptions: options)",
            "func run(_ text: String) throws -> [Float] {",
            "    let input = try ORTValue(tensorStringData: [text], shape: [1])",
            f"    let out = try session.run(withInputs: [\"{text_input}\": input], outputNames: [\"{output}\"], runOptions: nil)",
            f"    let data = try out[\"{output}\"]!.tensorData() as Data",
            f"    return data.withUnsafeBytes {{ Array($0.bindMemory(to: Float.self)) }}  // {what}",
            "}",
            "```", "", NOT_RUN.format(os="iOS", other="Python")]


def executorch_snippet(model_file: str, methods: list[str], inputs: list[str], task) -> list[str]:
    """Kotlin for ExecuTorch's Android library: ids in (the app's WordPiece), the task output out."""
    embedding, tokens = not task.labelled_outputs, task.per_token
    dynamic = methods == ["forward"]
    call = ("module.forward(*feeds)" if dynamic else
            "module.execute(\"seq_$bucket\", *feeds)  // bucket: the smallest of " + ", ".join(m.split("_", 1)[1] for m in methods)
            + " that holds ids.size")
    length = "ids.size" if dynamic else "bucket"
    use = ("val vector = out  // the sentence vector" if embedding else
           "val tags = out.toList().chunked(out.size / " + length + ")  // one row of tag logits per token" if tokens else
           "val label = labels[out.indices.maxBy { out[it] }]")
    feeds = {"input_ids": "ids", "attention_mask": "LongArray(ids.size) { 1L }", "token_type_ids": "LongArray(ids.size)"}
    body = [
        "import org.pytorch.executorch.EValue",
        "import org.pytorch.executorch.Module",
        "import org.pytorch.executorch.Tensor",
        "",
        f"val module = Module.load(File(context.filesDir, \"{model_file}\").absolutePath)  // copied out of assets/ first",
        "val ids: LongArray = wordPiece(\"a gripping, beautifully acted film\")  // [CLS] ... [SEP], vocab.txt",
        *([] if dynamic else ["// pad ids (0) and the mask (0) to the bucket's length"]),
        "val feeds = arrayOf(" + ", ".join(f"EValue.from(Tensor.fromBlob({feeds[n]}, longArrayOf(1, {length}.toLong())))"
                                           for n in inputs) + ")",
        f"val out = {call}[0].toTensor().dataAsFloatArray",
        use,
    ]
    return ["## Kotlin (Android)", "", "```kotlin",
            "// build.gradle: implementation(\"org.pytorch:executorch-android:<the release that wrote the .pte>\")",
            *body, "```", "", NOT_RUN.format(os="Android", other="Python")]
