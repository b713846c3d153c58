"""ARM64 without ARM hardware: run a bundle through its own torch-free runner under qemu-user.

`bert-compress arm64 BUNDLE --out DIR`:
1. prepares (once, cached) an aarch64 Debian sysroot with Python, from the Debian mirror in this machine's own
   apt sources (debootstrap --download-only, then dpkg-deb -x: no chroot, no binfmt), and aarch64 wheels of
   numpy, onnxruntime and ai-edge-litert (the host's versions where PyPI has them);
2. for each CPU model (Cortex-A72 = Raspberry Pi 4, Cortex-A76 = Pi 5): classifies the same texts with every
   model of the bundle and checks the logits against the same runner on this x86 machine (max |Δ| ≤ 1e-4);
3. times the bundle with `python -m targets bench` under emulation. Those results are marked emulated: an
   emulator runs hundreds of times slower than the chip, so they rank models, they are not device latencies.

Traps handled (../shared/notes/toolchain.md): QEMU 7.2 shows the guest the host's x86 /proc/cpuinfo and the
runtimes then crash, so the sysroot gets an ARM cpuinfo for the emulated core; the default `max` CPU enables
SVE/SME and is ~15x slower, so a named core is always passed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from compress.errors import UserError
from compress.fsutil import atomic_dir, write_json
from compress.progress import info

CHECK_ATOL = 1e-4
# A model that quantizes activations per call (int8 compute) is discontinuous: a last-bit fp32 difference
# upstream (another CPU's GELU / layer norm kernels) can move one activation across an int8 rounding step, and
# that moves the logits by about the size of the model's own quantization error. Such a model passes when
# every label agrees and its largest difference stays within that error (its max |Δlogit| against the fp32
# PyTorch student, measured on dev when it was built); the report still gives the difference against 1e-4.
# /proc/cpuinfo the guest reads per emulated core (the Pi 4 file from ../shared/arm; the Pi 5 one with the
# A76's part number and features). The runtimes read their kernels' features from the auxv hwcaps qemu sets.
CPUS = {
    "cortex-a72": {"part": "0xd08", "variant": "0x0", "revision": "3", "hardware": "BCM2835",
                   "model": "Raspberry Pi 4 Model B (emulated)", "features": "fp asimd evtstrm crc32 cpuid"},
    "cortex-a76": {"part": "0xd0b", "variant": "0x4", "revision": "1", "hardware": "BCM2712",
                   "model": "Raspberry Pi 5 Model B (emulated)",
                   "features": "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"},
    "cortex-a53": {"part": "0xd03", "variant": "0x0", "revision": "4", "hardware": "BCM2835",
                   "model": "Raspberry Pi 3 Model B (emulated)", "features": "fp asimd evtstrm crc32 cpuid"},
}
WHEELS = ("numpy", "onnxruntime", "ai-edge-litert")


def cpuinfo_text(cpu: str, cores: int) -> str:
    c = CPUS[cpu]
    block = (f"BogoMIPS\t: 108.00\nFeatures\t: {c['features']}\nCPU implementer\t: 0x41\nCPU architecture: 8\n"
             f"CPU variant\t: {c['variant']}\nCPU part\t: {c['part']}\nCPU revision\t: {c['revision']}\n")
    return "".join(f"processor\t: {i}\n{block}\n" for i in range(cores)) + f"Hardware\t: {c['hardware']}\nModel\t\t: {c['model']}\n"


def qemu_binary() -> str:
    for name in ("qemu-aarch64-static", "qemu-aarch64"):
        if shutil.which(name):
            return shutil.which(name)
    raise UserError("qemu-user is not installed: `apt-get install qemu-user-static debootstrap` (Debian/Ubuntu), then re-run")


def debian_mirror() -> tuple[str, str]:
    """(mirror URL, suite) from this machine's apt sources: never a hard-coded host."""
    override = os.environ.get("BERT_COMPRESS_DEBIAN_MIRROR")
    suite = _os_codename()
    if override:
        return override, suite
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.sources")),
               *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]
    for path in sources:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for uri in re.findall(r"^\s*(?:deb\s+(?:\[[^\]]*\]\s+)?|URIs:\s*)(\S+)", text, flags=re.M):
            if re.search(r"/debian/?$", uri) and "security" not in uri:
                return uri.rstrip("/"), suite
    raise UserError("no Debian mirror found in /etc/apt/sources.list*: set BERT_COMPRESS_DEBIAN_MIRROR to one "
                    "(e.g. your organisation's mirror) and re-run")


