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
    """Turns library errors into one clear line and the documented exit code."""

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


def _csv(ctx, param, value):
    if not value:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def evaluation_options(f):
    """Options shared by every command that runs an evaluation (evaluate, diagnose)."""
    opts = [
        click.option("--real", "real", metavar="SPEC",
                     help="Real data: digits, ring8, grid25, an image folder or a .npz. Defaults to a gandiag checkpoint's training data."),
        click.option("-n", "--num-samples", type=int, help="Samples to generate [default: 10000 images, 2500 points]."),
        click.option("--batch-size", type=int, default=64, show_default=True),
        click.option("--seed", "--rng-seed", "seed", type=int, default=2020, show_default=True,
                     help="Seeds latents, IS shuffling and KID subsets (torch-fidelity's rng_seed)."),
        click.option("--device", help="cpu, cuda or cuda:N [default: cuda when available]."),
        click.option("--feature-extractor", "--features", "feature_extractor", metavar="NAME",
                     help="inception-v3, digits, points, or a plugin's [default: by real data]."),
        click.option("--feature-weights", "--feature-extractor-weights-path", "feature_weights", metavar="PATH",
                     type=click.Path(dir_okay=False), help="Weights file of the feature extractor."),
        click.option("--trust-checkpoint", is_flag=True, help="Allow checkpoints that run code when loaded (pickled modules)."),
        click.option("--generator-class", metavar="MODULE:CLASS", help="Network class for a bare state dict (needs --trust-checkpoint)."),
        click.option("--latent-dim", type=int, help="Latent size, for files that do not store it."),
        click.option("--latent-dist", type=click.Choice(["normal", "uniform"])),
        click.option("--num-classes", type=int, help="Classes of a conditional generator (0: unconditional)."),
        click.option("--layout", type=click.Choice(["NCHW", "NHWC"]), help="Output layout [default: detected]."),
        click.option("--output-range", metavar="RANGE", help="[-1,1], [0,1] or uint8 [default: detected from a probe batch]."),
        click.option("--no-ema", is_flag=True, help="gandiag checkpoints: use the raw generator, not its EMA."),
        click.option("--no-cache", is_flag=True, help="Do not read or write the real-feature cache."),
        click.option("--progress/--no-progress", default=None, help="Progress bars on stderr [default: when stderr is a terminal]."),
        click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write results as JSON (schema: docs/results-schema.md)."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def run_evaluation(target, kw, **extra):
    from .generator.contract import parse_range
    from .pipeline import evaluate

    progress = kw.pop("progress")
    return evaluate(
        target,
        kw.pop("real"),
        num_samples=kw.pop("num_samples"),
        batch_size=kw.pop("batch_size"),
        seed=kw.pop("seed"),
        device=kw.pop("device"),
        feature_extractor=kw.pop("feature_extractor"),
        feature_weights=kw.pop("feature_weights"),
        trust_checkpoint=kw.pop("trust_checkpoint"),
        generator_class=kw.pop("generator_class"),
        latent_dim=kw.pop("latent_dim"),
        latent_dist=kw.pop("latent_dist"),
        num_classes=kw.pop("num_classes"),
        layout=kw.pop("layout"),
        output_range=parse_range(kw.pop("output_range")) if kw.get("output_range") else kw.pop("output_range"),
        use_cache=not kw.pop("no_cache"),
        use_ema=not kw.pop("no_ema"),
        progress=sys.stderr.isatty() if progress is None else progress,
        **extra,
    )


@cli.command()
@click.argument("target", type=click.Path())
@evaluation_options
@click.option("--metrics", callback=_csv, metavar="LIST", help="Comma-separated: is,fid,kid,precision,recall,density,coverage [default: all that apply].")
@click.option("--isc", is_flag=True, help="Add IS (torch-fidelity spelling).")
@click.option("--fid", is_flag=True, help="Add FID.")
@click.option("--kid", is_flag=True, help="Add KID.")
@click.option("--prc", is_flag=True, help="Add precision and recall.")
@click.option("--is-splits", "--isc-splits", "is_splits", type=int, default=10, show_default=True)
@click.option("--kid-subsets", type=int, default=100, show_default=True)
@click.option("--kid-subset-size", type=int, default=1000, show_default=True)
@click.option("--bootstrap", type=int, default=0, show_default=True, help="Bootstrap resamples for confidence intervals.")
@click.option("--no-diagnostics", is_flag=True, help="Skip mode-collapse and gradient-health diagnostics.")
@click.option("--report", "report_path", is_flag=False, flag_value="", default=None, type=click.Path(dir_okay=False),
              help="Write a self-contained HTML report (to PATH, or reports/<name>.html when given alone).")
@click.option("--gate", "gate_path", type=click.Path(dir_okay=False), help="Quality gates (TOML); exit 1 when one fails.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False), help="With --gate: write JUnit XML, one test case per gate.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
def evaluate(target, metrics, isc, fid, kid, prc, is_splits, kid_subsets, kid_subset_size, bootstrap, no_diagnostics,
             report_path, gate_path, junit_path, quiet, **kw):
    """Evaluate a generator checkpoint (or a folder/.npz of samples) against real data."""
    names = list(metrics or [])
    for flag, add in ((isc, ["is"]), (fid, ["fid"]), (kid, ["kid"]), (prc, ["precision", "recall"])):
        if flag:
            names += [a for a in add if a not in names]
    json_path = kw.pop("json_path")
    if junit_path and not gate_path:
        raise click.UsageError("--junit needs --gate")
    from .distributed import rank
    from .outputs import finish, plan_outputs

    # Everything that can be refused is refused before minutes of sampling: output paths, then the gates file.
    outputs = plan_outputs(json=json_path, report=report_path, junit=junit_path, target=target)
    gates = None
    if gate_path:
        from .gates import load_gates

        gates = load_gates(gate_path)
    results = run_evaluation(target, kw, metrics=names or None, is_splits=is_splits, kid_subsets=kid_subsets,
                             kid_subset_size=kid_subset_size, bootstrap=bootstrap, diagnostics=not no_diagnostics)
    done = finish(results, outputs, gates)  # under torchrun: every rank gates, rank 0 writes
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
