"""The public API of a run: what `bert-compress` (compress/cli.py) and the scripts in benchmarks/ call.

    run = prepare(recipe, out, force=False, whole_run=True)   # every input checked, OUT created
    run_all(run, force=False)                                 # every stage; or run_stage(run, "distill")
    run.load_student("me"), run.artifacts("export", "quantize"), run.layout.report_json, ...

compress/run/ holds the OUT layout (layout.py), the stage table (table.py), input checks (prepare.py), the
stage bookkeeping (keys.py, resume.py) and the view (view.py); the stages themselves are compress/stages/.
"""

from compress.errors import StageFailed, UserError
from compress.run.context import Run, main_process, pick_device
from compress.run.layout import Layout
from compress.run.prepare import load_run, prepare, prepare_all_ranks
from compress.run.resume import run_all, run_stage
from compress.run.table import STAGE_NAMES, STAGES, Stage
from compress.run.view import render_view, report_of
from compress.stages.quantize import calibration, qad_trainer

__all__ = ["STAGES", "STAGE_NAMES", "Layout", "Run", "Stage", "StageFailed", "UserError", "calibration", "load_run",
           "main_process", "pick_device", "prepare", "prepare_all_ranks", "qad_trainer", "render_view", "report_of",
           "run_all", "run_stage"]
