"""Metrics against their published definitions and reference code, on shared features.

- FID's trace term against scipy's sqrtm and torch-fidelity's eigvals (full
  rank, N > d) and the low-rank SVD path against the d×d path: 1e-8 relative.
- Precision/recall against a brute-force transcription of Kynkäänniemi et
  al.'s definition (k=3, ``<=``): exact.
- Density/coverage against clovaai's ``prdc`` package: 1e-12 absolute.
- KID's unbiased MMD² against torch-fidelity's ``mmd2`` on the same subsets, and
  the whole KID (same seed, same subsets) against its ``kid_features_to_metric``
  with the kernel over the whole sets and subset by subset: 1e-12 relative
  between our two ways on float64 rows, 1e-6 between float32 products and
  float64 ones, 1e-6 to torch-fidelity's float32 sums.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from gandiag.features.stats import FeatureStats
from gandiag.metrics.fid import frechet_distance, trace_sqrt_product, trace_sqrt_product_lowrank
from gandiag.metrics.inception_score import inception_score
from gandiag.metrics import kid as kid_module
from gandiag.metrics.kid import _whole_sets_pay, kid, mmd2_unbiased
from gandiag.metrics.prdc import density_coverage, precision_recall


def _gauss(n, d, seed, shift=0.0, scale=1.0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, d)) * scale + shift).astype(np.float32)


def _fid_scipy(x1, x2):
    mu1, mu2 = x1.mean(0), x2.mean(0)
    s1, s2 = np.cov(x1, rowvar=False), np.cov(x2, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_fid_full_rank_matches_scipy_and_torch_fidelity():
    from torch_fidelity.metric_fid import fid_statistics_to_metric

    x1, x2 = _gauss(600, 40, 0).astype(np.float64), _gauss(500, 40, 1, shift=0.3, scale=1.2).astype(np.float64)
    ours = frechet_distance(FeatureStats.of(x1), FeatureStats.of(x2))["value"]
    assert ours == pytest.approx(_fid_scipy(x1, x2), rel=1e-8)
    ref = fid_statistics_to_metric({"mu": x1.mean(0), "sigma": np.cov(x1, rowvar=False)},
                                   {"mu": x2.mean(0), "sigma": np.cov(x2, rowvar=False)}, False)
    assert ours == pytest.approx(ref["frechet_inception_distance"], rel=1e-8)


def test_lowrank_trace_equals_dense_trace():
    x1, x2 = _gauss(50, 200, 3), _gauss(70, 200, 4, shift=0.1)
    s1, s2 = FeatureStats.of(x1).cov, FeatureStats.of(x2).cov
    assert trace_sqrt_product_lowrank(x1, x2) == pytest.approx(trace_sqrt_product(s1, s2), rel=1e-8)


def test_fid_of_singular_covariance_is_finite_and_never_complex():
    x = _gauss(10, 64, 5)  # rank 9 covariance; eigvals-based FID goes complex here
    r = frechet_distance(FeatureStats.of(x), FeatureStats.of(x))
    assert r["value"] == pytest.approx(0.0, abs=1e-6)
    collapsed = np.repeat(x[:1], 10, 0)  # a fully collapsed generator: zero covariance
    r = frechet_distance(FeatureStats.of(x), FeatureStats.of(collapsed))
    assert np.isfinite(r["value"]) and r["value"] > 0


def test_stats_merge_equals_one_pass():
    x = _gauss(300, 16, 6)
    a, b = FeatureStats.of(x[:120]), FeatureStats.of(x[120:])
    whole = FeatureStats.of(x)
    merged = a.merge(b)
    assert merged.n == 300
    np.testing.assert_allclose(merged.cov, whole.cov, rtol=1e-12)
    np.testing.assert_allclose(whole.cov, np.cov(x.astype(np.float64), rowvar=False), rtol=1e-9, atol=1e-12)


def _brute_pr(real, fake, k):
    def radii(x):
        d = np.linalg.norm(x[:, None] - x[None], axis=2)
        return np.sort(d, axis=1)[:, k]  # index 0 is the point itself

    rr, rf = radii(real), radii(fake)
    d_fr = np.linalg.norm(fake[:, None] - real[None], axis=2)
    precision = np.mean((d_fr <= rr[None, :]).any(1))
    recall = np.mean((d_fr.T <= rf[None, :]).any(1))
    return precision, recall


def test_precision_recall_match_definition():
    real, fake = _gauss(300, 8, 7).astype(np.float64), _gauss(250, 8, 8, shift=0.5).astype(np.float64)
    ours = precision_recall(real, fake, k=3)
    p, r = _brute_pr(real, fake, 3)
    assert ours["precision"] == p and ours["recall"] == r
    assert 0 < p < 1 and 0 < r < 1


def test_precision_recall_not_swapped():
    """torch-fidelity #58 swapped them: a generator covering half the data has high precision, low recall."""
    real = _gauss(400, 2, 9)
    fake = real[real[:, 0] > 0] + 0.01
    ours = precision_recall(real, fake, k=3)
    assert ours["precision"] > 0.9 and ours["recall"] < 0.7


