"""The evaluation pipeline, top to bottom, one named stage per step.

:func:`evaluate` reads as the data path: check the options → open the target
(load the generator and probe its output, or open pre-generated samples) →
open the real data → choose the feature extractor and the metrics → real
features (cached) → one sampling pass and one feature pass → metrics on the
shared features → diagnostics → :class:`~gandiag.results.Results`. Writing
the outputs is the last stage, :func:`gandiag.outputs.finish`, shared by the
CLI and notebooks. Under ``torchrun`` every rank runs every stage on all the
gathered features and returns the same results.
"""

from __future__ import annotations

import datetime
import math
import platform
import stat
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from . import __version__, distributed
from .data import kinds
from .data.reference_stats import ReferenceStats, match_extractors
from .data.samples import open_samples
from .data.sources import bundled_source, load_real, named_by_file
from .errors import CheckpointError, DataError, GandiagError
from .features import compiled, precision
from .features.extraction import build_extractors, check_memory, extract, real_features
from .features.featureset import FeatureSet
from .generator.contract import GeneratorContract
from .generator.loading import LoadedGenerator, LoadOptions, load_generator
from .generator.sampling import probe, sample_batches, shard_ranges
from .metrics import MetricContext, choose_metrics, compute_metrics, extractor_metrics
from .options import MIN_SAMPLES, EvalOptions, check
from .plugins import plugin_versions, registry
from .results import Results
from .safety.files import require_input
from .translation import evaluation as translation



@dataclass
class Target:
    """What is evaluated: a loaded generator and its contract, or a set of pre-generated samples."""

    path: Path
    kind: str
    n: int  # samples to evaluate
    info: dict  # results.generator
    generator: Optional[LoadedGenerator] = None
    contract: Optional[GeneratorContract] = None
    samples: object = None  # SampleSet / FolderSampleSet of pre-generated samples
    translator: object = None  # a translator's setup (gandiag.translation.evaluation.Translator)

    @property
    def sample_shape(self) -> tuple:
        return tuple(self.samples.sample_shape if self.samples is not None else self.contract.sample_shape)


@dataclass
class Real:
    """The real data, as named (``spec``), read (``samples``) and hashed (``content_sha256``).

    Published FID statistics (``--real stats.npz``) hold no samples: ``samples``
    is None, ``statistics`` a :class:`~gandiag.data.reference_stats.ReferenceStats`
    and ``content_sha256`` the file's sha256.
    """

    spec: str
    samples: object
    content_sha256: str
    statistics: object = None

    @property
    def n(self) -> int:
        return self.samples.n if self.samples is not None else 0

    @property
    def bundled_name(self) -> Optional[str]:
        return self.spec if bundled_source(self.spec) is not None else None


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
    for read in (tgt.samples, real_data.samples if real_data else None):
        warnings.extend(getattr(read, "warnings", ()))  # an image folder's: lossy-compressed images
    with timings.stage("build_extractor"):
        extractors = build_extractors(opts.feature_extractor, opts.feature_weights, tgt.kind,
                                      real_data.spec if real_data else None, opts.device)
        compiled_extractors = compiled.apply(extractors, opts.compile, tgt.n + (real_data.n if real_data else 0),
                                             opts.device, warnings.append)
        extractors, numerics = precision.apply(extractors, opts.compute_precision, opts.device, warnings.append)
    roles = list(dict.fromkeys(r for e in extractors for r in e.roles))  # any extractor's: CMMD reads CLIP's only
    chosen = choose_metrics(opts.metrics, roles, real_data is not None)
    check_memory(tgt.n, real_data.n if real_data else 0, extractors, math.prod(tgt.sample_shape))
    real_stats = real_data.statistics if real_data is not None else None
    if real_stats is not None:
        warnings.append(match_extractors(real_stats, extractors, math.prod(tgt.sample_shape)))
    real_sets = {}
    if real_data is not None and real_data.samples is not None:
        with timings.stage("real_features"):
            for e in extractors:
                real_sets[e.name] = real_features(
                    real_data.samples, real_data.content_sha256, real_data.spec, e,
                    use_cache=opts.use_cache and rank == 0, progress=opts.show_progress,
                    batch_size=opts.batch_size, timings=timings, warn=warnings.append)
    fake_sets, kept, fake_labels = generated_features(tgt, real_data, extractors, opts, rank, world, timings)
    primary = extractors[0]
    ctx = EvalContext(tgt.generator, tgt.contract, primary, fake_sets[primary.name], real_sets.get(primary.name),
                      real_data.samples if real_data else None, kept, fake_labels,
                      real_data.bundled_name if real_data else None, opts, warnings=warnings,
                      real_spec=real_data.spec if real_data else None,
                      features={e.name: (fake_sets[e.name], real_sets.get(e.name)) for e in extractors},
                      extractors=extractors, real_statistics=real_stats)
    ctx.compiled = compiled.state(extractors, compiled_extractors)
    ctx.numerics = numerics
    if train_data is not None:  # the first extractor's features only: memorization reads no other
        with timings.stage("train_features"):
            ctx.train = real_features(train_data.samples, train_data.content_sha256, train_data.spec, primary,
                                      use_cache=opts.use_cache and rank == 0, progress=opts.show_progress,
                                      batch_size=opts.batch_size, timings=timings, warn=warnings.append)
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


