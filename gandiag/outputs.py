"""The end of the pipeline: gates, artifacts, results JSON, report and JUnit XML, all or none.

The CLI and a notebook share it::

    outputs = plan_outputs(json="out.json", report="out.html", junit="gates.xml")   # before the run
    results = gandiag.evaluate(...)
    finish(results, outputs, gates=load_gates("gates.toml"))

:func:`plan_outputs` checks every path before minutes of sampling are spent
(special files, unwritable folders, two outputs on one path). :func:`finish`
checks the gates first, so the JSON and the report show their outcome; makes
every file in memory, artifacts before the JSON that names them; then writes
them together (:class:`gandiag.atomic.OutputSet`), so a failure leaves none of
them, and never a JUnit file saying gates passed beside a missing report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .atomic import OutputSet


@dataclass
class PlannedOutputs:
    """Output paths of one run, checked; ``report`` "" means reports/<name>.html."""

    files: OutputSet = field(default_factory=OutputSet)
    json: Optional[Path] = None
    artifacts: Optional[Path] = None
    report: Optional[Path] = None
    junit: Optional[Path] = None


@dataclass
class Finished:
    outcome: object = None  # gandiag.gates.GateOutcome when gates were checked
    written: dict = field(default_factory=dict)  # "json" / "artifacts" / "report" / "junit" -> path

    @property
    def gates_passed(self) -> Optional[bool]:
        return None if self.outcome is None else self.outcome.passed


def plan_outputs(json=None, report=None, junit=None, target: Optional[str] = None) -> PlannedOutputs:
    """Check the output paths of a run before it starts; ``report=""`` names reports/<target>.html."""
    from .report import report_path_for
    from .report.artifacts import artifacts_path

    plan = PlannedOutputs()
    if json:
        plan.json = plan.files.add(json, "--json")
        plan.artifacts = plan.files.add(artifacts_path(json), "artifacts file")
    if report is not None:
        plan.report = plan.files.add(report or report_path_for(target or "report"), "--report")
    if junit:
        plan.junit = plan.files.add(junit, "--junit")
    return plan


def finish(results, outputs: Optional[PlannedOutputs] = None, gates=None) -> Finished:
    """Check ``gates`` and write the planned outputs of ``results``, all or none."""
    from .distributed import rank
    from .gates import check_gates, junit_xml
    from .report import render_html
    from .report.artifacts import artifacts_bytes

    outputs = outputs or PlannedOutputs()
    done = Finished()
    writer = rank() == 0  # under torchrun every rank has the same results; rank 0 writes them
    if gates is not None:
        done.outcome = check_gates(results, gates)
        results.gates = [{"name": c.name, "passed": c.passed, "message": c.message, "value": c.value}
                         for c in done.outcome.cases]
    staged = {}
    if outputs.json:
        data = artifacts_bytes(results, outputs.json)  # first: the JSON names the artifacts file
        if data is not None:
            staged["artifacts"] = (outputs.artifacts, data)
        staged["json"] = (outputs.json, results.to_text().encode())
    if outputs.report:
        staged["report"] = (outputs.report, render_html([results]).encode())
    if outputs.junit and done.outcome is not None:
        staged["junit"] = (outputs.junit, junit_xml(done.outcome, results).encode())
    if not writer:
        return done
    with outputs.files as files:
        for path, data in staged.values():
            files.put(path, data)
        files.commit()
    done.written = {name: path for name, (path, _) in staged.items()}
    return done
