"""Results files say what they did not measure: every (point, seed) a recorded matrix command asked for has a row,
or the file's `not_run` says why it has none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import benchmark_script

ROOT = Path(__file__).resolve().parents[1]
MATRICES = sorted((ROOT / "benchmarks" / "results").glob("compression_matrix*.json"))


matrix = benchmark_script("compression_matrix")


@pytest.mark.parametrize("path", MATRICES, ids=lambda p: p.name)
def test_every_requested_matrix_point_has_a_row_or_a_reason(path):
    result = json.loads(path.read_text(encoding="utf-8"))
    assert matrix.not_measured(result) == [], f"{path.name}: asked for, not measured, no reason in not_run"
    for note in result.get("not_run", []):
        assert note["points"] and note["seeds"] and note["why"].strip(), note
        made = {(r["point"], r["seed"]) for r in result["rows"]}
        assert not made & {(p, s) for p in note["points"] for s in note["seeds"]}, f"{path.name}: a measured pair in not_run"
    assert path.with_suffix(".md").read_text(encoding="utf-8") == matrix.render(result), f"{path.name}: .md is stale"


def test_a_command_that_asked_for_more_than_it_measured_is_caught():
    command = "python benchmarks/compression_matrix.py --teacher T --work W --points a+aug,b+none --seeds 42,43 --tag x"
    result = {"command": command, "rows": [{"point": "a+aug", "seed": 42}, {"point": "b+none", "seed": 42}]}
    assert matrix.not_measured(result) == [("a+aug", 43), ("b+none", 43)]
    result["not_run"] = [{"points": ["a+aug", "b+none"], "seeds": [43], "why": "cut for time"}]
    assert matrix.not_measured(result) == []
    assert matrix.requested("python benchmarks/compression_matrix.py --tag x") == {(p, 42) for p in matrix.POINTS}
