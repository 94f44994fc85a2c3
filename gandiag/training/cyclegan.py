"""CycleGAN (Zhu et al. 2017): unpaired translators between the two domains of a bundled pair.

``gandiag train cyclegan --data digits-inverted --out DIR``. Two translators,
G_AB and G_BA, and two least-squares discriminators, D_B (is this a B
sample?) and D_A. Each step, as the authors' code does it:

1. one batch of A and one of B, drawn independently (each side shuffled
   afresh every epoch, so the trainer never sees a pair: that is the task);
2. the generators' update: adversarial ``(D(G(x)) - 1)²`` both ways,
   cycle ``λ·|G_BA(G_AB(a)) - a|₁ + λ·|G_AB(G_BA(b)) - b|₁`` (λ = 10) and,
   with ``identity_weight`` w > 0, identity ``w·λ·(|G_AB(b) - b|₁ + |G_BA(a) - a|₁)``,
   which keeps a translator from changing what already belongs to its target
   domain. The authors used it (w = 0.5) for paintings and photos, whose
   colours should stay. Its default here is the pair's (``IDENTITY_WEIGHTS``):
   on for digits-thick, whose truth is close to an identity (without it 2 of
   3 seeds changed the digits; with it all kept them), off for
   digits-inverted and ring8-rotated, whose exact translations it penalises
   (inverting an inverted digit is no identity: with w = 0.5 the digits lose
   their classes, label preservation 7% against 86% without; docs/training.md,
   "Translators");
3. the discriminators' update on real samples and on translations from a
   history pool of 50 (half the time an older translation: D does not
   forget what G used to make, which damps oscillation).

Adam(2e-4, β=(0.5, 0.999)) for both (1e-3 on points), the learning rate constant for the
first half of the run and decayed linearly to 0 over the second, as in the
paper. Everything random (the shuffles, the pools) comes from seeded
generators whose states the checkpoint keeps, so ``--resume`` continues a
run exactly. The checkpoint holds G_AB with D_B as the generator and
discriminator, G_BA with D_A as the inverse direction, and the pair as its
data: ``gandiag evaluate`` evaluates both directions with no other flag.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import nn
from tqdm import tqdm

from ..atomic import make_folder
from ..errors import CheckpointError, GandiagError
from ..generator.checkpoint import make_checkpoint, net_spec, save_checkpoint
from ..generator.contract import GeneratorContract
from . import losses, trainlog
from .unpaired import HistoryPool, PairData
from .variants import TRANSLATION_VARIANTS

# Defaults by the pair's sample kind (docs/training.md, "Translators"); chosen so that each pair learns its
# translation in a few minutes on 2 CPU cores.
IMAGE_DEFAULTS = {"steps": 1500, "batch_size": 16, "width": 32, "blocks": 3, "lr": 2e-4}
# points: the GAN trainer's learning rate on points; translators start at the identity and must move every
# point 0.39 (ring8-rotated) onto modes of std 0.01
# The identity loss's weight (times λ) by pair, measured (benchmarks/translation_quality.py, 3 seeds each): it helps
# where the truth is near an identity and hurts where the truth moves every target sample too.
IDENTITY_WEIGHTS = {"digits-thick": 0.5, "digits-inverted": 0.0, "ring8-rotated": 0.0}
POINT_DEFAULTS = {"steps": 4000, "batch_size": 64, "width": 64, "blocks": 3, "lr": 1e-3, "d_input_scale": 10.0}
# d_input_scale: the point discriminator's input multiplier, 0.1 / ring8's mode std (0.01), as the GAN trainer's.
EVAL_N = 256  # inputs per side for the periodic paired and cycle errors


@dataclass
class CycleOptions:
    """The user's options; None = the pair's default (IMAGE_DEFAULTS / POINT_DEFAULTS)."""

    steps: Optional[int] = None
    seed: int = 0
    batch_size: Optional[int] = None
    width: Optional[int] = None  # base channels (images) or hidden units (points)
    blocks: Optional[int] = None  # residual blocks (images) or hidden layers of the MLP translator (points)
    lr_g: Optional[float] = None  # default: 2e-4 (images, the authors'), 1e-3 (points)
    lr_d: Optional[float] = None
    cycle_weight: float = 10.0  # λ
    identity_weight: Optional[float] = None  # times λ; default: the pair's (IDENTITY_WEIGHTS)
    pool_size: int = 50
    log_every: int = 50
    eval_every: Optional[int] = None  # default: steps // 10
    ckpt_every: int = 500
    threads: int = 1
    device: str = "cpu"

    def to_json(self) -> dict:
        return asdict(self)

    def check(self) -> "CycleOptions":
        from .variants import check_numbers_and_device

        check_numbers_and_device(self)
        for name in ("steps", "batch_size", "width", "blocks", "eval_every", "log_every", "ckpt_every", "threads"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise GandiagError(f"--{name.replace('_', '-')} must be positive, got {v}")
        for name in ("lr_g", "lr_d", "cycle_weight", "identity_weight", "pool_size"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise GandiagError(f"--{name.replace('_', '-')} must not be negative, got {getattr(self, name)}")
        return self


def resolve(o: CycleOptions, kind: str, pair: str) -> dict:
    d = IMAGE_DEFAULTS if kind == "images" else POINT_DEFAULTS
    identity = IDENTITY_WEIGHTS.get(pair, 0.0) if o.identity_weight is None else o.identity_weight
    steps = o.steps or d["steps"]
    pick = lambda mine, key: d[key] if mine is None else mine  # noqa: E731
    return {"loss": "ls", "steps": steps, "batch_size": pick(o.batch_size, "batch_size"),
            "width": pick(o.width, "width"), "blocks": pick(o.blocks, "blocks"), "lr_g": pick(o.lr_g, "lr"),
            "lr_d": pick(o.lr_d, "lr"),
            "cycle_weight": o.cycle_weight, "identity_weight": identity * o.cycle_weight,
            "pool_size": o.pool_size, "decay_from": steps // 2, "eval_every": o.eval_every or max(steps // 10, 1)}


def net_specs(data: PairData, r: dict) -> dict:
    """(arch, kwargs) of G_AB, G_BA, D_A, D_B, sized to the pair's samples."""
    if data.kind == "images":
        g = ("resnet-translator", {"channels": data.shape[0], "width": r["width"], "blocks": r["blocks"],
                                   "norm": "instance"})
        d = ("patch-discriminator", {"channels": data.shape[0], "width": r["width"], "layers": 2, "norm": "none"})
    else:
        g = ("mlp-translator", {"dim": data.shape[0], "hidden": r["width"], "depth": r["blocks"], "residual": True})
        d = ("mlp-discriminator", {"in_dim": data.shape[0], "hidden": r["width"], "depth": 3,
                                   "input_scale": POINT_DEFAULTS["d_input_scale"]})
    return {"G_AB": g, "G_BA": g, "D_A": d, "D_B": d}


