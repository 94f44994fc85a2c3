"""One training loop for every variant.

Each step: ``n_critic`` discriminator updates (:func:`critic_step`), then one
generator update (:func:`generator_step`), the EMA, and on logging steps a
record for ``log.jsonl`` (:func:`log_record`). A step's randomness (latents,
data indices, interpolation weights, instance noise) comes from one seeded
``torch.Generator`` whose state the checkpoint keeps, and mixture points are
seeded by (seed, step, critic iteration), so a run resumed from a checkpoint
reaches the same weights as one never stopped. The order of the draws is part
of that promise: the steps below draw in the order they always have.
"""

from __future__ import annotations

import copy
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import torch
from tqdm import tqdm

from ..atomic import make_folder
from ..errors import CheckpointError, GandiagError
from ..generator.checkpoint import make_checkpoint, net_spec, read_checkpoint, save_checkpoint
from ..generator.contract import GeneratorContract
from . import losses, periodic_eval, trainlog
from .data import TrainingData
from .settings import (OUTPUT_RANGES, Resolved, build_nets, effective_variant, ema_decay, learning_rate,
                       make_optimizer, resolve)
from .variants import TRANSLATION_VARIANTS, Options, Variant, check_data, check_options, get_variant


@dataclass
class Run:
    """What one training run holds: the variant, its settings, networks, optimisers and the step's generator."""

    v: Variant
    o: Options
    r: Resolved
    data: TrainingData
    G: torch.nn.Module
    D: torch.nn.Module
    G_ema: Optional[torch.nn.Module]
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    gen: torch.Generator
    specs: dict  # "generator"/"discriminator" -> (arch, kwargs)
    meter: trainlog.Meter = field(default_factory=trainlog.Meter)

    @property
    def batch(self) -> int:
        return self.r.batch_size * self.o.pack  # samples per batch: batch_size groups of `pack`

    def sample(self, labels):
        z = torch.randn(self.batch, self.r.latent_dim, generator=self.gen).to(self.o.device)
        return self.G(z, labels) if self.v.conditional else self.G(z)


def train(variant: str, data: str, out, *, steps: Optional[int] = None, seed: int = 0, resume: bool = False,
          overwrite: bool = False, progress: bool = True, eval_extractor: Optional[str] = None,
          stop_after: Optional[int] = None, **options) -> Path:
    """Train ``variant`` on real-data source ``data``; checkpoints and log.jsonl go to ``out``.

    Returns the path of ``out/checkpoint.pt``. ``resume=True`` continues the
    run in ``out`` from its checkpoint (its recorded configuration wins; a new
    ``steps`` extends it). ``stop_after`` ends the run after that step without
    a final checkpoint, as a kill would (for tests).
    """
    if variant in TRANSLATION_VARIANTS:  # translators between two domains: a loop of their own
        from .cyclegan import train as train_translators

        if eval_extractor is not None:
            raise GandiagError(f"{variant} measures its translations against the pair's truth during training; "
                               "--eval-extractor does not apply")
        return train_translators(data, out, steps=steps, seed=seed, resume=resume, overwrite=overwrite,
                                 progress=progress, stop_after=stop_after, **options)
    check_data(variant, data)
    out = Path(out)
    ckpt_path = out / "checkpoint.pt"
    _check_run_folder(out)
    prior = None
    if resume:
        prior = read_resumed(ckpt_path)
        o, eval_extractor = _resumed_options(prior, ckpt_path, variant, data, steps)
    else:
        if ckpt_path.exists() and not overwrite:
            raise GandiagError(f"{ckpt_path} already exists: pass --resume to continue that run, --overwrite to "
                               "start afresh over it, or choose another --out")
        o = Options(steps=steps, seed=seed, **options)
    check_options(o)
    v = get_variant(variant)
    threads = torch.get_num_threads()
    torch.set_num_threads(o.threads)
    try:
        return _train(v, variant, data, o, out, ckpt_path, prior, progress, eval_extractor, stop_after)
    finally:
        torch.set_num_threads(threads)


