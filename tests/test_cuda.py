"""The CUDA path gives the CPU path's numbers, and torch-fidelity's on the GPU.

CI has no GPU, so this module skips there; it runs wherever CUDA is available
(scripts/gpu_check.sh runs it on a lent GPU machine). Tolerances, and why:

- feature statistics: float64 on both sides, only the summation order differs: 1e-10 relative;
- Inception metrics against torch-fidelity on the same GPU: both run the same
  network with the same cuDNN settings (TF32 convolutions, PyTorch's default): 1e-4 relative;
- GPU against CPU: TF32 convolutions and other kernels change features in the
  4th digit, so FID on the digits network agrees to 1e-2 relative, and the
  k-NN metrics (a count of points inside radii) to 1% of the samples.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import colour_digits, write_pngs

import gandiag
from gandiag.features.stats import FeatureStats

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
MODELS = Path(__file__).parent / "fixtures" / "models"


def test_feature_stats_accumulated_on_the_gpu_equal_the_cpu_ones():
    x = torch.randn(3000, 2048, generator=torch.Generator().manual_seed(0)).relu_()
    cpu, gpu = FeatureStats.empty(2048), FeatureStats.empty(2048)
    for i in range(0, 3000, 512):
        cpu.update(x[i : i + 512])
        gpu.update(x[i : i + 512].cuda())
    assert gpu._on_device is not None and gpu._on_device[1].device.type == "cuda"  # stays there until read
    np.testing.assert_allclose(gpu.sum, cpu.sum, rtol=1e-10)
    np.testing.assert_allclose(gpu.outer, cpu.outer, rtol=1e-10, atol=1e-9)
    assert gpu.n == cpu.n == 3000
    twice = FeatureStats.of(torch.cat([x, x]))
    np.testing.assert_allclose(gpu.merge(cpu).cov, twice.cov, rtol=1e-9, atol=1e-12)


def test_knn_metrics_screened_on_the_gpu_equal_the_cpu_ones():
    """Same float64 rows on both devices: the float32 screen settles the same decisions, so the values are equal,
    even with TF32 matrix products switched on around the call (the screen runs its products in IEEE fp32)."""
    from gandiag.metrics.prdc import ball_metrics

    g = torch.Generator().manual_seed(1)
    w = torch.randn(16, 2048, generator=g) / 4
    x = torch.relu(torch.randn(6000, 16, generator=g) @ w + 0.3).double()
    y = torch.relu((torch.randn(5000, 16, generator=g) * 1.1 + 0.1) @ w + 0.3).double()
    cpu = ball_metrics(x, y)
    saved = torch.backends.cuda.matmul.fp32_precision
    torch.backends.cuda.matmul.fp32_precision = "tf32"
    try:
        gpu = ball_metrics(x.cuda(), y.cuda())
    finally:
        torch.backends.cuda.matmul.fp32_precision = saved
    assert gpu == cpu


def test_inception_metrics_on_the_gpu_equal_torch_fidelity_on_the_gpu(tmp_path, inception_weights):
    import torch_fidelity

    fake = write_pngs(tmp_path / "fake", colour_digits(60, seed=1, shift=0.05))
    real = write_pngs(tmp_path / "real", colour_digits(60, seed=2))
    ref = torch_fidelity.calculate_metrics(
        input1=fake, input2=real, isc=True, fid=True, kid=True, cuda=True, verbose=False,
        feature_extractor_weights_path=inception_weights, kid_subset_size=30, kid_subsets=50, isc_splits=3,
        cache=False, batch_size=32)
    ours = gandiag.evaluate(fake, real, metrics=["is", "fid", "kid"], feature_extractor="inception-v3",
                            feature_weights=inception_weights, device="cuda", kid_subsets=50, kid_subset_size=30,
                            is_splits=3, use_cache=False, batch_size=32, diagnostics=False)
    assert ours.provenance["device"].startswith("cuda")
    assert ours.value("fid") == pytest.approx(ref["frechet_inception_distance"], rel=1e-4)
    assert ours.value("kid") == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-4)
    assert ours.value("is") == pytest.approx(ref["inception_score_mean"], rel=1e-4)


def _evaluate(name: str, device: str, n=None):
    path = MODELS / name / "checkpoint.pt"
    if not path.exists():
        pytest.skip(f"fixture {name} not made (scripts/make_fixtures.py)")
    r = gandiag.evaluate(path, num_samples=n, seed=3, device=device, use_cache=False)
    return json.loads(json.dumps(r.to_json(), default=float))


@pytest.mark.parametrize("name,n", [("ring8_gan_pack4", None), ("digits_dcgan", 2000)])
def test_a_trained_checkpoint_gives_the_cpu_numbers_on_the_gpu(name, n):
    cpu, gpu = _evaluate(name, "cpu", n), _evaluate(name, "cuda", n)
    assert gpu["provenance"]["device"].startswith("cuda")
    assert set(cpu["metrics"]) == set(gpu["metrics"])
    for key, m in cpu["metrics"].items():
        a, b = m["value"], gpu["metrics"][key]["value"]
        if key in ("precision", "recall", "density", "coverage"):
            assert b == pytest.approx(a, abs=0.01), key
        else:
            assert b == pytest.approx(a, rel=1e-2, abs=1e-3), key
    for diag in ("mode_collapse", "gradient_health"):
        assert gpu["diagnostics"][diag]["verdict"] == cpu["diagnostics"][diag]["verdict"], diag


def test_training_on_the_gpu_writes_a_checkpoint_that_evaluates_on_the_cpu(tmp_path):
    from gandiag.training import train

    path = train("dcgan", "digits", tmp_path, steps=40, seed=1, device="cuda", progress=False, log_every=10,
                 eval_every=20, ckpt_every=20, width=8, latent_dim=8, batch_size=16)
    raw = torch.load(path, weights_only=True)  # no map_location: tensors come back where they were saved
    assert all(t.device.type == "cpu" for t in raw["generator"]["state_dict"].values())  # portable
    r = gandiag.evaluate(path, num_samples=500, device="cpu", use_cache=False)
    assert np.isfinite(r.value("fid"))
