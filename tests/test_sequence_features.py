"""Feature extractors for the ``sequences`` kind: ``sequence-stats`` (model-free) and the shipped TCNs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gandiag.data.sequences import sines_data
from gandiag.errors import FeatureExtractorError
from gandiag.features.sequence_stats import (ACF_LAGS, SequenceStatsExtractor, feature_dim, sequence_statistics,
                                             series_to_sequences)


def _acf(x, k):
    c = x - x.mean()
    return float((c[:-k] * c[k:]).sum() / (c * c).sum())


def test_sequence_stats_against_their_definitions():
    x = sines_data(3, seed=1, steps=24, channels=5)
    f = sequence_statistics(torch.from_numpy(x)).numpy().astype(np.float64)
    assert f.shape == (3, feature_dim(5)) == (3, 80)
    blocks = f[:, : 14 * 5].reshape(3, 14, 5)
    s, c = 1, 3
    seq = x[s, :, c]
    np.testing.assert_allclose(blocks[s, :4, c], [seq.mean(), seq.std(), seq.min(), seq.max()], rtol=1e-5)
    np.testing.assert_allclose(blocks[s, 4:4 + ACF_LAGS, c], [_acf(seq, k) for k in range(1, ACF_LAGS + 1)],
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(blocks[s, 9, c], np.diff(seq).std(), rtol=1e-5)
    power = np.abs(np.fft.rfft(seq - seq.mean()))[1:] ** 2
    assert blocks[s, 10:14, c].sum() == pytest.approx(1.0, abs=1e-5)
    assert blocks[s, 10, c] == pytest.approx(power[:3].sum() / power.sum(), rel=1e-4)  # 12 bins, 3 per band
    np.testing.assert_allclose(f[s, 70], np.corrcoef(x[s, :, 0], x[s, :, 1])[0, 1], rtol=1e-4)


def test_sequence_stats_take_any_shape_and_constant_channels_give_zeros():
    e = SequenceStatsExtractor()
    for shape in [(4, 1, 1), (4, 3, 2), (4, 100, 6), (2, 7, 20)]:
        out = e(torch.randn(*shape))
        assert out["pool"].shape == (shape[0], feature_dim(shape[2])) and torch.isfinite(out["pool"]).all()
        np.testing.assert_array_equal(series_to_sequences(out["series"]).shape, shape)
    flat = e(torch.full((3, 24, 5), 0.25))["pool"]
    assert torch.isfinite(flat).all() and flat[:, 5 * 4:].abs().max() == 0  # acf, diff std, bands, corr all 0
    x = torch.randn(8, 24, 5)
    assert torch.equal(e(x)["pool"], e(x)["pool"])  # deterministic
    np.testing.assert_array_equal(series_to_sequences(e(x)["series"]), x.numpy())
    with pytest.raises(FeatureExtractorError, match="no weights"):
        SequenceStatsExtractor("w.pt")
    with pytest.raises(FeatureExtractorError, match="steps, channels"):
        e(torch.randn(4, 8))


def test_fd_label_on_sequence_features(tmp_path):
    import gandiag

    np.savez(tmp_path / "fake.npz", sequences=sines_data(300, seed=5).astype(np.float32))
    r = gandiag.evaluate(str(tmp_path / "fake.npz"), real="sines", num_samples=300, progress=False,
                         feature_extractor=["sequence-stats"], metrics=["fid", "kid"], diagnostics=[])
    assert r.metrics["fid"]["label"] == "FD [sequence-stats]"
    assert r.metrics["fid"]["value"] < 0.05
