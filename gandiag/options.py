"""Every option of an evaluation, declared once: its name, default, flags and help.

:class:`EvalOptions` is what the pipeline, the metrics and the diagnostics
read (``ctx.options``). The CLI builds one from click: :func:`click_options`
turns the fields' metadata into click options, so a flag, its default and its
help text exist in one place. From a notebook::

    gandiag.evaluate("ckpt.pt", num_samples=5000, seed=7)                 # keyword overrides
    gandiag.evaluate("ckpt.pt", options=EvalOptions(kid_subset_size=500))  # or a whole object
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

DEFAULT_SEED = 2020  # torch-fidelity's rng_seed, so the same seed draws the same KID subsets and IS splits
DEFAULT_BATCH_SIZE = 64
DEFAULT_IS_SPLITS = 10  # the Inception Score protocol
DEFAULT_KID_SUBSETS, DEFAULT_KID_SUBSET_SIZE = 100, 1000  # clean-fid / StyleGAN2-ADA kid50k_full
DEFAULT_SCORE_RUNS = 3  # TimeGAN's discriminative and predictive scores (gandiag.metrics.sequences)
PRC_K, DC_K = 3, 5  # Kynkäänniemi et al. 2019 (precision/recall); Naeem et al. 2020 (density/coverage)


def _csv(ctx, param, value):
    if not value:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _int_tuple(ctx, param, value):
    if value is None or isinstance(value, tuple):
        return value
    try:
        shape = tuple(int(v) for v in str(value).replace("x", ",").split(",") if v.strip())
    except ValueError:
        shape = ()
    if not shape or any(d < 1 for d in shape):
        from .errors import GandiagError

        raise GandiagError(f"--latent-shape {value!r}: expected positive sizes separated by commas, e.g. 100,1,1")
    return shape


def _json_object(ctx, param, value):
    import json

    from .errors import GandiagError

    if value is None or isinstance(value, dict):
        return value
    try:
        obj = json.loads(value)
    except (ValueError, RecursionError) as exc:
        raise GandiagError(f"--generator-kwargs is not JSON ({exc}); e.g. '{{\"nz\": 100}}'") from None
    if not isinstance(obj, dict):
        raise GandiagError("--generator-kwargs must be a JSON object of keyword arguments, e.g. '{\"nz\": 100}'")
    return obj


def _range(ctx, param, value):
    from .generator.contract import parse_range

    return parse_range(value) if value else None


def opt(default, *flags, group: str = "common", **click_kw):
    """A field with its command-line flags (none: library only) and click keywords."""
    return field(default=default, metadata={"flags": flags, "group": group, "click": click_kw})


@dataclass
class EvalOptions:
    """Options of one evaluation; ``None`` means "decide from the file or the data" where the help says so."""

    real: Optional[str] = opt(None, "--real", metavar="SPEC", help=(
        "Real data: a bundled source (digits, ring8, grid25, sines, basicmotions, gunpoint; a translation pair's "
        "side such as digits-inverted:b; `gandiag plugins` lists every one), an image folder, a .npz or .npy, or "
        "published FID statistics (a .npz of mu/sigma as pytorch-fid and TTUR write, torch-fidelity's cached .pt): "
        "FID only. Defaults to a gandiag checkpoint's training data when it is a bundled source."))
    num_samples: Optional[int] = opt(None, "-n", "--num-samples", type=int,
                                     help="Samples to generate [default: 10000 images, 2500 points].")
    batch_size: int = opt(DEFAULT_BATCH_SIZE, "--batch-size", type=int, show_default=True)
    seed: int = opt(DEFAULT_SEED, "--seed", "--rng-seed", type=int, show_default=True,
                    help="Seeds latents, IS shuffling and KID subsets (torch-fidelity's rng_seed).")
    device: Optional[str] = opt(None, "--device", help="cpu, cuda or cuda:N [default: cuda when available].")
    feature_extractor: Optional[Sequence[str]] = opt(
        None, "--feature-extractor", "--features", metavar="NAME[,NAME...]", callback=_csv, help=(
            "inception-v3, digits, points, sequence-stats, sines, motion, dinov2-vitl14, clip-vitl14-336..., or a "
            "plugin's (`gandiag plugins` lists them) [default: by real data]. Several, comma-separated: "
            "metrics on every feature space, the first one's keyed plainly (fid), the others' with @NAME (fid@digits)."))
    feature_weights: Sequence[str] = opt((), "--feature-weights", "--feature-extractor-weights-path",
                                         metavar="[NAME=]PATH", multiple=True, help=(
                                             "Weights file of the feature extractor; NAME=PATH for one of several "
                                             "(repeat the flag)."))
    trust_checkpoint: bool = opt(False, "--trust-checkpoint", is_flag=True, help=(
        "Allow files that run code when loaded (pickled modules, --generator-class, graphs outside the "
        "allow-lists; docs/security.md)."), group="generator")
    generator_class: Optional[str] = opt(None, "--generator-class", metavar="MODULE:CLASS",
                                         help="Network class for a bare state dict (needs --trust-checkpoint).",
                                         group="generator")
    generator_path: Sequence[str] = opt((), "--generator-path", metavar="DIR", multiple=True, help=(
        "A folder to import --generator-class (or a pickle's packages, e.g. a StyleGAN clone's torch_utils and "
        "dnnlib) from; repeat for several (needs --trust-checkpoint)."), group="generator")
    generator_kwargs: Optional[dict] = opt(None, "--generator-kwargs", metavar="JSON", callback=_json_object, help=(
        "Keyword arguments for --generator-class, as a JSON object, e.g. '{\"nz\": 100}'."), group="generator")
    latent_dim: Optional[int] = opt(None, "--latent-dim", type=int, help="Latent size, for files that do not store it.",
        group="generator")
    latent_shape: Optional[tuple] = opt(None, "--latent-shape", metavar="D[,D...]", callback=_int_tuple, help=(
        "Shape of one latent, e.g. 100,1,1 for the PyTorch DCGAN tutorial's (N, 100, 1, 1) input "
        "[default: from the file, else (latent-dim,)]."), group="generator")
    label_format: Optional[str] = opt(None, "--label-format", type="choice:index,onehot", help=(
        "How a conditional generator takes classes: integer indices or one-hot floats [default: from the file]."),
        group="generator")
    truncation_psi: Optional[float] = opt(None, "--truncation-psi", type=float, help=(
        "Truncation of StyleGAN / BigGAN-style generators (1: none) [default: the generator's]."), group="generator")
    latent_dist: Optional[str] = opt(None, "--latent-dist", type="choice:normal,uniform", group="generator")
    num_classes: Optional[int] = opt(None, "--num-classes", type=int,
                                     help="Classes of a conditional generator (0: unconditional).", group="generator")
    kind: Optional[str] = opt(None, "--kind", metavar="KIND", help=(
        "What the samples are: images, points, sequences, or a plugin's kind [default: the file's contract, an "
        ".npz key named after a kind, else the shape: 2-d points, 4-d images, 3-d grey images only when uint8 of "
        "at least 8x8, other 3-d arrays need --kind]."), group="generator")
    layout: Optional[str] = opt(None, "--layout", metavar="LAYOUT", help=(
        "Layout of a generator's output or an array: NCHW or NHWC for images, NTC or NCT for sequences, or a "
        "plugin kind's [default: detected; NTC for arrays of sequences]."), group="generator")
    real_layout: Optional[str] = opt(None, "--real-layout", metavar="LAYOUT", help=(
        "Layout of a --real array (.npz/.npy) of sequences: NTC or NCT [default: NTC]; images: NCHW or NHWC "
        "[default: detected]. A --real array that names no kind is read as the evaluated samples' kind."),
        group="generator")
    output_range: Optional[str] = opt(None, "--output-range", metavar="RANGE", callback=_range,
                                      help="[-1,1], [0,1] or uint8 [default: detected from a probe batch].",
                                      group="generator")
    input_range: Optional[str] = opt(None, "--input-range", metavar="RANGE", callback=_range, help=(
        "A translator's input range: [-1,1], [0,1] or uint8 [default: the file's contract; CycleGAN's is "
        "[-1,1]]."), group="generator")
    train_data: Optional[str] = opt(None, "--train-data", metavar="PATH", help=(
        "The generator's training set (an image folder, a .npz or .npy, read like --real): the memorization verdict "
        "compares its samples' distances to it with those of --real, which is then the held-out set (real data the "
        "generator never saw). Bundled finite sources (digits, basicmotions, gunpoint) have a fixed split of their own [default: none: "
        "memorization not applicable]."))
    inputs: Optional[str] = opt(None, "--inputs", metavar="SPEC", group="evaluate", help=(
        "Evaluate a translator (image-to-image): the samples it translates, an image folder, a .npz or a bundled "
        "side (digits-inverted:a) [default: the side A of the bundled pair its checkpoint names]. --real is then "
        "the target domain."))
    inverse: Optional[str] = opt(None, "--inverse", metavar="PATH", group="evaluate", help=(
        "A translator's other direction (B->A): cycle-consistency error, and every metric B->A too, keyed "
        "NAME:b2a [default: the one its gandiag checkpoint holds]."))
    paired: bool = opt(False, "--paired", is_flag=True, group="evaluate", help=(
        "Translators: --real's sample i is input i's true translation (same order): PSNR, SSIM and paired L1 "
        "[default: on for bundled pairs, whose truth is known]."))
    use_ema: bool = opt(True, "--ema/--no-ema", help="gandiag checkpoints: use the EMA generator when present (evaluate, diagnose, export).",
        group="generator")
    recursive: bool = opt(False, "--recursive/--no-recursive", "--samples-find-deep", help=(
        "Image folders: read images in subfolders too (torch-fidelity's --samples-find-deep) [default: the folder "
        "alone, as torch-fidelity]."))
    use_cache: bool = opt(True, "--cache/--no-cache", help="Read and write the real-feature cache.")
    compute_precision: Optional[str] = opt(None, "--compute-precision", type="choice:strict,tf32,bf16", help=(
        "Numerics of the feature network: strict fp32, tf32 (GPU) or bf16 (faster, features ~1.5% off) [default: "
        "strict on CPU, torch's own defaults on GPU]; recorded, and baselines must match it."))
    compile: Optional[bool] = opt(None, "--compile/--no-compile", help=(
        "torch.compile the feature extractor (Inception-v3) [default: on CPU from 1,000 images per run, where it "
        "pays for itself; off on GPU]."))
    progress: Optional[bool] = opt(None, "--progress/--no-progress",
                                   help="Progress bars on stderr [default: when stderr is a terminal].")
    metrics: Optional[Sequence[str]] = opt(None, "--metrics", group="evaluate", callback=_csv, metavar="LIST", help=(
        "Comma-separated: is,fid,kid,precision,recall,density,coverage; sequences also disc_score,pred_score,"
        "acf_distance,marginal_w1 [default: all that apply]."))
    is_splits: int = opt(DEFAULT_IS_SPLITS, "--is-splits", "--isc-splits", group="evaluate", type=int,
                         show_default=True)
    kid_subsets: int = opt(DEFAULT_KID_SUBSETS, "--kid-subsets", group="evaluate", type=int, show_default=True)
    kid_subset_size: int = opt(DEFAULT_KID_SUBSET_SIZE, "--kid-subset-size", group="evaluate", type=int,
                               show_default=True)
    score_runs: int = opt(DEFAULT_SCORE_RUNS, "--score-runs", group="evaluate", type=int, show_default=True, help=(
        "Sequences: runs of TimeGAN's discriminative and predictive scores, reported as mean ± std (TimeGAN's "
        "tables: 10)."))
    bootstrap: int = opt(0, "--bootstrap", group="evaluate", type=int, show_default=True,
                         help="Bootstrap resamples for confidence intervals.")
    diagnostics: Union[bool, Sequence[str]] = opt(True, "--diagnostics/--no-diagnostics", group="evaluate",
                                                  help="Mode-collapse and gradient-health diagnostics.")
    prc_k: int = opt(PRC_K)  # library only: the published protocols fix k
    dc_k: int = opt(DC_K)

    def with_overrides(self, **overrides) -> "EvalOptions":
        """A copy with keyword overrides; ``None`` keeps a field's value. Unknown names are a TypeError.

        Library spellings are accepted for the list options: ``metrics="fid,kid"``,
        ``feature_extractor="digits"`` or ``"inception-v3,digits"``, ``diagnostics="mode_collapse"``,
        ``feature_weights="w.pth"``, ``generator_path="../stylegan2-ada"`` (a string is never split into letters).
        """
        unknown = set(overrides) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise TypeError(f"unknown evaluation option(s): {', '.join(sorted(unknown))}")
        out = dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})
        for name in ("metrics", "feature_extractor", "diagnostics"):  # comma-separated names, as the CLI takes them
            if isinstance(getattr(out, name), str):
                setattr(out, name, _csv(None, None, getattr(out, name)))
        for name in ("feature_weights", "generator_path"):  # one path for a list of paths
            value = getattr(out, name)
            if isinstance(value, (str, bytes)) or hasattr(value, "__fspath__"):
                setattr(out, name, (os.fsdecode(value),))
        for name in ("output_range", "input_range"):  # the spellings people type: "[-1,1]", "0..1", "uint8"
            if isinstance(getattr(out, name), str):
                setattr(out, name, _range(None, None, getattr(out, name)))
        return out

    @property
    def show_progress(self) -> bool:
        return sys.stderr.isatty() if self.progress is None else bool(self.progress)

    def comparable(self) -> dict:
        """The options that change a metric's value; two runs compare only when these are equal (docs/gates.md)."""
        return {"seed": self.seed, "is_splits": self.is_splits, "kid_subsets": self.kid_subsets,
                "kid_subset_size": self.kid_subset_size, "prc_k": self.prc_k, "dc_k": self.dc_k,
                **({"paired": True} if self.paired else {})}


