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
from typing import Optional

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
            kept = [rec for rec in read_log(self.path) if rec.get("step", 0) <= resume_step]
            write_text(self.path, "".join(json.dumps(rec) + "\n" for rec in kept))
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


class Meter:
    """Means of scalar training signals since the last log line (the log's lines hold means, not last values)."""

    def __init__(self):
        self.sums, self.counts = {}, {}

    def add(self, **values):
        for k, x in values.items():
            if x is not None:
                self.sums[k] = self.sums.get(k, 0.0) + float(x)
                self.counts[k] = self.counts.get(k, 0) + 1

    def means(self) -> dict:
        out = {k: self.sums[k] / self.counts[k] for k in self.sums}
        self.sums, self.counts = {}, {}
        return out


LOG_NAME = "log.jsonl"


def find_log(checkpoint_path, relative_to=None) -> Optional[Path]:
    """The ``log.jsonl`` of a run: beside its checkpoint (or in its folder); a relative checkpoint path is also
    tried against ``relative_to`` (the folder of a results JSON read later). None when there is none."""
    from ..safety.files import is_folder, is_regular_file

    p = Path(str(checkpoint_path))
    folder = p if is_folder(p) else p.parent
    candidates = [folder / LOG_NAME]
    if folder.name == "snapshots":  # a monitored run's snapshots (gandiag.Monitor) lie one folder below its log
        candidates.append(folder.parent / LOG_NAME)
    if relative_to is not None and not p.is_absolute():
        candidates.append(Path(relative_to) / folder / LOG_NAME)
    return next((c for c in candidates if is_regular_file(c)), None)


NUMBER_FIELDS = ("time", "d_loss", "g_loss", "d_real", "d_fake", "d_real_prob", "d_fake_prob", "wasserstein", "gp",
                 "gp_grad_norm", "lr_g", "lr_d", "instance_noise", "eval_seconds", "d_accuracy")
PER_NET_FIELDS = ("grad_norm_total",)  # {"G": number, "D": number}
PER_LAYER_FIELDS = ("grad_norm", "sigma_max")  # {"G": {param: number}, "D": {...}}


def read_log(path) -> list[dict]:
    """The records of a ``log.jsonl``, field types checked (docs/training-log.md).

    The one reader of the format, for the diagnostics, the report and
    ``--resume``. A last line cut short by a kill is dropped; any other line
    that is not a well-typed record is a :class:`DataError` naming it, since a
    log is read from a folder that may hold anything.
    """
    from ..errors import DataError
    from ..safety.files import read_text_limited
    from ..safety.jsonfile import parse_json

    lines = [(i, ln) for i, ln in enumerate(read_text_limited(path, "a training log", error=DataError).splitlines(), 1)
             if ln.strip()]
    records = []
    for k, (i, ln) in enumerate(lines):
        where = f"{path}, line {i}"
        try:
            rec = parse_json(ln, where)
        except DataError:
            if k == len(lines) - 1:
                break  # a line cut by a kill
            raise
        records.append(check_record(rec, where))
    return records


def _is_number(v) -> bool:
    if v is None:
        return True
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return False
    try:
        float(v)  # a 400-digit integer is valid JSON but no number the analysis can use
    except OverflowError:
        return False
    return True


def is_step(v) -> bool:
    """A training step as logs and trend files hold it: an integer (not a bool), 0 <= v < 2**62."""
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 62


def check_record(rec, where: str) -> dict:
    from ..errors import DataError

    def bad(field, expected):
        return DataError(f"{where}: field {field!r} must be {expected}")

    if not isinstance(rec, dict):
        raise DataError(f"{where}: not a JSON object")
    step = rec.get("step")
    if not is_step(step):
        raise bad("step", "present, a non-negative integer")
    for f in NUMBER_FIELDS:
        if not _is_number(rec.get(f)):
            raise bad(f, "a number or null")
    for f in PER_NET_FIELDS + PER_LAYER_FIELDS:
        v = rec.get(f)
        if v is None:
            continue
        if not isinstance(v, dict) or not all(isinstance(k, str) for k in v):
            raise bad(f, "an object keyed by network (G, D)")
        for net in v.values():
            ok = _is_number(net) if f in PER_NET_FIELDS else (
                isinstance(net, dict) and all(_is_number(x) for x in net.values()))
            if not ok:
                raise bad(f, "numbers per network" if f in PER_NET_FIELDS else "numbers per layer and network")
    if not isinstance(rec.get("event", ""), str):
        raise bad("event", "text")
    if not isinstance(rec.get("non_finite", []), list) or not all(isinstance(x, str) for x in rec.get("non_finite", [])):
        raise bad("non_finite", "a list of field names")
    if not isinstance(rec.get("eval", {}), (dict, type(None))):
        raise bad("eval", "an object")
    return rec


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
