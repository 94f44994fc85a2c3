"""The k-NN metrics screen distances in float32 and settle the close calls in float64 (gandiag/metrics/screening.py).

Every decision must be the float64 one. The reference here computes whole distance matrices from the
coordinate differences in float64 (the definition the screen settles on) and applies the metrics'
definitions; the screened metrics must equal it exactly, on sets built to defeat the screen: exact ties
on the radii, copies, points planted a hair inside and outside a ball, sets whose distances all sit
within float32's error of the radii, huge offsets and scales. A property test checks the error bound
itself against exact values on hostile sets.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gandiag.metrics import screening
from gandiag.metrics.prdc import ball_metrics, self_radii


def exact_sq(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    rows = []
    for i in range(a.shape[0]):
        diff = a[i][None, :] - b
        rows.append((diff * diff).sum(1))
    return torch.stack(rows)


def kth(d: torch.Tensor, k: int, src=None) -> torch.Tensor:
    if src is None:
        return d.sort(1).values[:, k]  # the row itself sits at 0
    return d.masked_fill(src[:, None] == src[None, :], math.inf).sort(1).values[:, k - 1]


def reference(x, y, prc_k=3, dc_k=5, x_src=None, y_src=None) -> dict:
    """The four metrics by their definitions, on whole float64 difference-form matrices."""
    dxx, dyy, dyx = exact_sq(x, x), exact_sq(y, y), exact_sq(y, x)
    rx_p, rx_d, ry_p = kth(dxx, prc_k, x_src), kth(dxx, dc_k, x_src), kth(dyy, prc_k, y_src)
    return {"precision": float((dyx <= rx_p[None, :]).any(1).double().mean()),
            "recall": float((dyx <= ry_p[:, None]).any(0).double().mean()),
            "density": float((dyx < rx_d[None, :]).sum(1).double().sum() / (dc_k * y.shape[0])),
            "coverage": float((dyx < rx_d[None, :]).any(0).double().mean())}


def manifold(n: int, dim: int, seed: int, shift=0.0, scale=1.0) -> torch.Tensor:
    """Non-negative features on a 12-dimensional manifold, as a network's pooled features are."""
    g = torch.Generator().manual_seed(1234)
    w = torch.randn(12, dim, generator=g) / 12 ** 0.5
    z = torch.randn(n, 12, generator=torch.Generator().manual_seed(seed)) * scale + shift
    return torch.relu(z @ w + 0.3).float().double()  # float32 values, as extractors give them


class Spy:
    """Counts exact recomputations and float64 fallbacks, so a test knows which route it exercised."""

    def __init__(self, monkeypatch):
        self.pairs, self.crowded, self.crowded_within = 0, 0, 0
        exact, crowded = screening.Screen.exact, screening.Screen.crowded

        def counted_exact(screen, rows, cols):
            self.pairs += rows.numel()
            return exact(screen, rows, cols)

        def counted_crowded(screen):
            self.crowded += screen.dtype != torch.float64
            self.crowded_within += screen.dtype != torch.float64 and screen.same
            crowded(screen)

        monkeypatch.setattr(screening.Screen, "exact", counted_exact)
        monkeypatch.setattr(screening.Screen, "crowded", counted_crowded)


def test_structured_features_are_settled_in_float32_and_equal_the_definition(monkeypatch):
    spy = Spy(monkeypatch)
    x, y = manifold(400, 2048, 1), manifold(350, 2048, 2, shift=0.1, scale=1.1)
    ours = ball_metrics(x, y)
    assert ours == reference(x, y)
    assert 0.2 < ours["precision"] < 0.95 and 0.2 < ours["coverage"] < 0.95
    assert spy.crowded == 0  # float32 decided the passes ...
    assert spy.pairs < 0.02 * (400 * 400 + 350 * 350 + 350 * 400)  # ... recomputing under 2% of the pairs


def test_radii_equal_the_exact_kth_neighbour():
    x = manifold(300, 512, 3)
    radii = self_radii(x, (3, 5))
    d = exact_sq(x, x)
    for k in (3, 5):
        assert torch.allclose(radii[k], kth(d, k).sqrt(), rtol=1e-13, atol=0)


