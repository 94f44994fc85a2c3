"""One training loop for every variant.

Each step: ``n_critic`` discriminator updates, then one generator update.
A step's randomness (latents, data indices, interpolation weights, instance
noise) comes from one seeded ``torch.Generator`` whose state the checkpoint
keeps, and mixture points are seeded by (seed, step, critic iteration), so a
run resumed from a checkpoint reaches the same weights as one never stopped.
"""

from __future__ import annotations

import copy
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import torch
from tqdm import tqdm

from ..checkpoint import make_checkpoint, net_spec, read_checkpoint, save_checkpoint
from ..contract import GeneratorContract
from ..errors import CheckpointError, GandiagError
from . import losses, periodic_eval, trainlog
from .data import TrainingData
from .variants import Options, Variant, check_options, get_variant

# Defaults that depend on the data rather than the variant.
POINT_DEFAULTS = {"latent_dim": 8, "width": 128, "batch_size": 64, "steps": 14000, "eval_samples": 2500,
                  "adam_lr": 1e-3, "lr_schedule": "cosine", "ema": 0.999}
IMAGE_DEFAULTS = {"latent_dim": 32, "width": 32, "batch_size": 64, "steps": 1500, "eval_samples": 1000,
                  "adam_lr": None, "lr_schedule": "constant", "ema": 0.0}
# Named per-data configurations on top of POINT_DEFAULTS, keyed by the data source (docs/training.md).
# grid25: its 25 modes only sharpen late in the cosine decay, so it trains twice as long as ring8 with a slower
# EMA; its D sees the grid at scale 0.25 (±1) instead of 0.1/σ = 2, and Adam runs at 2e-3. Chosen by
# benchmarks/sweep_trainer.py (docs/training.md): D input scale 2 / 1 / 0.5 / 0.25 gave 49 / 49 / 53 / 68% HQ over
# 3-10 seeds at lr 1e-3, and 2e-3 with scale 0.25 75% over 4 seeds (85-89% on this machine), 24-25 modes each.
DATA_DEFAULTS = {
    "grid25": {"steps": 30000, "ema": 0.9995, "d_input_scale": 0.25, "adam_lr": 2e-3},
}
# On points, variants whose published setting is Adam at 2e-4 (gan, cgan, lsgan, hinge-sn) train at 1e-3
# with a cosine decay instead: the 2D mixtures' 0.01-wide modes are only reached within a CPU budget that way.
# wgan and wgan-gp keep their published learning rates everywhere.


@dataclass
class Resolved:
    """The settings actually used: variant defaults, data defaults, then the user's options."""

    loss: str
    lr_schedule: str
    lr_g: float
    lr_d: float
    n_critic: int
    steps: int
    batch_size: int
    latent_dim: int
    width: int
    eval_every: int
    eval_samples: int
    d_input_scale: float
    ema: float = 0.0


def default_input_scale(data: TrainingData) -> float:
    """Points: scale D's input so that a mixture mode's std becomes 0.1 (1 for images and points of unknown scale)."""
    return 0.1 / data.mixture.std if data.kind == "points" and data.mixture is not None else 1.0


