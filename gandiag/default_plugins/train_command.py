"""``gandiag train VARIANT --data SOURCE --out DIR``: the bundled reference trainer.

A thin click layer over :func:`gandiag.training.train`; docs/training.md
documents the variants and options, docs/training-log.md the log.
"""

from __future__ import annotations

import sys

import click

from ..errors import GandiagError
from ..hookspecs import hookimpl


def _classes(ctx, param, value):
    if not value:
        return []
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated class numbers such as 7,8,9, got {value!r}") from None


# What `gandiag train cyclegan` takes (gandiag.training.cyclegan.CycleOptions), under the flags' names
CYCLEGAN_FLAGS = {"batch_size": "batch_size", "width": "width", "depth": "blocks", "lr_g": "lr_g", "lr_d": "lr_d",
                  "cycle_weight": "cycle_weight", "identity_weight": "identity_weight", "log_every": "log_every",
                  "eval_every": "eval_every", "ckpt_every": "ckpt_every", "threads": "threads", "device": "device"}
TRANSLATION_ONLY = ("cycle_weight", "identity_weight")


def _changed(ctx, options: dict) -> list:
    """The options the user set: those whose value is not the flag's default."""
    defaults = {p.name: p.default for p in ctx.command.params}
    return [k for k, v in options.items() if v is not None and v != defaults.get(k) and v != []]


def _translation_options(options: dict) -> dict:
    changed = _changed(click.get_current_context(), options)
    unused = [k for k in changed if k not in CYCLEGAN_FLAGS]
    if unused:
        flags = ", ".join("--" + k.replace("_", "-") for k in unused)
        raise GandiagError(f"{flags} do{'es' if len(unused) == 1 else ''} not apply to cyclegan "
                           "(docs/training.md, \"Translators\")")
    out = {CYCLEGAN_FLAGS[k]: v for k, v in options.items() if k in CYCLEGAN_FLAGS and v is not None}
    if out.get("blocks") == 3 and "depth" not in changed:
        del out["blocks"]  # --depth's default is the MLP's; the pair's own default applies
    return out


def _gan_options(options: dict) -> dict:
    used = [k for k in TRANSLATION_ONLY if options.get(k) is not None]
    if used:
        raise GandiagError(f"{', '.join('--' + k.replace('_', '-') for k in used)}: only for cyclegan")
    return {k: v for k, v in options.items() if k not in TRANSLATION_ONLY}


# What --resume may be given beside the recorded configuration: where to run it, how long, how it reports.
RESUME_FLAGS = ("variant", "data", "out", "steps", "resume", "progress", "threads", "device")


