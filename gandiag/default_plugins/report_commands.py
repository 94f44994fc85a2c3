"""``gandiag report`` and ``gandiag gate``: work on saved results JSON, no re-evaluation."""

from __future__ import annotations

import click

from gandiag import hookimpl


def _load(paths):
    from gandiag import Results

    from ..report.artifacts import load_artifacts

    out = []
    for p in paths:
        r = Results.load(p)
        r.extras["json_path"] = p
        r.extras["artifacts"], r.extras["artifacts_note"] = load_artifacts(p, r.to_json())
        out.append(r)
    return out


@hookimpl(trylast=True)
def register_commands(cli):
    @cli.command("report")
    @click.argument("results_json", nargs=-1, required=True, type=click.Path(dir_okay=False))
    @click.option("-o", "--output", "output", type=click.Path(dir_okay=False),
                  help="HTML file to write [default: reports/<name>.html].")
    @click.option("--title", help="Page title.")
    def report_cmd(results_json, output, title):
        """Write a self-contained HTML report of RESULTS_JSON; several files compare runs side by side."""
        from ..atomic import resolve_output
        from ..report import render_report
        from ..safety.text import clean

        if output:
            resolve_output(output, "--output")  # refused before any work
        path = render_report(_load(results_json), output, title=title)
        click.echo(f"report: {clean(path)}")

    @cli.command("gate")
    @click.argument("results_json", type=click.Path(dir_okay=False))
    @click.option("--gate", "gate_path", required=True, type=click.Path(dir_okay=False), help="Quality gates (TOML).")
    @click.option("--junit", "junit_path", type=click.Path(dir_okay=False), help="Write JUnit XML, one test case per gate.")
    @click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
    def gate_cmd(results_json, gate_path, junit_path, quiet):
        """Check saved results against quality gates: exit 0 when all hold, 1 when one fails, 2 on bad input."""
        from gandiag import Results

        from ..atomic import resolve_output
        from ..errors import EXIT_GATE_FAILED
        from ..gates import check_gates, load_gates

        if junit_path:
            resolve_output(junit_path, "--junit")  # refused before any work
        gates = load_gates(gate_path)
        outcome = check_gates(Results.load(results_json), gates, junit_path=junit_path)
        if not quiet:
            click.echo(outcome.summary())
        if not outcome.passed:
            raise click.exceptions.Exit(EXIT_GATE_FAILED)