def click_options(groups: Sequence[str] = ("common",)):
    """A decorator adding the click options of the fields in ``groups`` (an option is declared only in EvalOptions)."""
    import click

    decorators = []
    for f in dataclasses.fields(EvalOptions):
        meta = f.metadata
        if not meta.get("flags") or meta["group"] not in groups:
            continue
        kw = dict(meta["click"])
        if isinstance(kw.get("type"), str) and kw["type"].startswith("choice:"):
            kw["type"] = click.Choice(kw["type"][len("choice:"):].split(","))
        decorators.append(click.option(*meta["flags"], f.name, default=f.default, **kw))

    def apply(fn):
        for d in reversed(decorators):
            fn = d(fn)
        return fn

    return apply


def from_click(kw: dict) -> EvalOptions:
    """Take the EvalOptions fields out of a click command's keyword arguments (the rest stays in ``kw``)."""
    names = {f.name for f in dataclasses.fields(EvalOptions)}
    return EvalOptions(**{k: kw.pop(k) for k in list(kw) if k in names})


MIN_SAMPLES = 10  # below this no metric or verdict means anything


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def check_device(device: str) -> str:
    """cpu, cuda, cuda:N (N < the number of GPUs) or mps; anything else is bad input, said in one line."""
    import torch

    from .errors import GandiagError

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