class Run:
    """The four networks, two optimisers (the generators' jointly, the discriminators' jointly, as the
    authors'), the pools and the step generator: built from the options alone, seeded."""

    def __init__(self, o: CycleOptions, data: PairData, r: dict):
        from ..plugins import registry

        self.o, self.data, self.r = o, data, r
        torch.manual_seed(o.seed)
        arch = registry("architecture")
        self.specs = net_specs(data, r)
        built = {k: arch[a](**kw).to(o.device) for k, (a, kw) in self.specs.items()}
        self.G = nn.ModuleDict({k: built[k] for k in ("G_AB", "G_BA")})
        self.D = nn.ModuleDict({k: built[k] for k in ("D_A", "D_B")})
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=r["lr_g"], betas=(0.5, 0.999), foreach=True)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=r["lr_d"], betas=(0.5, 0.999), foreach=True)
        self.pools = {s: HistoryPool(r["pool_size"]) for s in ("a", "b")}
        self.gen = torch.Generator().manual_seed(o.seed)
        self.meter = trainlog.Meter()


def learning_rates(run: Run, step: int) -> tuple:
    """Constant for the first half, then linearly towards 0 (the paper's 100 + 100 epochs, in steps)."""
    r = run.r
    f = 1.0 - max(0, step - r["decay_from"]) / float(r["steps"] - r["decay_from"] + 1)
    for opt, base in ((run.opt_g, r["lr_g"]), (run.opt_d, r["lr_d"])):
        for group in opt.param_groups:
            group["lr"] = base * f
    return r["lr_g"] * f, r["lr_d"] * f


