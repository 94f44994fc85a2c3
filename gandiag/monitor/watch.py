"""``gandiag watch RUNDIR``: evaluate each new snapshot of a training run as it appears, for headless servers.

A snapshot is any file a loader reads (``.pt``/``.pth``/``.ckpt``/``.pt2``/
``.onnx``/``.pkl``, a SavedModel folder) or a ``.npz``/``.npy`` of samples, in
the run folder or its ``snapshots/`` folder: gandiag's trainer overwrites
``checkpoint.pt`` (each new version is a new snapshot), ``gandiag.Monitor``
adds ``snapshots/step-N.pt2``, other trainers write files of their own.

Half-written files are never read. Dot-files and ``*.tmp`` (where atomic
writers stage, gandiag's among them) are skipped; any other file must keep
the same size, modification time and inode for ``settle`` seconds before it
is read, so a trainer that writes in place with ``torch.save`` is read once
it has finished. A changed file (a new fingerprint) is a new snapshot.

Each snapshot is evaluated with the command's options, ``OUT/results.json``
and ``OUT/report.html`` replaced by its results, ``OUT/trend.html`` redrawn,
then its line appended to ``OUT/trend.jsonl`` with its fingerprint (so a
restarted watch skips what it has done; one whose evaluation or outputs
failed has no line and is tried again). ``fail_on`` ("warning" or
"severe") and ``gate`` end the watch at the first snapshot whose alarms or
gates fail (exit 1); a snapshot that cannot be evaluated is an ``error``
alarm, which ``fail_on`` and ``gate`` count as failing (fail closed), and a
gated watch that ends with no snapshot evaluated fails too.
"""

from __future__ import annotations

import os
import re
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from ..atomic import file_identity
from ..errors import GandiagError
from ..training.trainlog import is_step
from . import alarms as alarm_rules
from . import trend
from .output_folder import OutputFolder
from ..safety.text import utf8
from .trend import shown

SNAPSHOT_SUFFIXES = (".pt", ".pth", ".ckpt", ".pt2", ".onnx", ".pkl", ".npz", ".npy")
NOT_SNAPSHOTS = ("real.npz", "held_out.npz")  # the monitor's copies of the real data
STEP_PATTERN = re.compile(r"(?:step|iter|it|kimg|epoch|snapshot)[-_]?0*(\d+)", re.IGNORECASE)


@dataclass
class WatchOutcome:
    evaluated: int = 0  # snapshots looked at by this watch, ``errors`` of them could not be evaluated
    errors: int = 0
    failed: Optional[str] = None  # why the watch ended on a failing snapshot
    seen: dict = field(default_factory=dict)  # path -> fingerprint evaluated


def fingerprint(path: Path) -> Optional[str]:
    try:
        st = path.stat()
    except OSError:
        return None
    if path.is_dir():  # a SavedModel folder: its graph file's state
        pb = path / "saved_model.pb"
        return fingerprint(pb) if pb.exists() else None
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"


def candidates(run: Path, out: Path, warn: Optional[Callable] = None) -> list:
    """Snapshot files in ``run`` and ``run/snapshots``, oldest first, skipping staging files and ``out``.

    An entry that cannot be looked at (a symlink loop, a dangling symlink, one removed since the listing)
    is skipped; ``warn(path, why)`` (when given) is told why."""
    found = []
    out_id = file_identity(out)
    try:
        inside = run.resolve(strict=True)
    except (OSError, RuntimeError):
        return []
    for folder in (run, run / "snapshots"):
        if not folder.is_dir():
            continue
        if folder != run and not _leads_inside(folder, inside):
            if warn:
                warn(folder, "a symlink that leads out of the run folder; skipped (a file in the run folder never "
                             "chooses what gandiag reads: pass that folder itself to gandiag watch)")
            continue
        try:
            entries = list(folder.iterdir())
        except OSError as exc:
            if warn:
                warn(folder, f"cannot be listed ({exc.strerror or exc}); skipped")
            continue
        for p in entries:
            if (p.name.startswith(".") or p.name.endswith(".tmp") or p.name in NOT_SNAPSHOTS
                    or p.name.endswith(".artifacts.npz")):  # gandiag's own results' arrays
                continue
            try:
                st = p.stat()
            except FileNotFoundError:  # rotated away by the trainer since the listing, or a dangling symlink
                if warn and p.is_symlink():
                    warn(p, "a symlink to nothing; skipped")
                continue
            except OSError as exc:  # a symlink loop (ELOOP), a name the file system refuses
                if warn:
                    warn(p, f"cannot be read ({exc.strerror or exc}); skipped")
                continue
            if out_id is not None and (st.st_dev, st.st_ino) == out_id:
                continue  # the watch's own output folder
            if not ((stat.S_ISREG(st.st_mode) and p.suffix.lower() in SNAPSHOT_SUFFIXES) or (
                    stat.S_ISDIR(st.st_mode) and (p / "saved_model.pb").is_file())):
                continue
            if not _leads_inside(p, inside):
                if warn:
                    warn(p, "a symlink that leads out of the run folder; skipped (a file in the run folder never "
                            "chooses what gandiag reads: evaluate that file by naming it)")
                continue
            found.append((st.st_mtime_ns, p.name, p))
    return [p for _, _, p in sorted(found)]


