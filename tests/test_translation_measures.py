"""The translation measures against their definitions and scikit-image, on samples whose answer is known."""

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from gandiag.data.domains import parse
from gandiag.errors import DataError
from gandiag.translation.measures import PSNR_CAP, Measures, label_preservation


def _images(n=12, seed=0, shape=(1, 8, 8)):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, *shape), generator=g, dtype=torch.uint8)


def test_l1_measures_are_mean_absolute_grey_level_differences_in_unit_range():
    x = _images()
    y = 255 - x
    rec = x.clone()
    rec[:, :, 0, 0] = 0  # one pixel wrong per image
    m = Measures("images")
    m.update(x[:5], y[:5], rec[:5], y[:5])  # two batches: the running sums must add up
    m.update(x[5:], y[5:], rec[5:], y[5:])
    r = m.result()
    want_change = (y.double() - x.double()).abs().flatten(1).mean(1) / 255
    assert r["change_l1"]["value"] == pytest.approx(want_change.mean().item(), abs=1e-12)
    assert r["change_l1"]["std"] == pytest.approx(want_change.std(unbiased=False).item(), abs=1e-9)
    want_cycle = x[:, 0, 0, 0].double() / 255 / 64
    assert r["cycle_l1"]["value"] == pytest.approx(want_cycle.mean().item(), abs=1e-12)
    assert r["paired_l1"]["value"] == 0.0
    assert r["psnr"]["value"] == PSNR_CAP and r["ssim"]["value"] == pytest.approx(1.0)
    assert r["cycle_l1"]["n"] == 12 and r["cycle_l1"]["higher_is_better"] is False
    assert "identity_l1" not in r  # not measured: no entry rather than a made-up number


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 16, 16)])
def test_psnr_and_ssim_equal_scikit_image_per_image_then_averaged(shape):
    truth = _images(6, 1, shape)
    noise = torch.randint(-20, 21, truth.shape, generator=torch.Generator().manual_seed(2))
    out = (truth.int() + noise).clamp(0, 255).to(torch.uint8)
    m = Measures("images")
    m.update(truth, out, None, truth)
    r = m.result()
    a = truth.double().permute(0, 2, 3, 1).numpy()
    b = out.double().permute(0, 2, 3, 1).numpy()
    want_psnr = np.mean([peak_signal_noise_ratio(u, v, data_range=255) for u, v in zip(a, b)])
    if shape[0] == 1:
        want_ssim = np.mean([structural_similarity(u[..., 0], v[..., 0], data_range=255) for u, v in zip(a, b)])
    else:
        want_ssim = np.mean([structural_similarity(u, v, data_range=255, channel_axis=-1) for u, v in zip(a, b)])
    assert r["psnr"]["value"] == pytest.approx(want_psnr, rel=1e-12)  # same library, same numbers
    assert r["ssim"]["value"] == pytest.approx(want_ssim, rel=1e-12)
    assert 0 < r["ssim"]["value"] < 1


def test_points_are_compared_by_euclidean_distance_and_get_no_image_measures():
    x = torch.zeros(4, 2)
    y = torch.tensor([[3.0, 4.0]] * 4)
    m = Measures("points")
    m.update(x, y, x + torch.tensor([0.0, 1.0]), y)
    m.update_identity(y, y + torch.tensor([6.0, 8.0]))
    r = m.result()
    assert r["change_l1"]["value"] == pytest.approx(5.0)
    assert r["cycle_l1"]["value"] == pytest.approx(1.0)
    assert r["identity_l1"]["value"] == pytest.approx(10.0)
    assert r["paired_l1"]["value"] == 0.0
    assert "psnr" not in r and "ssim" not in r
    assert r["cycle_l1"]["features"] == "points"


def test_mismatched_shapes_and_unknown_kinds_are_refused():
    with pytest.raises(DataError):
        Measures("sequences")
    m = Measures("images")
    with pytest.raises(DataError, match="cannot compare"):
        m.update(_images(), _images(), _images(shape=(1, 4, 4)))


def test_label_preservation_on_a_bundled_pair_with_its_truth_and_with_a_label_flip():
    pair, _ = parse("digits-inverted")
    a, b = pair.side("a"), pair.side("b")  # all 1,797 digits on each side
    feats = lambda x: x.double().flatten(1).numpy()  # raw pixels stand in for the pool features
    real_f, real_labels = feats(b.data), b.labels
    true = label_preservation(feats(pair.truth("a2b")(a.data)), real_f, real_labels, a.labels)
    assert true["ceiling"] > 0.9 and true["value"] > 0.9
    # the truth scores at least what the classifier does on held-out real data (here above: both sides hold
    # the same digits, so the truth's outputs are samples the classifier was fitted on)
    assert true["value"] >= true["ceiling"] - 0.03
    assert set(true["per_class"]) == {str(c) for c in range(10)}
    order = np.argsort(a.labels, kind="stable")
    shifted = a.data[np.roll(order, 200)]  # each output: the translation of a digit of another class (<200 per class)
    flipped = label_preservation(feats(255 - shifted)[np.argsort(order)], real_f, real_labels, a.labels)
    assert flipped["value"] < 0.1


def test_label_preservation_needs_two_classes():
    f = np.random.default_rng(0).normal(size=(10, 3))
    r = label_preservation(f, f, np.zeros(10), np.zeros(10))
    assert r["value"] is None and "two classes" in r["not_applicable"]
