"""TensorBoard scalars of the monitor's log lines (optional: ``pip install 'gandiag[tensorboard]'``).

The same numbers as ``log.jsonl``, under the same names (``grad_norm_total/G``...),
plus each periodic check's metric values (``eval/fid``...), so a team that
already watches TensorBoard sees gandiag's numbers beside its own.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import GandiagError


class ScalarWriter:
    def __init__(self, folder: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise GandiagError("Monitor(tensorboard=True) needs tensorboard: pip install 'gandiag[tensorboard]'") from None
        self.writer = SummaryWriter(log_dir=str(folder))

    def write(self, rec: dict) -> None:
        step = rec["step"]
        for key, value in _scalars(rec):
            self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        self.writer.close()


def _scalars(rec: dict, prefix: str = ""):
    for k, v in rec.items():
        if k in ("step", "grad_norm", "sigma_max"):  # per-layer tables: thousands of curves nobody reads
            continue
        if isinstance(v, dict):
            yield from _scalars(v, f"{prefix}{k}/")
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and v == v:
            yield f"{prefix}{k}", float(v)