def open_target(path: Path, opts: EvalOptions, world: int, timings: Timings) -> Target:
    """Stage 1: a generator (loaded and probed) or pre-generated samples (an image folder, a .npz)."""
    is_dir = stat.S_ISDIR(require_input(path, "the evaluated path", folder_ok=True, error=CheckpointError).st_mode)
    model_dir = is_dir and any(loader.sniff(path) for loader in registry("loader").values())  # a SavedModel
    if (is_dir and not model_dir) or path.suffix in (".npz", ".npy"):
        if world > 1:
            raise GandiagError("pre-generated samples are read by one process; run without torchrun")
        samples = open_samples(str(path), opts.kind, opts.layout, opts.recursive)
        n = samples.n if opts.num_samples is None else min(opts.num_samples, samples.n)
        tgt = Target(path, samples.kind, n, {"path": str(path), "format": "samples", "n": samples.n},
                     samples=samples)
    else:
        with timings.stage("load"):
            gen = load_generator(path, LoadOptions.from_options(opts))
        with timings.stage("probe"):
            contract, translator = translation.open_translator(gen, resolve_contract(gen, opts), opts)
            contract = probe(gen, contract, opts.seed, opts.device,
                             inputs=translator.inputs if translator is not None else None)
        n = opts.num_samples or (translator.inputs.n if translator is not None else kinds.by_name(contract.kind).default_n)
        info = {"path": str(path), "format": gen.format, "loader": gen.loader, **gen.meta}
        if translator is not None:
            translation.check_world(world)
            info.update(direction="a2b", inputs=translation.inputs_info(translator))
        tgt = Target(path, contract.kind, n, info, generator=gen, contract=contract, translator=translator)
    if tgt.n < MIN_SAMPLES:
        raise DataError(f"only {tgt.n} generated samples; at least {MIN_SAMPLES} are needed")
    return tgt


def resolve_contract(gen: LoadedGenerator, opts: EvalOptions) -> GeneratorContract:
    """The file's contract with the user's flags on top; a file that says nothing needs --latent-dim."""
    base = gen.contract
    if base is None:
        size = math.prod(opts.latent_shape) if opts.latent_shape else opts.latent_dim
        if size is None:
            raise GandiagError(f"{gen.path} ({gen.format}) does not say its latent size: pass --latent-dim or "
                               "--latent-shape (and --num-classes for a conditional generator)")
        known = {k: v for k, (v, _) in gen.known.items()}
        base = GeneratorContract(latent_dim=size, **known, decided={k: how for k, (_, how) in gen.known.items()})
    contract = base.merged(latent_dim=opts.latent_dim, latent_shape=opts.latent_shape, latent_dist=opts.latent_dist,
                           num_classes=opts.num_classes, label_format=opts.label_format, kind=opts.kind,
                           layout=opts.layout, output_range=opts.output_range)
    if opts.truncation_psi is not None and "truncation_psi" not in gen.meta:
        raise GandiagError(f"--truncation-psi: {gen.path} ({gen.format}) is not a generator gandiag truncates "
                           "(StyleGAN and BigGAN pickles are)")
    if gen.takes_labels is False and contract.num_classes:
        raise GandiagError(f"{gen.path} ({gen.format}) takes no class labels: --num-classes {contract.num_classes} "
                           "cannot apply (pass 0, or a conditional generator)")
    if gen.takes_labels and not contract.num_classes:
        raise GandiagError(f"{gen.path} ({gen.format}) takes class labels but does not say how many classes: "
                           "pass --num-classes (and --label-format onehot if it takes one-hot rows)")
    return contract


def open_real(opts: EvalOptions, tgt: Target, timings: Timings) -> Optional[Real]:
    """Stage 2: the real data the command line names, else the bundled source a checkpoint names."""
    pair = translation.pair_of_file(tgt.generator) if tgt.translator is not None and not opts.inputs else None
    spec = opts.real or (f"{pair.name}:b" if pair is not None else None) or (
        named_by_file(tgt.generator.real_source, tgt.path) if tgt.generator else None)
    if not spec:
        return None
    with timings.stage("load_real"):
        samples = load_real(spec, tgt.n, opts.seed, opts.recursive,  # n: points drawn from a mixture
                            hint=tgt.kind, layout=opts.real_layout)  # an array naming no kind: the target's
    if isinstance(samples, ReferenceStats):  # published FID statistics: checked against the extractor later
        return Real(spec, None, samples.sha256, statistics=samples)
    if samples.kind != tgt.kind:
        raise DataError(f"real data {spec!r} holds {samples.kind} but the generator produces {tgt.kind}")
    if tgt.kind == "sequences" and tuple(samples.sample_shape) != tuple(tgt.sample_shape):
        (rs, rc), (gs, gc) = samples.sample_shape, tgt.sample_shape
        raise DataError(f"real data {spec!r} holds sequences of {rs} steps x {rc} channels, the evaluated ones "
                        f"{gs} x {gc}; they cannot be compared (an array stored (N, channels, steps) needs --layout "
                        "NCT, or --real-layout NCT for --real)")
    return Real(spec, samples, samples.content_hash())


