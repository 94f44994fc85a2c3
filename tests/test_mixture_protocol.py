"""The PacGAN/VEEGAN 2D-mixture protocol on hand-made points."""

import math

import numpy as np
import pytest

from gandiag.data.mixtures import MIXTURES, mixture_mode_stats

RING = MIXTURES["ring8"]


def test_points_on_means_are_all_high_quality_and_balanced():
    pts = np.repeat(RING.means, 10, axis=0)
    s = mixture_mode_stats(pts, RING)
    assert s["modes_captured"] == 8 and s["modes_total"] == 8
    assert s["high_quality_fraction"] == 1.0
    assert s["reverse_kl"] == pytest.approx(0.0, abs=1e-12)
    assert s["counts"] == [10] * 8 and s["missing_modes"] == []


def test_three_sigma_boundary_and_nearest_mode():
    std = RING.std
    m0 = RING.means[0]
    pts = np.array([
        m0 + [2.9 * std, 0],  # inside 3σ: HQ for mode 0
        m0 + [0, 3.1 * std],  # outside: low quality, still nearest to mode 0
        RING.means[3] + [0, -2.0 * std],  # HQ for mode 3
        [0.0, 0.0],  # the centre: far from every mode
    ])
    s = mixture_mode_stats(pts, RING)
    assert s["high_quality_fraction"] == pytest.approx(2 / 4)
    assert s["modes_captured"] == 2
    assert s["counts"] == [1, 0, 0, 1, 0, 0, 0, 0]
    assert s["missing_modes"] == [1, 2, 4, 5, 6, 7]
    # HQ histogram (1/2, 1/2) on 8 modes: KL to uniform = log(8 * 1/2)
    assert s["reverse_kl"] == pytest.approx(math.log(4))


def test_collapse_to_one_mode_gives_log_k_and_no_hq_gives_none():
    grid = MIXTURES["grid25"]
    s = mixture_mode_stats(np.repeat(grid.means[7:8], 100, axis=0), grid)
    assert s["modes_captured"] == 1 and s["reverse_kl"] == pytest.approx(math.log(25))
    s = mixture_mode_stats(np.full((5, 2), 100.0), grid)
    assert s["modes_captured"] == 0 and s["high_quality_fraction"] == 0 and s["reverse_kl"] is None


def test_unbalanced_histogram_and_nan_points():
    pts = np.concatenate([np.repeat(RING.means[:1], 3, 0), np.repeat(RING.means[1:2], 1, 0), [[np.nan, 0.0]]])
    s = mixture_mode_stats(pts, RING)
    p = np.array([0.75, 0.25])
    assert s["reverse_kl"] == pytest.approx(float(np.sum(p * np.log(8 * p))))
    assert s["non_finite"] == 1 and s["high_quality_fraction"] == pytest.approx(4 / 5)


def test_real_mixture_samples_capture_every_mode():
    for m in MIXTURES.values():
        pts, _ = m.sample(2500, 0)
        s = mixture_mode_stats(pts, m)
        assert s["modes_captured"] == m.num_modes
        assert s["high_quality_fraction"] > 0.98  # 3σ in 2D keeps ~98.9%
