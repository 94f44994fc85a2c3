"""gandiag/training/losses.py against values worked out by hand from the papers' definitions.

Scores are raw discriminator outputs (logits); σ is the logistic function.

* GAN (Goodfellow et al. 2014): D maximises log σ(r) + log(1−σ(f)), so its loss is
  −E log σ(r) − E log(1−σ(f)) for both ``ns`` and ``minimax``; the generator minimises
  E log(1−σ(f)) (``minimax``) or, non-saturating, −E log σ(f) (``ns``).
* LSGAN (Mao et al. 2017), targets a=0, b=c=1: D ½E(r−1)² + ½E f², G ½E(f−1)².
* Hinge (Lim & Ye 2017; SN-GAN): D E max(0, 1−r) + E max(0, 1+f), G −E f.
* WGAN (Arjovsky et al. 2017): the critic minimises E f − E r, the generator −E f.
* One-sided label smoothing (Salimans et al. 2016): the real target 1 becomes 1−s, the fake target stays 0.
* WGAN-GP (Gulrajani et al. 2017): λ·E(‖∇D(x̂)‖−1)² on x̂ = εx + (1−ε)x̃, ε ~ U[0,1] per sample.

The references below are computed with Python floats (``math``) from these formulas, the losses on float64
tensors: tolerance rel 1e-12 (a few float64 roundings, far below any real mistake such as a wrong sign,
target or mean, which moves a value by > 1e-2). The gradient-norm checks on linear critics are exact up to
float64 rounding too (same tolerance); the float32 λ check is exact (powers of two).
"""

from __future__ import annotations

import math

import pytest
import torch

from gandiag.training import losses, nets

TOL = dict(rel=1e-12, abs=1e-12)
R = [2.0, -0.5, 0.0, 1.25]  # D's scores on real samples
F = [-1.0, 0.3, 3.0, -2.5]  # D's scores on generated samples


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def mean(xs) -> float:
    return sum(xs) / len(xs)


def t(xs) -> torch.Tensor:
    return torch.tensor(xs, dtype=torch.float64)


def bce(score: float, target: float) -> float:
    """Binary cross-entropy of σ(score) against ``target``, from its definition."""
    p = sig(score)
    return -(target * math.log(p) + (1.0 - target) * math.log(1.0 - p))


# ----------------------------------------------------------------------------- discriminator losses, by hand


def d_gan(r, f, s=0.0):
    return mean([bce(x, 1.0 - s) for x in r]) + mean([-math.log(1.0 - sig(x)) for x in f])


def d_ls(r, f, s=0.0):
    return 0.5 * mean([(x - (1.0 - s)) ** 2 for x in r]) + 0.5 * mean([x * x for x in f])


def d_hinge(r, f, s=0.0):
    return mean([max(0.0, 1.0 - x) for x in r]) + mean([max(0.0, 1.0 + x) for x in f])


def d_wasserstein(r, f, s=0.0):
    return mean(f) - mean(r)


D_BY_HAND = {"ns": d_gan, "minimax": d_gan, "ls": d_ls, "hinge": d_hinge, "wasserstein": d_wasserstein}
G_BY_HAND = {
    "ns": lambda f: mean([-math.log(sig(x)) for x in f]),
    "minimax": lambda f: mean([math.log(1.0 - sig(x)) for x in f]),
    "ls": lambda f: 0.5 * mean([(x - 1.0) ** 2 for x in f]),
    "hinge": lambda f: -mean(f),
    "wasserstein": lambda f: -mean(f),
}


def test_the_five_losses_are_the_ones_named():
    # every loss a variant or --loss can pick is tested here
    from gandiag.training.variants import VARIANTS

    assert {v.loss for v in VARIANTS.values()} | {"minimax"} == set(D_BY_HAND)


@pytest.mark.parametrize("loss", sorted(D_BY_HAND))
def test_d_loss_matches_its_definition(loss):
    assert float(losses.d_loss(loss, t(R), t(F))) == pytest.approx(D_BY_HAND[loss](R, F), **TOL)


@pytest.mark.parametrize("loss", sorted(G_BY_HAND))
def test_g_loss_matches_its_definition(loss):
    assert float(losses.g_loss(loss, t(F))) == pytest.approx(G_BY_HAND[loss](F), **TOL)


