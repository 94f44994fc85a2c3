"""FID, KID and IS equal torch-fidelity's on the same images and the same
Inception weights (a random network saved to a file; nothing is downloaded).

Tolerance: 1e-4 relative. Both tools run the same network on the same uint8
pixels; differences come only from summation order and from torch-fidelity
summing KID kernels in float32 where gandiag uses float64.
"""

from __future__ import annotations

import pytest
from conftest import colour_digits, write_pngs

import gandiag

N = 30  # Inception runs a few images per second on 2 CPU cores
pytestmark = pytest.mark.slow  # Inception on CPU: the module fixture takes ~18 s, the self-comparison ~7 s


@pytest.fixture(scope="module")
def image_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("imgs")
    fake = write_pngs(root / "fake", colour_digits(N, seed=1, shift=0.05))
    real = write_pngs(root / "real", colour_digits(N, seed=2))
    return fake, real


@pytest.fixture(scope="module")
def both(image_folders, inception_weights):
    import torch_fidelity

    fake, real = image_folders
    kid_size = 20
    ref = torch_fidelity.calculate_metrics(
        input1=fake, input2=real, isc=True, fid=True, kid=True, cuda=False, verbose=False,
        feature_extractor_weights_path=inception_weights, kid_subset_size=kid_size, kid_subsets=50,
        isc_splits=3, save_cpu_ram=True, cache=False, batch_size=16,
    )
    ours = gandiag.evaluate(
        fake, real, metrics=["is", "fid", "kid"], feature_extractor="inception-v3", feature_weights=inception_weights,
        device="cpu", kid_subsets=50, kid_subset_size=kid_size, is_splits=3, use_cache=False, batch_size=16,
        diagnostics=False,
    )
    return ref, ours


def test_fid_equals_torch_fidelity(both):
    ref, ours = both
    assert ours.value("fid") > 0.1
    assert ours.value("fid") == pytest.approx(ref["frechet_inception_distance"], rel=1e-4)


def test_kid_equals_torch_fidelity(both):
    ref, ours = both
    assert ours.value("kid") == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-4)
    assert ours.metrics["kid"]["std"] == pytest.approx(ref["kernel_inception_distance_std"], rel=1e-3)


def test_is_equals_torch_fidelity(both):
    ref, ours = both
    assert ours.value("is") == pytest.approx(ref["inception_score_mean"], rel=1e-4)
    assert ours.metrics["is"]["std"] == pytest.approx(ref["inception_score_std"], rel=1e-3, abs=1e-6)


def test_metrics_are_labelled_with_inception_and_weights_hash(both, inception_weights):
    from gandiag.features.extractor import sha256_file

    _, ours = both
    assert ours.metrics["fid"]["label"] == "FID"
    assert ours.provenance["extractor"]["weights_sha256"] == sha256_file(inception_weights)


def test_set_against_itself_gives_zero_fid(image_folders, inception_weights):
    fake, _ = image_folders
    r = gandiag.evaluate(fake, fake, metrics=["fid", "precision", "recall"], feature_extractor="inception-v3",
                         feature_weights=inception_weights, device="cpu", diagnostics=False)
    assert r.value("fid") == pytest.approx(0.0, abs=1e-6)
    assert r.value("precision") == 1.0 and r.value("recall") == 1.0


@pytest.fixture(scope="module")
def compiled_run(image_folders, inception_weights):
    """The same evaluation with Inception through torch.compile (inductor, frozen weights): batches of 16 for
    30 images, so the last batch of 14 goes through the padding path."""
    fake, real = image_folders
    return gandiag.evaluate(
        fake, real, metrics=["is", "fid", "kid"], feature_extractor="inception-v3", feature_weights=inception_weights,
        device="cpu", kid_subsets=50, kid_subset_size=20, is_splits=3, use_cache=False, batch_size=16,
        diagnostics=False, compile=True,
    )


def test_compiled_features_give_torch_fidelitys_numbers(both, compiled_run):
    ref, eager = both
    r = compiled_run
    compute = r.provenance["compute"]
    entry = compute["compiled_extractors"]["inception-v3"]
    assert compute["compile"] is True and entry["why"] == "--compile", (compute, r.warnings)
    assert entry["first_batch_s"] > 0  # what compiling cost, on record
    assert r.value("fid") == pytest.approx(ref["frechet_inception_distance"], rel=1e-4)
    assert r.value("kid") == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-4)
    assert r.value("is") == pytest.approx(ref["inception_score_mean"], rel=1e-4)
    assert r.value("fid") == pytest.approx(eager.value("fid"), rel=1e-5)  # compiled vs eager, same weights
    assert eager.provenance["compute"]["compile"] is False  # 60 images: below the CPU rule, eager by default
