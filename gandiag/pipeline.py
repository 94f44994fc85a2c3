"""The evaluation pipeline, top to bottom.

load generator → probe its output → sample once → extract features once per
extractor (streaming, float64 statistics) → metrics on the shared features →
diagnostics → :class:`Results`. The CLI's ``gandiag evaluate`` is a thin
wrapper over :func:`evaluate`, which a notebook can call directly.
"""

from __future__ import annotations

import math
import platform
import stat
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch

from . import __version__, distributed
from .data.samples import open_samples
from .data.sources import load_real, resolve_source
from .errors import CheckpointError, DataError, GandiagError, GeneratorOutputError
from .features import cache
from .features.featureset import FeatureSet
from .generator.contract import GeneratorContract
from .generator.loading import LoadedGenerator, LoadOptions, load_generator
from .generator.sampling import probe, sample_batches, shard_ranges
from .metrics import MetricContext, MetricOptions
from .plugins import plugin_versions, registry
from .results import Results, metric_label
from .safety import budgets
from .safety.files import require_input
from .safety.text import clean

DEFAULT_N_IMAGES = 10_000
DEFAULT_N_POINTS = 2_500  # the mode-collapse protocol's sample count
KEEP_SAMPLES = 64  # generated samples kept in memory for the report's grid
MIN_SAMPLES = 10


@dataclass
class EvalContext:
    """Everything diagnostics and report sections may read, built by one pass."""

    generator: Optional[LoadedGenerator]
    contract: Optional[GeneratorContract]
    extractor: object
    fake: FeatureSet
    real: Optional[FeatureSet]
    real_samples: object  # SampleSet / FolderSampleSet, or None
    fake_kept: Optional[torch.Tensor]  # first KEEP_SAMPLES samples (all of them for points)
    fake_labels: Optional[np.ndarray]
    real_source: Optional[str]  # a bundled source's name, None for a path
    options: MetricOptions
    seed: int
    device: str
    metrics: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    real_spec: Optional[str] = None  # the real data as the user (or a bundled default) named it


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=not enabled, file=sys.stderr, leave=False, dynamic_ncols=True)


def extract(samples_iter, n: int, extractor, desc: str, progress: bool, keep: int = 0, timings: Optional[dict] = None):
    """One streaming pass: batches → features; returns (FeatureSet, kept samples, labels)."""
    fs, kept, labels = FeatureSet(), [], []
    kept_n = 0
    t_feat = 0.0
    with _progress(n, desc, progress) as bar:
        for item in samples_iter:
            batch, lab = item if isinstance(item, tuple) else (item, None)
            if keep and kept_n < keep:
                kept.append(batch[: keep - kept_n].cpu())
                kept_n += kept[-1].shape[0]
            if lab is not None:
                labels.append(np.asarray(lab.cpu()))
            t0 = time.perf_counter()
            feats = extractor(batch)
            for role, x in feats.items():
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


def _choose_extractor(name: Optional[str], kind: str, real_source: Optional[str]):
    reg = registry("feature extractor")
    if name:
        spec = reg[name]
        if kind not in spec.kinds:
            raise GandiagError(f"feature extractor {name!r} takes {', '.join(spec.kinds)}, but the samples are {kind}")
        return spec
    for spec in reg.values():
        if real_source and real_source in spec.default_for and kind in spec.kinds:
            return spec
    for spec in reg.values():
        if kind in spec.kinds:
            return spec
    raise GandiagError(f"no feature extractor takes {kind}")


def _choose_metrics(names: Optional[Sequence[str]], roles: list, have_real: bool):
    reg = registry("metric")
    if names is not None:  # [] means no metric at all (diagnostics only)
        chosen = [reg[n] for n in names]
        for m in chosen:
            if m.role not in roles:
                raise GandiagError(f"metric {m.name!r} needs {m.role!r} features, which this feature extractor does not give")
            if m.needs_real and not have_real:
                raise GandiagError(f"metric {m.name!r} needs real data: pass --real")
        return chosen
    return [m for m in reg.values() if m.role in roles and (have_real or not m.needs_real)]