def test_iid_noise_in_2048_dims_falls_back_to_float64_and_stays_exact(monkeypatch):
    """Independent Gaussians: every distance is within ~3% of every other, so float32's band holds too many."""
    spy = Spy(monkeypatch)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(300, 2048, generator=g, dtype=torch.float64)
    y = torch.randn(300, 2048, generator=g, dtype=torch.float64) * 1.02 + 0.01
    assert ball_metrics(x, y) == reference(x, y)
    assert spy.crowded >= 1


def test_integer_features_with_exact_ties_on_the_radii():
    """Digits' pixels are integers: many neighbours share the k-th distance exactly, and ≤ / < both matter."""
    from sklearn.datasets import load_digits

    digits = torch.from_numpy(load_digits().data).double()
    x = digits[:400]
    rng = np.random.default_rng(0)
    y = torch.cat([digits[400:600], x[torch.from_numpy(rng.integers(0, 400, 100))]])  # and copies of real rows
    ours = ball_metrics(x, y)
    assert ours == reference(x, y)
    dxx = exact_sq(x, x).sort(1).values
    assert bool((dxx[:, 3] == dxx[:, 4]).any())  # ties on the radius exist


def test_points_planted_on_and_around_the_ball_edges():
    """Fake points at exactly a real radius (inside for ≤, outside for <) and a relative 1e-9 either side."""
    x = manifold(300, 256, 6)
    r3 = self_radii(x, (3,))[3]
    g = torch.Generator().manual_seed(7)
    planted = []
    for j in range(40):
        u = torch.randn(256, generator=g, dtype=torch.float64)
        u /= u.norm()
        planted += [x[j] + u * r3[j] * (1 - 1e-9), x[j] + u * r3[j] * (1 + 1e-9)]
    on_edge = exact_sq(x[:40], x).sort(1).indices[:, 3]  # each point's 3rd neighbour: at exactly r3 from it
    y = torch.cat([torch.stack(planted), x[on_edge], manifold(100, 256, 8, shift=0.3)])
    assert ball_metrics(x, y) == reference(x, y)


def test_mode_collapse_copies_give_zero_radii(monkeypatch):
    spy = Spy(monkeypatch)
    x = manifold(300, 1024, 9)
    y = torch.cat([x[:1].repeat(150, 1), x[1:2].repeat(100, 1) + 1e-7, manifold(50, 1024, 10)])
    ours = ball_metrics(x, y)
    assert ours == reference(x, y)
    assert float(self_radii(y, (3,))[3][:150].max()) == 0.0
    assert spy.crowded_within == 0  # a radius of 0 is settled at once: nothing is smaller


@pytest.mark.parametrize("offset,scale", [(1e6, 1.0), (0.0, 1e-30), (0.0, 1e30), (-3e4, 1e-3)])
def test_offsets_and_scales_float32_alone_cannot_hold(offset, scale, monkeypatch):
    """Centring and power-of-two scaling keep float32 deciding (uncentred, 1e6 offsets leave it nothing)."""
    spy = Spy(monkeypatch)
    x = manifold(200, 512, 11) * scale + offset
    y = manifold(180, 512, 12, shift=0.2) * scale + offset
    assert ball_metrics(x, y) == reference(x, y)
    assert spy.crowded == 0


def test_neighbours_float32_cannot_order():
    """Fifty neighbours 1e-8 apart in distance, far below float32's error: the k-th must still be the exact one."""
    g = torch.Generator().manual_seed(17)
    base = torch.randn(1, 256, generator=g, dtype=torch.float64) * 100
    u = torch.randn(50, 256, generator=g, dtype=torch.float64)
    u /= u.norm(dim=1, keepdim=True)
    ring = base + u * (1 + 1e-8 * torch.randperm(50, generator=g).double())[:, None]
    x = torch.cat([base, ring, base + 5 * torch.randn(30, 256, generator=g, dtype=torch.float64)])
    radii = self_radii(x, (3, 5))
    d = exact_sq(x, x)
    for k in (3, 5):
        assert torch.equal(radii[k][0], kth(d, k)[0].sqrt())