def test_values_at_landmark_scores():
    """A few values checkable on paper, without the helpers above."""
    zeros = torch.zeros(3, dtype=torch.float64)
    assert float(losses.d_loss("ns", zeros, zeros)) == pytest.approx(2 * math.log(2), **TOL)  # D(x)=½: 2 log 2
    assert float(losses.g_loss("ns", zeros)) == pytest.approx(math.log(2), **TOL)
    assert float(losses.g_loss("minimax", zeros)) == pytest.approx(-math.log(2), **TOL)
    assert float(losses.d_loss("ls", t([1.0, 1.0]), t([0.0, 0.0]))) == 0.0  # LSGAN's targets met: b=1, a=0
    assert float(losses.g_loss("ls", t([1.0]))) == 0.0 and float(losses.g_loss("ls", t([3.0]))) == 2.0
    assert float(losses.d_loss("hinge", t([1.0, 5.0]), t([-1.0, -9.0]))) == 0.0  # beyond the margins: no loss
    assert float(losses.d_loss("hinge", zeros, zeros)) == 2.0
    assert float(losses.d_loss("wasserstein", t([1.0, 3.0]), t([0.0, -2.0]))) == -3.0  # E f − E r = −1 − 2


def test_non_saturating_keeps_the_gradient_where_minimax_loses_it():
    """The GAN paper's reason for the non-saturating loss: d/df of −log σ(f) is −(1−σ(f)), of log(1−σ(f))
    is −σ(f); for a fake D rejects confidently (f = −8) the first is ≈ −1 and the second ≈ 0."""
    f = torch.tensor([-8.0, 0.5], dtype=torch.float64, requires_grad=True)
    (g_ns,) = torch.autograd.grad(losses.g_loss("ns", f), f)
    (g_mm,) = torch.autograd.grad(losses.g_loss("minimax", f), f)
    for i, x in enumerate([-8.0, 0.5]):
        assert float(g_ns[i]) == pytest.approx(-(1 - sig(x)) / 2, **TOL)  # /2: the mean over two samples
        assert float(g_mm[i]) == pytest.approx(-sig(x) / 2, **TOL)
    assert float(g_ns[0]) < -0.49 and abs(float(g_mm[0])) < 2e-4


@pytest.mark.parametrize("loss", ["ns", "minimax", "ls"])
@pytest.mark.parametrize("s", [0.1, 0.25])
def test_one_sided_label_smoothing_moves_only_the_real_target(loss, s):
    assert float(losses.d_loss(loss, t(R), t(F), smoothing=s)) == pytest.approx(D_BY_HAND[loss](R, F, s), **TOL)
    # one-sided: the fake half is untouched, so the smoothing's effect does not depend on the fakes
    other_f = [5.0, -4.0, 0.0, 0.7]
    shift = float(losses.d_loss(loss, t(R), t(F), s)) - float(losses.d_loss(loss, t(R), t(F)))
    shift_other = float(losses.d_loss(loss, t(R), t(other_f), s)) - float(losses.d_loss(loss, t(R), t(other_f)))
    assert shift == pytest.approx(shift_other, **TOL) and shift != 0.0


