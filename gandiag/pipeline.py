"""The evaluation pipeline, top to bottom, one named stage per step.

:func:`evaluate` reads as the data path: check the options → open the target
(load the generator and probe its output, or open pre-generated samples) →
open the real data → choose the feature extractor and the metrics → real
features (cached) → one sampling pass and one feature pass → metrics on the
shared features → diagnostics → :class:`~gandiag.results.Results`. Writing
the outputs is the last stage, :func:`gandiag.outputs.finish`, shared by the
CLI and notebooks. Under ``torchrun`` every rank runs every stage on all the
gathered features and returns the same results. Stages 1-2 (the target, the
real and training data) live in :mod:`gandiag.inputs`, stage 6 (results and
provenance) in :mod:`gandiag.provenance`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from . import distributed
from .data import kinds
from .data.reference_stats import match_extractors
from .features import compiled, precision
from .features.extraction import build_extractors, check_memory, extract, real_features
from .features.featureset import FeatureSet
from .generator.contract import GeneratorContract
from .generator.loading import LoadedGenerator
from .generator.sampling import sample_batches, shard_ranges
from .errors import GandiagError
from .inputs import Real, Target, open_real, open_target, open_train
from .metrics import MetricContext, choose_metrics, compute_metrics, extractor_metrics
from .options import EvalOptions, check
from .plugins import registry
from .provenance import make_results
from .results import Results
from .translation import evaluation as translation


@dataclass
class EvalContext:
    """Everything diagnostics and report sections may read, built by one pass."""

    generator: Optional[LoadedGenerator]
    contract: Optional[GeneratorContract]
    extractor: object
    fake: FeatureSet
    real: Optional[FeatureSet]
    real_samples: object  # SampleSet / FolderSampleSet, or None
    fake_kept: Optional[torch.Tensor]  # the first samples, as many as the kind keeps for reports
    fake_labels: Optional[np.ndarray]
    real_source: Optional[str]  # a bundled source's name, None for a path
    options: EvalOptions
    metrics: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    real_spec: Optional[str] = None  # the real data as the user (or a bundled default) named it
    features: dict = field(default_factory=dict)  # every extractor's name -> (generated, real) FeatureSets
    extractors: list = field(default_factory=list)  # every extractor of the run; the first is ``extractor``
    real_statistics: object = None  # ReferenceStats when --real gave FID statistics: then ``real`` is None
    translation: object = None  # a translator's TranslationRun (gandiag.translation.run): what went in and out
    other_direction: object = None  # a translator's B -> A EvalContext, when it has an inverse
    compiled: dict = field(default_factory=dict)  # {extractor: {"compiled", "why"}} (gandiag.features.compiled)
    numerics: str = "strict"  # the feature networks' precision mode (gandiag.features.precision)
    train: Optional[FeatureSet] = None  # --train-data's features on the first extractor (memorization)
    train_samples: object = None  # --train-data's samples
    train_spec: Optional[str] = None  # --train-data as the user named it
    shared: dict = field(default_factory=dict)  # what diagnostics compute once and share (memorization's distances)

    @property
    def seed(self) -> int:
        return self.options.seed

    @property
    def device(self) -> str:
        return self.options.device


class Timings(dict):
    """Seconds per stage, for ``provenance.timings_s``."""

    def stage(self, name: str):
        timings = self

        class _Stage:
            def __enter__(self):
                self.t0 = time.perf_counter()

            def __exit__(self, *exc):
                timings[name] = timings.get(name, 0.0) + time.perf_counter() - self.t0

        return _Stage()


def evaluate(target: Union[str, Path], real: Optional[str] = None, *, options: Optional[EvalOptions] = None,
             **overrides) -> Results:
    """Evaluate a generator checkpoint, or a folder/.npz of generated samples, against real data.

    ``options`` (an :class:`~gandiag.options.EvalOptions`) and keyword overrides
    of its fields (``num_samples=5000``, ``seed=7``...) say how.
    """
    opts = check((options or EvalOptions()).with_overrides(real=real, **overrides))
    rank, world, device = distributed.setup(opts.device)
    opts = replace(opts, device=device)
    timings, warnings = Timings(), []
    with timings.stage("total"):
        tgt = open_target(Path(target), opts, world, timings)
        real_data = open_real(opts, tgt, timings)
        train_data = open_train(opts, tgt, real_data, timings)
        if tgt.translator is not None and tgt.translator.inverse is not None:
            with timings.stage("probe"):
                translation.probe_inverse(tgt.translator, tgt.contract, _target_samples(real_data), opts)
        ctx, diagnostics = evaluate_direction(tgt, real_data, opts, rank, world, timings, warnings, train_data)
        if tgt.translator is not None and tgt.translator.inverse is not None:  # B -> A: keys suffixed :b2a
            back_tgt, back_real = translation.other_direction(tgt, real_data, opts)
            back, back_diagnostics = evaluate_direction(back_tgt, back_real, opts, rank, world, timings, warnings)
            ctx.metrics.update(_suffixed(back.metrics, "b2a"))
            diagnostics.update(_suffixed(back_diagnostics, "b2a"))
            ctx.other_direction = back
    results = make_results(ctx, tgt, real_data, diagnostics, timings, world)
    distributed.leave()
    return results


def evaluate_direction(tgt: Target, real_data: Optional[Real], opts: EvalOptions, rank: int, world: int,
                       timings: Timings, warnings: list, train_data: Optional[Real] = None) -> tuple:
    """Features, metrics and diagnostics of one target against one real set (and the training set, when
    ``--train-data`` names one): (EvalContext, diagnostics)."""
    warnings.extend(tgt.warnings)
    for read in (tgt.samples, real_data.samples if real_data else None):
        warnings.extend(getattr(read, "warnings", ()))  # an image folder's: lossy-compressed images
    extractors, compiled_extractors, numerics = open_extractors(tgt, real_data, opts, timings, warnings)
    roles = list(dict.fromkeys(r for e in extractors for r in e.roles))  # any extractor's: CMMD reads CLIP's only
    chosen = choose_metrics(opts.metrics, roles, real_data is not None)
    check_memory(tgt.n, real_data.n if real_data else 0, extractors, math.prod(tgt.sample_shape))
    real_stats = real_data.statistics if real_data is not None else None
    if real_stats is not None:
        warnings.append(match_extractors(real_stats, extractors, math.prod(tgt.sample_shape)))
    real_sets = {}
    if real_data is not None and real_data.samples is not None:
        with timings.stage("real_features"):
            real_sets = {e.name: _real_set(real_data, e, opts, rank, timings, warnings) for e in extractors}
    fake_sets, kept, fake_labels = generated_features(tgt, real_data, extractors, opts, rank, world, timings)
    primary = extractors[0]
    ctx = EvalContext(tgt.generator, tgt.contract, primary, fake_sets[primary.name], real_sets.get(primary.name),
                      real_data.samples if real_data else None, kept, fake_labels,
                      real_data.bundled_name if real_data else None, opts, warnings=warnings,
                      real_spec=real_data.spec if real_data else None,
                      features={e.name: (fake_sets[e.name], real_sets.get(e.name)) for e in extractors},
                      extractors=extractors, real_statistics=real_stats)
    ctx.compiled, ctx.numerics = compiled.state(extractors, compiled_extractors), numerics
    if train_data is not None:  # the first extractor's features only: memorization reads no other
        with timings.stage("train_features"):
            ctx.train = _real_set(train_data, primary, opts, rank, timings, warnings)
        ctx.train_samples, ctx.train_spec = train_data.samples, train_data.spec
    with timings.stage("metrics"):
        for i, e in enumerate(extractors):
            mctx = MetricContext(fake_sets[e.name], real_sets.get(e.name), opts, warnings,
                                 real_statistics=real_stats)
            ctx.metrics.update(compute_metrics(extractor_metrics(chosen, e, primary=i == 0), mctx, e.name,
                                               key_features=None if i == 0 else e.name))
        if tgt.translator is not None:
            ctx.metrics.update(translation.finish_direction(ctx, tgt, real_data, opts))
    with timings.stage("diagnostics"):
        diagnostics = run_diagnostics(ctx, opts.diagnostics)
    return ctx, diagnostics


def open_extractors(tgt: Target, real_data: Optional[Real], opts: EvalOptions, timings: Timings,
                    warnings: list) -> tuple:
    """Stage 3a: the feature extractors, compiled when the run pays for it, in the numerics asked for:
    (extractors, what compiled, the numerics mode)."""
    with timings.stage("build_extractor"):
        extractors = build_extractors(opts.feature_extractor, opts.feature_weights, tgt.kind,
                                      real_data.spec if real_data else None, opts.device)
        compiled_extractors = compiled.apply(extractors, opts.compile, tgt.n + (real_data.n if real_data else 0),
                                             opts.device, warnings.append)
        extractors, numerics = precision.apply(extractors, opts.compute_precision, opts.device, warnings.append)
    return extractors, compiled_extractors, numerics


def _real_set(data: Real, extractor, opts: EvalOptions, rank: int, timings: Timings, warnings: list) -> FeatureSet:
    """Stage 3b: one real set's features on one extractor, from the cache when it holds them (rank 0 writes)."""
    return real_features(data.samples, data.content_sha256, data.spec, extractor,
                         use_cache=opts.use_cache and rank == 0, progress=opts.show_progress,
                         batch_size=opts.batch_size, timings=timings, warn=warnings.append)


