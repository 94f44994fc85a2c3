"""Stages 1 and 2 of an evaluation: what is evaluated and what it is compared with.

:func:`open_target` loads a generator and probes its output (or opens a set of
pre-generated samples) into a :class:`Target`; :func:`open_real` reads the real
data the command line names, else the bundled source a checkpoint names, into a
:class:`Real`; :func:`open_train` reads ``--train-data``, the training set that
memorisation is judged against. :mod:`gandiag.pipeline` runs them in order.
"""

from __future__ import annotations

import math
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .data import kinds
from .data.reference_stats import ReferenceStats
from .data.samples import open_samples
from .data.sources import bundled_source, load_real, named_by_file
from .errors import CheckpointError, DataError, GandiagError
from .generator.contract import GeneratorContract
from .generator.loading import LoadedGenerator, LoadOptions, load_generator
from .generator.sampling import probe
from .options import MIN_SAMPLES, EvalOptions
from .plugins import registry
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
    warnings: list = field(default_factory=list)  # what the results should say about the target as opened

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


def open_target(path: Path, opts: EvalOptions, world: int, timings) -> Target:
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
        if opts.num_samples is not None and opts.num_samples > samples.n:
            tgt.warnings.append(f"-n {opts.num_samples:,} asked for more samples than {path} holds: all "
                                f"{samples.n:,} of them are evaluated")
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


def open_real(opts: EvalOptions, tgt: Target, timings) -> Optional[Real]:
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


def open_train(opts: EvalOptions, tgt: Target, real: Optional[Real], timings) -> Optional[Real]:
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