def _l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x - y).abs().mean()


def _adv(score: torch.Tensor) -> torch.Tensor:
    return ((score - 1.0) ** 2).mean()  # the authors' MSE to the real label, weight 1


def generator_step(run: Run, a: torch.Tensor, b: torch.Tensor, want_norms: bool):
    """One update of both translators; (translations of a and b, detached; gradient norms or None)."""
    G, D, r = run.G, run.D, run.r
    D.requires_grad_(False)
    fake_b, fake_a = G["G_AB"](a), G["G_BA"](b)
    adv = _adv(D["D_B"](fake_b)) + _adv(D["D_A"](fake_a))
    cycle = _l1(G["G_BA"](fake_b), a) + _l1(G["G_AB"](fake_a), b)
    identity = _l1(G["G_AB"](b), b) + _l1(G["G_BA"](a), a) if r["identity_weight"] else torch.zeros(())
    loss = adv + r["cycle_weight"] * cycle + r["identity_weight"] * identity
    run.opt_g.zero_grad(set_to_none=True)
    loss.backward()
    norms = trainlog.grad_norms(G) if want_norms else None
    run.opt_g.step()
    D.requires_grad_(True)
    run.meter.add(g_loss=loss.detach(), g_adv=adv.detach(), cycle_l1=cycle.detach())
    if r["identity_weight"]:
        run.meter.add(identity_l1=identity.detach())
    return fake_a.detach(), fake_b.detach(), loss.detach(), norms


def discriminator_step(run: Run, a, b, fake_a, fake_b, want_norms: bool):
    """One update of both discriminators, on real samples and on translations from the history pools."""
    D = run.D
    old_a, old_b = run.pools["a"].query(fake_a, run.gen), run.pools["b"].query(fake_b, run.gen)
    ra, fa, rb, fb = D["D_A"](a), D["D_A"](old_a), D["D_B"](b), D["D_B"](old_b)
    loss_a, loss_b = losses.d_loss("ls", ra, fa), losses.d_loss("ls", rb, fb)
    loss = loss_a + loss_b
    run.opt_d.zero_grad(set_to_none=True)
    loss.backward()
    norms = trainlog.grad_norms(D) if want_norms else None
    run.opt_d.step()
    run.meter.add(d_loss=loss.detach(), d_a_loss=loss_a.detach(), d_b_loss=loss_b.detach(),
              d_real=(ra.detach().mean() + rb.detach().mean()) / 2, d_fake=(fa.detach().mean() + fb.detach().mean()) / 2)
    return loss.detach(), norms


def contracts(data: PairData) -> tuple:
    """(A -> B, B -> A): translators of the pair's kind, images taken and given in [-1, 1] NCHW."""
    shape = tuple(data.shape)
    if data.kind == "images":
        c = GeneratorContract(latent_dim=math.prod(shape), latent_shape=shape, takes="images", input_range="-1,1",
                              kind="images", layout="NCHW", output_range="-1,1", sample_shape=shape)
    else:
        c = GeneratorContract(latent_dim=math.prod(shape), takes=data.kind, kind=data.kind, sample_shape=shape)
    return c.validate(), c.validate()


def save(run: Run, path: Path, config: dict, step: int) -> None:
    spec = lambda k, net: net_spec(*run.specs[k], net)  # noqa: E731
    forward, inverse = contracts(run.data)
    ckpt = make_checkpoint(
        generator=spec("G_AB", run.G["G_AB"]), discriminator=spec("D_B", run.D["D_B"]),
        inverse={"generator": spec("G_BA", run.G["G_BA"]), "contract": inverse,
                 "discriminator": spec("D_A", run.D["D_A"])},
        contract=forward, data=run.data.checkpoint_data(), config=config, step=step,
        optimizers={"G": run.opt_g.state_dict(), "D": run.opt_d.state_dict()},
        rng={"torch": run.gen.get_state(), "torch_global": torch.get_rng_state()})
    ckpt["history_pools"] = {s: p.state() for s, p in run.pools.items()}  # for --resume: D's memory of G
    save_checkpoint(ckpt, path)


