"""The web bundle (OUT/bundle/web): a transformers.js model folder, checked with @huggingface/transformers under Node.

Layout transformers.js loads (`pipeline(task, folder)` / `AutoModel.from_pretrained(folder)`): `config.json`,
`tokenizer.json`, `tokenizer_config.json`, `onnx/model.onnx` (fp32, `dtype: "fp32"`) and
`onnx/model_quantized.onnx` (the fastest verified int8 ONNX file, `dtype: "q8"`). transformers.js tokenizes in
JavaScript from tokenizer.json, so the graphs take ids. The check runs `web_check.mjs` (this folder) with Node on
the dev split, one text per call, for both files, when Node and the npm package are installed (WEB_SETUP);
otherwise the bundle is built and the report says it was not run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from compress.bench.record import Measured
from compress.errors import first_line
from compress.fsutil import write_json, write_text
from compress.platforms.base import HOST, BundleInput, ModelCheck, Platform, PlatformBundle
from compress.progress import info

TRANSFORMERS_JS = "@huggingface/transformers@4.3.2"
NODE_HOME_ENV = "BERT_COMPRESS_NODE_HOME"
"""A folder whose node_modules holds @huggingface/transformers (default: ~/.cache/bert-compress/node)."""
CHECK_SCRIPT = Path(__file__).with_name("web_check.mjs")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def node_home() -> Path:
    return Path(os.environ.get(NODE_HOME_ENV) or Path.home() / ".cache" / "bert-compress" / "node")


def web_setup_command() -> str:
    # onnxruntime-node's install script fetches CUDA add-ons; its CPU binaries are in the npm package already
    return f"ONNXRUNTIME_NODE_INSTALL=skip npm install --prefix {node_home()} {TRANSFORMERS_JS}"


def transformers_js_missing() -> str | None:
    """Why the Node check cannot run here (None: it can)."""
    if shutil.which("node") is None:
        return "Node.js is not installed (node is not on PATH)"
    if not (node_home() / "node_modules" / "@huggingface" / "transformers" / "package.json").is_file():
        return f"@huggingface/transformers is not installed for the check: {web_setup_command()}"
    return None


def _config(inp: BundleInput) -> dict:
    """The student's config.json as transformers.js reads it (model_type picks the architecture; id2label the
    labels a text-classification pipeline returns)."""
    src = inp.tokenizer_dir / "config.json"
    config = json.loads(src.read_text(encoding="utf-8"))
    if inp.task.labelled_outputs:
        config["id2label"] = {str(i): lab for i, lab in enumerate(inp.label_names)}
        config["label2id"] = {lab: i for i, lab in enumerate(inp.label_names)}
    return config


def _pick_quantized(inp: BundleInput) -> Measured | None:
    """The fastest verified int8 ONNX artifact (onnx/model_quantized.onnx)."""
    return next((a for a in inp.eligible("onnxruntime", PLATFORM) if a.precision != "fp32"), None)


def run_check(folder: Path, texts: list[str], dtype: str, task: str, timeout: float = 1800) -> dict:
    """web_check.mjs over `texts` on the bundle folder; returns its JSON (per-text ids and outputs, timings)."""
    home = node_home()
    with tempfile.TemporaryDirectory(dir=home) as work:  # the script must sit beside node_modules to import it
        work = Path(work)
        shutil.copy2(CHECK_SCRIPT, work / "web_check.mjs")
        (work / "texts.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
        proc = subprocess.run(["node", str(work / "web_check.mjs"), str(folder.resolve()), str(work / "texts.jsonl"),
                               str(work / "out.json"), "--dtype", dtype, "--task", task],
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"node web_check.mjs failed ({proc.returncode}): "
                               f"{first_line(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'no output')}")
        return json.loads((work / "out.json").read_text(encoding="utf-8"))


def _check(inp: BundleInput, folder: Path, dtype: str, quantized: bool) -> ModelCheck:
    got = run_check(folder, inp.texts, dtype, inp.task.transformers_js_pipeline)
    key = inp.task.transformers_js_output
    outputs = inp.same_shape(np.array([r[key] for r in got["results"]], dtype=np.float32), "transformers.js")
    agreement, bar = inp.agreement(outputs), inp.bar(quantized)
    m = got["meta"]
    return ModelCheck(
        f"transformers.js {m['transformers_js']} (Node {m['node']}, onnxruntime-node {m['onnxruntime_node']})",
        len(outputs), agreement, inp.agreement_name, bar, agreement >= bar,
        float(np.abs(outputs - inp.reference).max()), inp.dev_quality(outputs),
        round(1000 * m["run_s"] / max(1, len(outputs)), 3), [f"dtype {dtype}"])


def build(inp: BundleInput, folder: Path) -> PlatformBundle:
    fp32 = inp.typed.get("student-onnx-fp32")
    if fp32 is None:
        return PlatformBundle("web", PLATFORM.title, skipped="no verified fp32 ONNX export (student-onnx-fp32)")
    if not inp.kind.transformer:
        return PlatformBundle("web", PLATFORM.title, skipped=f"{inp.kind.not_a_transformer}: no transformers.js "
                              "architecture runs it; use the pi bundle")
    if not (inp.tokenizer_dir / "tokenizer.json").is_file():
        return PlatformBundle("web", PLATFORM.title, skipped="the student has no tokenizer.json for transformers.js")
    if inp.task.transformers_js_pipeline is None:
        return PlatformBundle("web", PLATFORM.title, skipped=inp.task.web_unsupported)
    write_json(folder / "config.json", _config(inp))
    for name in TOKENIZER_FILES:
        if (inp.tokenizer_dir / name).is_file():
            shutil.copy2(inp.tokenizer_dir / name, folder / name)
    # transformers.js truncates at model_max_length: the length the student was trained, exported and checked at
    tok_config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8")) \
        if (folder / "tokenizer_config.json").is_file() else {}
    write_json(folder / "tokenizer_config.json", tok_config | {"model_max_length": inp.max_length})
    (folder / "onnx").mkdir()
    shutil.copy2(inp.out / fp32.path, folder / "onnx" / "model.onnx")
    quantized = _pick_quantized(inp)
    if quantized is not None:
        shutil.copy2(inp.out / quantized.path, folder / "onnx" / "model_quantized.onnx")
    shipped = (quantized.name, quantized.precision) if quantized else (fp32.name, "fp32")
    dtype = "q8" if quantized else "fp32"
    missing = transformers_js_missing()
    check, rejected, notes = None, [], []
    if missing:
        notes.append(f"not checked here: {missing}")
        info(f"[yellow]bundle web[/]: built, not checked: {missing}")
    else:
        for file, d, q in (("onnx/model.onnx", "fp32", False), *((("onnx/model_quantized.onnx", "q8", True),) if quantized else ())):
            try:
                c = _check(inp, folder, d, q)
            except Exception as exc:  # noqa: BLE001 - a failed check removes the file, never the bundle stage
                c = None
                reason = f"transformers.js could not run it: {first_line(exc)}"
            else:
                info(f"bundle web/{file} through {c.tool}: {c.agreement_name} {c.agreement:.4f}"
                     + (f", dev accuracy {100 * c.dev_quality:.2f}%" if c.dev_quality is not None else "")
                     + f", {c.ms_per_text:.2f} ms per text")
                reason = None if c.passed else f"{c.agreement_name} {c.agreement:.4f} under the bar {c.bar}"
            if reason:
                rejected.append({"file": file, "reason": reason})
                (folder / file).unlink()
                if q:
                    shipped, dtype = (fp32.name, "fp32"), "fp32"
                continue
            if d == dtype:
                check = c
            elif c is not None:
                notes.append(f"{file}: {c.agreement_name} {c.agreement:.4f}, max abs Δ {c.max_abs_diff:.1e}")
        if not (folder / "onnx" / "model.onnx").is_file() and not (folder / "onnx" / "model_quantized.onnx").is_file():
            return PlatformBundle("web", PLATFORM.title, rejected=rejected,
                                  skipped="transformers.js did not reproduce the student with any ONNX file: "
                                  + "; ".join(r["reason"] for r in rejected))
    if check is not None:
        check.notes = notes + check.notes
    write_text(folder / "README.md", readme(inp, dtype, check, notes))
    return PlatformBundle("web", PLATFORM.title, model_file="onnx/model_quantized.onnx" if dtype == "q8" else "onnx/model.onnx",
                          artifact=shipped[0], precision=shipped[1], string_in=False, check=check,
                          rejected=rejected, details={"dtype": dtype, "notes": notes})


def readme(inp: BundleInput, dtype: str, check: ModelCheck | None, notes: list[str]) -> str:
    name = "my-model"
    ran = (f"The snippet below was run here under Node with {check.tool} on the {check.rows} dev texts "
           f"({check.agreement_name} with the PyTorch student {100 * check.agreement:.2f}%)."
           if check else "The snippet below was **not run here** (" + "; ".join(notes) + ").")
    if inp.task.transformers_js_pipeline == "feature-extraction":  # the model's own sentence_embedding output
        js = [f"const extractor = await AutoModel.from_pretrained('{name}', {{ dtype: '{dtype}' }});",
              f"const tokenizer = await AutoTokenizer.from_pretrained('{name}');",
              "const inputs = tokenizer(['a gripping, beautifully acted film'], { padding: true, truncation: true });",
              "const { sentence_embedding } = await extractor(inputs);  // [texts, dim], L2-normalised when the teacher's is",
              "console.log(sentence_embedding.tolist()[0].slice(0, 4));"]
        imports = "import { env, AutoModel, AutoTokenizer } from '@huggingface/transformers';"
    else:
        js = [f"const classify = await pipeline('text-classification', '{name}', {{ dtype: '{dtype}' }});",
              "console.log(await classify('a gripping, beautifully acted film'));  // [{ label, score }]"]
        imports = "import { env, pipeline } from '@huggingface/transformers';"
    return "\n".join([
        "# Web bundle (transformers.js)",
        "",
        "A model folder in the layout `@huggingface/transformers` (transformers.js) loads in the browser or Node: "
        "`config.json`, `tokenizer.json` (+ `tokenizer_config.json`), `onnx/model.onnx` (fp32, `dtype: 'fp32'`)"
        + (" and `onnx/model_quantized.onnx` (int8, `dtype: 'q8'`, the smaller and faster one)." if dtype == "q8" else "."),
        f"transformers.js tokenizes in JavaScript from `tokenizer.json` and truncates to {inp.max_length} tokens "
        "(`model_max_length` in tokenizer_config.json): a longer text is cut there. It cuts the ids without putting "
        "`[SEP]` back at the end (the Python tokenizers keep `[SEP]` last), so only such long texts can score "
        "slightly differently from the student.",
        "",
        "Serve this folder as `/models/my-model/` next to your page (or copy it into your app's model directory):",
        "",
        "```js",
        imports,
        "env.allowRemoteModels = false;      // load from your own server, never a hub",
        "env.localModelPath = '/models/';",
        *js,
        "```",
        "",
        ran + " In a browser the same graphs run on onnxruntime-web's WebAssembly kernels (not run here). The int8 "
        "file may use ONNX Runtime's contrib operators (com.microsoft); onnxruntime-web and onnxruntime-node run them.",
        "",
    ])


PLATFORM = Platform("web", "Web (transformers.js)", build, (HOST,))  # checked in its own WASM runtime, here
