"""A PyTorch Lightning callback around :class:`gandiag.Monitor` (optional: ``pip install 'gandiag[lightning]'``).

::

    from gandiag.monitor.lightning import GandiagMonitor

    trainer = L.Trainer(callbacks=[GandiagMonitor(out="runs/gan", real=real_images, stop_on="severe")])

The LightningModule holds its networks as attributes (``generator`` and
``discriminator`` by default; other names by argument) and gives the step's
numbers either by returning them from ``training_step`` as a dict
(``{"d_loss": ..., "g_loss": ..., "d_real": D(x), "d_fake": D(G(z))}``) or by
``self.log``-ing them under those names. Gradients are read at each optimiser's
step, whichever way Lightning drives it (manual optimisation, the usual way
for GANs, included). An alarm that reaches ``stop_on`` sets
``trainer.should_stop``, so Lightning ends the epoch loop itself and the final
check still runs. Only rank 0 monitors under DDP.
"""

from __future__ import annotations

from ..errors import GandiagError

try:
    import lightning as L
except ImportError:  # pragma: no cover - exercised by the missing-extra test through a subprocess
    raise GandiagError("gandiag.monitor.lightning needs lightning: pip install 'gandiag[lightning]'") from None

from .core import Monitor, StopTraining
from .record import KNOWN


class GandiagMonitor(L.Callback):
    def __init__(self, out="runs/monitor", real=None, *, generator: str = "generator",
                 discriminator: str = "discriminator", **monitor_kwargs):
        super().__init__()
        self.out, self.real, self.names, self.kwargs = out, real, (generator, discriminator), monitor_kwargs
        self.monitor = None

    def on_fit_start(self, trainer, pl_module) -> None:
        if trainer.global_rank != 0:
            return
        G = getattr(pl_module, self.names[0], None)
        if G is None:
            raise GandiagError(f"GandiagMonitor: the LightningModule has no attribute {self.names[0]!r} "
                               "(pass generator='name of the generator attribute')")
        D = getattr(pl_module, self.names[1], None)
        self.monitor = Monitor(G, D, self.out, self.real, optimizers=list(trainer.optimizers), **self.kwargs)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.monitor is None:
            return
        given = outputs if isinstance(outputs, dict) else {}
        logged = trainer.callback_metrics
        values = {k: given[k] if k in given else logged.get(k) for k in KNOWN}
        try:
            self.monitor.step(**{k: v for k, v in values.items() if v is not None})
        except StopTraining:
            trainer.should_stop = True

    def on_fit_end(self, trainer, pl_module) -> None:
        if self.monitor is not None:
            self.monitor.close()

    def on_exception(self, trainer, pl_module, exception) -> None:
        if self.monitor is not None:
            self.monitor.close(final_check=False)