def _suffixed(entries: dict, direction: str) -> dict:
    """The other direction's metrics or verdicts under keys carrying it (``fid:b2a``)."""
    from .results import metric_key, parse_metric_key

    out = {}
    for key, value in entries.items():
        name, features, _ = parse_metric_key(key)
        out[metric_key(name, features, direction)] = value
    return out


def _target_samples(real_data: Optional[Real]):
    if real_data is None or real_data.samples is None:
        raise GandiagError("a translator's inverse is probed on the target domain's samples: pass --real")
    return real_data.samples


def generated_features(tgt: Target, real: Optional[Real], extractors: list, opts: EvalOptions, rank: int, world: int,
                       timings: Timings):
    """Stage 3: one sampling pass, every extractor on each batch; under torchrun, every rank gathers all features."""
    if tgt.translator is not None:  # inputs in order through the translator, measured on the way
        stream = _timed(translation.translation_stream(tgt, real, opts, timings), timings, "sampling")
    elif tgt.samples is not None:
        stream = ((b, None) for b in _first(tgt.samples.batches(opts.batch_size), tgt.n))
    else:
        batches = sample_batches(tgt.generator, tgt.contract, tgt.n, opts.seed, opts.batch_size, opts.device, rank,
                                 world)
        stream = _timed(batches, timings, "sampling")
    keep = kinds.by_name(tgt.kind).keep or tgt.n
    with timings.stage("sample_and_extract"):
        sets, kept, labels = extract(stream, tgt.n, extractors, "sampling + features",
                                     opts.show_progress and rank == 0, keep, timings)
        if world > 1:
            all_ranges = [shard_ranges(tgt.n, opts.batch_size, r, world) for r in range(world)]
            for i, name in enumerate(sets):
                sets[name], gathered = distributed.gather_in_sample_order(sets[name], kept, all_ranges, world)
                if i == 0:
                    kept_all, labels = gathered, sets[name].labels
            kept = kept_all
    return sets, kept, labels


def run_diagnostics(ctx: EvalContext, wanted) -> dict:
    """Stage 5: every registered diagnostic that applies (or those named); one that raises gives ``error``."""
    from .diagnostics import failed

    if not wanted:
        return {}
    names = None if wanted is True else set(wanted)
    out = {}
    for d in registry("diagnostic").values():
        if names is not None and d.name not in names:
            continue
        try:
            if d.applies(ctx):
                out[d.name] = d.run(ctx)
        except Exception as exc:  # fail closed: a crashed check has not shown the model healthy
            out[d.name] = failed(d.name, exc)
    return out


def _first(batches, n):
    """The first ``n`` samples of a stream of batches."""
    seen = 0
    for b in batches:
        if seen >= n:
            return
        b = b[: n - seen]
        seen += b.shape[0]
        yield b


def _timed(it, timings: Timings, key: str):
    while True:
        t0 = time.perf_counter()
        try:
            item = next(it)
        except StopIteration:
            return
        finally:
            timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0
        yield item


__all__ = ["evaluate", "EvalContext", "EvalOptions", "Target", "Real"]
