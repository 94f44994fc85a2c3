"""Each mode-collapse and gradient-health signal on hand-made data, against its definition."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gandiag.data.mixtures import MIXTURES
from gandiag.diagnostics import classifier_modes, duplicates, latent_sensitivity, mixture_modes, ndb, training_log
from gandiag.diagnostics.mode_collapse import summarise

# -- 2D mixtures ---------------------------------------------------------------------------------

def test_mixture_perfect_samples_are_not_flagged():
    pts, _ = MIXTURES["ring8"].sample(2500, 1)
    s = mixture_modes.analyse(pts, "ring8")
    assert s["modes_captured"] == 8 and s["missing_modes"] == [] and s["reasons"] == []
    assert s["high_quality_fraction"] > 0.98


def test_mixture_two_modes_is_severe_with_the_missing_modes():
    m = MIXTURES["ring8"]
    pts, labels = m.sample(2500, 2)
    pts = pts[np.isin(labels, [0, 4])]
    out = summarise({"mixture": mixture_modes.analyse(pts, "ring8")})
    assert out["verdict"] == "severe"
    assert out["missing_modes"] == [1, 2, 3, 5, 6, 7] and out["modes_captured"] == 2 and out["modes_total"] == 8
    assert out["reverse_kl"] == pytest.approx(math.log(4), abs=0.02)  # two equal modes of eight: log(8/2)


def test_mixture_one_missing_mode_is_partial_and_starved_mode_is_named():
    m = MIXTURES["grid25"]
    pts, labels = m.sample(5000, 3)
    keep = (labels != 7) & ((labels != 12) | (np.arange(len(labels)) % 20 == 0))  # mode 12 at 5% of its share
    s = mixture_modes.analyse(pts[keep], "grid25")
    assert s["missing_modes"] == [7] and s["starved_modes"] == [12]
    assert summarise({"mixture": s})["verdict"] == "partial"


# -- classifier classes --------------------------------------------------------------------------

def _logits(classes, n, rng, confident=True):
    y = rng.choice(classes, n)
    logits = rng.normal(0, 0.1, (n, 10))
    logits[np.arange(n), y] += 6.0 if confident else 0.5
    return logits, y


def test_classes_missing_classes_and_kl():
    rng = np.random.default_rng(0)
    real, ry = _logits(range(10), 2000, rng)
    fake, _ = _logits(range(7), 3000, rng)
    blur, _ = _logits([7, 8, 9], 300, rng, confident=False)  # unconfident "7/8/9" blobs do not count
    s = classifier_modes.analyse(np.concatenate([fake, blur]), real, ry)
    assert s["missing_classes"] == [7, 8, 9] and s["absent_classes"] == [7, 8, 9]
    assert s["share_all"][7] > 0.02  # argmax alone would have seen them
    # KL(fake || real) of 7 equal classes against 10 equal ones: log(10/7)
    assert s["kl_to_real"] == pytest.approx(math.log(10 / 7), abs=0.03)
    assert summarise({"classes": s})["verdict"] == "partial"


def test_classes_balanced_generator_not_flagged_and_conditional_collapse_found():
    rng = np.random.default_rng(1)
    real, ry = _logits(range(10), 2000, rng)
    fake, fy = _logits(range(10), 2000, rng)
    real_pool = torch.randn(2000, 16)
    fake_pool = torch.randn(2000, 16)
    fake_pool[fy == 3] = fake_pool[fy == 3] * 0.05  # class 3 collapsed inside itself
    s = classifier_modes.analyse(fake, real, ry, (fy, fake_pool, real_pool))
    assert s["missing_classes"] == [] and s["kl_to_real"] < 0.02
    assert s["conditional"]["collapsed_classes"] == [3]
    assert [r["level"] for r in s["reasons"]] == ["partial"]


# -- NDB -----------------------------------------------------------------------------------------

def test_two_proportion_z_matches_the_pooled_formula():
    from scipy.stats import norm

    z, p = ndb.two_proportion_z(np.array([30]), 1000, np.array([10]), 800)
    p1, p2, pp = 0.03, 10 / 800, 40 / 1800
    zz = (p1 - p2) / math.sqrt(pp * (1 - pp) * (1 / 1000 + 1 / 800))
    assert z[0] == pytest.approx(zz) and p[0] == pytest.approx(2 * norm.sf(abs(zz)))


def test_js_divergence():
    p, q = np.array([0.5, 0.5, 0.0]), np.array([0.0, 0.5, 0.5])
    assert ndb.js_divergence(p, p) == 0.0
    assert ndb.js_divergence(p, q) == pytest.approx(0.5 * math.log(2))


@pytest.fixture(scope="module")
def digit_features():
    from gandiag.features.digits import _default_extractor, digits_uint8, heldout_split

    x, y = digits_uint8()
    feats = _default_extractor()(x)["pool"].numpy()
    train, test = heldout_split()
    return feats, y, train, test


def test_ndb_heldout_data_shows_few_bins_and_removed_digit_shows_its_bins(digit_features):
    feats, y, train, test = digit_features
    held = ndb.ndb(feats[train], feats[test], k=50, seed=0, real_labels=y[train])
    assert held["ndb_over_k"] <= 0.1 and held["js"] < 0.05  # Richardson & Weiss: held-out data ≈ 0
    no9 = test[y[test] != 9]
    gone = ndb.ndb(feats[train], feats[no9], k=50, seed=0, real_labels=y[train])
    assert gone["ndb"] > held["ndb"]
    under9 = [b for b in gone["different_bins"] if b["direction"] == "under" and b.get("real_majority_label") == 9]
    assert under9, gone["different_bins"]
    assert gone["emptied_by_label"][9] >= 0.9 and max(v for c, v in gone["emptied_by_label"].items() if c != 9) < 0.5
    assert gone["reasons"][0]["level"] == "info"


# -- duplicates ----------------------------------------------------------------------------------

def test_duplicates_copies_are_severe_and_fresh_samples_are_not(digit_features):
    feats, _, train, test = digit_features
    real = torch.from_numpy(feats[train])
    fresh = duplicates.analyse(real, torch.from_numpy(feats[test]))
    assert fresh["reasons"][0]["level"] == "info" and fresh["rate_ratio"] < 3
    few = torch.from_numpy(feats[test][:20]).repeat(50, 1) + 1e-4 * torch.randn(1000, feats.shape[1])
    rep = duplicates.analyse(real, few)
    assert rep["reasons"][0]["level"] == "severe"
    assert rep["support_estimate"] == pytest.approx(20, rel=0.5)  # 20 distinct samples: birthday support ≈ 20·2ln2
    assert len(rep["closest_pairs"]) == duplicates.KEEP_PAIRS
    assert all(p["i"] < p["j"] for p in rep["closest_pairs"])


def test_birthday_estimate():
    s = duplicates.support_estimate(pairs=1, total_pairs=1000)
    assert s["batch_for_half"] == pytest.approx(math.sqrt(2 * math.log(2) * 1000))
    assert s["support"] == pytest.approx(2 * math.log(2) * 1000) and not s["lower_bound"]
    assert duplicates.support_estimate(0, 1000)["lower_bound"]


# -- latent sensitivity --------------------------------------------------------------------------

def test_latent_ignored_is_severe_and_used_is_not():
    real = torch.randn(256, 10)
    const = torch.ones(128, 10)
    s = latent_sensitivity.analyse(const, const, const, real)
    assert s["spread_ratio"] == 0 and s["dead_fraction"] == 1.0 and s["reasons"][0]["level"] == "severe"
    z1, z2 = torch.randn(128, 10), torch.randn(128, 10)
    ok = latent_sensitivity.analyse(z1, z2, z1 + 0.25 * torch.randn(128, 10), real)
    assert ok["reasons"] == [] and 0.1 < ok["response"] < 0.3


def test_a_sharp_generator_on_tight_modes_is_not_dead():
    """ring8-like: 8 modes 0.01 wide on a unit circle. A generator that maps each latent region into its
    mode moves a nudged latent by ~0.003, a thousandth of the global spread: alive, not dead."""
    angles = 2 * np.pi * np.arange(8) / 8
    means = torch.from_numpy(np.stack([np.cos(angles), np.sin(angles)], 1))
    g = torch.Generator().manual_seed(0)
    real = means[torch.randint(0, 8, (256,), generator=g)] + 0.01 * torch.randn(256, 2, generator=g, dtype=torch.float64)

    def sharp(z):  # region of z[:, 0] picks the mode; the rest of z moves the point inside it
        k = torch.clamp(((torch.erf(z[:, 0] / 2 ** 0.5) + 1) * 4).long(), 0, 7)
        return means[k] + 0.01 * z[:, 1:3].double()

    z1, z2 = torch.randn(128, 8, generator=g), torch.randn(128, 8, generator=g)
    s = latent_sensitivity.analyse(sharp(z1), sharp(z2), sharp(z1 + 0.25 * torch.randn(128, 8, generator=g)), real)
    assert s["dead_fraction"] < 0.1 and s["reasons"] == []
    assert s["dead_tolerance"] < 0.001 < s["real_spread"]
    frozen = latent_sensitivity.analyse(sharp(z1), sharp(z2), sharp(z1), real)  # a nudge changes nothing
    assert frozen["dead_fraction"] == 1.0 and frozen["reasons"][0]["level"] == "partial"


# -- training log --------------------------------------------------------------------------------

def _records(d_losses, g_norm=1.0):
    return [{"step": 50 * (i + 1), "d_loss": d, "g_loss": 0.8, "grad_norm_total": {"G": g_norm, "D": 1.0},
             "sigma_max": {"G": {"w": 2.0}, "D": {"w": 2.0}}} for i, d in enumerate(d_losses)]


def test_log_healthy_collapsed_diverged():
    assert training_log.analyse_log(_records([1.3] * 40), "ns")["reasons"] == []
    dead = training_log.analyse_log(_records([1.3] * 30 + [0.01] * 10), "ns")
    assert [r["level"] for r in dead["reasons"]] == ["unhealthy"] and "collapsed" in dead["reasons"][0]["message"]
    div = training_log.analyse_log(_records([1.3] * 5) + [{"step": 260, "event": "diverged", "d_loss": None}], "ns")
    assert div["diverged"] and div["reasons"][0]["level"] == "unhealthy"
    frozen = training_log.analyse_log(_records([1.3] * 40, g_norm=0.0), "ns")
    assert any("exactly 0" in r["message"] for r in frozen["reasons"])
