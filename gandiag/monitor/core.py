"""``gandiag.Monitor``: gandiag's training log, periodic verdicts and alarms inside anyone's training loop.

Three added lines in a loop written the PyTorch DCGAN tutorial's way::

    with gandiag.Monitor(netG, netD, out="runs/dcgan", real=real_images,
                         optimizers=(optimizerG, optimizerD), stop_on="severe") as mon:
        for epoch in range(num_epochs):
            for i, data in enumerate(dataloader):
                ...                      # the tutorial's D and G updates, unchanged
                mon.step(d_loss=errD, g_loss=errG, d_real=output_real, d_fake=output_fake)

Every ``log_every`` steps a line goes to ``OUT/log.jsonl`` in the format of
gandiag's own trainer (docs/training-log.md: losses and D's outputs averaged
since the last line, D's accuracy, learning rates, per-layer gradient norms
read in each phase by :mod:`.capture`), so ``gandiag evaluate``'s
gradient-health diagnostic reads it as it reads the trainer's. Every
``check_every`` steps the generator is snapshotted into ``OUT/snapshots/`` (a
file that needs no trust: :mod:`.snapshots`) and evaluated on a small sample
against ``real`` (metrics, mode collapse, gradient health with the log's
trends); the line joins ``OUT/trend.jsonl`` and ``trend.html`` is redrawn,
``results.json`` and ``report.html`` hold the latest evaluation. A bad
verdict after the first ``warmup`` steps (a generator a few hundred steps
old covers few modes: that is youth, not collapse; its verdicts are in the
trend all the same) raises an alarm (:mod:`.alarms`): a printed line, ``on_alarm(alarm)``,
and with ``stop_on`` ("warning" or "severe") :class:`StopTraining` out of
``step``, which the ``with`` block catches after writing the final check.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Iterable, Optional

from .. import distributed
from ..errors import GandiagError
from ..training import trainlog
from . import alarms as alarm_rules
from . import record, snapshots, trend
from .capture import GradientCapture, by_role


class StopTraining(Exception):
    """Raised by ``Monitor.step`` when an alarm reached ``stop_on``; a ``with Monitor(...)`` block ends quietly."""

    def __init__(self, alarm):
        super().__init__(alarm.line())
        self.alarm = alarm


MIN_LOG_LINES = 8  # log lines before the log's trends are judged between checks


class Monitor:
    def __init__(self, G, D=None, out="runs/monitor", real=None, *, held_out=None, optimizers: Iterable = (),
                 loss: str = "ns", d_outputs: Optional[str] = None, log_every: int = 50, check_every: int = 500,
                 check_samples: int = 1000, warmup: int = 1000, stop_on: Optional[str] = None,
                 on_alarm: Optional[Callable] = None, feature_extractor: Optional[str] = None,
                 feature_weights: Optional[str] = None, latent_shape=None,
                 num_classes: Optional[int] = None, output_range: Optional[str] = None,
                 label_format: Optional[str] = None, seed: int = 0, device: Optional[str] = None,
                 tensorboard: bool = False, overwrite: bool = False, stream=None):
        from ..options import EvalOptions

        _check_settings(loss, log_every, check_every, check_samples, warmup, stop_on)
        G = snapshots.plain_module(G)  # torch.compile / DDP wrappers share the network's parameters
        D = snapshots.plain_module(D) if D is not None else None
        self.G, self.D, self.loss, self.stop_on, self.warmup = G, D, loss, stop_on, warmup
        self.log_every, self.check_every, self.check_samples = log_every, check_every, check_samples
        self.out = _prepare(Path(out), overwrite)
        self.d_outputs = record.d_outputs_of(D, d_outputs)
        nets = {"G": G, "D": D} if D is not None else {"G": G}
        self.optimizers = by_role(optimizers, nets)
        self.opts = EvalOptions(latent_shape=tuple(latent_shape) if latent_shape else None, num_classes=num_classes,
                                output_range=output_range, label_format=label_format, seed=seed, device=device,
                                feature_extractor=[feature_extractor] if feature_extractor else None,
                                feature_weights=(os.fspath(feature_weights),) if feature_weights else (), progress=False)
        self.generator, self.contract = snapshots.live_generator(G, str(self.out / "generator"), self.opts)
        self._keep_real(real, held_out)
        self.capture = GradientCapture(G, D, self.optimizers.values()) if D is not None else None
        snapshots.write_settings(self.out, feature_extractor, check_samples, seed, d_outputs=self.d_outputs,
                                 loss=loss, gradients=self.capture.strategy if D is not None else None)
        self.log, self.records, self.meter = trainlog.TrainLog(self.out / trainlog.LOG_NAME), [], trainlog.Meter()
        self.announce = alarm_rules.Announcer(on_alarm, stream)
        self.tensorboard = _scalar_writer(self.out) if tensorboard else None
        self.steps, self.last_check, self.latest, self.closed, self.diverged = 0, 0, None, False, False
        self.failed_checks = 0
        self.started = time.monotonic()
        self.stop_requested: Optional[alarm_rules.Alarm] = None
        self._arm(1)

    def _keep_real(self, real, held_out) -> None:
        """``real`` (and ``held_out``) as specs the checks pass on: tensors saved beside the log once."""
        self.real = snapshots.real_spec(real, self.out, self.contract)
        if held_out is not None:  # real is then the training set, judged for copying against samples it never saw
            if self.real is None:
                raise GandiagError("Monitor(held_out=...) needs real= (the training data) beside it")
            self.opts = self.opts.with_overrides(train_data=self.real)
            self.real = snapshots.real_spec(held_out, self.out, self.contract, snapshots.HELD_OUT_NAME)

    # -- the loop's one call ------------------------------------------------------------------------------------
    def step(self, **values) -> None:
        """Record one training step (call it after the step's backward passes and optimizer steps)."""
        if self.closed:
            raise GandiagError(f"Monitor.step: the monitor of {self.out} is closed (a with block ended, or close())")
        self.steps += 1
        step = self.steps
        numbers = record.step_values(values, self.d_outputs, self.loss)
        bad = record.non_finite_losses(numbers)
        self.meter.add(**numbers)
        if bad and not self.diverged:  # said once; a loop that goes on is logged on (its NaNs written as null)
            return self._diverged(step, numbers, bad)
        checking = self.check_every and step % self.check_every == 0
        if step == 1 or step % self.log_every == 0 or checking:
            self._write_line(step, checking)
        self._arm(step + 1)
        if self.stop_requested is not None and self.stop_on is not None:
            raise StopTraining(self.stop_requested)

    def _arm(self, step: int) -> None:
        if self.capture is not None:
            self.capture.armed = step == 1 or step % self.log_every == 0 or bool(
                self.check_every and step % self.check_every == 0)

    def _write_line(self, step: int, checking: bool) -> None:
        rec = {"step": step, "time": round(time.monotonic() - self.started, 3), **self.meter.means(),
               **record.learning_rates(self.optimizers)}
        norms = self.capture.collect() if self.capture is not None else {}
        if norms:
            rec["grad_norm"] = norms
            rec["grad_norm_total"] = {role: trainlog.total_norm(n) for role, n in norms.items()}
        if checking:
            rec["sigma_max"] = {role: trainlog.spectral_norms(net) for role, net in (("G", self.G), ("D", self.D))
                                if net is not None}
        self.log.write(rec)
        self.records.append(rec)
        if self.tensorboard is not None:
            self.tensorboard.write(rec)
        if checking:
            self.check(step)

    def _diverged(self, step: int, numbers: dict, bad: list) -> None:
        self.diverged = True
        self.log.write({"step": step, "event": "diverged", **{k: numbers.get(k) for k in ("d_loss", "g_loss")}})
        self.records.append({"step": step, "event": "diverged"})
        alarm = alarm_rules.Alarm(step, "diverged", "unhealthy", "severe", f"{', '.join(bad)} became NaN/Inf")
        self._raise([alarm], {"diverged"})
        if self.stop_on is not None:
            raise StopTraining(alarm)

    # -- periodic checks ----------------------------------------------------------------------------------------
    def check(self, step: Optional[int] = None) -> list:
        """Snapshot and evaluate the generator now; the alarms raised (also called every ``check_every`` steps).

        A check that fails (a snapshot that cannot be written, an evaluation that raises) never ends the user's
        run: it is an ``error`` alarm, printed, passed to ``on_alarm`` and written to the trend (fail closed:
        nothing was shown healthy), and training goes on."""
        step = self.steps if step is None else step
        self.last_check = step
        began = time.monotonic()
        try:
            snap, results, found = self._checked(step)
            verdicts = None
        except Exception as exc:  # the user's training matters more than one check
            self.failed_checks += 1
            found = [alarm_rules.Alarm(step, "check", "error", "error", f"{type(exc).__name__}: {exc}"[:400])]
            self._raise(found, {"check"})
            snap, results, verdicts = "", None, {"check": "error"}
        trend.append(self.out / trend.TREND_NAME,
                     trend.entry(step, snap, results, found, time.monotonic() - began, verdicts))
        trend.redraw(self.out, f"gandiag monitor: {self.out}")
        return found

    def _checked(self, step: int) -> tuple:
        """(the snapshot's path, its evaluation or None without real data, the alarms raised)."""
        import gandiag

        snap = snapshots.write_snapshot(self.generator, self.contract, self.out / "snapshots" / f"step-{step:07d}",
                                        self.opts.seed)
        if self.real is None:  # nothing to compare samples with: the log's trends are the check
            return str(snap), None, self._log_alarms(step)
        with distributed.alone():  # under DDP the other ranks train on: no collective may wait for them
            results = gandiag.evaluate(snap, real=self.real, options=self.opts, num_samples=self.check_samples)
            self._write_results(results)
        self.latest = results
        found = alarm_rules.from_results(results.diagnostics, step) if step > self.warmup else []
        self._raise(found, set(results.diagnostics) | {"check"})
        return str(snap), results, found

    def _log_alarms(self, step: int) -> list:
        from ..diagnostics import HEALTH_LEVELS, training_log, verdict

        if len(self.records) < MIN_LOG_LINES or step <= self.warmup:
            return []
        analysis = training_log.analyse_log(self.records, self.loss)
        result = {"verdict": verdict(analysis.get("reasons", []), HEALTH_LEVELS), "reasons": analysis.get("reasons", [])}
        found = alarm_rules.from_results({"log": result}, step)
        self._raise(found, {"log"})
        return found

    def _raise(self, found: list, checked) -> None:
        self.announce(found, checked)
        for a in found:
            if alarm_rules.reaches(a, self.stop_on) and self.stop_requested is None:
                self.stop_requested = a

    def _write_results(self, results) -> None:
        from ..outputs import finish

        finish(results, json=self.out / "results.json", report=self.out / "report.html")

    # -- the end ------------------------------------------------------------------------------------------------
    def close(self, final_check: bool = True) -> None:
        """Write the pending log line, run a last check when steps passed since the last one, release the hooks."""
        if self.closed:
            return
        self.closed = True
        try:
            if self.steps and self.meter.sums and self.records and self.records[-1].get("step") != self.steps:
                self._write_line(self.steps, checking=False)
            if final_check and self.steps > self.last_check and self.check_every:
                self.check(self.steps)
        finally:
            if self.capture is not None:
                self.capture.close()
            self.log.close()
            if self.tensorboard is not None:
                self.tensorboard.close()
        self._summary()

    def _summary(self) -> None:
        import sys

        verdicts = {k: d.get("verdict") for k, d in ((self.latest.diagnostics if self.latest else {}) or {}).items()}
        said = ", ".join(f"{k} {v}" for k, v in verdicts.items()) or self._why_no_verdicts()
        where = f"; report {self.out / 'report.html'}" if self.latest is not None else ""
        print(f"gandiag: monitored {self.steps} steps: {said}{where}", file=self.announce.stream or sys.stderr)

    def _why_no_verdicts(self) -> str:
        if self.real is None:
            return "no evaluation (pass real= for verdicts)"
        if self.failed_checks:
            n = self.failed_checks
            return f"no evaluation: {n} check{'s' if n > 1 else ''} failed (the error alarms say why)"
        return "no evaluation: no check ran"

    def __enter__(self) -> "Monitor":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        stopped = exc_type is not None and issubclass(exc_type, StopTraining)
        self.close(final_check=exc_type is None or stopped)
        return stopped


def _check_settings(loss, log_every, check_every, check_samples, warmup, stop_on) -> None:
    if loss not in record.LOSSES:
        raise GandiagError(f"Monitor(loss={loss!r}): one of {', '.join(record.LOSSES)}")
    for name, v, low in (("log_every", log_every, 1), ("check_every", check_every, 0), ("check_samples", check_samples, 2),
                         ("warmup", warmup, 0)):
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise GandiagError(f"Monitor({name}={v!r}): an integer >= {low}")
    if stop_on not in (None, *alarm_rules.STOP_LEVELS):
        raise GandiagError(f"Monitor(stop_on={stop_on!r}): None, {' or '.join(alarm_rules.STOP_LEVELS)}")


def _prepare(out: Path, overwrite: bool) -> Path:
    from ..atomic import make_folder, resolve_output
    from ..safety.files import is_folder

    if out.exists() and not is_folder(out):
        raise GandiagError(f"Monitor(out={str(out)!r}) exists and is not a folder")
    log = out / trainlog.LOG_NAME
    if log.exists() and not overwrite:
        raise GandiagError(f"{log} already exists: a monitored run is there; pass overwrite=True or another out=")
    make_folder(out / "snapshots", "Monitor(out=...)")
    for name in (trainlog.LOG_NAME, trend.TREND_NAME):
        resolve_output(out / name, "monitor output")
    if overwrite:  # the earlier run's trend and snapshots would read as this run's
        (out / trend.TREND_NAME).unlink(missing_ok=True)
        for old in (out / "snapshots").glob("step-*"):
            if old.suffix in (".pt2", ".npz") and old.is_file() and not old.is_symlink():
                old.unlink()
    return out


def _scalar_writer(out: Path):
    from .tensorboard import ScalarWriter

    return ScalarWriter(out / "tensorboard")

