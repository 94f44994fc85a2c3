"""On-disk cache of real-data features, trusted only after it is checked.

Real data is the same from one evaluation to the next, so its features are
extracted once and kept, keyed by the data's content hash, the extractor and
its weights' sha256 (different weights never reuse features). Files are
written atomically into the user cache directory, never into site-packages;
``--no-cache`` skips the cache, ``GANDIAG_CACHE_DIR`` moves it.

A cache is a file like any other: a disk error, an interrupted copy or a bug
in an older gandiag can leave an entry that parses but is wrong. An entry is
used only when it passes :func:`validate`: its checksum, the extractor's
roles and dimensions, the sample count, finite values, labels that fit, and
stored float64 sums that agree with the features. Anything else is a
warning, the features are recomputed and the entry rewritten. A cache folder
that cannot be used (a file in its place, no permission) is a warning and a
run without the cache, never a failure.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .featureset import FeatureSet
from .stats import FeatureStats

CACHE_VERSION = 2
SUM_RTOL = 1e-6  # stored float64 sums vs sums recomputed from the stored float32 features


class InvalidEntry(Exception):
    """A cache entry that must not be trusted; the message says why."""


def cache_dir() -> Path:
    env = os.environ.get("GANDIAG_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("gandiag"))


def feature_key(content_hash: str, extractor_name: str, weights_sha256: Optional[str]) -> str:
    text = f"v{CACHE_VERSION}|{content_hash}|{extractor_name}|{weights_sha256}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def path_for(key: str) -> Path:
    return cache_dir() / "features" / f"{key}.npz"


def _checksum(arrays: dict) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def entry_bytes(fs: FeatureSet) -> bytes:
    """An entry: every role's features, the streamed roles' float64 sums, labels, and a checksum of them all."""
    arrays = {f"features_{r}": fs.features(r).numpy() for r in fs.roles}
    for r in fs.streamed:
        if r in fs.roles:
            st = fs.stats(r)
            arrays.update({f"sum_{r}": st.sum, f"outer_{r}": st.outer})
    if fs.labels is not None:
        arrays["labels"] = np.asarray(fs.labels, dtype=np.int64)
    arrays["checksum"] = np.array(_checksum(arrays))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def validate(arrays: dict, n: int, roles: dict) -> FeatureSet:
    """The FeatureSet of an entry's arrays, or InvalidEntry saying what is wrong with them."""
    stored = arrays.pop("checksum", None)
    if stored is None or stored.shape != () or str(stored) != _checksum(arrays):
        raise InvalidEntry("its checksum does not match its content")
    fs = FeatureSet()
    for role, dim in roles.items():
        x = arrays.get(f"features_{role}")
        if x is None or x.dtype != np.float32 or x.ndim != 2 or x.shape[0] != n or (dim is not None and x.shape[1] != dim):
            raise InvalidEntry(f"features of role {role!r} are not {n} x {dim or 'd'} float32")
        if not np.isfinite(x).all():
            raise InvalidEntry(f"features of role {role!r} hold NaN or Inf")
        fs._chunks[role] = [torch.from_numpy(x)]
        if role in fs.streamed:
            fs._stats[role] = _checked_stats(arrays, role, x)
    extra = {k.split("_", 1)[1] for k in arrays if k.startswith("features_")} - set(roles)
    if extra:
        raise InvalidEntry(f"it holds roles this extractor does not give ({', '.join(sorted(extra))})")
    labels = arrays.get("labels")
    if labels is not None:
        if labels.dtype.kind not in "iu" or labels.shape != (n,) or (n and labels.min() < 0):
            raise InvalidEntry("its labels are not one non-negative integer per sample")
        fs.labels = labels.astype(np.int64)
    fs.n = n
    return fs


def _checked_stats(arrays: dict, role: str, x: np.ndarray) -> FeatureStats:
    s, o = arrays.get(f"sum_{role}"), arrays.get(f"outer_{role}")
    d = x.shape[1]
    if s is None or o is None or s.shape != (d,) or o.shape != (d, d) or s.dtype != np.float64 or o.dtype != np.float64:
        raise InvalidEntry(f"float64 sums of role {role!r} are missing or misshapen")
    xd = x.astype(np.float64)
    scale = float(np.abs(xd).sum()) + 1.0
    if not np.isfinite(o).all() or np.abs(s - xd.sum(0)).max() > SUM_RTOL * scale:
        raise InvalidEntry(f"stored sums of role {role!r} disagree with its features")
    if abs(np.trace(o) - float((xd * xd).sum())) > SUM_RTOL * (float((xd * xd).sum()) + 1.0) or \
            np.abs(o - o.T).max() > SUM_RTOL * (np.abs(o).max() + 1.0):
        raise InvalidEntry(f"stored outer products of role {role!r} disagree with its features")
    return FeatureStats(x.shape[0], s, o)


def load(key: str, n: int, roles: dict) -> tuple[Optional[FeatureSet], Optional[str]]:
    """(features, None) on a valid hit; (None, None) on a miss; (None, warning) for an entry that fails its checks."""
    from ..errors import GandiagError
    from ..safety.npz import read_npz_all

    p = path_for(key)
    try:
        if not p.exists():
            return None, None
        return validate(read_npz_all(p), n, roles), None
    except (InvalidEntry, GandiagError, OSError, ValueError, EOFError, KeyError, TypeError) as exc:
        reason = str(exc) if isinstance(exc, InvalidEntry) else f"unreadable: {exc}"
        return None, f"feature cache entry {p.name} is invalid ({reason}); recomputed and replaced"
    except Exception as exc:  # zipfile and numpy raise many types for damaged files
        return None, f"feature cache entry {p.name} is invalid (unreadable: {type(exc).__name__}); recomputed and replaced"


def store(key: str, features: FeatureSet) -> Optional[str]:
    """Write an entry atomically; a warning (never an exception) when the cache folder cannot take it."""
    from ..atomic import write_bytes
    from ..errors import GandiagError

    try:
        write_bytes(path_for(key), entry_bytes(features), "feature cache entry")
    except (GandiagError, OSError) as exc:
        return f"feature cache not written ({exc}); set GANDIAG_CACHE_DIR to a writable folder, or pass --no-cache"
    return None