def restore(run: Run, prior: dict, path) -> int:
    """Weights, optimisers, pools and generator states of a checkpoint; its step. A misfit is bad input."""
    try:
        for key, net, name in (("generator", run.G, "G_AB"), ("inverse_generator", run.G, "G_BA"),
                               ("discriminator", run.D, "D_B"), ("inverse_discriminator", run.D, "D_A")):
            net[name].load_state_dict(prior[key]["state_dict"])
        run.opt_g.load_state_dict(prior["optimizers"]["G"])
        run.opt_d.load_state_dict(prior["optimizers"]["D"])
        for s, pool in run.pools.items():
            kept = prior["history_pools"][s]
            if kept.numel() and tuple(kept.shape[1:]) != run.data.shape:
                raise ValueError(f"history pool {s} holds samples of shape {tuple(kept.shape[1:])}")
            pool.load(kept.to(run.data.device))
        run.gen.set_state(prior["rng"]["torch"])
        torch.set_rng_state(prior["rng"]["torch_global"])
        return int(prior["step"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"--resume: {path} cannot be resumed ({str(exc).splitlines()[0][:200]})") from None


@torch.no_grad()
def periodic_eval(run: Run) -> dict:
    """Paired error against the pair's truth (where it has one) and cycle error, each way, on EVAL_N inputs."""
    was = run.G.training
    run.G.eval()
    out = {}
    for direction, g, back in (("a2b", "G_AB", "G_BA"), ("b2a", "G_BA", "G_AB")):
        x, truth = run.data.eval_inputs(direction, EVAL_N)
        y = run.G[g](x)
        suffix = "" if direction == "a2b" else ":b2a"
        out["cycle_l1" + suffix] = run.data.distance(run.G[back](y), x)
        if truth is not None:
            out["paired_l1" + suffix] = run.data.distance(y, truth)
    run.G.train(was)
    return out


def log_record(run: Run, step: int, elapsed: float, lrs: tuple, norms: tuple, eval_now: bool) -> dict:
    """A ``log.jsonl`` line (docs/training-log.md): G holds both translators, D both discriminators."""
    rec = {"step": step, "time": round(elapsed, 3), **run.meter.means(), "lr_g": lrs[0], "lr_d": lrs[1],
           "instance_noise": 0.0}
    if norms[0] is not None and norms[1] is not None:
        rec["grad_norm"] = {"G": norms[0], "D": norms[1]}
        rec["grad_norm_total"] = {"G": trainlog.total_norm(norms[0]), "D": trainlog.total_norm(norms[1])}
    if eval_now:
        rec["sigma_max"] = {"G": trainlog.spectral_norms(run.G), "D": trainlog.spectral_norms(run.D)}
        t = time.perf_counter()
        rec["eval"] = periodic_eval(run)
        rec["eval_seconds"] = round(time.perf_counter() - t, 3)
    return rec


def describe(step: int, steps: int, ev: dict) -> str:
    """The periodic evaluation as one line for stderr: each direction's paired error (if the pair has a truth)
    and cycle error, in the units of ``gandiag evaluate``."""
    parts = []
    for suffix, label in (("", "A->B"), (":b2a", "B->A")):
        errs = [f"{name} {ev[key + suffix]:.4f}" for key, name in (("paired_l1", "paired L1"), ("cycle_l1", "cycle L1"))
                if key + suffix in ev]
        parts.append(f"{label} {', '.join(errs)}")
    return f"step {step}/{steps}: " + "; ".join(parts)


def train(data: str, out, *, steps: Optional[int] = None, seed: int = 0, resume: bool = False,
          overwrite: bool = False, progress: bool = True, stop_after: Optional[int] = None, **options) -> Path:
    """Train CycleGAN on the bundled pair ``data``; ``out/checkpoint.pt`` and ``out/log.jsonl``.

    Like :func:`gandiag.training.train`: ``resume=True`` continues the run in
    ``out`` (its recorded options win; a new ``steps`` extends it);
    ``stop_after`` ends the run after that step without a final checkpoint, as
    a kill would (for tests). Returns the checkpoint's path.
    """
    from .loop import _check_run_folder, _resumed_options, read_resumed
    from .variants import check_data

    check_data("cyclegan", data)
    out = Path(out)
    path = out / "checkpoint.pt"
    _check_run_folder(out)
    prior = None
    if resume:
        prior = read_resumed(path)
        o, _ = _resumed_options(prior, path, "cyclegan", data, steps, CycleOptions)
    else:
        if path.exists() and not overwrite:
            raise GandiagError(f"{path} already exists: pass --resume to continue that run, --overwrite to start "
                               "afresh over it, or choose another --out")
        o = CycleOptions(steps=steps, seed=seed, **options)
    o.check()
    threads = torch.get_num_threads()
    torch.set_num_threads(o.threads)
    try:
        return _train(o, data, out, path, prior, progress, stop_after)
    finally:
        torch.set_num_threads(threads)


def _train(o: CycleOptions, data: str, out: Path, path: Path, prior, progress: bool, stop_after) -> Path:
    pair_data = PairData(data, o.seed, o.device)
    r = resolve(o, pair_data.kind, data)
    run = Run(o, pair_data, r)
    config = {"variant_name": "cyclegan", "variant": TRANSLATION_VARIANTS["cyclegan"].to_json(), "data": data,
              "options": o.to_json(), "resolved": r, "eval_extractor": None,
              "architectures": {k: list(v) for k, v in run.specs.items()}}
    start = restore(run, prior, path) if prior is not None else 0
    make_folder(out, "--out")
    log = trainlog.TrainLog(out / "log.jsonl", resume_step=start if prior is not None else None)
    bar = tqdm(total=r["steps"], initial=start, file=sys.stderr, disable=not progress, desc=f"cyclegan {data}",
               dynamic_ncols=True, leave=False)
    try:
        step, diverged = _loop(run, start, log, bar, path, config, stop_after)
        if step is None:
            return path  # stop_after: ended as a kill would
        config["diverged"] = diverged
        save(run, path, config, step)
    finally:
        bar.close()
        log.close()
    return path


def _loop(run: Run, start: int, log, bar, path: Path, config: dict, stop_after) -> tuple:
    """The steps from ``start + 1``; (last step, diverged), or (None, False) when stopped by ``stop_after``."""
    r, o, t0 = run.r, run.o, time.perf_counter()
    step = start
    for step in range(start + 1, r["steps"] + 1):
        lrs = learning_rates(run, step)
        eval_now = step % r["eval_every"] == 0 or step == r["steps"]
        logging_now = step % o.log_every == 0 or eval_now or step == 1
        a, b = run.data.batch("a", step, r["batch_size"]), run.data.batch("b", step, r["batch_size"])
        fake_a, fake_b, loss_g, g_norms = generator_step(run, a, b, logging_now)
        loss_d, d_norms = discriminator_step(run, a, b, fake_a, fake_b, logging_now)
        bar.update(1)
        if logging_now:
            rec = log_record(run, step, time.perf_counter() - t0, lrs, (g_norms, d_norms), eval_now)
            log.write(rec)
            if "eval" in rec:
                bar.write(f"[cyclegan {run.data.name}] {describe(step, r['steps'], rec['eval'])}", file=sys.stderr)
            bar.set_postfix(d=f"{rec.get('d_loss', float('nan')):.3f}", g=f"{rec.get('g_loss', float('nan')):.3f}")
        if not (math.isfinite(loss_d.item()) and math.isfinite(loss_g.item())):
            log.write({"step": step, "event": "diverged", "d_loss": loss_d.item(), "g_loss": loss_g.item()})
            bar.write(f"[cyclegan {run.data.name}] step {step}: loss is NaN/Inf: training diverged; stopping and "
                      "saving the checkpoint", file=sys.stderr)
            return step, True
        if stop_after is not None and step >= stop_after:
            return None, False
        if step % o.ckpt_every == 0 and step != r["steps"]:
            save(run, path, config, step)
    return step, False


__all__ = ["train", "CycleOptions", "IMAGE_DEFAULTS", "POINT_DEFAULTS"]
