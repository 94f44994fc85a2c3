"""Published reference statistics as real data: FID against the mean and covariance papers quote.

``--real stats.npz`` may hold the Gaussian fit of a real set's features
instead of the samples themselves:

- ``mu`` (D,) and ``sigma`` (D, D) in a ``.npz``: pytorch-fid's
  ``--save-stats``, TTUR's ``fid_stats_*.npz``, clean-fid's files
  (format ``pytorch-fid``);
- torch-fidelity's cached FID statistics, ``{cache_root}/{input}-{extractor}-stat-fid-{layer}.pt``
  (e.g. ``cifar10-train-inception-v3-compat-stat-fid-2048.pt``): a ``torch.save``'d
  dict with the same two keys, ``mu`` float32 and ``sigma`` float64
  (format ``torch-fidelity``).

:func:`is_statistics_keys` is the one rule that tells statistics from samples
(a ``.npz`` holding both ``mu`` and ``sigma``); the samples reader refuses such a
file with the same rule. Statistics are checked before use: real numbers,
finite, ``sigma`` square of ``mu``'s size, symmetric (within
:data:`SYMMETRY_RTOL`) with no negative variance, within the feature-dimension
and array budgets, read with ``allow_pickle=False`` (a ``.pt`` with
``weights_only=True`` and only numpy's array constructors allowed; its
tensors dense floating point of any width, Parameters included, never
sparse, quantized, complex or integer). Only
metrics whose ``real_statistics_suffice`` is true (FID) run against them; the
others are recorded as not applicable. The file cannot say which extractor
made it, so the run records the statistics as external and says that they
must come from its own extractor and preprocessing.
"""

from __future__ import annotations

import hashlib
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import DataError
from ..safety import budgets

STATS_KEYS = ("mu", "sigma")
TORCH_SUFFIXES = (".pt", ".pth")
SYMMETRY_RTOL = 1e-6  # |Σ − Σᵀ| against the largest |Σ| entry: float32 rounding passes, a non-covariance does not
FORMATS = {"pytorch-fid": "pytorch-fid / TTUR .npz", "torch-fidelity": "torch-fidelity cached statistics"}


def is_statistics_keys(keys) -> bool:
    """Whether a file's arrays are FID statistics (``mu`` and ``sigma``) rather than samples: the one rule."""
    return set(STATS_KEYS) <= set(keys)


def is_statistics_file(spec: str) -> bool:
    """Whether ``--real spec`` names FID statistics: a ``.pt``/``.pth`` file (torch-fidelity's cache) or a
    regular ``.npz`` whose arrays are ``mu`` and ``sigma`` (only its zip directory is read)."""
    from ..safety.files import is_regular_file
    from ..safety.npz import npz_keys

    p = Path(spec)
    suffix = p.suffix.lower()
    if suffix in TORCH_SUFFIXES:
        return True
    return suffix == ".npz" and is_regular_file(p) and is_statistics_keys(npz_keys(p))


class GaussianStats:
    """A fixed mean and covariance, read where :class:`~gandiag.features.stats.FeatureStats` is (FID)."""

    n = None  # the file does not say how many samples

    def __init__(self, mean: np.ndarray, cov: np.ndarray):
        self.mean, self.cov = mean, cov

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])


@dataclass
class ReferenceStats:
    """FID statistics read from a file, checked; ``role`` is the feature role they stand for."""

    path: str
    mu: np.ndarray  # float64 (D,)
    sigma: np.ndarray  # float64 (D, D), symmetric
    sha256: str
    format: str  # a key of FORMATS
    role: str = "pool"
    kind = None  # statistics say nothing of the samples' kind
    labels = None
    statistics_only = True  # no samples: readers that need samples refuse it by this

    @property
    def dim(self) -> int:
        return int(self.mu.shape[0])

    @property
    def name(self) -> str:
        return Path(self.path).name

    @property
    def description(self) -> str:
        return f"FID statistics {self.name} ({FORMATS[self.format]}, {self.dim}-d mean and covariance)"

    def stats(self, role: str) -> GaussianStats:
        if role != self.role:
            raise KeyError(role)
        return GaussianStats(self.mu, self.sigma)

    def to_json(self) -> dict:
        return {"external": True, "format": self.format, "dim": self.dim, "sha256": self.sha256,
                "keys": list(STATS_KEYS), "role": self.role}