def test_smoothing_has_a_known_minimiser():
    """With target 1−s the real half of the ns loss is smallest where σ(r) = 1−s (BCE's minimiser), and the
    ls loss where r = 1−s; without smoothing they would still fall beyond it."""
    s = 0.2
    r_star = math.log((1 - s) / s)  # σ(r*) = 0.8
    for loss, best in (("ns", r_star), ("ls", 1 - s)):
        r = torch.tensor([best], dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(losses.d_loss(loss, r, torch.zeros(1, dtype=torch.float64), s), r)
        assert abs(float(g)) < 1e-12, loss
        (g0,) = torch.autograd.grad(losses.d_loss(loss, r, torch.zeros(1, dtype=torch.float64)), r)
        assert float(g0) < -0.1, loss  # unsmoothed, D would push the real score further up


@pytest.mark.parametrize("loss", ["hinge", "wasserstein"])
def test_smoothing_does_not_change_losses_without_targets(loss):
    assert float(losses.d_loss(loss, t(R), t(F), smoothing=0.3)) == float(losses.d_loss(loss, t(R), t(F)))


def test_unknown_loss_is_refused():
    with pytest.raises(ValueError, match="bogus"):
        losses.d_loss("bogus", t(R), t(F))
    with pytest.raises(ValueError, match="bogus"):
        losses.g_loss("bogus", t(F))
    assert [x for x in sorted(D_BY_HAND) if losses.uses_probabilities(x)] == ["minimax", "ns"]


# ----------------------------------------------------------------------------- gradient penalty


class LinearCritic(torch.nn.Module):
    """D(x) = ⟨pack_groups(x), w⟩ + b: its gradient is w whatever x̂ is, so ‖∇D(x̂)‖ = ‖w‖ per packed group."""

    def __init__(self, w, pack=1):
        super().__init__()
        self.w = torch.nn.Parameter(torch.as_tensor(w, dtype=torch.float64))
        self.b = torch.nn.Parameter(torch.tensor(0.7, dtype=torch.float64))
        self.pack = pack

    def forward(self, x, labels=None):
        return nets.pack_groups(x, self.pack).flatten(1) @ self.w + self.b


def _batch(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(n, d, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("w, pack", [([3.0, 4.0], 1), ([0.6, 0.8], 1), ([1.0, 2.0, 2.0, 4.0], 2), ([0.0, 0.0], 1)])
def test_gradient_norm_and_penalty_of_a_linear_critic(w, pack):
    real, fake = _batch(8, 2, 0)
    D = LinearCritic(w, pack)
    norm = math.sqrt(sum(x * x for x in w))  # 5, 1, 5, 0
    gen = torch.Generator().manual_seed(1)
    norms = losses.interpolate_grad_norms(D, real, fake, None, pack, gen)
    assert norms.shape == (8 // pack,)  # one norm per packed group: D's whole input
    assert norms.tolist() == pytest.approx([norm] * (8 // pack), **TOL)
    gp, mean_norm = losses.gradient_penalty(D, real, fake, None, pack, torch.Generator().manual_seed(1))
    assert float(gp.detach()) == pytest.approx((norm - 1.0) ** 2, **TOL)  # 16, 0, 16, 1
    assert float(mean_norm) == pytest.approx(norm, **TOL) and not mean_norm.requires_grad


def test_penalty_backpropagates_into_the_critic_and_not_into_the_generator():
    """create_graph=True: d/dw (‖w‖−1)² = 2(‖w‖−1)·w/‖w‖ reaches D's weights; the fakes are detached."""
    real, fake = _batch(6, 2, 2)
    fake.requires_grad_(True)
    D = LinearCritic([3.0, 4.0])
    gp, _ = losses.gradient_penalty(D, real, fake, None, 1, torch.Generator().manual_seed(0))
    gp.backward()
    assert D.w.grad.tolist() == pytest.approx([2 * 4 * 3 / 5, 2 * 4 * 4 / 5], **TOL)  # [4.8, 6.4]
    assert fake.grad is None and D.b.grad is None  # the bias does not change ∇ₓD


def test_interpolates_are_eps_x_plus_one_minus_eps_fake_one_eps_per_sample():
    """A critic ½‖x‖² has gradient x̂ itself: the norms are ‖εᵢxᵢ + (1−εᵢ)x̃ᵢ‖ with εᵢ the generator's draws."""
    real, fake = _batch(5, 3, 3)

    class Half(torch.nn.Module):
        def forward(self, x, labels=None):
            return 0.5 * (x * x).sum(dim=1)

    norms = losses.interpolate_grad_norms(Half(), real, fake, None, 1, torch.Generator().manual_seed(4))
    eps = torch.rand((5, 1), generator=torch.Generator().manual_seed(4))  # ε ~ U[0,1], drawn as float32 on the CPU
    want = [math.sqrt(sum((e * x + (1 - e) * y) ** 2 for x, y in zip(xs, ys)))
            for e, xs, ys in zip(eps[:, 0].double().tolist(), real.tolist(), fake.tolist())]
    assert norms.tolist() == pytest.approx(want, **TOL)
    assert len(set(eps[:, 0].tolist())) == 5  # a different ε per sample
    # image-shaped batches: ε is broadcast over C, H, W
    imgs_r, imgs_f = real.reshape(5, 3, 1, 1), fake.reshape(5, 3, 1, 1)

    class HalfImg(torch.nn.Module):
        def forward(self, x, labels=None):
            return 0.5 * (x * x).flatten(1).sum(dim=1)

    norms_img = losses.interpolate_grad_norms(HalfImg(), imgs_r, imgs_f, None, 1, torch.Generator().manual_seed(4))
    assert norms_img.tolist() == pytest.approx(want, **TOL)


def test_trainer_adds_lambda_times_the_penalty(tmp_path, monkeypatch):
    """WGAN-GP's critic loss is E f − E r + λ·penalty with λ = 10 (Gulrajani et al.): with the Wasserstein term
    fixed at 1 and the penalty at 0.25, the logged d_loss is 1 + 10·0.25 = 3.5 and the logged gp 0.25."""
    from gandiag.training import VARIANTS, read_log, train

    assert VARIANTS["wgan-gp"].gp_weight == 10.0 and not VARIANTS["wgan"].gp_weight

    def d_loss(loss, real, fake, smoothing=0.0):
        return 0.0 * (real.sum() + fake.sum()) + 1.0

    def gradient_penalty(D, real, fake, labels, pack, gen):
        anchor = sum(p.sum() for p in D.parameters()) * 0.0  # keeps a graph into D, so backward() works
        return anchor + 0.25, torch.tensor(1.5)

    monkeypatch.setattr(losses, "d_loss", d_loss)
    monkeypatch.setattr(losses, "gradient_penalty", gradient_penalty)
    train("wgan-gp", "ring8", tmp_path, steps=2, log_every=1, eval_every=1000, progress=False, batch_size=8)
    log = read_log(tmp_path / "log.jsonl")
    assert [(r["d_loss"], r["gp"], r["gp_grad_norm"]) for r in log] == [(3.5, 0.25, 1.5)] * 2