def _restore(prior: dict, ckpt_path, run: Run) -> int:
    """Load a checkpoint's weights, optimiser and RNG states; returns its step. A state that does not fit is bad input."""
    try:
        run.G.load_state_dict(prior["generator"]["state_dict"])
        run.D.load_state_dict(prior["discriminator"]["state_dict"])
        if run.G_ema is not None:
            run.G_ema.load_state_dict(prior["ema_generator"])
        run.opt_g.load_state_dict(prior["optimizers"]["G"])
        run.opt_d.load_state_dict(prior["optimizers"]["D"])
        run.gen.set_state(prior["rng"]["torch"])
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


def read_resumed(ckpt_path: Path) -> dict:
    """The checkpoint ``--resume`` continues from, read as untrusted input."""
    if not ckpt_path.exists():
        raise CheckpointError(f"--resume: {ckpt_path} does not exist; start the run without --resume")
    return read_checkpoint(ckpt_path)


def _resumed_options(prior: dict, ckpt_path, variant: str, data: str, steps, options_class=Options):
    """The options a checkpoint was trained with (they win on --resume), checked as untrusted input;
    ``options_class`` is the trainer's (cyclegan's are its own)."""
    cfg = prior.get("config")
    try:
        if cfg.get("variant_name") != variant or cfg.get("data") != data:
            raise GandiagError(f"--resume: {ckpt_path} is a {cfg.get('variant_name')!r} run on {cfg.get('data')!r}, "
                               f"not {variant!r} on {data!r}")
        saved = dict(cfg["options"])
        o = options_class(**{**saved, "steps": steps or saved.get("steps") or cfg["resolved"]["steps"]})
        return o, cfg.get("eval_extractor")
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"--resume: {ckpt_path} does not hold a resumable configuration ({exc})") from None


def build_run(v: Variant, o: Options, dataset: TrainingData) -> Run:
    """Networks, optimisers and the step generator, seeded: the same options always build the same run."""
    from ..plugins import registry

    v = effective_variant(v, o, dataset)  # --sn, --conditional; sequence variants condition on labels
    r = resolve(v, o, dataset)
    (g_arch, g_kw), (d_arch, d_kw) = build_nets(v, o, r, dataset)
    arch = registry("architecture")
    G, D = arch[g_arch](**g_kw).to(o.device), arch[d_arch](**d_kw).to(o.device)
    G_ema = copy.deepcopy(G).eval() if r.ema else None
    opt_g, opt_d = make_optimizer(v, G.parameters(), r.lr_g), make_optimizer(v, D.parameters(), r.lr_d)
    return Run(v, o, r, dataset, G, D, G_ema, opt_g, opt_d, torch.Generator().manual_seed(o.seed),
               {"generator": (g_arch, g_kw), "discriminator": (d_arch, d_kw)})


def run_contract(run: Run) -> GeneratorContract:
    kind = run.data.kind
    layout = {"images": "NCHW", "sequences": "NTC"}.get(kind)
    output_range = "-1,1" if kind == "images" else OUTPUT_RANGES.get(run.r.output) if kind == "sequences" else None
    return GeneratorContract(
        latent_dim=run.r.latent_dim, latent_dist="normal", num_classes=run.specs["generator"][1]["num_classes"],
        kind=kind, layout=layout, output_range=output_range, sample_shape=tuple(run.data.sample_shape),
    ).validate()


def save(run: Run, ckpt_path: Path, contract: GeneratorContract, config: dict, step: int) -> None:
    (g_arch, g_kw), (d_arch, d_kw) = run.specs["generator"], run.specs["discriminator"]
    save_checkpoint(make_checkpoint(
        generator=net_spec(g_arch, g_kw, run.G), discriminator=net_spec(d_arch, d_kw, run.D),
        ema_generator=None if run.G_ema is None else {k: t.detach().cpu() for k, t in run.G_ema.state_dict().items()},
        contract=contract, data=run.data.checkpoint_data(), config=config, step=step,
        optimizers={"G": run.opt_g.state_dict(), "D": run.opt_d.state_dict()},
        rng={"torch": run.gen.get_state(), "torch_global": torch.get_rng_state()},
    ), ckpt_path)


