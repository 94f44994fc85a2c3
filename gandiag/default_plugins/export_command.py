"""``gandiag export CKPT --to FORMAT -o PATH``: a thin click layer over :func:`gandiag.export.export_checkpoint`.

docs/loaders-and-export.md documents the formats and what each stores.
"""

from __future__ import annotations

import click

from ..hookspecs import hookimpl


@hookimpl(trylast=True)
def register_commands(cli):
    from ..export import TARGETS

    @cli.command("export")
    @click.argument("checkpoint", type=click.Path(dir_okay=False))
    @click.option("--to", "to", required=True, type=click.Choice(TARGETS),
                  help="onnx (onnxruntime), savedmodel (TensorFlow, NHWC), export (torch.export .pt2), "
                       "torchscript (deprecated by PyTorch).")
    @click.option("-o", "--output", "output", required=True, type=click.Path(), help="File (or directory for savedmodel) to write.")
    @click.option("--no-ema", is_flag=True, help="Export the raw generator, not its EMA.")
    @click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
    def export(checkpoint, to, output, no_ema, force):
        """Export a gandiag checkpoint's generator, its contract stored inside, for `gandiag evaluate`."""
        from ..export import export_checkpoint

        path = export_checkpoint(checkpoint, to, output, use_ema=not no_ema, overwrite=force)
        click.echo(str(path))
