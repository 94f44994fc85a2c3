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
        from ..atomic import refuse_inputs, resolve_output
        from ..report import render_report
        from ..safety.text import clean

        if output:  # refused before any work, and never over one of the results read
            refuse_inputs(resolve_output(output, "--output"), "--output", [(r, "a results file") for r in results_json])
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

        from ..atomic import refuse_inputs, resolve_output
        from ..errors import EXIT_GATE_FAILED
        from ..gates import check_gates, load_gates

        gates = load_gates(gate_path)
        if junit_path:  # refused before any work, and never over the results, the gates or their baseline
            refuse_inputs(resolve_output(junit_path, "--junit"), "--junit",
                          [(results_json, "the results"), (gate_path, "--gate"), (gates.baseline_path, "the baseline")])
        outcome = check_gates(Results.load(results_json), gates, junit_path=junit_path)
        if not quiet:
            click.echo(outcome.summary())
        if not outcome.passed:
            raise click.exceptions.Exit(EXIT_GATE_FAILED)