def set_learning_rates(run: Run, step: int) -> tuple[float, float]:
    lr_g, lr_d = learning_rate(run.r.lr_g, step, run.r, run.o), learning_rate(run.r.lr_d, step, run.r, run.o)
    for group in run.opt_g.param_groups:
        group["lr"] = lr_g
    for group in run.opt_d.param_groups:
        group["lr"] = lr_d
    return lr_g, lr_d


def instance_noise(run: Run, step: int):
    """(std, f): f adds Gaussian noise of that std to D's inputs, annealed to 0 over the run."""
    std = run.o.instance_noise * max(0.0, 1.0 - (step - 1) / run.r.steps)
    if std <= 0:
        return std, (lambda x: x)
    return std, (lambda x: x + std * torch.randn(x.shape, generator=run.gen).to(x.device))


def critic_step(run: Run, step: int, k: int, noisy, want_norms: bool):
    """One discriminator update; (its loss, per-parameter gradient norms or None)."""
    v, r, o, D = run.v, run.r, run.o, run.D
    real, labels = run.data.batch(run.batch, step, k, run.gen)
    if not v.conditional:
        labels = None
    with torch.no_grad():
        fake = run.sample(labels)
    s_real, s_fake = D(noisy(real), labels), D(noisy(fake), labels)
    loss_d = losses.d_loss(r.loss, s_real, s_fake, o.label_smoothing)
    gp = gp_norm = None
    if v.gp_weight:
        gp, gp_norm = losses.gradient_penalty(D, real, fake, labels, o.pack, run.gen)
        loss_d = loss_d + v.gp_weight * gp
    run.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    norms = trainlog.grad_norms(D) if want_norms else None
    if o.grad_clip:
        torch.nn.utils.clip_grad_norm_(D.parameters(), o.grad_clip)
    run.opt_d.step()
    if v.weight_clip:
        with torch.no_grad():
            for p in D.parameters():
                p.clamp_(-v.weight_clip, v.weight_clip)
    _meter_critic(run, loss_d, s_real, s_fake, gp, gp_norm)
    return loss_d, norms


def _meter_critic(run: Run, loss_d, s_real, s_fake, gp, gp_norm) -> None:
    run.meter.add(d_loss=loss_d.detach(), d_real=s_real.detach().mean(), d_fake=s_fake.detach().mean(),
                  gp=None if gp is None else gp.detach(), gp_grad_norm=gp_norm)
    if losses.uses_probabilities(run.r.loss):
        run.meter.add(d_real_prob=torch.sigmoid(s_real.detach()).mean(), d_fake_prob=torch.sigmoid(s_fake.detach()).mean())
    if run.r.loss == "wasserstein":
        run.meter.add(wasserstein=(s_real.detach().mean() - s_fake.detach().mean()))


def generator_step(run: Run, noisy, want_norms: bool):
    """One generator update; (its loss, per-parameter gradient norms or None)."""
    labels = run.data.random_labels(run.batch, run.gen) if run.v.conditional else None
    fake = run.sample(labels)
    loss_g = losses.g_loss(run.r.loss, run.D(noisy(fake), labels))
    run.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    norms = trainlog.grad_norms(run.G) if want_norms else None
    if run.o.grad_clip:
        torch.nn.utils.clip_grad_norm_(run.G.parameters(), run.o.grad_clip)
    run.opt_g.step()
    run.meter.add(g_loss=loss_g.detach())
    return loss_g, norms


