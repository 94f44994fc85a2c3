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
    squash = lambda v: np.sign(v) * np.log1p(np.abs(v))  # noqa: E731  (the scale blocks are compressed)
    np.testing.assert_allclose(blocks[s, :4, c], squash([seq.mean(), seq.std(), seq.min(), seq.max()]), rtol=1e-5)
    np.testing.assert_allclose(blocks[s, 4:4 + ACF_LAGS, c], [_acf(seq, k) for k in range(1, ACF_LAGS + 1)],
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(blocks[s, 9, c], squash(np.diff(seq).std()), rtol=1e-5)
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
                         feature_extractor=["sequence-stats"], metrics=["fid"], diagnostics=[])
    assert r.metrics["fid"]["label"] == "FD [sequence-stats]"
    assert r.metrics["fid"]["value"] < 0.05


# --- the shipped TCNs (scripts/train_sequence_features.py; held-out numbers in docs/sequences.md)


def test_sines_network_regresses_frequency_and_phase_on_held_out_draws():
    import importlib.util
    from pathlib import Path

    from gandiag.features.sequence_nets import SINES, SequenceNetExtractor

    spec = importlib.util.spec_from_file_location(
        "train_sequence_features", Path(__file__).parents[1] / "scripts" / "train_sequence_features.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    x, targets = script.sines_with_parameters(500, script.SINES_HELDOUT_SEED)
    e = SequenceNetExtractor(SINES)
    err = (e.predict(torch.from_numpy(x)).numpy() - targets).__abs__() * 0.1
    assert err[:, :5].mean() < 0.0015 and err[:, 5:].mean() < 0.0025  # trained: 0.00111, 0.00198 on 2,000
    out = e(torch.from_numpy(x))
    assert set(out) == {"pool", "series"} and out["pool"].shape == (500, SINES.embed)


def test_fd_on_sines_features_separates_noise_from_real():
    from gandiag.features.featureset import FeatureSet
    from gandiag.features.sequence_nets import SINES, SequenceNetExtractor
    from gandiag.metrics.fid import frechet_distance

    e = SequenceNetExtractor(SINES)

    def feats(x):
        fs = FeatureSet()
        fs.add(e(torch.from_numpy(np.asarray(x, dtype=np.float32))))
        return fs

    a, b = feats(sines_data(1000, seed=1)), feats(sines_data(1000, seed=2))
    noise = feats(np.random.default_rng(0).uniform(0, 1, (1000, 24, 5)))
    fd_real = frechet_distance(a.stats("pool"), b.stats("pool"))["value"]
    fd_noise = frechet_distance(a.stats("pool"), noise.stats("pool"))["value"]
    assert fd_real < 0.2 and fd_noise > 20 * max(fd_real, 0.01)


def test_networks_refuse_other_shapes_and_take_other_weights(tmp_path):
    import shutil

    from gandiag.features.extraction import choose_extractor
    from gandiag.features.extractor import sha256_file
    from gandiag.features.sequence_nets import MOTION, SINES, SequenceNetExtractor

    e = SequenceNetExtractor(SINES)
    with pytest.raises(FeatureExtractorError, match="trained on TimeGAN's sines.*100 steps x 6 channels.*"
                                                    "motion or sequence-stats"):
        e(torch.zeros(2, 100, 6))
    with pytest.raises(FeatureExtractorError, match="sequence-stats"):
        SequenceNetExtractor(MOTION)(torch.zeros(2, 30, 1))
    assert e.weights_sha256 == sha256_file(SINES.default_weights)
    copy = tmp_path / "w.pt"
    shutil.copy(SINES.default_weights, copy)
    assert SequenceNetExtractor(SINES, copy).weights_sha256 == e.weights_sha256
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(FeatureExtractorError, match="unreadable"):
        SequenceNetExtractor(SINES, tmp_path / "bad.pt")
    with pytest.raises(FeatureExtractorError, match="not for this network"):
        SequenceNetExtractor(SINES, MOTION.default_weights)
    assert choose_extractor(None, "sequences", "sines").name == "sines"
    assert choose_extractor(None, "sequences", None).name == "sequence-stats"  # first registered for sequences


def test_motion_network_classifies_basicmotions_held_out_split():
    pytest.importorskip("sktime")
    from gandiag.data.motion import sources
    from gandiag.features.sequence_nets import MOTION, classify

    s = next(x for x in sources() if x.name == "basicmotions").load("basicmotions")
    n_train = s.meta["splits"]["train"]
    test_x, test_y = s.data[n_train:], np.asarray(s.labels)[n_train:]
    assert (classify(test_x) == test_y).mean() >= 0.95  # trained on the train split only: 40/40
    assert MOTION.classes == tuple(s.meta["classes"])


def test_kid_on_raw_sensor_units_stays_in_range(tmp_path):
    """Two halves of BasicMotions (accelerometer values to ±30): KID on sequence-stats is near 0, not hundreds."""
    from conftest import require_extra

    import gandiag
    from gandiag.data.sources import load_real

    require_extra("sktime")
    s = load_real("basicmotions")
    x, labels = s.data.numpy(), s.labels
    np.savez(tmp_path / "a.npz", sequences=x[::2], labels=labels[::2])
    np.savez(tmp_path / "b.npz", sequences=x[1::2], labels=labels[1::2])
    r = gandiag.evaluate(str(tmp_path / "a.npz"), str(tmp_path / "b.npz"), feature_extractor="sequence-stats",
                         metrics=["kid"], diagnostics=False, kid_subset_size=20)
    assert abs(r.metrics["kid"]["value"]) < 1.0