def check(opts: EvalOptions) -> EvalOptions:
    """Options refused before any work (budgets: docs/security.md); returns them with the device resolved."""
    from .errors import GandiagError
    from .safety import budgets

    if opts.batch_size < 1:
        raise GandiagError("--batch-size must be at least 1")
    budgets.check_flag(budgets.BATCH_SIZE, opts.batch_size)
    if opts.num_samples is not None:
        if opts.num_samples < MIN_SAMPLES:
            raise GandiagError(f"--num-samples {opts.num_samples} is too few; at least {MIN_SAMPLES} are needed")
        budgets.check_flag(budgets.NUM_SAMPLES, opts.num_samples)
    if opts.latent_dim is not None:
        if opts.latent_dim < 1:
            raise GandiagError(f"--latent-dim must be a positive integer, got {opts.latent_dim}")
        budgets.check_flag(budgets.LATENT_SIZE, opts.latent_dim)
    for name in ("is_splits", "kid_subsets", "kid_subset_size", "prc_k", "dc_k"):
        if getattr(opts, name) < 1:
            raise GandiagError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(opts, name)}")
    if opts.bootstrap < 0:
        raise GandiagError(f"--bootstrap must be 0 (off) or positive, got {opts.bootstrap}")
    budgets.check_flag(budgets.BOOTSTRAP, opts.bootstrap)
    return dataclasses.replace(opts, device=check_device(opts.device or default_device()))
