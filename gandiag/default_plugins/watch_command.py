"""``gandiag watch RUNDIR``: evaluate each new snapshot of a run as it appears (:mod:`gandiag.monitor.watch`)."""

from __future__ import annotations

from pathlib import Path

import click

from ..hookspecs import hookimpl


@hookimpl(trylast=True)
def register_commands(cli):
    from ..options import click_options

    @cli.command()
    @click.argument("rundir", type=click.Path())
    @click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
                  help="Where trend.jsonl, trend.html, results.json and report.html go [default: RUNDIR/watch; "
                       "never written through a symlink there].")
    @click.option("--interval", type=float, default=30.0, show_default=True, help="Seconds between looks at RUNDIR.")
    @click.option("--settle", type=float, default=2.0, show_default=True,
                  help="Seconds a file must stay unchanged before it is read (a file still being written never is).")
    @click.option("--once", is_flag=True, help="Evaluate the snapshots there now, then exit.")
    @click.option("--idle-exit", type=float, default=None, metavar="SECONDS",
                  help="Exit 0 after this long without a new snapshot [default: watch until interrupted].")
    @click.option("--fail-on", type=click.Choice(["warning", "severe"]), default=None,
                  help="Exit 1 at the first snapshot with an alarm this bad (or a snapshot that cannot be evaluated).")
    @click.option("--gate", type=click.Path(dir_okay=False), default=None,
                  help="Exit 1 at the first snapshot that fails these gates or cannot be evaluated, or when the "
                       "watch ends with no snapshot evaluated (docs/gates.md).")
    @click_options(("common", "generator"))
    def watch(rundir, out_dir, interval, settle, once, idle_exit, fail_on, gate, **kw):
        """Evaluate each new checkpoint snapshot in RUNDIR as it appears; keep a trend file and report.

        Snapshots: checkpoint files any loader reads and .npz samples, in RUNDIR and RUNDIR/snapshots
        (gandiag train's checkpoint.pt, gandiag.Monitor's snapshots/step-N.pt2). A monitored run's real.npz
        is the real data unless --real says otherwise. Exit 0 when done, 1 when --fail-on or --gate fails.
        """
        from ..errors import EXIT_GATE_FAILED, GandiagError
        from ..gates import load_gates
        from ..monitor.trend import shown
        from ..monitor.watch import Watcher
        from ..options import check, from_click

        for name, v in (("--interval", interval), ("--settle", settle), ("--idle-exit", idle_exit)):
            if v is not None and not (v >= 0 and v < float("inf")):
                raise GandiagError(f"{name} {v}: a number of seconds >= 0")
        gates = load_gates(gate) if gate else None
        run = Path(rundir)
        watcher = Watcher(run, Path(out_dir) if out_dir else None, check(from_click(kw)), settle=settle,
                          fail_on=fail_on, gate=gates, echo=lambda s: click.echo(s, err=True))
        outcome = watcher.run(interval=interval, once=once, idle_exit=idle_exit)
        errors = f", {outcome.errors} could not be evaluated" if outcome.errors else ""
        click.echo(f"gandiag watch: {outcome.evaluated - outcome.errors} snapshot(s) evaluated{errors}; "
                   f"trend {shown(watcher.out / 'trend.html')}")
        if outcome.failed:
            click.echo(f"gandiag watch: failing: {outcome.failed}", err=True)
            raise click.exceptions.Exit(EXIT_GATE_FAILED)
