"""Running stages with their bookkeeping: skip what is finished, redo what changed, record what was written."""

from __future__ import annotations

import shutil
import time
import uuid

from compress.fsutil import write_json
from compress.progress import info
from compress.run.context import Run, main_process
from compress.run.keys import outputs_intact, stage_key, stage_outputs
from compress.run.table import STAGE_NAMES, stage as stage_of
from compress.run.view import render_view


def run_stage(run: Run, name: str, force: bool = False) -> dict:
    """One stage, with the bookkeeping: under --resume a stage finished with the same settings and intact
    outputs is skipped, any other is redone (its training resumed from its checkpoints). The stage record then
    gets the settings hash and the digests of what the stage wrote; its checkpoints are removed. The view
    (report.json, report.md, bench.json, plots/) is rendered again from the records whenever it can change."""
    from compress import distributed

    spec = stage_of(name)
    for earlier in STAGE_NAMES[: STAGE_NAMES.index(name)]:  # records of an earlier version, as this stage reads them
        _upgrade(run, earlier)
    key = stage_key(run, name)
    if run.resume:
        record = run.stage_record(name)
        if record and record.get("settings_hash") == key and outputs_intact(run, record.get("outputs", {})):
            info(f"{name}: finished earlier with the same settings and inputs: skipped")
            record = _upgrade(run, name)
            _render(run, name)
            return record
        _check_checkpoints(run.layout.checkpoint_dir(name))  # a damaged one is reported now, not after loading the models

    t0 = time.perf_counter()
    record = spec.run(run, force=force or run.resume)
    if main_process():
        record = dict(record) | {"seconds": time.perf_counter() - t0, "settings_hash": key, "run_id": uuid.uuid4().hex,
                                 "outputs": stage_outputs(run, name)}
        write_json(run.layout.stage_file(name), record)
        shutil.rmtree(run.layout.checkpoint_dir(name), ignore_errors=True)
        parent = run.layout.checkpoint_dir(name).parent
        if parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
        _render(run, name)
    distributed.barrier()  # the next stage, in every process, reads what rank 0 wrote
    return run.stage_record(name)


def _upgrade(run: Run, name: str) -> dict | None:
    """A finished stage's record in today's form (rewritten in place once; settings hash and run id kept)."""
    record, upgrade = run.stage_record(name), stage_of(name).upgrade
    if record is None or upgrade is None or not main_process():
        return record
    upgraded = upgrade(run, record)
    if upgraded is not record:
        write_json(run.layout.stage_file(name), upgraded)
    return upgraded


def _render(run: Run, name: str) -> None:
    if main_process() and STAGE_NAMES.index(name) >= STAGE_NAMES.index("bench"):
        render_view(run)


def _check_checkpoints(directory) -> None:
    from compress.checkpoint import Checkpoint

    for path in sorted(directory.glob("*.pt")) if directory.is_dir() else []:
        Checkpoint(path, key="").read()


def run_all(run: Run, force: bool) -> dict | None:
    """Every stage in order. Under torchrun the training stages run in every process; then the other processes
    leave and rank 0 exports, quantizes, benchmarks and bundles alone (None in the others). Returns the report."""
    from compress import distributed
    from compress.fsutil import read_json

    t0 = time.perf_counter()
    for name in STAGE_NAMES:
        if name == "export" and distributed.world().distributed:
            main = distributed.world().is_main
            distributed.shutdown()
            if not main:
                return None
        run_stage(run, name, force=force)
    info(f"done in {time.perf_counter() - t0:.0f} s: {run.layout.report_md}")
    return read_json(run.layout.report_json)
