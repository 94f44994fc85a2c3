"""The shipped digits classifier: accurate on held-out digits, also when a generator upscales them."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gandiag.errors import FeatureExtractorError
from gandiag.features import digits as dc
from gandiag.features.extractor import ExtractorSpec


@pytest.fixture(scope="module")
def extractor():
    return dc.build()


@pytest.fixture(scope="module")
def heldout():
    images, labels = dc.digits_uint8()
    _, test = dc.heldout_split()
    return images[test], labels[test]


def test_split_is_fixed_stratified_and_disjoint():
    train, test = dc.heldout_split()
    _, labels = dc.digits_uint8()
    assert len(set(train) & set(test)) == 0 and len(train) + len(test) == len(labels)
    assert len(test) == 450
    assert np.array_equal(test, dc.heldout_split()[1])
    assert np.bincount(labels[test], minlength=10).min() >= 43  # every class held out, ~25% of each


def test_heldout_accuracy(extractor, heldout):
    images, labels = heldout
    assert (extractor.classify(images) == labels).mean() >= 0.97


def test_heldout_accuracy_upscaled_rgb(extractor, heldout):
    """What a generator trained on 32x32 RGB digits emits must read as the same digit."""
    images, labels = heldout
    up = F.interpolate(images.float(), size=(32, 32), mode="bilinear", align_corners=False)
    up = up.round().clamp(0, 255).to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    assert (dc.classify(up, extractor) == labels).mean() >= 0.95


def test_non_multiple_size_goes_through_antialiased_resize(extractor, heldout):
    images, labels = heldout
    up = F.interpolate(images.float(), size=(28, 28), mode="bilinear", align_corners=False)
    up = up.round().clamp(0, 255).to(torch.uint8)
    assert (extractor.classify(up) == labels).mean() >= 0.95


def test_preprocess_identity_on_8x8_and_area_on_multiples():
    x = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    assert torch.allclose(dc.preprocess(x), x.float() / 255)
    nearest_up = x.repeat_interleave(4, dim=2).repeat_interleave(4, dim=3).expand(-1, 3, -1, -1)
    assert torch.allclose(dc.preprocess(nearest_up), x.float() / 255, atol=1e-6)
    with pytest.raises(FeatureExtractorError, match=r"\(N, 1 or 3, H, W\)"):
        dc.preprocess(torch.zeros(2, 4, 8, 8, dtype=torch.uint8))


def test_output_shapes_dtypes_and_determinism(extractor, heldout):
    images, _ = heldout
    batch = images[:17]
    out = extractor(batch)
    assert set(out) == set(extractor.roles) == {"pool", "logits"}
    assert out["pool"].shape == (17, 64) and out["logits"].shape == (17, 10)
    assert out["pool"].dtype == out["logits"].dtype == torch.float32
    again = extractor(batch)
    assert all(torch.equal(out[r], again[r]) for r in out)
    # Batch composition must not change a sample's features (no batch statistics in eval).
    alone = extractor(batch[:1])
    assert torch.allclose(alone["pool"], out["pool"][:1], atol=1e-5)
    assert extractor.name == "digits" and extractor.kinds == ("images",)
    assert extractor.preprocessing and str(extractor.device) == "cpu"


def test_weights_sha256_matches_shipped_file(extractor):
    data = dc.DEFAULT_WEIGHTS.read_bytes()
    assert extractor.weights_sha256 == hashlib.sha256(data).hexdigest()
    assert len(data) < 500_000


def test_spec():
    assert isinstance(dc.SPEC, ExtractorSpec)
    assert dc.SPEC.name == "digits" and dc.SPEC.build is dc.build


def test_missing_weights_raise(tmp_path, monkeypatch):
    """A path the user gave that is not there is a typo (no such file); the package's own file missing says how
    to make it."""
    with pytest.raises(FeatureExtractorError, match="--feature-weights .*nope.pt: no such file"):
        dc.build(tmp_path / "nope.pt")
    monkeypatch.setattr(dc, "DEFAULT_WEIGHTS", tmp_path / "packaged.pt")
    with pytest.raises(FeatureExtractorError, match="not found at .*packaged.pt; run scripts/train_digits_classifier"):
        dc.build(None)


def test_corrupt_weights_raise(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(FeatureExtractorError, match="unreadable or not for this network"):
        dc.build(bad)