def _leads_inside(p: Path, inside: Path) -> bool:
    """Whether ``p`` is no symlink, or one whose target (through every link) lies in the folder ``inside``."""
    if not p.is_symlink():
        return True
    try:
        p.resolve(strict=True).relative_to(inside)
    except (OSError, RuntimeError, ValueError):
        return False
    return True


def step_of(path: Path) -> Optional[int]:
    """The training step a snapshot's name says (``step-400``, ``iter_5``...), else None."""
    m = STEP_PATTERN.search(path.stem)
    return int(m.group(1)) if m else None


class Watcher:
    """One watch over ``run``; :meth:`poll` evaluates what is new and settled, :meth:`run` loops."""

    def __init__(self, run: Path, out: Optional[Path], options, *, settle: float = 2.0, fail_on: Optional[str] = None,
                 gate=None, echo: Callable = print):
        """``out`` None: RUNDIR/watch, a folder no command line named (no symlink there is followed)."""
        from ..safety.files import is_folder

        if not is_folder(run):
            raise GandiagError(f"{run}: not a folder (gandiag watch takes a training run's folder)")
        if fail_on not in (None, *alarm_rules.STOP_LEVELS):
            raise GandiagError(f"--fail-on {fail_on}: {' or '.join(alarm_rules.STOP_LEVELS)}")
        if gate is not None and not hasattr(gate, "gates"):  # a gates file's path
            from ..gates import load_gates

            gate = load_gates(gate)
        self.run_dir, self.out, self.options = run, out if out is not None else run / "watch", options
        self.settle, self.fail_on, self.gate, self.echo = settle, fail_on, gate, echo
        self.gates_digest = _gates_digest(gate) if gate is not None else None
        self.options, self._run_files = _monitored_real(run, options)
        self.outputs = OutputFolder(self.out, named=out is not None)
        recorded = self.outputs.read_trend()
        self.outcome = WatchOutcome(seen={ln["snapshot"]: ln.get("fingerprint") for ln in recorded})
        self._judge_recorded(recorded)
        self._pending: dict = {}  # path -> (fingerprint, first seen at)
        self._warned: set = set()  # (path, why) already told

    def _judge_recorded(self, lines: list) -> None:
        """A restarted watch skips the snapshots its trend records, so their outcomes count: under
        ``fail_on`` or the gates, one recorded as failing (or not evaluated, or, under the gates, not judged
        by these gates) fails the watch before anything new is read (fail closed: a retry stays red)."""
        if self.fail_on is None and self.gate is None:
            return
        where = shown(self.out / trend.TREND_NAME)
        for ln in lines:
            why = _recorded_failure(ln, self.fail_on, self.gate is not None, self.gates_digest)
            if why:
                self.outcome.failed = (f"{where} records {shown(Path(ln['snapshot']).name)}"
                                       + (f" (step {ln['step']})" if ln["step"] is not None else "")
                                       + f": {why}; remove {where} (or watch into another --out) to judge the run "
                                       "afresh")
                return

    def _warn(self, path: Path, why: str) -> None:
        """One line per skipped entry and reason, not one per look at the folder."""
        if (str(path), why) not in self._warned:
            self._warned.add((str(path), why))
            self.echo(f"gandiag watch: warning: {shown(path)}: {why}")

    def poll(self, now: Optional[float] = None) -> bool:
        """Evaluate every settled new snapshot; False once a snapshot failed ``fail_on`` or the gate."""
        if self.outcome.failed is not None:
            return False
        now = time.monotonic() if now is None else now
        for path in candidates(self.run_dir, self.out, self._warn):
            fp = fingerprint(path)
            if fp is None or self.outcome.seen.get(str(path)) == fp:
                continue
            first = self._pending.get(path)
            if first is None or first[0] != fp:
                self._pending[path] = (fp, now)
                if self.settle > 0:
                    continue
            elif now - first[1] < self.settle:
                continue
            self._pending.pop(path, None)
            if not self._evaluate(path, fp):
                return False
        return True

    def _evaluate(self, path: Path, fp: str) -> bool:
        """Evaluate one snapshot, write its outputs, then record it as done (a snapshot whose evaluation or
        outputs failed is not recorded, so a restarted watch tries it again)."""
        began = time.monotonic()
        step = step_of(path)
        _check_run_files(self.run_dir, self._run_files)  # still no symlink: the real data is read for each snapshot
        try:
            results = _evaluate(path, self.options)
        except GandiagError as exc:
            alarm = alarm_rules.Alarm(step, "snapshot", "error", "error", shown(f"{path.name}: {exc}"))
            self.echo(alarm.line())
            self.outcome.errors += 1
            self._record(trend.entry(step, str(path), None, [alarm], time.monotonic() - began,
                                     {"snapshot": "error"}), fp, gates_failed="could not be evaluated")
            return self._verdict([alarm], [], errored=True)
        if step is None:  # a gandiag checkpoint says its step (checkpoint.pt, overwritten every --ckpt-every)
            said = (results.generator or {}).get("step")
            step = said if is_step(said) else None
        found = alarm_rules.from_results(results.diagnostics, step)
        for a in found:
            self.echo(a.line())
        failed_gates = self._write_outputs(results)
        line = trend.entry(step, str(path), results, found, time.monotonic() - began)
        self._record(line, fp, gates_failed=(f"gate {failed_gates[0].name}: {failed_gates[0].message}"
                                             if failed_gates else None))
        verdicts = ", ".join(f"{k} {v}" for k, v in line["verdicts"].items())
        self.echo(f"gandiag watch: {shown(path.name)}" + (f" (step {step})" if step is not None else "")
                  + f": {verdicts}")
        return self._verdict(found, failed_gates)

    def _write_outputs(self, results) -> list:
        """Check the gates (where evaluate --gate checks them, so results.json and the report show their
        outcome), write results.json (and its arrays) and report.html; return the failed gates. A snapshot's
        name that is not UTF-8 is shown in the report with its escapes (:func:`gandiag.safety.text.utf8`)."""
        from ..outputs import finish
        from ..report import render_html
        from ..report.artifacts import artifacts_bytes, artifacts_path

        done = finish(results, gate=self.gate)  # no outputs named: the gates only
        failed_gates = [c for c in done.outcome.cases if not c.passed] if done.outcome is not None else []
        json_path = self.out / "results.json"
        files = {}
        arrays = artifacts_bytes(results, json_path)  # first: the JSON names the artifacts file
        if arrays is not None:
            files[artifacts_path(json_path).name] = arrays
        files["results.json"] = utf8(results.to_text())
        files["report.html"] = utf8(render_html([results]))
        self.outputs.write(files)
        return failed_gates

    def _verdict(self, found: list, failed_gates: list, errored: bool = False) -> bool:
        """False (and why, in ``outcome.failed``) for a snapshot that fails ``fail_on`` or the gates; under
        the gates a snapshot that could not be evaluated fails (fail closed: no gate was shown to hold)."""
        failing = [a for a in found if alarm_rules.reaches(a, self.fail_on)
                   or (self.fail_on is not None and a.level == "error")]
        if failing:
            self.outcome.failed = failing[0].line()
        elif failed_gates:
            self.outcome.failed = f"gate {failed_gates[0].name}: {failed_gates[0].message}"
        elif errored and self.gate is not None:
            self.outcome.failed = f"{found[0].line()} (the gates could not be checked: fails closed)"
        return self.outcome.failed is None

    def _record(self, line: dict, fp: str, gates_failed: Optional[str] = None) -> None:
        """The trend report redrawn with ``line``, then ``line`` appended: the snapshot is done only once
        its outputs are all written. Under the gates the line says which gates judged it and how."""
        import json

        line = {**line, "fingerprint": fp}
        if self.gate is not None:
            line["gates"] = {"digest": self.gates_digest, "passed": gates_failed is None, "failed": gates_failed}
        lines = self.outputs.read_trend()
        self.outputs.write({trend.TREND_REPORT: trend.page_bytes(lines + [line], f"gandiag watch: {self.run_dir}")})
        self.outputs.append(trend.TREND_NAME, json.dumps(line) + "\n")
        self.outcome.seen[line["snapshot"]] = fp
        self.outcome.evaluated += 1

    def run(self, interval: float = 30.0, once: bool = False, idle_exit: Optional[float] = None) -> WatchOutcome:
        """Poll every ``interval`` seconds until a failure, ``once`` (what is there now, settled), or ``idle_exit``
        seconds without a new snapshot. Under the gates, a watch that ends without a snapshot evaluated, now
        or before (recorded in the trend), fails: nothing was shown to pass them."""
        last_new = time.monotonic()
        while True:
            before = self.outcome.evaluated
            if not self.poll():
                return self.outcome
            if self.outcome.evaluated != before:
                last_new = time.monotonic()
            if (once and not self._pending) or (idle_exit is not None and time.monotonic() - last_new >= idle_exit):
                return self._ended()
            time.sleep(min(interval, self.settle) if once or self._pending else interval)

    def _ended(self) -> WatchOutcome:
        if self.gate is not None and not self.outcome.seen:
            self.outcome.failed = (f"no snapshot in {shown(self.run_dir)} was evaluated, so none was shown to pass "
                                   "the gates (fails closed)")
        return self.outcome


