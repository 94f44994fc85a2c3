"""The ``gandiag`` command line: a thin click layer over the library.

Exit codes (also in README and ``gandiag --help``): 0 ok; 1 a quality gate
failed; 2 bad usage or bad input (one line on stderr, no traceback, no result
file); 3 internal error (a bug: set GANDIAG_DEBUG=1 for the traceback).
"""

from __future__ import annotations

import json
import os
import sys
import traceback

import click

from . import __version__
from .errors import EXIT_BAD_INPUT, EXIT_GATE_FAILED, EXIT_INTERNAL, GandiagError
from .safety.text import clean

EPILOG = "Exit codes: 0 ok, 1 quality gate failed, 2 bad usage or input, 3 internal error."


class GandiagGroup(click.Group):
    """Turns library errors, and click's own usage errors, into one clear line and the documented exit code."""

    def main(self, *args, **kwargs):
        """click's main, except that a usage error (an unknown flag, a bad value, a missing argument) is one
        line, ``gandiag: error: ...`` with where to read more, rather than click's usage block."""
        standalone = kwargs.pop("standalone_mode", True)
        if not standalone:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click.UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # `gandiag` alone: its help, as click shows it (exit 2)
                click.echo(exc.format_message(), err=True)
                sys.exit(EXIT_BAD_INPUT)
            where = exc.ctx.command_path if exc.ctx is not None else "gandiag"
            message = " ".join(exc.format_message().split())
            click.echo(f"gandiag: error: {message} ('{where} --help' lists the options)", err=True)
            sys.exit(EXIT_BAD_INPUT)
        except click.ClickException as exc:
            click.echo(f"gandiag: error: {' '.join(exc.format_message().split())}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("gandiag: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)  # click hands back Exit's code; commands return None

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except GandiagError as exc:
            click.echo(f"gandiag: error: {clean(exc)}", err=True)
            ctx.exit(EXIT_BAD_INPUT)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("gandiag: interrupted", err=True)
            ctx.exit(130)
        except Exception as exc:  # a bug in gandiag or a plugin
            if os.environ.get("GANDIAG_DEBUG"):
                traceback.print_exc()
            click.echo(f"gandiag: internal error: {type(exc).__name__}: {clean(exc)} (GANDIAG_DEBUG=1 shows the traceback)",
                       err=True)
            ctx.exit(EXIT_INTERNAL)


@click.group(cls=GandiagGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gandiag")
def cli():
    """Evaluate and diagnose generative adversarial networks."""


def _metric_options(f):
    """evaluate's own options (metrics, their settings, bootstrap, diagnostics), declared in gandiag.options."""
    from .options import click_options

    return click_options(("evaluate",))(f)


def evaluation_options(f):
    """Options shared by every command that runs an evaluation (evaluate, diagnose): declared in gandiag.options."""
    from .options import click_options

    f = click.option("--json", "json_path", type=click.Path(dir_okay=False),
                     help="Write results as JSON (schema: docs/results-schema.md).")(f)
    return click_options(("common", "generator"))(f)


def run_evaluation(target, opts):
    from .pipeline import evaluate

    return evaluate(target, options=opts)


@cli.command()
@click.argument("target", type=click.Path())
@evaluation_options
@_metric_options
@click.option("--isc", is_flag=True, help="Add IS (torch-fidelity spelling).")
@click.option("--fid", is_flag=True, help="Add FID.")
@click.option("--kid", is_flag=True, help="Add KID.")
@click.option("--prc", is_flag=True, help="Add precision and recall.")
@click.option("--report", "report_path", is_flag=False, flag_value="", default=None, type=click.Path(dir_okay=False),
              help="Write a self-contained HTML report (to PATH, or reports/<name>.html when given alone).")
@click.option("--gate", "gate_path", type=click.Path(dir_okay=False), help="Quality gates (TOML); exit 1 when one fails.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False), help="With --gate: write JUnit XML, one test case per gate.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
def evaluate(target, isc, fid, kid, prc, report_path, gate_path, junit_path, quiet, **kw):
    """Evaluate a generator checkpoint (or a folder/.npz of samples) against real data."""
    from .distributed import rank
    from .options import from_click
    from .outputs import finish, plan_outputs, run_inputs

    json_path = kw.pop("json_path")
    opts = from_click(kw)
    names = list(opts.metrics or [])
    for flag, add in ((isc, ["is"]), (fid, ["fid"]), (kid, ["kid"]), (prc, ["precision", "recall"])):
        if flag:
            names += [a for a in add if a not in names]
    opts.metrics = names or None
    if junit_path and not gate_path:
        raise click.UsageError("--junit needs --gate")
    # Everything that can be refused is refused before minutes of sampling: the gates file, then output paths
    # (none of which may replace a file the run reads: the target, --real, the gates and their baseline...).
    gates = None
    if gate_path:
        from .gates import load_gates

        gates = load_gates(gate_path)
    reads = run_inputs(target, opts, [(gate_path, "--gate"), (getattr(gates, "baseline_path", None), "the baseline")])
    outputs = plan_outputs(json=json_path, report=report_path, junit=junit_path, target=target, reads=reads)
    results = run_evaluation(target, opts)
    done = finish(results, outputs=outputs, gate=gates)  # under torchrun: every rank gates, rank 0 writes
    if not quiet and rank() == 0:
        click.echo(results.summary())
        for name, label in (("json", "results"), ("report", "report"), ("junit", "junit")):
            if name in done.written:
                click.echo(f"  {label}: {clean(done.written[name])}")
        if done.outcome is not None:
            click.echo(done.outcome.summary())
    if done.gates_passed is False:
        raise click.exceptions.Exit(EXIT_GATE_FAILED)


@cli.command("plugins")
def plugins_cmd():
    """List loaded plugins and what each provides, as JSON."""
    from .plugins import describe

    click.echo(json.dumps(describe(), indent=2))


def _add_plugin_commands():
    from .plugins import load_plugins

    load_plugins().hook.register_commands(cli=cli)


def main():
    try:
        _add_plugin_commands()
    except GandiagError as exc:
        click.echo(f"gandiag: error: {clean(exc)}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    cli(prog_name="gandiag")


if __name__ == "__main__":
    main()
