"""What tests share besides fixtures: tiny checkpoints and data built on the spot, the torch-free runner, the extras
that are installed. Tests import these one way, `from tests.helpers import ...` (the repository root is on pytest's
pythonpath); fixtures live in conftest.py."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from compress.data.readers import default_data_dir
from compress.teacher import default_teacher_dir, quiet_transformers

# The tflite extra (litert-torch, ai-edge-litert, ai-edge-quantizer): without it the shared runs export ONNX only
# and the tests that need LiteRT skip with this reason.
HAS_TFLITE = all(importlib.util.find_spec(m) is not None for m in ("litert_torch", "ai_edge_litert", "ai_edge_quantizer"))
needs_tflite = pytest.mark.skipif(not HAS_TFLITE, reason="the tflite extra is not installed: pip install -e '.[tflite]'")
# The executorch extra: without it the shared `bundled` run has no .pte and the ExecuTorch tests skip.
HAS_EXECUTORCH = importlib.util.find_spec("executorch") is not None
needs_executorch = pytest.mark.skipif(not HAS_EXECUTORCH, reason="the executorch extra is not installed: pip install -e '.[executorch]'")


def benchmark_script(name: str):
    """benchmarks/<name>.py as a module (the scripts are not a package): what the tests of its functions import."""
    root = Path(__file__).resolve().parents[1] / "benchmarks"
    spec = importlib.util.spec_from_file_location(name, root / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_tiny_bert(path: Path, *, layers: int = 2, hidden: int = 32, heads: int = 2, seed: int = 0, head_labels=None) -> Path:
    """A random-weight BERT with the default teacher's tokenizer (so real text tokenises normally)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, BertModel

    quiet_transformers()
    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(default_teacher_dir())
    cfg = BertConfig(
        vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=hidden * 2, max_position_embeddings=128,
    )
    if head_labels:
        cfg.num_labels = len(head_labels)
        cfg.id2label = dict(enumerate(head_labels))
        cfg.label2id = {lab: i for i, lab in enumerate(head_labels)}
        model = BertForSequenceClassification(cfg)
    else:
        model = BertModel(cfg)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def rt_rows(split: str, n: int) -> list[dict]:
    lines = (default_data_dir() / f"{split}.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines[:n]]


def make_tiny_roberta(path: Path, *, kind: str = "roberta", seed: int = 0) -> Path:
    """A random-weight RoBERTa (byte-level BPE) or XLM-R (Unigram, Metaspace) encoder with a real tokenizer trained
    by the `tokenizers` library on the vendored train text: the non-WordPiece tokenizers a user's teacher may have."""
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, RobertaConfig, RobertaModel, XLMRobertaConfig, XLMRobertaModel

    quiet_transformers()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    texts = [json.loads(x)["text"] for x in (default_data_dir() / "train.jsonl").read_text().splitlines()[:3000]]
    if kind == "roberta":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=1500, special_tokens=specials,
                                                           initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
        tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
        config_cls, model_cls = RobertaConfig, RobertaModel
    elif kind == "xlm-roberta":
        tok = Tokenizer(models.Unigram())
        tok.normalizer = normalizers.NFKC()
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        tok.train_from_iterator(texts, trainers.UnigramTrainer(vocab_size=1500, special_tokens=specials, unk_token="<unk>"))
        tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
                                                           special_tokens=[("<s>", 0), ("</s>", 2)])
        config_cls, model_cls = XLMRobertaConfig, XLMRobertaModel
    else:
        raise ValueError(kind)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
                                   unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")
    cfg = config_cls(vocab_size=len(fast), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                     max_position_embeddings=130, pad_token_id=1, bos_token_id=0, eos_token_id=2, type_vocab_size=1)
    torch.manual_seed(seed)
    model_cls(cfg).save_pretrained(path)
    fast.save_pretrained(path)
    return path


def run_torch_free(bundle_root: Path, *args, stdin: str | None = None, blocked: tuple[str, ...] = (),
                   prefix: tuple[str, ...] = (), timeout: int = 120):
    """The bundle's own runner copy (`python -m targets ARGS`), in a Python where importing torch, transformers and
    the `blocked` modules fails, as on a device that has only the runner's requirements. `prefix`: an emulator
    command to run that Python under (e.g. qemu-x86_64-static -cpu Haswell)."""
    import subprocess
    import sys

    blocked = ("torch", "transformers", *blocked)
    # the editable install of this project is not on a device: drop its import hook so the bundle's copy is used
    code = ("import sys; sys.modules.update(dict.fromkeys(sys.argv[2].split(','))); "
            "sys.meta_path[:] = [f for f in sys.meta_path if '__editable__' not in getattr(f, '__module__', '')]; "
            "import targets; assert targets.__file__.startswith(sys.argv[1]), targets.__file__; "
            "from targets.__main__ import main; sys.exit(main(sys.argv[3:]))")
    env = dict(os.environ, PYTHONPATH=str(bundle_root / "runner"))
    return subprocess.run([*prefix, sys.executable, "-c", code, str(bundle_root / "runner"), ",".join(blocked), *args],
                          capture_output=True, text=True, env=env, input=stdin, timeout=timeout, cwd=bundle_root)