def _os_codename() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("VERSION_CODENAME=") and line.split("=", 1)[1].strip():
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "bookworm"


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bert-compress" / "arm64"


def _run(cmd: list[str], what: str, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise UserError(f"{what} failed (exit {proc.returncode}): {tail[0][:300]}")
    return proc


@contextlib.contextmanager
def _building(path: Path):
    """Fill a temporary sibling, rename it into place when finished (modes and symlinks kept as unpacked)."""
    tmp = path.with_name(f".tmp-{path.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)


def prepare_sysroot(cache: Path) -> Path:
    """An aarch64 Debian root with python3 (cached: a finished one has a .ready marker)."""
    root = cache / "sysroot"
    if (root / ".ready").is_file():
        return root
    if not shutil.which("debootstrap") or not shutil.which("dpkg-deb"):
        raise UserError("debootstrap / dpkg-deb are not installed: `apt-get install debootstrap`, then re-run")
    mirror, suite = debian_mirror()
    info(f"arm64: downloading an aarch64 Debian {suite} Python from {mirror} (once; cached in {cache})")
    cache.mkdir(parents=True, exist_ok=True)
    with _building(root) as tmp:
        download = cache / "debs"
        shutil.rmtree(download, ignore_errors=True)
        _run(["debootstrap", "--arch=arm64", "--download-only", "--variant=minbase", "--include=python3,ca-certificates",
              suite, str(download), mirror], "debootstrap --download-only")
        debs = sorted((download / "var" / "cache" / "apt" / "archives").glob("*.deb"))
        if not debs:
            raise UserError(f"debootstrap downloaded no packages into {download}")
        for deb in debs:
            _run(["dpkg-deb", "-x", str(deb), str(tmp)], f"dpkg-deb -x {deb.name}")
        for d in ("bin", "sbin", "lib"):  # merged /usr: the loader and python live under usr/
            top, usr = tmp / d, tmp / "usr" / d
            if top.is_dir() and not top.is_symlink():
                shutil.copytree(top, usr, symlinks=True, dirs_exist_ok=True)
                shutil.rmtree(top)
            if not top.exists():
                top.symlink_to(f"usr/{d}")
        (tmp / "proc").mkdir(exist_ok=True)
        (tmp / ".ready").write_text(f"{mirror} {suite}\n")
        shutil.rmtree(download, ignore_errors=True)
    return root


def core_view(root: Path, cpu: str) -> Path:
    """The sysroot as one CPU model's guest sees it: links to every top-level entry but proc/, which holds that
    core's own /proc/cpuinfo, so guests of several cores can run at once from one sysroot."""
    view = root.parent / f"view-{cpu}"
    if not (view / ".ready").is_file():
        with _building(view) as tmp:
            for entry in root.iterdir():
                if entry.name not in ("proc", ".ready"):
                    (tmp / entry.name).symlink_to(entry.resolve() if entry.is_symlink() else entry)
            (tmp / "proc").mkdir()
            (tmp / ".ready").write_text(f"{root}\n")
    return view


def guest_python(root: Path) -> Path:
    found = sorted((root / "usr" / "bin").glob("python3.[0-9]*"), key=lambda p: len(p.name))
    found = [p for p in found if re.fullmatch(r"python3\.\d+", p.name)]
    if not found:
        raise UserError(f"the sysroot {root} has no python3: delete it and re-run")
    return found[0]


def prepare_wheels(cache: Path, py: str) -> Path:
    """aarch64 wheels for the guest Python: the host's runtime versions where PyPI has them, else the newest."""
    from importlib.metadata import PackageNotFoundError, version

    site = cache / f"site-{py}"
    if (site / ".ready").is_file():
        return site
    tag = py.replace(".", "")
    base = ["--only-binary=:all:", "--python-version", py, "--implementation", "cp", "--abi", f"cp{tag}",
            "--platform", "manylinux2014_aarch64", "--platform", "manylinux_2_27_aarch64",
            "--platform", "manylinux_2_28_aarch64", "--platform", "manylinux_2_17_aarch64"]
    with _building(site) as tmp:
        for name in WHEELS:
            try:
                wanted = [f"{name}=={version(name)}", name]
            except PackageNotFoundError:
                wanted = [name]
            for spec in wanted:
                info(f"arm64: aarch64 wheel {spec} for Python {py}")
                proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                                       "--target", str(tmp), *base, spec], capture_output=True, text=True)
                if proc.returncode == 0:
                    break
            else:
                raise UserError(f"pip found no aarch64 wheel of {name} for Python {py}: "
                                f"{(proc.stderr.strip().splitlines() or ['?'])[-1][:200]}")
        (tmp / ".ready").write_text("ok\n")
    return site