def test_two_dimensional_points_and_bootstrap_copies():
    g = torch.Generator().manual_seed(13)
    x = torch.randn(500, 2, generator=g, dtype=torch.float64)
    y = torch.randn(400, 2, generator=g, dtype=torch.float64) * 0.8 + 0.3
    assert ball_metrics(x, y) == reference(x, y)
    xi, yi = torch.randint(0, 500, (500,), generator=g), torch.randint(0, 400, (400,), generator=g)
    assert ball_metrics(x[xi], y[yi], x_src=xi, y_src=yi) == reference(x[xi], y[yi], x_src=xi, y_src=yi)


def test_non_finite_features_are_refused():
    x = manifold(50, 16, 14)
    x[3, 2] = math.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        ball_metrics(x, manifold(50, 16, 15))
    y = manifold(50, 16, 15)
    y[7, 0] = math.inf
    with pytest.raises(ValueError, match="NaN or infinite"):  # density/coverage alone never take y's radii
        ball_metrics(manifold(50, 16, 14), y, wanted=("density", "coverage"))


@pytest.mark.parametrize("kind", ["far clusters", "heavy tails", "sparse", "one dimension", "wide"])
def test_the_error_bound_holds(kind):
    """|screened − exact| ≤ the stated bound for every entry, float32 and float64, on hostile sets."""
    g = torch.Generator().manual_seed(16)
    if kind == "far clusters":  # centring cannot help: the centre lies between two tight clusters
        a = torch.randn(200, 256, generator=g, dtype=torch.float64) * 1e-3
        a[:100] += 1e3
        a[100:] -= 1e3
    elif kind == "heavy tails":
        a = torch.distributions.Cauchy(0.0, 1.0).sample((200, 512)).double()
    elif kind == "sparse":
        a = torch.randn(200, 1024, generator=g, dtype=torch.float64) * (torch.rand(200, 1024, generator=g) < 0.01)
    elif kind == "one dimension":
        a = torch.randn(200, 1, generator=g, dtype=torch.float64) * 1e5
    else:
        a = torch.randn(200, 4096, generator=g, dtype=torch.float64).exp()
    b = a.flip(0)[:150] + torch.randn(150, a.shape[1], generator=g, dtype=torch.float64) * 1e-4
    screen = screening.Screen(a, b)
    exact = exact_sq(a, b) * screen.scale2
    for dtype in (torch.float32, torch.float64):
        d = screen.block(slice(0, 200), dtype).double()
        err = (d - exact).abs()
        assert bool((err <= screen.row_slack(slice(0, 200), dtype)[:, None]).all())
        assert bool((err <= screen.col_slack(slice(0, 200), dtype)[None, :]).all())



@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 64 rows, so a few hundred points cross many blocks (and the upper triangle's transposed reads)."""
    from gandiag.metrics import neighbours

    monkeypatch.setattr(neighbours, "BLOCK", 64)
    monkeypatch.setattr(screening, "BLOCK", 64)


def test_many_blocks_give_the_same_decisions(small_blocks):
    x, y = manifold(400, 256, 18), manifold(350, 256, 19, shift=0.1, scale=1.1)
    assert ball_metrics(x, y) == reference(x, y)
    g = torch.Generator().manual_seed(20)
    xi, yi = torch.randint(0, 400, (400,), generator=g), torch.randint(0, 350, (350,), generator=g)
    assert ball_metrics(x[xi], y[yi], x_src=xi, y_src=yi) == reference(x[xi], y[yi], x_src=xi, y_src=yi)


@pytest.mark.parametrize("with_src", [False, True])
def test_whole_rows_and_the_triangle_agree(small_blocks, with_src):
    """Under torchrun each rank takes whole rows (neighbours.smallest); alone, the triangle: the same radii."""
    from gandiag.distributed import RowShard
    from gandiag.metrics.prdc import self_radii_squared

    x = torch.cat([manifold(300, 128, 21), manifold(1, 128, 21).repeat(20, 1)])  # copies: radii of 0
    src = torch.randint(0, 200, (320,), generator=torch.Generator().manual_seed(22)) if with_src else None
    alone, rows = self_radii_squared(x, (3, 5), src), self_radii_squared(x, (3, 5), src, shard=RowShard(0, 1))
    for k in (3, 5):
        assert torch.equal(alone[k], rows[k])
        assert torch.equal(alone[k], kth(exact_sq(x, x), k, src))