def open_train(opts: EvalOptions, tgt: Target, real: Optional[Real], timings: Timings) -> Optional[Real]:
    """Stage 2b: ``--train-data``, the generator's training set, read like ``--real`` (memorization's)."""
    if not opts.train_data:
        return None
    if tgt.translator is not None:
        raise DataError("--train-data: translators are not judged for memorization (their outputs follow their "
                        "inputs; docs/translation.md has their verdicts)")
    if real is None or real.samples is None:
        raise DataError("--train-data needs --real samples: they are the held-out set its distances are compared "
                        "with" + (" (--real holds FID statistics only)" if real is not None else ""))
    with timings.stage("load_real"):
        try:
            samples = load_real(opts.train_data, None, opts.seed, opts.recursive, hint=tgt.kind,
                                layout=opts.real_layout)
        except DataError as exc:  # the same reader as --real: say which flag named the file
            raise DataError(f"--train-data: {exc}") from None
    if isinstance(samples, ReferenceStats):
        raise DataError(f"--train-data {opts.train_data}: holds FID statistics (mu, sigma); memorization needs the "
                        "training samples")
    if samples.kind != tgt.kind or (tgt.kind == "sequences"
                                    and tuple(samples.sample_shape) != tuple(tgt.sample_shape)):
        raise DataError(f"--train-data {opts.train_data}: holds {samples.kind} of shape "
                        f"{tuple(samples.sample_shape)}, the evaluated samples are {tgt.kind} of shape "
                        f"{tuple(tgt.sample_shape)}")
    return Real(opts.train_data, samples, samples.content_hash())


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


def make_results(ctx: EvalContext, tgt: Target, real: Optional[Real], diagnostics: dict, timings: Timings,
                 world: int) -> Results:
    """Stage 6: the results, with the provenance that makes a number reproducible and comparable."""
    results = Results(
        metrics=ctx.metrics,
        generator=tgt.info,
        contract=tgt.contract.to_json() if tgt.contract else None,
        real=_real_info(real),
        provenance=provenance(ctx, tgt.n, timings, world),
        diagnostics=diagnostics,
        warnings=list(dict.fromkeys(ctx.warnings)),  # once each, however many feature spaces raised it
    )
    results.extras.update(context=ctx)
    return results


def _real_info(real: Optional[Real]) -> Optional[dict]:
    if real is None:
        return None
    if real.statistics is not None:  # external statistics: their file's sha256 is what gates compare
        return {"source": real.spec, "n": None, "description": real.statistics.description,
                "content_sha256": real.content_sha256, "statistics": real.statistics.to_json()}
    return {"source": real.spec, "n": real.samples.n, "description": getattr(real.samples, "description", real.spec),
            "content_sha256": real.content_sha256}


def provenance(ctx: EvalContext, n: int, timings: Timings, world: int) -> dict:
    opts, extractor, device = ctx.options, ctx.extractor, ctx.options.device
    shown_device = device
    if device.startswith("cuda"):
        shown_device = f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return {
        "gandiag_version": __version__, "torch_version": torch.__version__, "numpy_version": np.__version__,
        "python_version": platform.python_version(), "plugins": plugin_versions(),
        "device": shown_device, "seed": opts.seed, "num_samples": n, "batch_size": opts.batch_size,
        "world_size": world,
        "extractor": _extractor_info(extractor),  # the primary one: plain metric keys are on its features
        "extractors": [_extractor_info(e) for e in ctx.extractors],
        "metric_options": opts.comparable(), "compute": compute_settings(ctx.numerics, ctx.compiled),
        **({"real_statistics": {**ctx.real_statistics.to_json(), "assumed_extractor": _extractor_info(extractor)}}
           if ctx.real_statistics is not None else {}),
        "timings_s": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in timings.items()},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _extractor_info(e) -> dict:
    return {"name": e.name, "weights_sha256": e.weights_sha256, "preprocessing": e.preprocessing}


def compute_settings(numerics: str, compiled: Optional[dict] = None) -> dict:
    """The numerics in force (gates compare ``precision``), and which extractors ran compiled and why."""
    compiled = compiled or {}
    return {"precision": numerics, "compile": any(c.get("compiled") for c in compiled.values()),
            "compiled_extractors": compiled}


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