CROSS_CXX = "aarch64-linux-gnu-g++"


def prepare_executorch(cache: Path, py: str) -> tuple[Path, Path]:
    """The aarch64 executorch wheel (only its C++ libraries are used: no torch, which PyPI has for aarch64 only as a
    CUDA build) and the torch-free ExecuTorch library (targets/pte_native.cc) cross-compiled against it. Returns
    (the folder to put on the guest's path, the library for $BERT_COMPRESS_PTE_NATIVE)."""
    from importlib.metadata import PackageNotFoundError, version

    from targets.executorch_native import NativeUnavailable, build

    site = cache / f"site-executorch-{py}"
    lib = site / "libbcx_pte.so"
    if (site / ".ready").is_file():
        return site, lib
    if not shutil.which(CROSS_CXX):
        raise UserError(f"{CROSS_CXX} is not installed: `apt-get install g++-aarch64-linux-gnu` (it builds the "
                        "torch-free ExecuTorch library for the guest), then re-run")
    try:
        spec = f"executorch=={version('executorch').split('+')[0]}"
    except PackageNotFoundError:
        spec = "executorch"
    tag = py.replace(".", "")
    info(f"arm64: aarch64 wheel {spec} for Python {py} (its C++ libraries) and the torch-free library for it")
    with _building(site) as tmp:
        proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                               "--target", str(tmp), "--only-binary=:all:", "--python-version", py, "--implementation",
                               "cp", "--abi", f"cp{tag}", "--platform", "manylinux_2_28_aarch64", spec],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise UserError(f"pip found no aarch64 wheel of {spec} for Python {py}: "
                            f"{(proc.stderr.strip().splitlines() or ['?'])[-1][:200]}")
        try:
            build(tmp / "executorch", tmp / lib.name, cxx=CROSS_CXX, libs_at=site / "executorch" / "lib")
        except NativeUnavailable as exc:
            raise UserError(str(exc)) from None
        (tmp / ".ready").write_text("ok\n")
    return site, lib


class Guest:
    """The bundle's runner under qemu-aarch64 for one CPU model. `executorch`: prepare_executorch's (folder,
    library), for .pte files."""

    def __init__(self, root: Path, site: Path, runner_dir: Path, cpu: str, executorch: tuple[Path, Path] | None = None):
        self.root, self.site, self.runner_dir, self.cpu = root, site, runner_dir, cpu
        self.executorch = executorch
        self.qemu = qemu_binary()
        self.python = guest_python(root)
        (root / "proc" / "cpuinfo").write_text(cpuinfo_text(cpu, os.cpu_count() or 1))

    @property
    def label(self) -> str:
        return f"qemu-aarch64 -cpu {self.cpu}"

    def run(self, args: list[str], stdin: str | None = None, what: str = "") -> str:
        # the guest's /proc/cpuinfo: written per run, as CPU models share one sysroot
        (self.root / "proc" / "cpuinfo").write_text(cpuinfo_text(self.cpu, os.cpu_count() or 1))
        env = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8",
               "PYTHONPATH": f"{self.runner_dir}:{self.site}", "TF_CPP_MIN_LOG_LEVEL": "2"}
        if self.executorch:
            env["PYTHONPATH"] += f":{self.executorch[0]}"
            env["BERT_COMPRESS_PTE_NATIVE"] = str(self.executorch[1])
        module = args[0] if args and args[0].startswith("targets.") else "targets"  # e.g. targets.bench's worker
        args = args[1:] if module != "targets" else args
        cmd = [self.qemu, "-cpu", self.cpu, "-L", str(self.root), str(self.python), "-m", module, *args]
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env, cwd=self.runner_dir)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}, no output"])[-1]
            raise UserError(f"{what or 'runner'} under {self.label} failed (exit {proc.returncode}): {tail[:300]}")
        return proc.stdout


