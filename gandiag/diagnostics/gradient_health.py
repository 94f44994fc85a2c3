"""The ``gradient_health`` diagnostic: is the GAN training healthily?

Three parts, each run when it can be (docs/diagnostics.md lists thresholds):

``output`` (every generator, any framework, through ``forward``): a fresh
seeded batch; NaN/Inf in the output; *output saturation*, the share of
values within ``SAT_MARGIN`` of the output range's limits, next to the real
data's share at the same limits; the *Jacobian of the output w.r.t. z*,
‖J‖_F estimated by finite differences, E_v ‖(G(z+hv) − G(z))/h‖² = ‖J‖_F²
for v ~ N(0, I), in output units per unit of z (output range scaled to width 1).

``adversarial`` (checkpoints that carry a discriminator: gandiag's own; a
loader plugin for another format gets the same by putting a gandiag-shaped
dict, with ``generator``, ``discriminator`` and ``config``, on
``LoadedGenerator.checkpoint``): the raw (non-EMA) G and D rebuilt, one fresh
training batch drawn as the trainer draws it (same data, excluded classes,
packing), then G's and D's losses with the checkpoint's loss and their
per-layer gradient norms; D's saturation on real and fake (σ(score) beyond
0.01/0.99: D certain, G's gradient vanishing under the minimax loss); the
critic's gradient norm on real/fake interpolates x̂ = εx + (1−ε)x̃ (a
Lipschitz estimate, ≈ 1 under WGAN-GP); the top singular value of every
weight matrix; NaN/Inf in weights, scores or gradients; and the ratio of the
first to the last weight layer's gradient norm (vanishing/exploding).

``log`` (a ``log.jsonl`` next to the checkpoint): trends, see
:mod:`.training_log`.

Verdict: ``healthy`` / ``warning`` / ``unhealthy``, the worst level among
the reasons; ``error`` when a part could not run (fail closed).
"""

from __future__ import annotations

import math

import torch

from ..training.trainlog import find_log, read_log
from . import HEALTH_LEVELS, fmt, judged, reason, run_parts, training_log
# the log's thresholds, so a fresh batch and the training log judge alike
from .training_log import CHANCE_D_LOSS, D_LOSS_BLOWUP, GRAD_BAD, GRAD_WARN

SIGNAL_OUT, SIGNAL_ADV = "output", "adversarial"
N_OUTPUT = 64
N_JACOBIAN, N_DIRECTIONS, FD_STEP = 16, 4, 1e-2
SAT_MARGIN = 0.01  # of the output range's width
SAT_EXCESS = 0.3  # generated saturation share above the real data's by this much → warning
DEAD_J = 1e-6  # ‖J‖_F below this: the output does not move with z
DEAD_J_WARN, DEAD_J_BAD = 0.5, 0.9
MAX_BATCH = 64  # decisions (groups) in the fresh adversarial batch
D_CERTAIN = 0.99  # σ(D) beyond this (or below 1 - this) is a certain decision
D_SATURATED = 0.9  # share of a batch with σ(D) beyond D_CERTAIN
LIPSCHITZ_RANGE = (0.5, 2.0)  # WGAN-GP: critic gradient norm on interpolates should sit near 1
LIPSCHITZ_BAD = 10.0
SIGMA_WARN = 100.0  # top singular value of a weight matrix
LAYER_RATIO_RANGE = (1e-4, 1e4)  # first-to-last layer gradient-norm ratio
SEED_OFFSET = 104_729


class GradientHealth:
    name = "gradient_health"
    levels = HEALTH_LEVELS  # its verdict words, best first, worst last (readers tone verdicts by them)
    description = "gradient health: output saturation and Jacobian, G/D gradients, D saturation, Lipschitz, spectral norms, log trends"

    def applies(self, ctx) -> bool:
        return ctx.generator is not None

    def run(self, ctx) -> dict:
        return check(ctx.generator, ctx.contract, ctx.seed, ctx.device, ctx.real_samples, ctx.real_spec,
                     getattr(ctx, "translation", None))