def aarch64_python_or_skip() -> None:
    """The emulated-ARM64 tests' one network step (Debian mirror, PyPI), once: cached in ~/.cache/bert-compress/arm64.
    Skips the test with the reason when this machine cannot prepare it."""
    from compress.bench.arm64 import default_cache, guest_python, prepare_sysroot, prepare_wheels
    from compress.errors import UserError

    try:
        root = prepare_sysroot(default_cache())
        prepare_wheels(default_cache(), guest_python(root).name.removeprefix("python"))
    except UserError as exc:
        pytest.skip(f"cannot prepare the aarch64 Python here: {exc}")


# ---- a device's Python: only the packages a bundle README's `pip` line installs ---------------------------------
IMPORT_NAMES = {"numpy": ["numpy", "numpy.libs"], "onnxruntime": ["onnxruntime"], "ai-edge-litert": ["ai_edge_litert"],
                "executorch": ["executorch"], "safetensors": ["safetensors"], "tokenizers": ["tokenizers"]}


def device_python(root: Path, packages: list[str]) -> Path:
    """A venv (no pip) whose site-packages holds exactly `packages`, linked from this interpreter's (their
    dist-info too): what `pip install --no-deps PACKAGES` gives a Pi, without the network. Returns its bin/ folder."""
    import site
    import subprocess
    import sys

    source = Path(site.getsitepackages()[0])
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    target = next((root / "lib").glob("python3*/site-packages"))
    for pkg in packages:
        names = IMPORT_NAMES[pkg] + [p.name for p in source.glob(f"{pkg.replace('-', '_')}-*.dist-info")]
        for name in names:
            if (source / name).exists():
                (target / name).symlink_to(source / name)
    return root / "bin"


def readme_blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of every fenced block of a README, in order."""
    import re

    return [(m.group(1), m.group(2)) for m in re.finditer(r"```(\w+)\n(.*?)```", text, flags=re.S)]


def pip_packages(code: str) -> list[str]:
    """The packages of a shell block's `pip install` lines (flags and comments dropped)."""
    found = []
    for line in code.splitlines():
        line = line.split("#", 1)[0].strip()
        for part in line.split("&&"):
            words = part.split()
            if words[:2] == ["pip", "install"]:
                found += [w for w in words[2:] if not w.startswith("-")]
    return found


def run_readme_as_written(folder: Path, work: Path, extra_python: tuple[str, ...] = ()) -> list[str]:
    """Every shell and Python block of `folder`/README.md, run from `folder` as written: each shell block in a Python
    holding exactly what its `pip` lines install, each Python block in the first block's (plus the packages a
    `# pip install ...` comment in it names). Returns each block's stdout + stderr; a block that fails fails the test."""
    import subprocess

    blocks = [(lang, code) for lang, code in readme_blocks((folder / "README.md").read_text(encoding="utf-8"))
              if lang in ("sh", "python")]
    assert blocks, f"{folder}/README.md has no shell or Python block"
    first: list[str] | None = None
    said = []
    for i, (lang, code) in enumerate(blocks):
        if lang == "sh":
            packages = pip_packages(code)
            assert packages, f"a shell block of {folder.name}/README.md installs nothing: {code!r}"
            first = first or packages
            cmd = ["bash", "-eo", "pipefail", "-c", "\n".join(line for line in code.splitlines()
                                                              if not line.lstrip().startswith("pip install"))]
        else:
            assert first is not None, "a Python block before any shell block names what to install"
            packages = first + [p for line in code.splitlines() if line.lstrip().startswith("# pip install")
                                for p in pip_packages(line.lstrip()[2:])]
            code = "\n".join(prev for kind, prev in blocks[:i] if kind == "python") + "\n" + code  # a block goes on from the last
            cmd = ["python", "-c", code]
        bin_dir = device_python(work / f"env{i}", list(dict.fromkeys(packages + list(extra_python))))
        env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(Path.home()), "LANG": "C.UTF-8",
               "TF_CPP_MIN_LOG_LEVEL": "2"}
        proc = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"{folder.name}/README.md block {i + 1} ({lang}) failed: {proc.stdout[-2000:]} {proc.stderr[-2000:]}"
        said.append(proc.stdout + proc.stderr)
    return said