def resolve(v: Variant, o: Options, data: TrainingData) -> Resolved:
    d = {**POINT_DEFAULTS, **DATA_DEFAULTS.get(data.spec, {})} if data.kind == "points" else IMAGE_DEFAULTS
    steps = o.steps or d["steps"]
    pick = lambda mine, default: default if mine is None else mine  # noqa: E731
    fast = d["adam_lr"] is not None and v.optimizer == "adam" and v.lr_g == v.lr_d == 2e-4
    lr_g, lr_d = (d["adam_lr"], d["adam_lr"]) if fast else (v.lr_g, v.lr_d)
    return Resolved(
        loss=pick(o.loss, v.loss), lr_g=pick(o.lr_g, lr_g), lr_d=pick(o.lr_d, lr_d),
        lr_schedule=pick(o.lr_schedule, d["lr_schedule"]),
        n_critic=pick(o.n_critic, v.n_critic), steps=steps, batch_size=pick(o.batch_size, d["batch_size"]),
        latent_dim=pick(o.latent_dim, d["latent_dim"]), width=pick(o.width, d["width"]),
        eval_every=pick(o.eval_every, max(steps // 10, 1)), eval_samples=pick(o.eval_samples, d["eval_samples"]),
        d_input_scale=pick(o.d_input_scale, d.get("d_input_scale") or default_input_scale(data)),
        ema=pick(o.ema, d["ema"]),
    )


def build_nets(v: Variant, o: Options, r: Resolved, data: TrainingData):
    """(generator arch, kwargs), (discriminator arch, kwargs) sized to the data."""
    k = data.num_classes if v.conditional else 0
    if v.conditional and not k:
        raise GandiagError(f"variant {v.name!r} is class-conditional but {data.spec!r} has no class labels")
    if data.kind == "points":
        if v.images_only:
            raise GandiagError(f"variant {v.name!r} is convolutional and trains on images; use 'gan' for 2D points")
        dim = data.sample_shape[0]
        g = ("mlp-generator", {"latent_dim": r.latent_dim, "out_dim": dim, "hidden": r.width, "depth": o.depth, "num_classes": k})
        d = ("mlp-discriminator", {"in_dim": dim, "hidden": r.width, "depth": o.depth, "pack": o.pack, "num_classes": k,
                                   "spectral_norm": v.spectral_norm, "input_scale": r.d_input_scale})
    else:
        c, size = data.sample_shape[0], data.sample_shape[1]
        g = ("dcgan-generator", {"latent_dim": r.latent_dim, "channels": c, "size": size, "width": r.width, "num_classes": k})
        d = ("dcgan-discriminator", {"channels": c, "size": size, "width": r.width, "pack": o.pack, "num_classes": k,
                                     "spectral_norm": v.spectral_norm})
    return g, d


def learning_rate(base: float, step: int, r: Resolved, o: Options) -> float:
    if r.lr_schedule == "step":
        every = o.lr_step_every or max(r.steps // 3, 1)
        return base * o.lr_step_gamma ** ((step - 1) // every)
    if r.lr_schedule == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * (step - 1) / r.steps))
    return base


def ema_decay(target: float, step: int) -> float:
    """EMA decay at a step, warmed up as TensorFlow's ExponentialMovingAverage(num_updates): a short run's
    average is not dominated by the initial weights, and from step ≈ 9/(1-target) on it is the target."""
    return min(target, step / (step + 9))


def make_optimizer(v: Variant, params, lr: float):
    if v.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, foreach=True)
    # foreach: one kernel per op over all tensors instead of one per tensor (Python overhead dominates tiny nets)
    return torch.optim.Adam(params, lr=lr, betas=tuple(v.betas), foreach=True)


class _Meter:
    """Means of scalar training signals since the last log line."""

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


def train(variant: str, data: str, out, *, steps: Optional[int] = None, seed: int = 0, resume: bool = False,
          overwrite: bool = False, progress: bool = True, eval_extractor: Optional[str] = None,
          stop_after: Optional[int] = None, **options) -> Path:
    """Train ``variant`` on real-data source ``data``; checkpoints and log.jsonl go to ``out``.

    Returns the path of ``out/checkpoint.pt``. ``resume=True`` continues the
    run in ``out`` from its checkpoint (its recorded configuration wins; a new
    ``steps`` extends it). ``stop_after`` ends the run after that step without
    a final checkpoint, as a kill would (for tests).
    """
    out = Path(out)
    ckpt_path = out / "checkpoint.pt"
    _check_run_folder(out)
    prior = None
    if resume:
        if not ckpt_path.exists():
            raise CheckpointError(f"--resume: {ckpt_path} does not exist; start the run without --resume")
        prior = read_checkpoint(ckpt_path)
        o, eval_extractor = _resumed_options(prior, ckpt_path, variant, data, steps)
    else:
        if ckpt_path.exists() and not overwrite:
            raise GandiagError(f"{ckpt_path} already exists: pass --resume to continue that run, "
                               "or choose another --out")
        o = Options(steps=steps, seed=seed, **options)
    check_options(o)
    v = get_variant(variant)
    threads = torch.get_num_threads()
    torch.set_num_threads(o.threads)
    try:
        return _train(v, variant, data, o, out, ckpt_path, prior, progress, eval_extractor, stop_after)
    finally:
        torch.set_num_threads(threads)


def _restore(prior: dict, ckpt_path, G, D, G_ema, opt_g, opt_d, gen) -> int:
    """Load a checkpoint's weights, optimiser and RNG states; returns its step. A state that does not fit is bad input."""
    try:
        G.load_state_dict(prior["generator"]["state_dict"])
        D.load_state_dict(prior["discriminator"]["state_dict"])
        if G_ema is not None:
            G_ema.load_state_dict(prior["ema_generator"])
        opt_g.load_state_dict(prior["optimizers"]["G"])
        opt_d.load_state_dict(prior["optimizers"]["D"])
        gen.set_state(prior["rng"]["torch"])
        torch.set_rng_state(prior["rng"]["torch_global"])
        return int(prior["step"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"--resume: {ckpt_path} cannot be resumed ({str(exc).splitlines()[0][:200]})") from None


def _check_run_folder(out: Path) -> None:
    """--out must be a folder (or not exist yet); its checkpoint and log must be regular files when they exist."""
    from ..atomic import resolve_output

    if os.path.lexists(out) and not out.is_dir():
        raise GandiagError(f"--out {out} exists and is not a folder")
    resolve_output(out / "checkpoint.pt", "--out checkpoint")
    resolve_output(out / "log.jsonl", "--out log")


def _resumed_options(prior: dict, ckpt_path, variant: str, data: str, steps):
    """The options a checkpoint was trained with (they win on --resume), checked as untrusted input."""
    cfg = prior.get("config")
    try:
        if cfg.get("variant_name") != variant or cfg.get("data") != data:
            raise GandiagError(f"--resume: {ckpt_path} is a {cfg.get('variant_name')!r} run on {cfg.get('data')!r}, "
                               f"not {variant!r} on {data!r}")
        saved = dict(cfg["options"])
        o = Options(**{**saved, "steps": steps or saved.get("steps") or cfg["resolved"]["steps"]})
        return o, cfg.get("eval_extractor")
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"--resume: {ckpt_path} does not hold a resumable configuration ({exc})") from None


def _train(v, variant, data, o, out, ckpt_path, prior, progress, eval_extractor, stop_after) -> Path:
    torch.manual_seed(o.seed)
    dataset = TrainingData(data, o.seed, o.exclude_classes, o.device)
    r = resolve(v, o, dataset)
    (g_arch, g_kw), (d_arch, d_kw) = build_nets(v, o, r, dataset)
    from ..plugins import registry

    arch = registry("architecture")
    G, D = arch[g_arch](**g_kw).to(o.device), arch[d_arch](**d_kw).to(o.device)
    G_ema = copy.deepcopy(G).eval() if r.ema else None
    opt_g, opt_d = make_optimizer(v, G.parameters(), r.lr_g), make_optimizer(v, D.parameters(), r.lr_d)
    gen = torch.Generator().manual_seed(o.seed)
    contract = GeneratorContract(
        latent_dim=r.latent_dim, latent_dist="normal", num_classes=g_kw["num_classes"], kind=dataset.kind,
        layout="NCHW" if dataset.kind == "images" else None,
        output_range="-1,1" if dataset.kind == "images" else None, sample_shape=tuple(dataset.sample_shape),
    ).validate()
    config = {"variant_name": v.name, "variant": v.to_json(), "data": data, "options": o.to_json(),
              "resolved": asdict(r), "eval_extractor": eval_extractor,
              "architectures": {"generator": [g_arch, g_kw], "discriminator": [d_arch, d_kw]}}
    start = 0
    if prior is not None:
        start = _restore(prior, ckpt_path, G, D, G_ema, opt_g, opt_d, gen)
    out.mkdir(parents=True, exist_ok=True)
    log = trainlog.TrainLog(out / "log.jsonl", resume_step=start if prior is not None else None)
    evaluator = periodic_eval.PeriodicEval(dataset, contract, r.eval_samples, eval_extractor, o.device)

    def checkpoint(step: int) -> None:
        save_checkpoint(make_checkpoint(
            generator=net_spec(g_arch, g_kw, G), discriminator=net_spec(d_arch, d_kw, D),
            ema_generator=None if G_ema is None else {k: t.detach().cpu() for k, t in G_ema.state_dict().items()},
            contract=contract, data=dataset.checkpoint_data(), config=config, step=step,
            optimizers={"G": opt_g.state_dict(), "D": opt_d.state_dict()},
            rng={"torch": gen.get_state(), "torch_global": torch.get_rng_state()},
        ), ckpt_path)

    n = r.batch_size * o.pack  # samples per batch: batch_size groups of `pack`
    meter = _Meter()
    t0 = time.perf_counter()
    bar = tqdm(total=r.steps, initial=start, file=sys.stderr, disable=not progress, desc=f"{v.name} {data}",
               dynamic_ncols=True, leave=False)
    step = start
    diverged = False
    try:
        for step in range(start + 1, r.steps + 1):
            lr_g, lr_d = learning_rate(r.lr_g, step, r, o), learning_rate(r.lr_d, step, r, o)
            for group in opt_g.param_groups:
                group["lr"] = lr_g
            for group in opt_d.param_groups:
                group["lr"] = lr_d
            noise = o.instance_noise * max(0.0, 1.0 - (step - 1) / r.steps)
            noisy = (lambda x: x + noise * torch.randn(x.shape, generator=gen).to(x.device)) if noise > 0 else (lambda x: x)
            logging_now = step % o.log_every == 0 or step % r.eval_every == 0 or step == 1 or step == r.steps

            for k in range(r.n_critic):
                real, labels = dataset.batch(n, step, k, gen)
                if not v.conditional:
                    labels = None
                z = torch.randn(n, r.latent_dim, generator=gen).to(o.device)
                with torch.no_grad():
                    fake = G(z, labels) if v.conditional else G(z)
                s_real, s_fake = D(noisy(real), labels), D(noisy(fake), labels)
                loss_d = losses.d_loss(r.loss, s_real, s_fake, o.label_smoothing)
                gp = gp_norm = None
                if v.gp_weight:
                    gp, gp_norm = losses.gradient_penalty(D, real, fake, labels, o.pack, gen)
                    loss_d = loss_d + v.gp_weight * gp
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                d_norms = trainlog.grad_norms(D) if logging_now and k == r.n_critic - 1 else None
                if o.grad_clip:
                    torch.nn.utils.clip_grad_norm_(D.parameters(), o.grad_clip)
                opt_d.step()
                if v.weight_clip:
                    with torch.no_grad():
                        for p in D.parameters():
                            p.clamp_(-v.weight_clip, v.weight_clip)
                meter.add(d_loss=loss_d.detach(), d_real=s_real.detach().mean(), d_fake=s_fake.detach().mean(),
                          gp=None if gp is None else gp.detach(),
                          gp_grad_norm=gp_norm)
                if losses.uses_probabilities(r.loss):
                    meter.add(d_real_prob=torch.sigmoid(s_real.detach()).mean(), d_fake_prob=torch.sigmoid(s_fake.detach()).mean())
                if r.loss == "wasserstein":
                    meter.add(wasserstein=(s_real.detach().mean() - s_fake.detach().mean()))

            g_labels = dataset.random_labels(n, gen) if v.conditional else None
            z = torch.randn(n, r.latent_dim, generator=gen).to(o.device)
            fake = G(z, g_labels) if v.conditional else G(z)
            loss_g = losses.g_loss(r.loss, D(noisy(fake), g_labels))
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            g_norms = trainlog.grad_norms(G) if logging_now else None
            if o.grad_clip:
                torch.nn.utils.clip_grad_norm_(G.parameters(), o.grad_clip)
            opt_g.step()
            if G_ema is not None:
                decay = ema_decay(r.ema, step)
                with torch.no_grad():
                    for pe, p in zip(G_ema.parameters(), G.parameters()):
                        pe.lerp_(p, 1.0 - decay)
                    for be, b in zip(G_ema.buffers(), G.buffers()):
                        be.copy_(b)
            meter.add(g_loss=loss_g.detach())
            bar.update(1)

            eval_now = step % r.eval_every == 0 or step == r.steps
            if logging_now or eval_now:
                rec = {"step": step, "time": round(time.perf_counter() - t0, 3), **meter.means(),
                       "lr_g": lr_g, "lr_d": lr_d, "instance_noise": noise}
                if g_norms is not None:
                    rec["grad_norm"] = {"G": g_norms, "D": d_norms}
                    rec["grad_norm_total"] = {"G": trainlog.total_norm(g_norms), "D": trainlog.total_norm(d_norms)}
                if eval_now:  # an SVD per weight matrix: at evaluation points only (it would dominate tiny nets' steps)
                    rec["sigma_max"] = {"G": trainlog.spectral_norms(G), "D": trainlog.spectral_norms(D)}
                    te = time.perf_counter()
                    rec["eval"] = evaluator(G_ema if G_ema is not None else G, step, o.seed)
                    rec["eval_seconds"] = round(time.perf_counter() - te, 3)
                    line = periodic_eval.describe(rec["eval"])
                    if line:
                        bar.write(f"[{v.name} {data}] step {step}/{r.steps}: {line}", file=sys.stderr)
                log.write(rec)
                bar.set_postfix(d=f"{rec.get('d_loss', float('nan')):.3f}", g=f"{rec.get('g_loss', float('nan')):.3f}")
            ld, lg = loss_d.item(), loss_g.item()
            if not (math.isfinite(ld) and math.isfinite(lg)):
                diverged = True
                log.write({"step": step, "event": "diverged", "d_loss": ld, "g_loss": lg})
                bar.write(f"[{v.name} {data}] step {step}: loss is NaN/Inf: training diverged; "
                          "stopping and saving the checkpoint", file=sys.stderr)
                break
            if stop_after is not None and step >= stop_after:
                return ckpt_path
            if step % o.ckpt_every == 0 and step != r.steps:
                checkpoint(step)
        config["diverged"] = diverged
        checkpoint(step)
    finally:
        bar.close()
        log.close()
    return ckpt_path