def open_statistics(spec: str) -> ReferenceStats:
    """Read and check FID statistics (a ``.npz`` of ``mu``/``sigma``, or torch-fidelity's ``.pt`` cache)."""
    from ..safety.files import require_input
    from ..safety.npz import read_npz

    p = Path(spec)
    require_input(p, "FID statistics", error=DataError)
    if p.suffix.lower() in TORCH_SUFFIXES:
        mu, sigma, fmt = *_torch_statistics(p), "torch-fidelity"
    else:
        from ..safety.npz import npz_keys

        keys = npz_keys(p)
        if not is_statistics_keys(keys):
            raise DataError(f"{p}: not FID statistics (arrays: {', '.join(keys)[:200] or 'none'}; expected 'mu' and "
                            "'sigma')")
        mu = read_npz(p, pick=lambda _p, _keys: "mu")["mu"]
        _check_mean(mu, str(p))  # the dimension within budget before sigma is read
        sigma, fmt = read_npz(p, pick=lambda _p, _keys: "sigma")["sigma"], "pytorch-fid"
    mu, sigma = check_statistics(mu, sigma, str(p))
    return ReferenceStats(str(p), mu, sigma, _sha256(p), fmt)


def _check_mean(mu, where: str) -> None:
    if not isinstance(mu, np.ndarray):
        raise DataError(f"{where}: 'mu' is a {type(mu).__name__}, not an array of numbers")
    if mu.ndim != 1 or mu.shape[0] < 1:
        raise DataError(f"{where}: 'mu' has shape {tuple(mu.shape)}; FID statistics hold the mean feature vector (D,)")
    budgets.FEATURE_DIM.check(int(mu.shape[0]), f"{where}: statistics of {mu.shape[0]}-d features")


def check_statistics(mu, sigma, where: str) -> tuple:
    """(mu, sigma) as float64 once they are shown to be a mean and a covariance; DataError (one line) otherwise."""
    for name, a in (("mu", mu), ("sigma", sigma)):
        if not isinstance(a, np.ndarray):
            raise DataError(f"{where}: {name!r} is a {type(a).__name__}, not an array of numbers")
        if a.dtype.kind not in "fiu":
            raise DataError(f"{where}: {name!r} has dtype {a.dtype}; FID statistics are real numbers")
    _check_mean(mu, where)
    d = int(mu.shape[0])
    if sigma.shape != (d, d):
        raise DataError(f"{where}: 'sigma' has shape {tuple(sigma.shape)} but 'mu' has {d} dimensions; "
                        f"expected ({d}, {d})")
    mu, sigma = mu.astype(np.float64), sigma.astype(np.float64)
    for name, a in (("mu", mu), ("sigma", sigma)):
        if not np.isfinite(a).all():
            raise DataError(f"{where}: {name!r} holds NaN or Inf")
    scale = float(np.abs(sigma).max())
    asym = float(np.abs(sigma - sigma.T).max())
    if asym > SYMMETRY_RTOL * scale:
        raise DataError(f"{where}: 'sigma' is not symmetric (|Σ−Σᵀ| up to {asym:.3g}, entries up to {scale:.3g}); "
                        "it is not a covariance matrix")
    if (np.diagonal(sigma) < -SYMMETRY_RTOL * scale).any():
        raise DataError(f"{where}: 'sigma' has negative variances on its diagonal; it is not a covariance matrix")
    return mu, (sigma + sigma.T) / 2


