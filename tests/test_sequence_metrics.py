"""Sequence metrics against their definitions and TimeGAN's published numbers on ``sines``.

Tolerances (one run each, 1,000 sequences, seeds fixed; docs/sequences.md has the 10-run table):
- predictive score of real data on itself (TimeGAN Table 2, "Original": 0.094 ± 0.001): within ±0.005;
- discriminative score, real vs real (another draw of sines): ≤ 0.05 (TimeGAN's own model: 0.011 ± 0.008;
  the held-out 400 sequences alone give a std of 0.025);
- uniform noise (trivially separable) ≥ 0.45; a collapsed generator (one real sequence repeated) ≥ 0.25
  (10 runs: 0.40 ± 0.08; TimeGAN's 2-unit GRU does not always carve out one point);
- marginal W1 against scipy's ``wasserstein_distance``: 1e-9 relative; ACF against a direct transcription: 1e-9.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from gandiag.data.sequences import sines_data
from gandiag.metrics import sequences as S

N = 1000


@pytest.fixture(scope="module")
def sines():
    return sines_data(N, seed=1).astype(np.float32), sines_data(N, seed=2).astype(np.float32)


def test_marginal_w1_and_acf_distance_against_their_definitions():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 12, 3)), rng.normal(0.3, 1.5, size=(70, 12, 3))
    want = np.mean([scipy.stats.wasserstein_distance(a[:, :, c].ravel(), b[:, :, c].ravel()) for c in range(3)])
    assert S.marginal_w1(a, b)["value"] == pytest.approx(want, rel=1e-9)

    def acf(x, k):  # per sequence and channel, averaged over sequences
        c = x - x.mean(1, keepdims=True)
        return ((c[:, :-k] * c[:, k:]).sum(1) / (c * c).sum(1)).mean(0)

    want = np.mean([np.abs(acf(a, k) - acf(b, k)) for k in range(1, 11)])
    assert S.acf_distance(a, b)["value"] == pytest.approx(want, rel=1e-9)
    assert S.acf_distance(a, a)["value"] == 0 and S.marginal_w1(a, a)["value"] == 0
    flat = np.full((5, 4, 2), 0.5)
    assert np.isfinite(S.acf_distance(a[:, :4, :2], flat)["value"]) and S.acf_distance(a, b)["max_lag"] == 10
    assert S.acf_distance(a[:, :4], b[:, :4])["max_lag"] == 3


def test_predictive_score_of_real_sines_matches_timegan_original_row(sines):
    real, other = sines
    assert S.predictive_score(real, other, runs=1, seed=0)["value"] == pytest.approx(0.094, abs=0.005)
    noise = np.random.default_rng(0).uniform(0, 1, real.shape).astype(np.float32)
    assert S.predictive_score(real, noise, runs=1, seed=0)["value"] > 0.2  # trained on noise, tested on sines


def test_discriminative_score_real_noise_and_collapsed(sines):
    real, other = sines
    assert S.discriminative_score(real, other, runs=1, seed=0)["value"] <= 0.05
    noise = np.random.default_rng(0).uniform(0, 1, real.shape).astype(np.float32)
    assert S.discriminative_score(real, noise, runs=1, seed=0)["value"] >= 0.45
    collapsed = np.repeat(other[:1], N, axis=0)
    assert S.discriminative_score(real, collapsed, runs=1, seed=0)["value"] >= 0.25  # 10 runs: 0.40 ± 0.08


def test_scores_are_deterministic_and_runs_give_mean_and_std(sines):
    real, other = sines[0][:200], sines[1][:200]
    a = S.discriminative_score(real, other, runs=2, seed=5, iterations=30)
    assert a == S.discriminative_score(real, other, runs=2, seed=5, iterations=30)
    assert a["num_runs"] == 2 and a["value"] == pytest.approx(np.mean(a["runs"]))
    assert a["std"] == pytest.approx(np.std(a["runs"]))
    p = S.predictive_score(real, other, runs=2, seed=5, iterations=30)
    assert p == S.predictive_score(real, other, runs=2, seed=5, iterations=30)
    assert p["runs"] != S.predictive_score(real, other, runs=2, seed=6, iterations=30)["runs"]
    scaled = S.predictive_score(real * 40 - 7, other * 40 - 7, runs=1, seed=5, iterations=30)
    assert scaled["scaled"] and 0 <= scaled["value"] <= 1
    one = S.predictive_score(real[:, :, :1], other[:, :, :1], runs=1, seed=5, iterations=30)  # univariate
    assert np.isfinite(one["value"])


def test_registered_lower_is_better_gated_and_computed_once(tmp_path):
    from gandiag import evaluate
    from gandiag.gates import parse_gates
    from gandiag.metrics import extractor_metrics
    from gandiag.options import DEFAULT_SCORE_RUNS
    from gandiag.plugins import registry

    assert DEFAULT_SCORE_RUNS == S.DEFAULT_SCORE_RUNS
    reg = registry("metric")
    names = ("disc_score", "pred_score", "acf_distance", "marginal_w1")
    assert all(n in reg and reg[n].higher_is_better is False for n in names)
    extractor = registry("feature extractor")["sequence-stats"].build(None, "cpu")
    assert extractor_metrics([reg[n] for n in names], extractor) == []  # not again under a second extractor
    gates = parse_gates({"gates": {"disc_score": {"max": 0.1}, "pred_score": {"max": 0.2}}})
    assert {g.target for g in gates} == {"disc_score", "pred_score"}

    np.savez(tmp_path / "fake.npz", sequences=sines_data(300, seed=9).astype(np.float32))
    r = evaluate(str(tmp_path / "fake.npz"), real="sines", num_samples=300, progress=False, diagnostics=[],
                 metrics=["fid", "acf_distance", "marginal_w1"], score_runs=1)
    assert r.metrics["acf_distance"]["label"] == "ACF distance" and r.metrics["acf_distance"]["value"] < 0.02
    assert r.metrics["marginal_w1"]["value"] < 0.02 and r.metrics["fid"]["label"] == "FD [sines]"


def test_discriminative_score_is_balanced_when_set_sizes_differ(sines):
    real, other = sines
    few = S.discriminative_score(real[:80], other, runs=1, seed=0, iterations=300)["value"]
    assert few <= 0.2  # plain accuracy of "all generated" would be 0.5 + 0.46
