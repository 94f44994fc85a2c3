"""One streaming feature pass per sample set, the extractor a run uses, and the cached real features.

Batches (generated or real) go through the extractor once; the
:class:`~.featureset.FeatureSet` keeps every role's rows and streams FID's
float64 statistics. The extractor is the one named, else the one the real
data source names (:attr:`default_extractor` of a real-data source plugin:
one home for that rule, shared with the trainer's periodic evaluation), else
the first registered that takes the samples' kind.
"""

from __future__ import annotations

import sys
import time
from typing import Iterable, Optional

import numpy as np
import torch

from ..errors import GandiagError, GeneratorOutputError
from ..safety import budgets
from . import cache
from .featureset import FeatureSet

ESTIMATE_COPIES = 2  # features are held once and, for the k-NN metrics, concatenated once
STATS_MATRICES = 6  # d x d float64 matrices alive at once: sums, outer products, covariances, square-root work


def progress_bar(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=not enabled, file=sys.stderr, leave=False,
                dynamic_ncols=True)


def extract(batches: Iterable, n: int, extractor, desc: str, progress: bool, keep: int = 0,
            timings: Optional[dict] = None):
    """One streaming pass: (batch, labels) items → (FeatureSet, the first ``keep`` samples, labels)."""
    fs, kept, labels = FeatureSet(), [], []
    kept_n, t_feat = 0, 0.0
    with progress_bar(n, desc, progress) as bar:
        for item in batches:
            batch, lab = item if isinstance(item, tuple) else (item, None)
            if keep and kept_n < keep:
                kept.append(batch[: keep - kept_n].cpu())
                kept_n += kept[-1].shape[0]
            if lab is not None:
                labels.append(np.asarray(lab.cpu()))
            t0 = time.perf_counter()
            feats = extractor(batch)
            for x in feats.values():
                if not torch.isfinite(x).all():
                    raise GeneratorOutputError(f"{extractor.name} features of {desc} contain NaN/Inf")
            fs.add(feats)
            t_feat += time.perf_counter() - t0
            bar.update(batch.shape[0])
    if timings is not None:
        timings["features"] = timings.get("features", 0.0) + t_feat
    if labels:
        fs.labels = np.concatenate(labels)
    return fs, (torch.cat(kept) if kept else None), fs.labels


def choose_extractor(name: Optional[str], kind: str, real_spec: Optional[str]):
    """The ExtractorSpec for samples of ``kind``: named, the real source's default, or the first that takes them."""
    from ..data.sources import bundled_source
    from ..plugins import registry

    reg = registry("feature extractor")
    if name is None and real_spec:
        source = bundled_source(real_spec)
        name = getattr(source, "default_extractor", None) if source is not None else None
        if name is not None and (name not in reg or kind not in reg[name].kinds):
            name = None
    if name:
        spec = reg[name]
        if kind not in spec.kinds:
            raise GandiagError(f"feature extractor {name!r} takes {', '.join(spec.kinds)}, but the samples are {kind}")
        return spec
    for spec in reg.values():
        if kind in spec.kinds:
            return spec
    raise GandiagError(f"no feature extractor takes {kind}")


def real_features(real_samples, real_hash: str, spec: str, extractor, *, use_cache: bool, progress: bool,
                  batch_size: int, timings: dict, warn) -> FeatureSet:
    """Features of the real data: from a valid cache entry, else one pass (then cached)."""
    key = None
    if use_cache and extractor.weights_sha256:
        key = cache.feature_key(real_hash, extractor.name, extractor.weights_sha256)
        hit, warning = cache.load(key, real_samples.n, dict(extractor.roles))
        if warning:
            warn(warning)
        if hit is not None:
            timings["real_features_cached"] = True
            if real_samples.labels is not None:  # the data's own labels win over what the entry kept
                hit.labels = np.asarray(real_samples.labels)
            return hit
    fs, _, _ = extract(((b, None) for b in real_samples.batches(batch_size)), real_samples.n, extractor,
                       f"features of real {spec}", progress)
    if real_samples.labels is not None:
        fs.labels = np.asarray(real_samples.labels)
    if key:
        warning = cache.store(key, fs)
        if warning:
            warn(warning)
    return fs


def check_memory(n_fake: int, n_real: int, extractor, sample_dim: int) -> None:
    """Features are kept for the k-NN metrics and diagnostics: refuse runs that cannot fit, before they start.

    ``sample_dim`` stands in for roles whose size is the data's (points: the coordinates themselves).
    """
    role_dims = {role: int(d) if d is not None else int(sample_dim) for role, d in extractor.roles.items()}
    for role, d in role_dims.items():
        budgets.FEATURE_DIM.check(d, f"feature extractor {extractor.name} ({role})")
    pool = role_dims.get("pool", 0)
    estimate = (n_fake + n_real) * sum(role_dims.values()) * 4 * ESTIMATE_COPIES + STATS_MATRICES * pool * pool * 8
    budgets.MEMORY.check(estimate, f"{n_fake:,} generated and {n_real:,} real samples on {extractor.name} features")
