"""The end of the pipeline: gates, artifacts, results JSON, report and JUnit XML, all or none.

The CLI and a notebook share it::

    results = gandiag.evaluate("ckpt.pt")
    finish(results, json="out.json", report="out.html", gate="gates.toml", junit="gates.xml")

    # the CLI checks the paths first, so a bad one fails before minutes of sampling:
    outputs = plan_outputs(json="out.json", report="out.html")
    results = gandiag.evaluate("ckpt.pt")
    finish(results, outputs=outputs)

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


def plan_outputs(json=None, report=None, junit=None, target: Optional[str] = None, reads=()) -> PlannedOutputs:
    """Check the output paths of a run before it starts; ``report=""`` names reports/<target>.html.
    ``reads``: (path, what) of the files the run reads (:func:`run_inputs`), which no output may replace."""
    from .report import report_path_for
    from .report.artifacts import artifacts_path

    plan = PlannedOutputs(files=OutputSet(reads))
    if json is not None:  # "" is a path given empty (refused), not a path left out
        plan.json = plan.files.add(json, "--json")
        plan.artifacts = plan.files.add(artifacts_path(json), "artifacts file")
    if report is not None:
        plan.report = plan.files.add(report or report_path_for(target or "report"), "--report")
    if junit is not None:
        plan.junit = plan.files.add(junit, "--junit")
    return plan


def run_inputs(target=None, options=None, extra=()) -> list:
    """(path, what) of every file an evaluation reads: the target, and each option that names a file or
    folder (a bundled name such as ``digits`` names none, unless a file of that name is there to be read)."""
    found = [(target, "the target")] if target else []
    if options is not None:
        for name, flag in (("real", "--real"), ("train_data", "--train-data"), ("inputs", "--inputs"),
                           ("inverse", "--inverse")):
            if getattr(options, name, None):
                found.append((getattr(options, name), flag))
        for w in getattr(options, "feature_weights", ()) or ():
            found += [(w, "--feature-weights"), (str(w).partition("=")[2], "--feature-weights")]
    found += list(extra)
    return [(p, what) for p, what in found if p]


def finish(results, json=None, report=None, gate=None, junit=None, *, outputs: Optional[PlannedOutputs] = None,
           target: Optional[str] = None) -> Finished:
    """Check the gates and write the outputs of ``results``, all or none.

    From a notebook: ``finish(results, json="out.json", report="out.html", gate="gates.toml")``
    (``gate``: a TOML path or loaded :class:`~gandiag.gates.Gates`). The CLI
    passes ``outputs`` planned before the run (:func:`plan_outputs`).
    """
    from .report.artifacts import artifacts_bytes
    from .distributed import rank
    from .gates import Gates, check_gates, junit_xml, load_gates
    from .report import render_html

    if outputs is None:
        outputs = plan_outputs(json=json, report=report, junit=junit,
                               target=target or str((results.generator or {}).get("path", "report")))
    gates = load_gates(gate) if gate is not None and not isinstance(gate, Gates) else gate
    done = Finished()
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
    if rank() != 0:  # under torchrun every rank has the same results and outcome; rank 0 writes them
        return done
    with outputs.files as files:
        for path, data in staged.values():
            files.put(path, data)
        files.commit()
    done.written = {name: path for name, (path, _) in staged.items()}
    return done