def check(gen, contract=None, seed: int = 0, device: str = "cpu", real_samples=None, real_spec=None,
          translation=None) -> dict:
    """Gradient health of a loaded generator; usable without an evaluation (``gandiag diagnose`` on a NaN generator).

    ``real_spec`` is the real data the user named: the adversarial part reads a
    training batch from the checkpoint's data only when that is a bundled source
    or the same data, since a file never picks which local files gandiag reads. ``translation``: a translator's
    :class:`~gandiag.translation.run.TranslationRun`, whose inputs replace the latents, and whose checkpoint's two
    generators and two discriminators are checked (:mod:`.translator_health`).
    """
    from . import translator_health

    contract = contract or gen.contract
    ckpt = gen.checkpoint if isinstance(gen.checkpoint, dict) else None
    jobs = []
    if contract is not None and contract.latent_dim and (translation is not None or not contract.is_translator):
        jobs.append((SIGNAL_OUT, lambda: output_checks(gen, contract, seed, device, real_samples, translation)))
    if ckpt and translator_health.applies(ckpt):
        if translation is None or translation.direction == "a2b":  # one check of the file covers both directions
            jobs.append((SIGNAL_ADV, lambda: translator_health.translator_checks(ckpt, seed, SIGNAL_ADV)))
    elif ckpt and ckpt.get("discriminator"):
        jobs.append((SIGNAL_ADV, lambda: adversarial_checks(ckpt, seed, real_spec)))
    log_path = find_log(gen.path) if gen.path else None
    if log_path is not None:
        loss = (((ckpt or {}).get("config") or {}).get("resolved") or {}).get("loss")
        jobs.append((training_log.SIGNAL, lambda: {"path": str(log_path),
                                                   **training_log.analyse_log(_read(log_path), loss)}))
    return judged(HEALTH_LEVELS, *run_parts(jobs), keep_part_reasons=True)


def _read(path):
    return read_log(path)


# -- output: any framework ------------------------------------------------------------------------

def _range_of(contract):
    if contract.kind == "points" or (contract.kind == "sequences" and contract.output_range is None):
        return None  # sequences of a linear output (standardised data) have no limits to saturate at
    return {"-1,1": (-1.0, 1.0), "0,1": (0.0, 1.0), "uint8": (0.0, 255.0)}.get(contract.output_range, (-1.0, 1.0))


def output_checks(gen, contract, seed: int, device: str, real_samples=None, translation=None) -> dict:
    """NaN/Inf, saturation and the Jacobian of the output in its input (latents; a translator's input images)."""
    from ..generator.sampling import draw_latents, run_generator

    g = torch.Generator().manual_seed(int(seed) + SEED_OFFSET)
    draw = lambda n: draw_latents(contract, n, g)  # noqa: E731
    if translation is not None:
        draw = _translator_inputs(translation, contract)
    k = contract.num_classes

    def run(z):
        labels = torch.arange(len(z)) % k if k else None
        return run_generator(gen, z, labels, device, contract).detach().cpu().double()

    out = run(draw(N_OUTPUT))
    finite = torch.isfinite(out)
    res = {"n": N_OUTPUT, "non_finite_values": int((~finite).sum()), "non_finite_fraction": float((~finite).double().mean())}
    reasons = []
    if res["non_finite_values"]:
        reasons.append(reason(SIGNAL_OUT, "unhealthy", f"generator output has NaN/Inf ({res['non_finite_fraction']:.1%} of values)",
                              res["non_finite_fraction"], 0.0))
    lim = _range_of(contract)
    width = 1.0 if lim is None else lim[1] - lim[0]
    if lim is not None and finite.any():
        x = out[finite]
        lo, hi = lim[0] + SAT_MARGIN * width, lim[1] - SAT_MARGIN * width
        res["saturation"] = float(((x <= lo) | (x >= hi)).double().mean())
        res["saturation_low"], res["saturation_high"] = float((x <= lo).double().mean()), float((x >= hi).double().mean())
        if real_samples is not None:
            r = next(iter(real_samples.batches(256))).double()
            r = r / 255.0 if contract.kind == "images" else (r - lim[0]) / width  # uint8 images; raw sequences
            res["real_saturation"] = float(((r <= SAT_MARGIN) | (r >= 1 - SAT_MARGIN)).double().mean())
            excess = res["saturation"] - res["real_saturation"]
            if excess > SAT_EXCESS:
                reasons.append(reason(SIGNAL_OUT, "warning", f"{res['saturation']:.0%} of output values sit at the range "
                                      f"limits, {excess:.0%} more than real images (> {SAT_EXCESS:.0%}): saturated output "
                                      "layer, vanishing gradient through it", excess, SAT_EXCESS))
    # Jacobian by finite differences, output scaled to a range of width 1.
    z = draw(N_JACOBIAN)
    base = run(z).reshape(N_JACOBIAN, -1) / width
    sq = torch.zeros(N_JACOBIAN, dtype=torch.float64)
    for _ in range(N_DIRECTIONS):
        v = torch.randn(z.shape, generator=g)
        moved = run(z + FD_STEP * v).reshape(N_JACOBIAN, -1) / width
        sq += ((moved - base) / FD_STEP).pow(2).sum(1)
    jf = (sq / N_DIRECTIONS).sqrt()
    ok = torch.isfinite(jf)
    res["jacobian_frobenius_mean"] = float(jf[ok].mean()) if ok.any() else None
    res["jacobian_frobenius_min"] = float(jf[ok].min()) if ok.any() else None
    res["jacobian_dead_fraction"] = float((jf[ok] < DEAD_J).double().mean()) if ok.any() else None
    dead = res["jacobian_dead_fraction"]
    if dead is not None and dead >= DEAD_J_WARN:
        level = "unhealthy" if dead >= DEAD_J_BAD else "warning"
        reasons.append(reason(SIGNAL_OUT, level, f"the output does not move with z at {dead:.0%} of latents (‖∂G/∂z‖ ≈ 0): "
                              "no gradient reaches the latent, the generator is frozen there", dead,
                              DEAD_J_BAD if level == "unhealthy" else DEAD_J_WARN))
    res["reasons"] = reasons
    return res


