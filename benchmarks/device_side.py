"""The device side as a new user meets it: a finished run's pi bundle in a Python holding only numpy + onnxruntime (what
its README's first `pip` line installs), `python -m targets check .` and `bench . --quick` exactly as the README
writes them; and the android-executorch bundle checked by the pi bundle's runner as its README says. Records each
command's exit status and output.

    python benchmarks/device_side.py --run OUT --command "bert-compress run --out OUT" --tag device_side_issue38_xeon_amx

Writes benchmarks/results/<tag>.json; refuses to overwrite it. Scratch paths are written as OUT / WORK.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compress.bench.env import environment  # noqa: E402
from compress.fsutil import write_json  # noqa: E402
from tests.helpers import device_python  # noqa: E402

RUNS = (("pi", ["numpy", "onnxruntime"], ["PYTHONPATH=runner python -m targets check .",
                                           "PYTHONPATH=runner python -m targets bench . --quick --out bench.json"]),
        ("android-executorch", ["numpy", "executorch"], ["PYTHONPATH=../pi/runner python -m targets check ."]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, type=Path, help="a finished run's OUT")
    p.add_argument("--command", required=True, help="the command the run was made with")
    p.add_argument("--tag", required=True)
    args = p.parse_args(argv)
    out = ROOT / "benchmarks" / "results" / f"{args.tag}.json"
    if out.exists():
        print(f"error: {out} exists: choose another --tag (results files are never overwritten)", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        shutil.copytree(args.run / "bundle", work / "bundle")
        for folder, packages, commands in RUNS:
            bin_dir = device_python(work / f"env-{folder}", packages)
            env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(Path.home()), "LANG": "C.UTF-8"}
            for command in commands:
                proc = subprocess.run(["bash", "-c", command], cwd=work / "bundle" / folder, env=env, capture_output=True,
                                      text=True, timeout=1800)
                said = (proc.stdout + proc.stderr).replace(str(work), "WORK").replace(str(args.run), "OUT")
                rows.append({"bundle": folder, "python_holds": packages, "command": command, "exit": proc.returncode,
                             "output": [line for line in said.splitlines() if line.strip()]})
                print(f"{folder}: {command}: exit {proc.returncode}")
    write_json(out, {"tag": args.tag, "command": f"{args.command}; then python benchmarks/device_side.py --run OUT "
                                                 f"--command ... --tag {args.tag}",
                     "environment": environment(), "runs": rows})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