def test_density_coverage_match_clovaai_prdc():
    import prdc

    real, fake = _gauss(400, 16, 10), _gauss(350, 16, 11, shift=0.2)
    ref = prdc.compute_prdc(real_features=real, fake_features=fake, nearest_k=5)
    ours = density_coverage(real, fake, k=5)
    assert ours["density"] == pytest.approx(ref["density"], abs=1e-12)
    assert ours["coverage"] == pytest.approx(ref["coverage"], abs=1e-12)
    pr = precision_recall(real, fake, k=5)
    assert pr["precision"] == pytest.approx(ref["precision"], abs=1e-12)
    assert pr["recall"] == pytest.approx(ref["recall"], abs=1e-12)


def test_kid_unbiased_mmd_matches_torch_fidelity():
    from torch_fidelity.metric_kid import kernel_mmd

    x, y = _gauss(200, 32, 12).astype(np.float64), _gauss(200, 32, 13, shift=0.2).astype(np.float64)
    ref = kernel_mmd(x, y, kid_kernel="poly", kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None, kid_kernel_poly_coef0=1)
    assert mmd2_unbiased(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("n1, n2, d, subset_size", [(300, 260, 24, 100), (150, 150, 8, 150), (90, 400, 40, 60)])
def test_kid_whole_sets_equals_subset_by_subset_and_torch_fidelity(monkeypatch, n1, n2, d, subset_size):
    """The kernel over the whole sets once, summed per subset as diag(MᵀKM), gives each subset's MMD² of the
    subset-by-subset computation (the same draws of the same seed) and torch-fidelity's KID; several row blocks."""
    from torch_fidelity.metric_kid import kid_features_to_metric

    fake, real = _gauss(n1, d, 20), _gauss(n2, d, 21, shift=0.15, scale=1.1)
    monkeypatch.setattr(kid_module, "BLOCK_ELEMENTS", 7 * max(n1, n2))  # 7 rows a block: many blocks, a ragged last
    whole = kid(fake, real, 30, subset_size, seed=5, whole_sets=True)
    each = kid(fake, real, 30, subset_size, seed=5, whole_sets=False)
    # float32 features: float32 products (summed in another order by each way), float64 kernels and sums
    assert whole["value"] == pytest.approx(each["value"], rel=1e-7)
    assert whole["std"] == pytest.approx(each["std"], rel=1e-5, abs=1e-12)
    exact = kid(fake.astype(np.float64), real.astype(np.float64), 30, subset_size, seed=5, whole_sets=False)
    exact_whole = kid(fake.astype(np.float64), real.astype(np.float64), 30, subset_size, seed=5, whole_sets=True)
    assert exact_whole["value"] == pytest.approx(exact["value"], rel=1e-12)  # float64 rows: the same sums
    assert whole["value"] == pytest.approx(exact["value"], rel=1e-6)  # float32 products: 2e-8 on Inception-like
    ref = kid_features_to_metric(torch.from_numpy(fake), torch.from_numpy(real), kid_subsets=30,
                                 kid_subset_size=subset_size, rng_seed=5, verbose=False, kid_kernel="poly",
                                 kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None, kid_kernel_poly_coef0=1)
    assert whole["value"] == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-6)
    assert whole["std"] == pytest.approx(ref["kernel_inception_distance_std"], rel=1e-4, abs=1e-6)  # its float32 noise


def test_kid_computes_over_the_whole_sets_only_where_that_costs_less():
    assert _whole_sets_pay(2000, 2000, 2048, 100, 1000)  # a CI run on Inception: ~36x fewer multiply-adds
    assert _whole_sets_pay(10000, 10000, 2048, 100, 1000) and not _whole_sets_pay(12000, 12000, 2048, 100, 1000)
    assert _whole_sets_pay(2000, 2000, 64, 100, 1000)  # the digits features
    assert not _whole_sets_pay(50000, 50000, 2048, 100, 1000)  # the standard 50k: the subsets touch few pairs
    assert not _whole_sets_pay(20000, 20000, 2048, 10, 1000)


def test_kid_same_distribution_is_near_zero_and_different_is_positive():
    same = kid(_gauss(500, 16, 14), _gauss(500, 16, 15), 20, 200, seed=1)
    diff = kid(_gauss(500, 16, 14), _gauss(500, 16, 16, shift=0.5), 20, 200, seed=1)
    assert abs(same["value"]) < 3 * same["std"] + 1e-3
    assert diff["value"] > 5 * diff["std"]


def test_inception_score_definition():
    """Uniform confident predictions over C classes give IS = C; identical predictions give 1."""
    c = 10
    logits = torch.full((1000, c), -50.0)
    logits[torch.arange(1000), torch.arange(1000) % c] = 50.0
    assert inception_score(logits, splits=10, shuffle=False)["value"] == pytest.approx(c, rel=1e-6)
    same = torch.zeros(1000, c)
    same[:, 3] = 50.0
    assert inception_score(same, splits=10)["value"] == pytest.approx(1.0, rel=1e-6)