@hookimpl(trylast=True)
def register_commands(cli):
    from ..training.variants import ARCHS, CELLS, LOSSES, SCHEDULES, TRANSLATION_VARIANTS, VARIANTS

    @cli.command()
    @click.argument("variant", type=click.Choice([*VARIANTS, *TRANSLATION_VARIANTS]))
    @click.option("--data", required=True, metavar="SOURCE",
                  help="digits, ring8, grid25, sines, basicmotions, gunpoint, an image folder or a .npz; cyclegan: a "
                       "pair of domains (digits-inverted, digits-thick, ring8-rotated).")
    @click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder: checkpoint.pt and log.jsonl.")
    @click.option("--steps", type=int,
                  help="Generator updates [default: 14000 points (grid25 30000), 1500 images, 2000 sequences].")
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.")
    @click.option("--overwrite", is_flag=True, help="Start afresh even if --out holds a checkpoint.")
    @click.option("--pack", type=int, default=1, show_default=True, help="PacGAN: D judges N samples at once.")
    @click.option("--batch-size", type=int, help="D decisions (packed groups) per step [default: 64].")
    @click.option("--loss", type=click.Choice(LOSSES), help="Override the variant's loss (gan: ns or minimax).")
    @click.option("--lr", type=float, help="Learning rate of both G and D [default: the variant's; Adam variants on points 1e-3, grid25 2e-3].")
    @click.option("--lr-g", type=float, help="Generator learning rate [default: the variant's].")
    @click.option("--lr-d", type=float, help="Discriminator learning rate [default: the variant's].")
    @click.option("--lr-schedule", type=click.Choice(SCHEDULES), help="[default: cosine for points, constant for images]")
    @click.option("--lr-step-every", type=int, help="Step schedule: decay every N steps [default: steps/3].")
    @click.option("--lr-step-gamma", type=float, default=0.5, show_default=True)
    @click.option("--n-critic", type=int, help="D updates per G update [default: the variant's].")
    @click.option("--label-smoothing", type=float, default=0.0, show_default=True, help="One-sided: real target 1-s.")
    @click.option("--instance-noise", type=float, default=0.0, show_default=True,
                  help="Std of Gaussian noise on D's inputs, annealed to 0.")
    @click.option("--grad-clip", type=float, default=0.0, show_default=True, help="Max gradient norm (0: off).")
    @click.option("--ema", type=float, help="EMA decay of G's weights (0: off) [default: 0.999 points (grid25 0.9995), 0 images].")
    @click.option("--latent-dim", type=int, help="[default: 8 points, 32 images]")
    @click.option("--width", type=int, help="Hidden units (MLP) or base channels (conv) [default: 128 / 32].")
    @click.option("--d-input-scale", type=float, help="Points: D's input multiplier [default: 0.1/mode std for a mixture; grid25 0.25].")
    @click.option("--depth", type=int, default=3, show_default=True,
                  help="MLP hidden layers; cyclegan: residual blocks (images) or hidden layers (points).")
    @click.option("--cycle-weight", type=float, help="cyclegan: λ, the cycle L1's weight [default: 10].")
    @click.option("--identity-weight", type=float,
                  help="cyclegan: the identity L1's weight, times λ [default: the pair's: 0.5 digits-thick, 0 others].")
    @click.option("--arch", type=click.Choice(ARCHS), help="Sequences: tcn or rnn networks [default: the variant's; tcn].")
    @click.option("--cell", type=click.Choice(CELLS), help="rnn nets: LSTM or GRU cells [default: lstm].")
    @click.option("--noise-dim", type=int, help="Sequences: noise values per step [default: 4]; --latent-dim is then "
                  "the global code's size [default: 16].")
    @click.option("--sn/--no-sn", "spectral_norm", default=None,
                  help="Spectral norm on every D layer [default: the variant's, on for hinge-sn].")
    @click.option("--conditional/--unconditional", default=None,
                  help="Class labels into G and D [default: the variant's; tcn-gan and rnn-gan: when the data has labels].")
    @click.option("--exclude-classes", callback=_classes, metavar="LIST", help="Drop these classes from the data, e.g. 7,8,9.")
    @click.option("--log-every", type=int, default=50, show_default=True)
    @click.option("--eval-every", type=int, help="Periodic evaluation interval [default: steps/10].")
    @click.option("--eval-samples", type=int, help="[default: 2500 points, 1000 images]")
    @click.option("--eval-extractor", metavar="NAME", help="Feature extractor for FID during training [default: the data's].")
    @click.option("--ckpt-every", type=int, default=500, show_default=True)
    @click.option("--threads", type=int, default=1, show_default=True, help="torch CPU threads.")
    @click.option("--device", default="cpu", show_default=True)
    @click.option("--progress/--no-progress", default=None,
                  help="Progress bar on stderr [default: when stderr is a terminal; the periodic evaluation lines always print].")
    def train(variant, data, out, steps, seed, resume, overwrite, progress, eval_extractor, lr, **options):
        """Train a reference GAN; OUT/checkpoint.pt is ready for `gandiag evaluate`.

        VARIANT: gan, dcgan, cgan, wgan, wgan-gp, lsgan, hinge-sn; tcn-gan, rnn-gan for sequences; cyclegan for
        translators between a pair of domains (docs/training.md).
        """
        from ..training import train as run

        if lr is not None:
            options["lr_g"] = options["lr_g"] if options["lr_g"] is not None else lr
            options["lr_d"] = options["lr_d"] if options["lr_d"] is not None else lr
        options = _translation_options(options) if variant in TRANSLATION_VARIANTS else _gan_options(options)
        if resume:  # the checkpoint's configuration wins: a flag that would change it is refused, not dropped
            given = [p.opts[0] for p in click.get_current_context().command.params
                     if p.name not in RESUME_FLAGS and p.opts and p.opts[0].startswith("--")
                     and click.get_current_context().get_parameter_source(p.name)
                     in (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT)]
            if given:
                raise click.UsageError(f"--resume continues with the configuration {out}/checkpoint.pt records; "
                                       f"{', '.join(given)} would change it: drop {'them' if len(given) > 1 else 'it'}, "
                                       "or start a new run (--overwrite, or another --out)")
            options = {}
        path = run(variant, data, out, steps=steps, seed=seed, resume=resume, overwrite=overwrite,
                   progress=sys.stderr.isatty() if progress is None else progress, eval_extractor=eval_extractor, **options)
        click.echo(str(path))