def update_ema(run: Run, step: int) -> None:
    if run.G_ema is None:
        return
    decay = ema_decay(run.r.ema, step)
    with torch.no_grad():
        for pe, p in zip(run.G_ema.parameters(), run.G.parameters()):
            pe.lerp_(p, 1.0 - decay)
        for be, b in zip(run.G_ema.buffers(), run.G.buffers()):
            be.copy_(b)


def log_record(run: Run, step: int, elapsed: float, lrs, noise: float, norms) -> dict:
    """A ``log.jsonl`` line (docs/training-log.md), before the periodic evaluation adds to it."""
    rec = {"step": step, "time": round(elapsed, 3), **run.meter.means(), "lr_g": lrs[0], "lr_d": lrs[1],
           "instance_noise": noise}
    g_norms, d_norms = norms
    if g_norms is not None:
        rec["grad_norm"] = {"G": g_norms, "D": d_norms}
        rec["grad_norm_total"] = {"G": trainlog.total_norm(g_norms), "D": trainlog.total_norm(d_norms)}
    return rec


def _train(v, variant, data, o, out, ckpt_path, prior, progress, eval_extractor, stop_after) -> Path:
    torch.manual_seed(o.seed)
    run = build_run(v, o, TrainingData(data, o.seed, o.exclude_classes, o.device))
    r, contract = run.r, run_contract(run)
    config = {"variant_name": v.name, "variant": run.v.to_json(), "data": data, "options": o.to_json(),
              "resolved": asdict(r), "eval_extractor": eval_extractor,
              "architectures": {k: list(spec) for k, spec in run.specs.items()}}
    start = _restore(prior, ckpt_path, run) if prior is not None else 0
    make_folder(out, "--out")
    log = trainlog.TrainLog(out / "log.jsonl", resume_step=start if prior is not None else None)
    evaluator = periodic_eval.PeriodicEval(run.data, contract, r.eval_samples, eval_extractor, o.device)
    t0 = time.perf_counter()
    bar = tqdm(total=r.steps, initial=start, file=sys.stderr, disable=not progress, desc=f"{v.name} {data}",
               dynamic_ncols=True, leave=False)
    step, diverged = start, False
    try:
        for step in range(start + 1, r.steps + 1):
            lrs = set_learning_rates(run, step)
            noise, noisy = instance_noise(run, step)
            eval_now = step % r.eval_every == 0 or step == r.steps
            logging_now = step % o.log_every == 0 or eval_now or step == 1
            d_norms = None
            for k in range(r.n_critic):
                loss_d, norms = critic_step(run, step, k, noisy, logging_now and k == r.n_critic - 1)
                d_norms = norms if norms is not None else d_norms
            loss_g, g_norms = generator_step(run, noisy, logging_now)
            update_ema(run, step)
            bar.update(1)
            if logging_now:
                rec = log_record(run, step, time.perf_counter() - t0, lrs, noise, (g_norms, d_norms))
                if eval_now:
                    _evaluate_into(rec, run, evaluator, step, bar, f"[{v.name} {data}] step {step}/{r.steps}")
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
                save(run, ckpt_path, contract, config, step)
        config["diverged"] = diverged
        save(run, ckpt_path, contract, config, step)
    finally:
        bar.close()
        log.close()
    return ckpt_path


def _evaluate_into(rec: dict, run: Run, evaluator, step: int, bar, prefix: str) -> None:
    """The periodic evaluation and spectral norms (an SVD per weight matrix: evaluation steps only)."""
    rec["sigma_max"] = {"G": trainlog.spectral_norms(run.G), "D": trainlog.spectral_norms(run.D)}
    te = time.perf_counter()
    rec["eval"] = evaluator(run.G_ema if run.G_ema is not None else run.G, step, run.o.seed)
    rec["eval_seconds"] = round(time.perf_counter() - te, 3)
    line = periodic_eval.describe(rec["eval"])
    if line:
        bar.write(f"{prefix}: {line}", file=sys.stderr)