def _torch_statistics(p: Path) -> tuple:
    """``mu``, ``sigma`` of torch-fidelity's cache file, unpickled with weights_only and numpy arrays only."""
    import torch

    from ..safety.torch_archive import first_line, pickled_global

    where = str(p)
    budgets.ARRAY_BYTES.check(p.stat().st_size, f"{where}: FID statistics file")
    if zipfile.is_zipfile(p):  # a compressed member could unpack to more than the file's size
        try:
            with zipfile.ZipFile(p) as z:
                total = sum(i.file_size for i in z.infolist())
        except Exception as exc:
            raise DataError(f"{where}: not a readable PyTorch file ({type(exc).__name__})") from None
        budgets.ARRAY_BYTES.check(total, f"{where}: FID statistics file, unpacked")
    core = getattr(np, "_core", None) or np.core
    allowed = [np.ndarray, np.dtype, core.multiarray._reconstruct,
               (core.multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),  # files written by numpy 1.x
               *(getattr(np.dtypes, n) for n in ("Float64DType", "Float32DType") if hasattr(np, "dtypes"))]
    try:
        # torch warns on stderr of what it loads (sparse invariants checked, TypedStorage deprecated for quantized
        # tensors): the checks below say what matters in one line
        with torch.serialization.safe_globals(allowed), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        g = pickled_global(exc)
        why = f"it pickles {g}, which gandiag does not unpickle" if g else first_line(exc)
        raise DataError(f"{where}: not FID statistics gandiag can read safely ({why})") from None
    if not isinstance(obj, dict) or not is_statistics_keys(obj):
        keys = ", ".join(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
        raise DataError(f"{where}: not FID statistics (expected a dict with 'mu' and 'sigma', as torch-fidelity "
                        f"caches them; found {keys[:200]})")
    return tuple(_tensor_array(obj[k], k, where) if isinstance(obj[k], torch.Tensor) else obj[k] for k in STATS_KEYS)


def _tensor_array(t, name: str, where: str) -> np.ndarray:
    """A dense real tensor of a torch-fidelity file as a numpy array (bfloat16 and float8 widened to float32, a
    Parameter detached); sparse, quantized, complex, integer or off-CPU tensors are refused in one line."""
    import torch

    layout = str(t.layout).removeprefix("torch.")
    if t.is_quantized:
        raise DataError(f"{where}: {name!r} is a quantized tensor ({str(t.dtype).removeprefix('torch.')}); "
                        "FID statistics are dense real numbers")
    if t.layout != torch.strided or t.is_nested:
        raise DataError(f"{where}: {name!r} is a {'nested' if t.is_nested else layout} tensor; FID statistics are "
                        "dense real numbers")
    if not t.is_floating_point():
        raise DataError(f"{where}: {name!r} has dtype {str(t.dtype).removeprefix('torch.')}; FID statistics are real "
                        "(floating-point) numbers")
    if t.device.type != "cpu":
        raise DataError(f"{where}: {name!r} is a tensor on {t.device.type!r}, with no data to read")
    t = t.detach().resolve_conj().resolve_neg()
    if t.dtype not in (torch.float16, torch.float32, torch.float64):  # bfloat16, float8: numpy has no such dtype
        budgets.ARRAY_BYTES.check(t.numel() * 4, f"{where}: {name!r} of shape {tuple(t.shape)} as float32")
        t = t.to(torch.float32)
    try:
        return t.numpy()
    except (RuntimeError, TypeError, ValueError) as exc:
        raise DataError(f"{where}: {name!r} cannot be read as an array ({str(exc).splitlines()[0][:200]})") from None


def _sha256(p: Path) -> str:
    from ..safety.files import open_regular

    h = hashlib.sha256()
    with open_regular(p, "FID statistics", error=DataError) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def match_extractors(stats: ReferenceStats, extractors: list, sample_dim: int) -> str:
    """Check that the run's feature space is the statistics' (one extractor, same dimension); the note to print.

    The file cannot say which network made it: the dimension is the only check
    there is, and the note says the rest is the user's to make sure of.
    """
    from ..errors import GandiagError

    if len(extractors) > 1:
        raise GandiagError(f"--real {stats.name} holds statistics of one feature space; name one --feature-extractor, "
                           f"not {', '.join(e.name for e in extractors)}")
    e = extractors[0]
    if stats.role not in e.roles:
        raise GandiagError(f"--real {stats.name}: the {e.name} feature extractor gives no {stats.role!r} features "
                           "for FID statistics")
    d = int(e.roles[stats.role] or sample_dim)
    if d != stats.dim:
        raise DataError(f"{stats.path}: statistics of {stats.dim}-d features, but the {e.name} features are {d}-d; "
                        "the statistics must come from this run's feature extractor")
    return (f"--real {stats.name}: external FID statistics (sha256 {stats.sha256[:12]}); FID is comparable only if "
            f"they were made with this run's extractor and preprocessing: {e.name} {stats.role} {d}-d "
            f"({e.preprocessing})")


def write_statistics(path, stats) -> None:
    """Write a FeatureStats' mean and covariance as pytorch-fid does (``mu``, ``sigma`` float64 in a .npz)."""
    import io

    from ..atomic import write_bytes

    buf = io.BytesIO()
    np.savez(buf, mu=np.asarray(stats.mean, np.float64), sigma=np.asarray(stats.cov, np.float64))
    write_bytes(Path(path), buf.getvalue(), "FID statistics")


def not_applicable_reason(label: str, stats: Optional[ReferenceStats]) -> str:
    name = stats.name if stats is not None else "the statistics file"
    return f"{label} needs the real samples' features; --real {name} holds FID statistics (mean, covariance) only"