def _gates_digest(gates) -> str:
    """What a gates file asks (each gate and its limit, the baseline's results), so a restarted watch knows
    whether the recorded outcomes were judged by the same gates."""
    import hashlib
    import json

    doc = [[g.target, g.kind, g.limit, g.scope] for g in gates.gates]
    baseline = gates.baseline.to_text() if gates.baseline is not None else None
    return hashlib.sha256(json.dumps([doc, baseline], sort_keys=True, default=str).encode()).hexdigest()[:16]


def _recorded_failure(line: dict, fail_on: Optional[str], gated: bool, digest: Optional[str]) -> Optional[str]:
    """Why a recorded trend line fails a watch with ``fail_on`` / the gates (``digest``), else None."""
    errored = line.get("verdicts") == {"snapshot": "error"}
    alarms = [a for a in line.get("alarms", []) if isinstance(a, dict)]
    if fail_on is not None:
        for a in alarms:
            level = a.get("level")
            if level == "error" or (level in alarm_rules.STOP_LEVELS
                                    and alarm_rules.STOP_LEVELS.index(level) >= alarm_rules.STOP_LEVELS.index(fail_on)):
                return f"a {shown(level)} alarm ({shown(a.get('source'))} {shown(a.get('verdict'))})"
    if gated:
        if errored:
            return "it could not be evaluated (the gates fail closed)"
        record = line.get("gates")
        if not (isinstance(record, dict) and record.get("digest") == digest and isinstance(record.get("passed"), bool)):
            return "it was judged by no gates or by other ones, so it was not shown to pass these"
        if not record["passed"]:
            return f"it failed the gates ({shown(record.get('failed'))})"
    return None