def _real_features(real_samples, real_hash, spec_str, extractor, use_cache, progress, batch_size, timings, warn):
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
                       f"features of real {spec_str}", progress)
    if real_samples.labels is not None:
        fs.labels = np.asarray(real_samples.labels)
    if key:
        warning = cache.store(key, fs)
        if warning:
            warn(warning)
    return fs


def evaluate(
    target: Union[str, Path],
    real: Optional[str] = None,
    *,
    metrics: Optional[Sequence[str]] = None,
    num_samples: Optional[int] = None,
    batch_size: int = 64,
    seed: int = 2020,
    device: Optional[str] = None,
    feature_extractor: Optional[str] = None,
    feature_weights: Optional[str] = None,
    trust_checkpoint: bool = False,
    generator_class: Optional[str] = None,
    latent_dim: Optional[int] = None,
    latent_dist: Optional[str] = None,
    num_classes: Optional[int] = None,
    layout: Optional[str] = None,
    output_range: Optional[str] = None,
    is_splits: int = 10,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    bootstrap: int = 0,
    use_cache: bool = True,
    diagnostics: Union[bool, Sequence[str]] = True,
    progress: bool = False,
    use_ema: bool = True,
) -> Results:
    """Evaluate a generator checkpoint, or a folder/.npz of generated samples, against real data."""
    device = check_device(device or default_device())
    check_counts(num_samples, batch_size, latent_dim)
    rank, world, device = distributed.setup(device)
    timings: dict = {}
    run_warnings: list = []
    t0 = time.perf_counter()
    target = Path(target)
    gen, contract, fake_set = None, None, None
    is_dir = stat.S_ISDIR(require_input(target, "the evaluated path", folder_ok=True, error=CheckpointError).st_mode)
    model_dir = is_dir and any(l.sniff(target) for l in registry("loader").values())  # a SavedModel
    if (is_dir and not model_dir) or target.suffix == ".npz":
        if world > 1:
            raise GandiagError("pre-generated samples are read by one process; run without torchrun")
        fake_set = open_samples(str(target))
        kind = fake_set.kind
        generator_info = {"path": str(target), "format": "samples", "n": fake_set.n}
    else:
        gen = load_generator(target, LoadOptions(device, trust_checkpoint, generator_class, use_ema))
        contract = _resolve_contract(gen, latent_dim, latent_dist, num_classes, layout, output_range)
        timings["load"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        contract = probe(gen, contract, seed, device)
        timings["probe"] = time.perf_counter() - t1
        kind = contract.kind
        generator_info = {"path": str(target), "format": gen.format, "loader": gen.loader, **gen.meta}
    if fake_set is not None:
        n = fake_set.n if num_samples is None else min(num_samples, fake_set.n)
    else:
        n = num_samples or (DEFAULT_N_POINTS if kind == "points" else DEFAULT_N_IMAGES)
    if n < MIN_SAMPLES:
        raise DataError(f"only {n} generated samples; at least {MIN_SAMPLES} are needed")
    real = real or (_bundled_source_of(gen, target) if gen else None)
    real_samples = None
    if real:
        t1 = time.perf_counter()
        real_samples = load_real(real, n, seed)  # n: points drawn from a mixture
        if real_samples.kind != kind:
            raise DataError(f"real data {real!r} holds {real_samples.kind} but the generator produces {kind}")
        timings["load_real"] = time.perf_counter() - t1
    source_name = real if real and resolve_source(real).name != "path" else None
    spec = _choose_extractor(feature_extractor, kind, source_name)
    t1 = time.perf_counter()
    extractor = spec.build(feature_weights, device)
    timings["build_extractor"] = time.perf_counter() - t1
    roles = list(extractor.roles)
    chosen = _choose_metrics(metrics, roles, real_samples is not None)
    sample_shape = fake_set.sample_shape if fake_set is not None else contract.sample_shape
    check_memory(n, real_samples.n if real_samples is not None else 0, extractor, math.prod(sample_shape))

    # Real features: cached when possible.
    real_fs, real_hash = None, None
    if real_samples is not None:
        t1 = time.perf_counter()
        real_hash = real_samples.content_hash()
        real_fs = _real_features(real_samples, real_hash, real, extractor, use_cache and rank == 0, progress,
                                 batch_size, timings, run_warnings.append)
        timings["real_features"] = time.perf_counter() - t1

    # One sampling pass, one feature pass.
    if fake_set is not None:
        stream = ((b, None) for b in _limit(fake_set.batches(batch_size), n))
    else:
        stream = _timed(sample_batches(gen, contract, n, seed, batch_size, device, rank, world), timings, "sampling")
    t1 = time.perf_counter()
    keep = n if kind == "points" else KEEP_SAMPLES
    fake_fs, kept, fake_labels = extract(stream, n, extractor, "sampling + features", progress and rank == 0, keep, timings)
    if world > 1:
        fake_fs, kept = distributed.gather_in_sample_order(fake_fs, kept, shard_ranges(n, batch_size, rank, world), world)
        fake_labels = fake_fs.labels  # every rank now holds every feature: all compute the same results
    timings["sample_and_extract"] = time.perf_counter() - t1

    options = MetricOptions(seed=seed, is_splits=is_splits, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size,
                            bootstrap=bootstrap, device=device)
    mctx = MetricContext(fake_fs, real_fs, options)
    out_metrics = {}
    t1 = time.perf_counter()
    for m in chosen:
        tm = time.perf_counter()
        value = _compute_metric(m, mctx)
        value.update({"label": metric_label(m.label, extractor.name), "features": extractor.name,
                      "higher_is_better": m.higher_is_better, "seconds": round(time.perf_counter() - tm, 4)})
        out_metrics[m.name] = value
    if bootstrap:
        from .metrics.bootstrap import add_confidence_intervals

        add_confidence_intervals(out_metrics, chosen, mctx, bootstrap)
    timings["metrics"] = time.perf_counter() - t1

    ctx = EvalContext(gen, contract, extractor, fake_fs, real_fs, real_samples, kept, fake_labels, source_name,
                      options, seed, device, out_metrics, run_warnings + list(mctx.warnings), real)
    diag_out = {}
    if diagnostics:
        t1 = time.perf_counter()
        wanted = None if diagnostics is True else set(diagnostics)
        for d in registry("diagnostic").values():
            if wanted is None or d.name in wanted:
                diag_out.update(_run_diagnostic(d, ctx))
        timings["diagnostics"] = time.perf_counter() - t1
    timings["total"] = time.perf_counter() - t0

    results = Results(
        metrics=out_metrics,
        generator=generator_info,
        contract=contract.to_json() if contract else None,
        real=({"source": real, "n": real_samples.n, "description": getattr(real_samples, "description", real),
               "content_sha256": real_hash} if real_samples is not None else None),
        provenance={**_provenance(seed, device, n, extractor, timings, batch_size), "world_size": world,
                    "metric_options": options.comparable(), "compute": compute_settings(device)},
        diagnostics=diag_out,
        warnings=ctx.warnings,
    )
    results.extras.update(context=ctx)
    distributed.leave()
    return results


def _compute_metric(m, mctx) -> dict:
    """A metric's value; one that raises is recorded as an error (gates fail on it), not a crash."""
    try:
        return m.compute(mctx)
    except Exception as exc:
        mctx.warnings.append(f"{m.name} could not be computed: {type(exc).__name__}: {exc}")
        return {"value": None, "error": f"{type(exc).__name__}: {exc}"}


def compute_settings(device: str) -> dict:
    """The numerics in force, recorded so gates never compare runs computed differently."""
    out = {"precision": "fp32", "compile": False}
    if device.startswith("cuda"):
        out["precision"] = (f"torch default (matmul {torch.backends.cuda.matmul.fp32_precision}, "
                            f"cudnn conv {torch.backends.cudnn.conv.fp32_precision})")
    return out


def check_memory(n_fake: int, n_real: int, extractor, sample_dim: int) -> None:
    """Features are kept for the k-NN metrics and diagnostics: refuse runs that cannot fit, before they start.

    ``sample_dim`` stands in for roles whose size is the data's (points: the coordinates themselves).
    """
    role_dims = {role: int(d) if d is not None else int(sample_dim) for role, d in extractor.roles.items()}
    for role, d in role_dims.items():
        budgets.FEATURE_DIM.check(d, f"feature extractor {extractor.name} ({role})")
    dims = sum(role_dims.values())
    pool = role_dims.get("pool", 0)
    estimate = (n_fake + n_real) * dims * 4 * 2 + 6 * pool * pool * 8  # features (+ a copy), float64 sums
    budgets.MEMORY.check(estimate, f"{n_fake:,} generated and {n_real:,} real samples on {extractor.name} features")


def _run_diagnostic(d, ctx) -> dict:
    """{name: result}, {} when it does not apply; a diagnostic that raises gives verdict ``error`` (fail closed)."""
    from .diagnostics import failed

    try:
        if not d.applies(ctx):
            return {}
        return {d.name: d.run(ctx)}
    except Exception as exc:
        return {d.name: failed(d.name, exc)}


def _limit(batches, n):
    seen = 0
    for b in batches:
        if seen >= n:
            return
        b = b[: n - seen]
        seen += b.shape[0]
        yield b


def _timed(it, timings, key):
    while True:
        t0 = time.perf_counter()
        try:
            item = next(it)
        except StopIteration:
            return
        finally:
            timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0
        yield item


def check_device(device: str) -> str:
    """cpu, cuda, cuda:N (N < the number of GPUs) or mps; anything else is bad input, said in one line."""
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise GandiagError(f"--device {device!r} is not a device; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise GandiagError(f"--device {device} asked for, but no CUDA GPU is available")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise GandiagError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise GandiagError("--device mps asked for, but MPS is not available")
    elif dev.type != "cpu":
        raise GandiagError(f"--device {device!r}: gandiag runs on cpu, cuda or cuda:N")
    return device


def check_counts(num_samples: Optional[int], batch_size: int, latent_dim: Optional[int]) -> None:
    """Flags that size what gandiag allocates, refused before any work (budgets: docs/security.md)."""
    if batch_size < 1:
        raise GandiagError("--batch-size must be at least 1")
    budgets.check_flag(budgets.BATCH_SIZE, batch_size)
    if num_samples is not None:
        if num_samples < MIN_SAMPLES:
            raise GandiagError(f"--num-samples {num_samples} is too few; at least {MIN_SAMPLES} are needed")
        budgets.check_flag(budgets.NUM_SAMPLES, num_samples)
    if latent_dim is not None:
        if latent_dim < 1:
            raise GandiagError(f"--latent-dim must be a positive integer, got {latent_dim}")
        budgets.check_flag(budgets.LATENT_SIZE, latent_dim)


def _bundled_source_of(gen: LoadedGenerator, target) -> Optional[str]:
    """The real data a checkpoint names, when it is a bundled source: a file never picks a local path to read."""
    source = gen.real_source
    if not source:
        return None
    if not isinstance(source, str):
        raise DataError(f"{target}: its training data entry is not a name; pass --real")
    bundled = [n for n in registry("real source").names() if n != "path"]
    if source in bundled:
        return source
    raise DataError(f"{target} names {clean(source)!r} as its training data, a local path; gandiag reads local "
                    f"data only when the command line names it: pass --real {clean(source)} (or a bundled source: "
                    f"{', '.join(bundled)})")


def _resolve_contract(gen: LoadedGenerator, latent_dim, latent_dist, num_classes, layout, output_range) -> GeneratorContract:
    base = gen.contract
    if base is None:
        if latent_dim is None:
            raise GandiagError(
                f"{gen.path} ({gen.format}) does not say its latent size: pass --latent-dim "
                "(and --num-classes for a conditional generator)"
            )
        base = GeneratorContract(latent_dim=latent_dim)
    return base.merged(latent_dim=latent_dim, latent_dist=latent_dist, num_classes=num_classes, layout=layout,
                       output_range=output_range)


def _provenance(seed, device, n, extractor, timings, batch_size) -> dict:
    import datetime

    dev = device
    if device.startswith("cuda"):
        dev = f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return {
        "gandiag_version": __version__,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "plugins": plugin_versions(),
        "device": dev,
        "seed": seed,
        "num_samples": n,
        "batch_size": batch_size,
        "extractor": {"name": extractor.name, "weights_sha256": extractor.weights_sha256,
                      "preprocessing": extractor.preprocessing},
        "timings_s": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in timings.items()},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