def fresh_runner(cache: Path) -> Path:
    """This version's runner files (what a bundle ships in runner/) alone in a directory: the guest's path must not
    see the host's site-packages, whose x86 numpy would shadow the aarch64 one."""
    import targets

    from targets.bundle import RUNNER_FILES

    cache.mkdir(parents=True, exist_ok=True)
    runner = Path(tempfile.mkdtemp(prefix="runner-", dir=cache))  # one per run: runs may overlap
    (runner / "targets").mkdir()
    src = Path(targets.__file__).parent
    for name in RUNNER_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, runner / "targets" / name)
    return runner


def logits_of(output: str) -> np.ndarray:
    return np.array([json.loads(line)["logits"] for line in output.splitlines() if line.startswith("{")], dtype=np.float64)


def host_logits(runner_dir: Path, bundle: Path, model_file: str, texts: list[str]) -> np.ndarray:
    env = {**os.environ, "PYTHONPATH": str(runner_dir), "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-m", "targets", "predict", str(bundle), "--runtime", model_file,
                           "--threads", "1", "--json"], input="\n".join(texts) + "\n", capture_output=True, text=True, env=env,
                          cwd=runner_dir)
    if proc.returncode != 0:
        raise UserError(f"the runner on this machine failed on {model_file}: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    return logits_of(proc.stdout)


def compare_logits(got: np.ndarray, reference: np.ndarray, compute: str, int8_error: float | None) -> dict:
    if got.shape != reference.shape:
        return {"max_abs_diff_vs_x86": float("inf"), "texts_within_atol": 0, "label_agreement_vs_x86": 0.0,
                "status": f"mismatch: {got.shape} outputs vs {reference.shape} on x86", "passed": False}
    per_text = np.abs(got - reference).max(axis=-1)
    diff, within = float(per_text.max()), int((per_text <= CHECK_ATOL).sum())
    agree = float((got.argmax(-1) == reference.argmax(-1)).mean())
    if diff <= CHECK_ATOL:
        status, passed = f"equal within {CHECK_ATOL}", True
    elif compute == "int8" and int8_error and agree == 1.0 and diff <= int8_error:
        status, passed = (f"{len(per_text) - within} text(s) beyond {CHECK_ATOL}: int8 rounding steps of the per-call "
                          f"activation quantization, within the model's own int8 error ({int8_error:.2e} vs fp32); "
                          f"labels equal"), True
    else:
        status, passed = f"mismatch beyond {CHECK_ATOL}", False
    return {"max_abs_diff_vs_x86": diff, "texts_within_atol": within, "label_agreement_vs_x86": agree,
            "status": status, "passed": passed}


def sample_texts(n: int) -> list[str]:
    """Real sentences of every length: the vendored Rotten Tomatoes dev split, longest and shortest mixed."""
    from compress.data.readers import default_data_dir, read_rows

    rows = [r["text"] for r in read_rows(default_data_dir() / "dev.jsonl")]
    rows.sort(key=len)
    picked = [rows[round(i * (len(rows) - 1) / max(n - 1, 1))] for i in range(n)]
    return picked + ["word " * 200]  # longer than any bucket: exercises truncation


def _checked(cpus: list[str], out: Path, force: bool, load):
    """What an ARM64 run refuses before it starts: an unknown CPU model, what `load` (the bundle or archive) raises,
    a non-empty --out without --force, no qemu. Returns what `load` read."""
    unknown = [c for c in cpus if c not in CPUS]
    if unknown:
        raise UserError(f"unknown CPU model {', '.join(unknown)}: choose from {', '.join(CPUS)}")
    loaded = load()
    if out.exists() and any(out.iterdir()) and not force:
        raise UserError(f"{out} exists and is not empty: pass --force to overwrite it, or choose another --out")
    qemu_binary()
    return loaded


def run_arm64(bundle: Path, out: Path, cpus: list[str], cache: Path, texts: list[str], bench_args: list[str],
              force: bool, command: str | None = None) -> dict:
    from targets.bundle import Bundle, BundleError

    bundle, out = bundle.resolve(), out.resolve()  # the guest runs in another working directory
    try:
        b = _checked(cpus, out, force, lambda: Bundle.load(bundle))
    except BundleError as exc:
        raise UserError(str(exc)) from None
    runner_dir = fresh_runner(cache)
    try:
        return _check_and_time(b, bundle, out, cpus, cache, texts, bench_args, runner_dir, command)
    finally:
        shutil.rmtree(runner_dir, ignore_errors=True)


def _check_and_time(b, bundle: Path, out: Path, cpus: list[str], cache: Path, texts: list[str], bench_args: list[str],
                    runner_dir: Path, command: str | None = None) -> dict:
    root = prepare_sysroot(cache)
    py = guest_python(root).name.removeprefix("python")
    site = prepare_wheels(cache, py)
    models = [m["file"] for m in b.metadata["models"]]
    executorch = prepare_executorch(cache, py) if any(m.endswith(".pte") for m in models) else None
    compute = {m["file"]: m.get("compute") or ("int8" if m.get("quantization") else "fp32") for m in b.metadata["models"]}
    int8_error = {m["file"]: (m.get("verification") or {}).get("max_abs_diff") for m in b.metadata["models"]}
    reference = {m: host_logits(runner_dir, b.root, m, texts) for m in models}
    record = {"bundle": str(bundle), "texts": len(texts), "atol": CHECK_ATOL, "cpus": {}, "passed": True,
              "command": command or f"bert-compress arm64 {bundle} --out {out} --cpus {','.join(cpus)}"}
    with atomic_dir(out) as tmp:
        for cpu in cpus:
            guest = Guest(root, site, runner_dir, cpu, executorch)
            checks = {}
            for m in models:
                info(f"arm64 {cpu}: {m} on {len(texts)} texts through the bundle's runner")
                got = logits_of(guest.run(["predict", str(b.root), "--runtime", m, "--threads", "1", "--json"],
                                          "\n".join(texts) + "\n", f"predict with {m}"))
                checks[m] = compare_logits(got, reference[m], compute[m], int8_error[m])
                c = checks[m]
                info(f"arm64 {cpu}: {m} max |Δlogit| vs x86 {c['max_abs_diff_vs_x86']:.2e}, {c['texts_within_atol']}/{len(texts)} "
                     f"texts within {CHECK_ATOL}, labels agree {100 * c['label_agreement_vs_x86']:.1f}%: {c['status']}")
                record["passed"] &= c["passed"]
            info(f"arm64 {cpu}: timing the bundle (emulated, relative only)")
            results = tmp / f"bench-{cpu}.json"
            guest.run(["bench", str(b.root), "--out", str(results), "--in-process", "--no-gemm-peak",
                       "--emulated", guest.label, "--device", f"{cpu} (qemu, emulated)", *bench_args],
                      what="bench")
            doc = json.loads(results.read_text(encoding="utf-8"))  # name where the file ends up, not the temp dir
            doc["command"] = doc["command"].replace(str(tmp), str(out))
            results.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
            record["cpus"][cpu] = {"checks": checks, "results": results.name, "emulator": guest.label}
        write_json(tmp / "arm64_check.json", record)
    for r in record["cpus"].values():
        r["results"] = str(out / r["results"])
    return record


def profile_arm64(candidates: Path, out: Path, cpus: list[str], cache: Path, seq_lens: str, names: str | None,
                  force: bool) -> dict[str, Path]:
    """Emulated device profiles of a candidates archive (`bert-compress candidates`): the archive's runner times every
    candidate under qemu for each CPU model -> OUT/profile-<cpu>.json. Emulated: they rank shapes and fit the cost
    model for that core, they are not the chip's milliseconds."""
    from targets.profile import Candidates, ProfileError

    candidates, out = candidates.resolve(), out.resolve()
    try:
        cands = _checked(cpus, out, force, lambda: Candidates.load(candidates))
    except ProfileError as exc:
        raise UserError(str(exc)) from None
    runner_dir = fresh_runner(cache)
    written = {}
    try:
        root = prepare_sysroot(cache)
        site = prepare_wheels(cache, guest_python(root).name.removeprefix("python"))
        with atomic_dir(out) as tmp:
            for cpu in cpus:
                guest = Guest(root, site, runner_dir, cpu)
                info(f"arm64 {cpu}: profiling {len(cands.metadata['candidates']) if not names else names} under emulation")
                dst = tmp / f"profile-{cpu}.json"
                guest.run(["profile", str(cands.root), "--out", str(dst), "--seq-lens", seq_lens, "--threads", "1",
                           "--min-runs", "5", "--min-seconds", "0", "--emulated", guest.label,
                           "--device", f"{cpu} (qemu, emulated)", *(["--candidates", names] if names else [])],
                          what="profile")
                doc = json.loads(dst.read_text(encoding="utf-8"))
                doc["command"] = doc["command"].replace(str(tmp), str(out))
                dst.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
                written[cpu] = out / dst.name
    finally:
        shutil.rmtree(runner_dir, ignore_errors=True)
    return written
