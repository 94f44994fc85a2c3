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

from ..errors import GandiagError, NonFiniteOutput
from ..safety import budgets
from . import cache
from .featureset import FeatureSet

ESTIMATE_COPIES = 2  # features are held once and, for the k-NN metrics, concatenated once
STATS_MATRICES = 6  # d x d float64 matrices alive at once: sums, outer products, covariances, square-root work


def progress_bar(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=not enabled, file=sys.stderr, leave=False,
                dynamic_ncols=True)


def extract(batches: Iterable, n: int, extractors, desc: str, progress: bool, keep: int = 0,
            timings: Optional[dict] = None):
    """One streaming pass through every extractor: (batch, labels) items →
    ({extractor name: FeatureSet}, the first ``keep`` samples, labels). A single extractor may be passed bare."""
    extractors = list(extractors) if isinstance(extractors, (list, tuple)) else [extractors]
    sets = {e.name: FeatureSet() for e in extractors}
    kept, labels = [], []
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
            for e in extractors:
                feats = e(batch)
                for x in feats.values():
                    if not torch.isfinite(x).all():
                        raise NonFiniteOutput(f"{e.name} features of {desc} contain NaN/Inf")
                sets[e.name].add(feats)
            t_feat += time.perf_counter() - t0
            bar.update(batch.shape[0])
    if timings is not None:
        timings["features"] = timings.get("features", 0.0) + t_feat
    all_labels = np.concatenate(labels) if labels else None
    for fs in sets.values():
        fs.labels = all_labels
    return sets, (torch.cat(kept) if kept else None), all_labels


def weights_by_extractor(names: list, weights) -> dict:
    """``--feature-weights`` values (``PATH``, or ``NAME=PATH`` for one of several extractors) → {name: path}."""
    out = {}
    for w in weights or ():
        name, sep, path = str(w).partition("=")
        if sep and name in names:
            out[name] = path
        elif len(names) == 1:
            out[names[0]] = str(w)
        else:
            raise GandiagError(f"--feature-weights {w}: with several feature extractors ({', '.join(names)}), "
                               "say whose weights these are: --feature-weights NAME=PATH")
    return out


def build_extractors(names, weights, kind: str, real_spec: Optional[str], device: str) -> list:
    """The run's extractors, the primary (first) one chosen by :func:`choose_extractor` when none is named."""
    names = list(names or []) or [choose_extractor(None, kind, real_spec).name]
    if len(set(names)) != len(names):
        raise GandiagError(f"--feature-extractor names an extractor twice: {', '.join(names)}")
    paths = weights_by_extractor(names, weights)
    specs = [choose_extractor(name, kind, real_spec) for name in names]
    for spec in specs:
        if paths.get(spec.name) and not getattr(spec, "takes_weights", True):
            raise GandiagError(f"--feature-weights {paths[spec.name]}: the {spec.name} features are model-free and "
                               "take no weights file")
    return [spec.build(paths.get(spec.name), device) for spec in specs]


def source_default(real_spec: Optional[str], kind: str) -> Optional[str]:
    """The extractor a bundled real-data source names for its samples (``default_extractor``), if it is registered."""
    from ..data.sources import bundled_source
    from ..plugins import registry

    source = bundled_source(real_spec) if real_spec else None
    name = getattr(source, "default_extractor", None) if source is not None else None
    reg = registry("feature extractor")
    return name if name is not None and name in reg and kind in reg[name].kinds else None


def choose_extractor(name: Optional[str], kind: str, real_spec: Optional[str]):
    """The ExtractorSpec for samples of ``kind``: named, the real source's default, or the first that takes them."""
    from ..plugins import registry

    reg = registry("feature extractor")
    name = name or source_default(real_spec, kind)
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
        variant = getattr(extractor, "cache_variant", None)  # --compute-precision bf16's features are its own
        key = cache.feature_key(real_hash, extractor.name + (f"|{variant}" if variant else ""),
                                extractor.weights_sha256)
        hit, warning = cache.load(key, real_samples.n, dict(extractor.roles))
        if warning:
            warn(warning)
        if hit is not None:
            timings["real_features_cached"] = True
            if real_samples.labels is not None:  # the data's own labels win over what the entry kept
                hit.labels = np.asarray(real_samples.labels)
            return hit
    sets, _, _ = extract(((b, None) for b in real_samples.batches(batch_size)), real_samples.n, [extractor],
                         f"features of real {spec} ({extractor.name})", progress)
    fs = sets[extractor.name]
    if real_samples.labels is not None:
        fs.labels = np.asarray(real_samples.labels)
    if key:
        warning = cache.store(key, fs)
        if warning:
            warn(warning)
    return fs


def check_memory(n_fake: int, n_real: int, extractors: list, sample_dim: int) -> None:
    """Features are kept for the k-NN metrics and diagnostics: refuse runs that cannot fit, before they start.

    ``sample_dim`` stands in for roles whose size is the data's (points: the coordinates themselves).
    """
    estimate = 0
    for e in extractors:
        role_dims = {role: int(d) if d is not None else int(sample_dim) for role, d in e.roles.items()}
        for role, d in role_dims.items():
            budgets.FEATURE_DIM.check(d, f"feature extractor {e.name} ({role})")
        pool = role_dims.get("pool", 0)
        estimate += (n_fake + n_real) * sum(role_dims.values()) * 4 * ESTIMATE_COPIES + STATS_MATRICES * pool * pool * 8
    names = ", ".join(e.name for e in extractors)
    budgets.MEMORY.check(estimate, f"{n_fake:,} generated and {n_real:,} real samples on {names} features")
