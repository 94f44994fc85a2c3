"""``gandiag export FILE --to FORMAT -o PATH``: a thin click layer over :func:`gandiag.export.export_checkpoint`.

docs/loaders-and-export.md documents the formats and what each stores.
"""

from __future__ import annotations

import click

from ..hookspecs import hookimpl


@hookimpl(trylast=True)
def register_commands(cli):
    from ..export import TARGETS
    from ..options import click_options, from_click

    @cli.command("export")
    @click.argument("checkpoint", type=click.Path(dir_okay=False))
    @click.option("--to", "to", required=True, type=click.Choice(TARGETS),
                  help="onnx (onnxruntime), savedmodel (TensorFlow, NHWC; gandiag checkpoints), export "
                       "(torch.export .pt2), torchscript (deprecated by PyTorch).")
    @click.option("-o", "--output", "output", required=True, type=click.Path(), help="File (or directory for savedmodel) to write.")
    @click.option("--force", "--overwrite", "force", is_flag=True,
                  help="Replace OUTPUT if it exists (--overwrite, as train and Monitor spell it, works too).")
    @click.option("--direction", type=click.Choice(["a2b", "b2a"]), default="a2b", show_default=True,
                  help="A translator's checkpoint: export G_AB (a2b) or its inverse G_BA (b2a).")
    @click_options(("generator",))
    def export(checkpoint, to, output, force, direction, **kw):
        """Export a PyTorch generator (a gandiag checkpoint, a .pt2 or TorchScript file, a trusted pickle or
        state dict), its contract stored inside, for `gandiag evaluate` with no flags."""
        from ..export import export_checkpoint

        opts = from_click(kw)
        path = export_checkpoint(checkpoint, to, output, use_ema=opts.use_ema, overwrite=force, options=opts,
                                 direction=direction)
        click.echo(str(path))