def _translator_inputs(translation, contract):
    """``draw(n)``: the translator's first inputs (repeated when fewer were kept), as it takes them."""
    from ..translation.inputs import to_generator_input

    def draw(n):
        x = translation.inputs
        x = x.repeat((-(-n // x.shape[0]),) + (1,) * (x.ndim - 1))[:n]
        return to_generator_input(x, contract)

    return draw


# -- adversarial: checkpoints with a discriminator -------------------------------------------------

def _weight_layers(module):
    return [(n, p) for n, p in module.named_parameters() if p.dim() >= 2]


def _layer_ratio(module, norms: dict):
    layers = [n for n, _ in _weight_layers(module) if n in norms]
    if len(layers) < 2:
        return None
    first, last = norms[layers[0]], norms[layers[-1]]
    return {"first": layers[0], "last": layers[-1], "ratio": (first / last) if last > 0 else None}


def _nonfinite_params(module) -> list:
    return [n for n, p in module.named_parameters() if not torch.isfinite(p).all()]


def _stored_classes(value) -> list:
    """The checkpoint's ``exclude_classes``: a list of class indices, or the file is malformed."""
    from ..errors import CheckpointError

    if value in (None, ""):
        return []
    if not isinstance(value, (list, tuple)) or not all(isinstance(c, int) and not isinstance(c, bool) for c in value):
        raise CheckpointError(f"the checkpoint's options.exclude_classes is {str(value)[:80]!r}, not a list of "
                              "class indices")
    return list(value)


def _may_read(spec, real_spec) -> bool:
    from ..plugins import registry

    bundled = set(registry("real source").names()) - {"path"}
    return isinstance(spec, str) and (spec in bundled or spec == real_spec)


def adversarial_checks(ckpt: dict, seed: int, real_spec=None) -> dict:
    from ..generator.checkpoint import build_network
    from ..training import losses
    from ..training.data import TrainingData
    from ..training.trainlog import grad_norms, spectral_norms, total_norm

    cfg = ckpt.get("config") or {}
    if not _may_read(cfg.get("data"), real_spec):
        return {"skipped": "trained on local data that the command line did not name",
                "reasons": [reason(SIGNAL_ADV, "info", f"adversarial checks skipped: the checkpoint was trained on "
                                   f"{str(cfg.get('data'))[:200]!r}, which gandiag reads only when --real names it")]}
    resolved, options, variant = cfg.get("resolved") or {}, cfg.get("options") or {}, cfg.get("variant") or {}
    loss = resolved.get("loss") or variant.get("loss") or "ns"
    pack = int(options.get("pack") or 1)
    conditional = bool(variant.get("conditional"))
    gp_weight = float(variant.get("gp_weight") or 0.0)
    G = build_network(ckpt["generator"]).train()
    D = build_network(ckpt["discriminator"]).train()
    res = {"loss": loss, "pack": pack, "step": ckpt.get("step")}
    reasons = []
    bad = [f"G.{n}" for n in _nonfinite_params(G)] + [f"D.{n}" for n in _nonfinite_params(D)]
    res["non_finite_parameters"] = bad
    if bad:
        reasons.append(reason(SIGNAL_ADV, "unhealthy", f"NaN/Inf in weights: {', '.join(bad[:4])}"
                              + (f" and {len(bad) - 4} more" if len(bad) > 4 else ""), len(bad), 0))
        res["reasons"] = reasons
        return res

    gen = torch.Generator().manual_seed(int(seed) + SEED_OFFSET)
    torch_state = torch.get_rng_state()
    data = TrainingData(cfg["data"], int(seed), _stored_classes(options.get("exclude_classes")), "cpu")
    n = min(int(resolved.get("batch_size") or MAX_BATCH), MAX_BATCH) * pack
    real, labels = data.batch(n, 1, 0, gen)
    labels = labels if conditional else None
    latent_dim = ckpt["generator"].get("kwargs", {}).get("latent_dim") or resolved.get("latent_dim")
    z = torch.randn(n, latent_dim, generator=gen)
    try:
        fake = G(z, labels) if conditional else G(z)
        s_real, s_fake = D(real, labels), D(fake.detach(), labels)
        loss_d = losses.d_loss(loss, s_real, s_fake)
        if gp_weight:
            gp, _ = losses.gradient_penalty(D, real, fake, labels, pack, gen)
            loss_d = loss_d + gp_weight * gp
        D.zero_grad(set_to_none=True)
        loss_d.backward()
        d_norms = grad_norms(D)
        G.zero_grad(set_to_none=True)
        loss_g = losses.g_loss(loss, D(fake, labels))
        loss_g.backward()
        g_norms = grad_norms(G)
        # Critic gradient norm on interpolates, per packed group (the penalty's definition).
        lip = losses.interpolate_grad_norms(D, real, fake, labels, pack, gen).detach()
    finally:
        torch.set_rng_state(torch_state)
    res.update({
        "d_loss": float(loss_d.detach()), "g_loss": float(loss_g.detach()),
        "d_score_real_mean": float(s_real.detach().mean()), "d_score_fake_mean": float(s_fake.detach().mean()),
        "grad_norm": {"G": g_norms, "D": d_norms},
        "grad_norm_total": {"G": total_norm(g_norms), "D": total_norm(d_norms)},
        "layer_ratio": {"G": _layer_ratio(G, g_norms), "D": _layer_ratio(D, d_norms)},
        "lipschitz": {"mean": float(lip.mean()), "std": float(lip.std()) if len(lip) > 1 else 0.0, "max": float(lip.max())},
        "sigma_max": {"G": spectral_norms(G), "D": spectral_norms(D)},
    })
    res["sigma_max_top"] = {k: max(v.values()) if v else None for k, v in res["sigma_max"].items()}
    if losses.uses_probabilities(loss):
        pr, pf = torch.sigmoid(s_real.detach()), torch.sigmoid(s_fake.detach())
        res["saturation"] = {"real_prob_mean": float(pr.mean()), "fake_prob_mean": float(pf.mean()),
                             "real_certain": float((pr > D_CERTAIN).double().mean()),
                             "fake_certain": float((pf < 1 - D_CERTAIN).double().mean()),
                             "fake_taken_for_real": float((pf > D_CERTAIN).double().mean())}
    reasons += judge_adversarial(res, gp_weight)
    res["reasons"] = reasons
    return res


def judge_adversarial(res: dict, gp_weight: float) -> list:
    reasons = []
    vals = [res["d_loss"], res["g_loss"], *res["grad_norm_total"].values()]
    if not all(math.isfinite(v) for v in vals):
        return [reason(SIGNAL_ADV, "unhealthy", "NaN/Inf in the losses or gradients of a fresh batch", None, None)]
    gt, dt = res["grad_norm_total"]["G"], res["grad_norm_total"]["D"]
    if gt == 0:
        reasons.append(reason(SIGNAL_ADV, "unhealthy", "G's gradient is exactly 0 on a fresh batch: no signal reaches "
                              "the generator (dead units or a saturated D)", 0.0, 0.0))
    for net, v in (("G", gt), ("D", dt)):
        if v > GRAD_BAD:
            reasons.append(reason(SIGNAL_ADV, "unhealthy", f"{net}'s gradient norm {fmt(v)} > {GRAD_BAD:g}: exploding", v, GRAD_BAD))
        elif v > GRAD_WARN:
            reasons.append(reason(SIGNAL_ADV, "warning", f"{net}'s gradient norm {fmt(v)} > {GRAD_WARN:g}", v, GRAD_WARN))
    chance = CHANCE_D_LOSS.get(res["loss"])
    if chance and res["d_loss"] > D_LOSS_BLOWUP * chance:
        reasons.append(reason(SIGNAL_ADV, "unhealthy", f"D loss {fmt(res['d_loss'])} on a fresh batch is over "
                              f"{D_LOSS_BLOWUP:g} × chance ({fmt(chance)}): D has diverged", res["d_loss"], D_LOSS_BLOWUP * chance))
    sat = res.get("saturation")
    if sat:
        if sat["real_certain"] >= D_SATURATED and sat["fake_certain"] >= D_SATURATED:
            level = "unhealthy" if res["loss"] == "minimax" else "warning"
            reasons.append(reason(SIGNAL_ADV, level, f"D is saturated: σ(D) > {D_CERTAIN} on {sat['real_certain']:.0%} of real and "
                                  f"< {1 - D_CERTAIN:.2f} on {sat['fake_certain']:.0%} of generated samples (vanishing G gradient)",
                                  min(sat["real_certain"], sat["fake_certain"]), D_SATURATED))
        elif sat["fake_taken_for_real"] >= D_SATURATED:
            reasons.append(reason(SIGNAL_ADV, "warning", f"D is certain ({sat['fake_taken_for_real']:.0%} at σ > {D_CERTAIN}) that "
                                  "generated samples are real: a broken discriminator", sat["fake_taken_for_real"], D_SATURATED))
    lip = res["lipschitz"]["mean"]
    if gp_weight:
        lo, hi = LIPSCHITZ_RANGE
        if lip > LIPSCHITZ_BAD:
            reasons.append(reason(SIGNAL_ADV, "unhealthy", f"critic gradient norm on interpolates {fmt(lip)} (WGAN-GP wants ≈ 1; "
                                  f"> {LIPSCHITZ_BAD:g})", lip, LIPSCHITZ_BAD))
        elif not lo <= lip <= hi:
            reasons.append(reason(SIGNAL_ADV, "warning", f"critic gradient norm on interpolates {fmt(lip)} outside "
                                  f"[{lo}, {hi}] (WGAN-GP wants ≈ 1)", lip, hi if lip > hi else lo))
    for net, top in res["sigma_max_top"].items():
        if top is not None and top > SIGMA_WARN:
            reasons.append(reason(SIGNAL_ADV, "warning", f"{net} has a weight matrix with spectral norm {fmt(top)} "
                                  f"(> {SIGMA_WARN:g})", top, SIGMA_WARN))
    lo, hi = LAYER_RATIO_RANGE
    for net, lr in res["layer_ratio"].items():
        r = lr and lr["ratio"]
        if r is not None and gt > 0 and not lo <= r <= hi:
            what = "vanishing" if r < lo else "exploding"
            reasons.append(reason(SIGNAL_ADV, "warning", f"{net}'s first-to-last layer gradient ratio {fmt(r)} ({what}; "
                                  f"outside [{lo:g}, {hi:g}])", r, lo if r < lo else hi))
    return reasons
