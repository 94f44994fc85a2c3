"""``OUT/log.jsonl``: one JSON object per logging step (fields: docs/training-log.md).

Lines are appended and flushed as they are written, so a killed run keeps
its log; a resumed run first drops the lines after the checkpoint's step.
Non-finite numbers (a diverged run) are written as ``null`` so that every
line is strict JSON; the ``non_finite`` field lists which ones they were.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from ..atomic import write_text


def _clean(obj, path: str, bad: list):
    if isinstance(obj, dict):
        return {k: _clean(v, f"{path}.{k}" if path else k, bad) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v, path, bad) for v in obj]
    if isinstance(obj, torch.Tensor):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        bad.append(path)
        return None
    return obj


class TrainLog:
    def __init__(self, path: Path, resume_step: int | None = None):
        self.path = Path(path)
        if resume_step is None:
            write_text(self.path, "")
        elif self.path.exists():  # keep only what the checkpoint had seen
            kept = [ln for ln in self.path.read_text().splitlines()
                    if ln.strip() and json.loads(ln).get("step", 0) <= resume_step]
            write_text(self.path, "".join(ln + "\n" for ln in kept))
        self._f = open(self.path, "a")

    def write(self, record: dict) -> None:
        bad: list = []
        rec = _clean(record, "", bad)
        if bad:
            rec["non_finite"] = sorted(set(bad))
        self._f.write(json.dumps(rec) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def read_log(path) -> list[dict]:
    return [json.loads(ln) for ln in Path(path).read_text().splitlines() if ln.strip()]


def grad_norms(module: torch.nn.Module) -> dict:
    """L2 norm of each parameter's gradient, by parameter name (before any clipping)."""
    return {n: float(p.grad.norm()) for n, p in module.named_parameters() if p.grad is not None}


def total_norm(norms: dict) -> float:
    return math.sqrt(sum(v * v for v in norms.values()))


def spectral_norms(module: torch.nn.Module) -> dict:
    """Top singular value of every weight matrix (conv kernels flattened to (out, in·k·k)), BigGAN-style.

    Spectrally normalised layers report their raw ``weight_orig``.
    """
    out = {}
    with torch.no_grad():
        for n, p in module.named_parameters():
            if p.dim() >= 2:
                w = p.reshape(p.shape[0], -1).float()
                out[n] = float(torch.linalg.matrix_norm(w, ord=2)) if torch.isfinite(w).all() else float("nan")
    return out