def _check_run_files(run: Path, names) -> None:
    """The files of a monitored run the watch reads (its real data, its settings) are read only from the
    run folder itself: one that is a symlink chooses what gandiag reads, and is refused (exit 2)."""
    for name in names:
        if os.path.islink(run / name):
            raise GandiagError(f"{shown(run / name)} is a symlink; gandiag watch reads a run's {name} only from the "
                               "run folder itself (name the file with --real / --train-data, or copy it there)")


def _monitored_real(run: Path, options):
    """A monitored run keeps its real data beside its log: ``real.npz``, or the training set ``real.npz`` and
    ``held_out.npz`` (then the held-out set is ``--real`` and the training set ``--train-data``); and in
    ``monitor.json`` the features and sample count of its checks, used where the command line names none.
    Returns the options and the names of the run's files they read (none of them may be a symlink)."""
    from dataclasses import replace

    from .snapshots import SETTINGS_NAME, read_settings

    _check_run_files(run, [SETTINGS_NAME])
    settings = read_settings(run)
    if settings:
        options = replace(options, feature_extractor=options.feature_extractor or settings["feature_extractor"],
                          num_samples=options.num_samples or settings["num_samples"])
    if options.real is not None or not (os.path.lexists(run / "real.npz")):
        return options, []
    if os.path.lexists(run / "held_out.npz") and options.train_data is None:
        names = ["held_out.npz", "real.npz"]
        _check_run_files(run, names)
        return replace(options, real=str(run / "held_out.npz"), train_data=str(run / "real.npz")), names
    _check_run_files(run, ["real.npz"])
    return replace(options, real=str(run / "real.npz")), ["real.npz"]


def _evaluate(path: Path, options):
    from ..pipeline import evaluate

    return evaluate(path, options=options)

