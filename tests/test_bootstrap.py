"""Bootstrap confidence intervals: seeded, cover the estimate, and as wide as the noise between independent draws."""

from __future__ import annotations

import numpy as np
import torch

from gandiag.data.mixtures import MIXTURES
from gandiag.features.featureset import FeatureSet
from gandiag.metrics import MetricContext
from gandiag.options import EvalOptions
from gandiag.metrics.bootstrap import add_confidence_intervals, radii_excluding_copies
from gandiag.metrics.fid import FID
from gandiag.metrics.prdc import builtin_metrics, kth_nn_radii
from gandiag.pipeline import evaluate

METRICS = (FID(), *builtin_metrics())


def feature_set(x) -> FeatureSet:
    fs = FeatureSet()
    fs.add({"pool": torch.as_tensor(x, dtype=torch.float32)})
    return fs


def run(real, fake, n=50, seed=0):
    ctx = MetricContext(feature_set(fake), feature_set(real), EvalOptions(seed=seed, device="cpu"))
    out = {m.name: m.compute(ctx) for m in METRICS}
    add_confidence_intervals(out, METRICS, ctx, n)
    return out, ctx


def gaussians(n, d, seed, shift=0.0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) + shift


def test_radii_without_copies_equal_the_plain_radii():
    x = torch.as_tensor(gaussians(200, 4, 0))
    assert torch.allclose(radii_excluding_copies(x, torch.arange(200), 3), kth_nn_radii(x, 3))
    # A point drawn twice is not its own neighbour.
    idx = torch.tensor([0, 0, 1, 2, 3, 4])
    r = radii_excluding_copies(x[idx], idx, 1)
    assert (r > 0).all()


def test_intervals_cover_the_estimate_and_are_seeded():
    real, fake = gaussians(200, 8, 1), gaussians(200, 8, 2, 0.3)
    a, ctx = run(real, fake, 20, seed=5)
    b, _ = run(real, fake, 20, seed=5)
    c, _ = run(real, fake, 20, seed=6)
    for name in ("fid", "precision", "recall", "density", "coverage"):
        lo, hi = a[name]["ci95"]
        assert lo <= a[name]["value"] <= hi and lo < hi, name
        assert a[name]["bootstrap"] == 20 and "bootstrap_mean" in a[name]
        assert a[name]["ci95"] == b[name]["ci95"]
        assert a[name]["ci95"] != c[name]["ci95"]
    assert 0 <= a["precision"]["ci95"][0] and a["coverage"]["ci95"][1] <= 1
    assert not any("rough" in w for w in ctx.warnings)  # 20 resamples: no warning (fewer would)


def test_interval_width_matches_the_spread_of_independent_evaluations():
    """The point of a CI for gates: its width should describe the run-to-run noise."""
    d, n = 4, 200
    values = {k: [] for k in ("fid", "recall", "coverage")}
    for s in range(12):
        out = {}
        ctx = MetricContext(feature_set(gaussians(n, d, 100 + s, 0.2)), feature_set(gaussians(n, d, 200 + s)), EvalOptions(device="cpu"))
        for m in (METRICS[0], METRICS[2], METRICS[4]):
            values[m.name].append(m.compute(ctx)["value"])
    out, _ = run(gaussians(n, d, 1), gaussians(n, d, 2, 0.2), 40, seed=1)
    for name, v in values.items():
        sd = float(np.std(v, ddof=1))
        half = (out[name]["ci95"][1] - out[name]["ci95"][0]) / 2
        assert 0.3 * 1.96 * sd < half < 3.0 * 1.96 * sd, (name, half, sd)


def test_evaluate_bootstrap_writes_intervals_to_json(tmp_path):
    pts, _ = MIXTURES["ring8"].sample(300, 4)
    np.savez(tmp_path / "ring.npz", samples=pts)
    r = evaluate(tmp_path / "ring.npz", "ring8", metrics=["fid", "kid", "precision", "recall", "density", "coverage"],
                 bootstrap=20, diagnostics=False, kid_subsets=10, kid_subset_size=100)
    r.save(tmp_path / "r.json")
    import json

    m = json.loads((tmp_path / "r.json").read_text())["metrics"]
    for name in ("fid", "precision", "recall", "density", "coverage"):
        assert m[name]["bootstrap"] == 20 and len(m[name]["ci95"]) == 2
    assert "ci95" not in m["kid"] and "std" in m["kid"]  # KID keeps its subset std
    assert "95% CI" in r.summary()


def test_few_resamples_warn():
    _, ctx = run(gaussians(100, 3, 1), gaussians(100, 3, 2), 5)
    assert any("rough" in w for w in ctx.warnings)


def test_bootstrap_count_is_bounded_by_a_budget(tmp_path, monkeypatch):
    """--bootstrap 100000000 ran for minutes (hours to come) before any check: it is refused in one line, exit 2,
    before any work; GANDIAG_MAX_BOOTSTRAP raises the limit."""
    import pytest
    from conftest import gandiag_in_process

    import gandiag.metrics.bootstrap as bootstrap_module
    from gandiag.safety.budgets import BOOTSTRAP, BudgetError

    def never(*_a, **_k):
        raise AssertionError("the resamples started: --bootstrap was not refused before the work")

    monkeypatch.delenv("GANDIAG_MAX_BOOTSTRAP", raising=False)
    pts, _ = MIXTURES["ring8"].sample(64, 4)
    np.savez(tmp_path / "ring.npz", samples=pts)
    with monkeypatch.context() as m:
        m.setattr(bootstrap_module, "add_confidence_intervals", never)  # without the bound: exit 3, not hours
        res = gandiag_in_process("evaluate", tmp_path / "ring.npz", "--real", "ring8", "--bootstrap", "100000000",
                                 "--no-progress", "--device", "cpu")
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(lines) == 1, res.stderr
        assert lines[0].startswith("gandiag: error: --bootstrap 100,000,000") and "GANDIAG_MAX_BOOTSTRAP" in lines[0]
        assert BOOTSTRAP.value >= 1000  # room for the 1,000-2,000 resamples a stable 95% interval needs
        with pytest.raises(BudgetError, match="GANDIAG_MAX_BOOTSTRAP"):  # the library checks it too
            evaluate(tmp_path / "ring.npz", "ring8", bootstrap=BOOTSTRAP.value + 1, diagnostics=False, device="cpu")
    monkeypatch.setenv("GANDIAG_MAX_BOOTSTRAP", "10")
    with pytest.raises(BudgetError, match="11 exceeds the limit of 10 bootstrap resamples"):
        evaluate(tmp_path / "ring.npz", "ring8", bootstrap=11, diagnostics=False, device="cpu")
    r = evaluate(tmp_path / "ring.npz", "ring8", bootstrap=10, metrics=["fid"], diagnostics=False, device="cpu",
                 use_cache=False)
    assert r.metrics["fid"]["bootstrap"] == 10
