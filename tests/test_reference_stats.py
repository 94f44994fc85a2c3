"""Published FID statistics as ``--real`` (issue 12, item 10).

A ``.npz`` of ``mu``/``sigma`` (pytorch-fid's ``--save-stats``, TTUR's
``fid_stats_*.npz``) or torch-fidelity's cached ``...-stat-fid-2048.pt`` stands
in for the real set: FID against it equals FID against the set itself, metrics
that need real features are recorded as not applicable (and a gate on them
fails closed), the file's sha256 is in the results, and a file that is not a
mean and a covariance is refused in one line (exit 2).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import colour_digits, gandiag_in_process, write_pngs

import gandiag
from gandiag.data.reference_stats import write_statistics

N_REAL, N_FAKE = 3000, 2000


@pytest.fixture(scope="module")
def points(tmp_path_factory):
    """A real and a generated set of 2-D points, gandiag's run of one against the other, and its real statistics."""
    root = tmp_path_factory.mktemp("points")
    rng = np.random.default_rng(0)
    np.savez(root / "real.npz", points=rng.normal(size=(N_REAL, 2)).astype(np.float32))
    np.savez(root / "fake.npz", points=(rng.normal(size=(N_FAKE, 2)) * 1.3 + 0.2).astype(np.float32))
    folder = gandiag.evaluate(root / "fake.npz", str(root / "real.npz"), device="cpu", use_cache=False,
                              diagnostics=False)
    ctx = folder.extras["context"]
    write_statistics(root / "gandiag.npz", ctx.real.stats("pool"))
    return root, folder, ctx.real.features("pool").numpy()


def cli(*args):
    return gandiag_in_process("evaluate", *args, "--device", "cpu", "--no-cache", "--no-progress")


def run_json(tmp: Path, fake, real, *extra):
    out = tmp / f"r{len(list(tmp.glob('r*.json')))}.json"
    res = cli(fake, "--real", real, "--json", out, *extra)
    assert res.returncode == 0, res.stderr
    return json.loads(out.read_text()), res


# ----------------------------------------------------------------------------- formats and equal FID


def test_pytorch_fid_format_gives_the_folder_fid(points, tmp_path):
    root, folder, real_x = points
    x = real_x.astype(np.float64)
    # pytorch-fid's --save-stats: np.mean / np.cov of the features, savez_compressed
    np.savez_compressed(tmp_path / "pytorch_fid.npz", mu=x.mean(0), sigma=np.cov(x, rowvar=False))
    for stats in (root / "gandiag.npz", tmp_path / "pytorch_fid.npz"):
        doc, res = run_json(tmp_path, root / "fake.npz", stats)
        assert doc["metrics"]["fid"]["value"] == pytest.approx(folder.value("fid"), rel=1e-6)
        assert doc["real"]["statistics"]["format"] == "pytorch-fid"
        assert "not applicable" in res.stdout


def test_torch_fidelity_format_and_its_own_fid(points, tmp_path):
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    root, folder, real_x = points
    real_stats = fid_features_to_statistics(torch.from_numpy(real_x))  # mu float32, sigma float64, as it caches
    cached = tmp_path / "real-points-stat-fid-pool.pt"  # {input}-{extractor}-stat-fid-{layer}.pt
    torch.save(real_stats, cached)
    doc, _ = run_json(tmp_path, root / "fake.npz", cached)
    assert doc["real"]["statistics"]["format"] == "torch-fidelity"
    fid = doc["metrics"]["fid"]["value"]
    assert fid == pytest.approx(folder.value("fid"), rel=1e-6)
    fake_x = folder.extras["context"].fake.features("pool")
    theirs = fid_statistics_to_metric(real_stats, fid_features_to_statistics(fake_x), False)
    assert fid == pytest.approx(theirs["frechet_inception_distance"], rel=1e-6)


@pytest.mark.slow  # Inception on CPU: ~15 s on an idle 2-core machine
def test_inception_statistics_from_torch_fidelity_cache(tmp_path, inception_weights):
    """torch-fidelity 0.4.0 has no fid_statistics_file input: its cache is what it reads statistics from. The
    file it caches for the real folder, given to gandiag as --real, gives torch-fidelity's FID, gandiag's FID
    against the folder itself, and IS still runs (it needs only the generated samples)."""
    import torch_fidelity

    n = 10
    fake = write_pngs(tmp_path / "fake", colour_digits(n, seed=1, shift=0.05))
    real = write_pngs(tmp_path / "real", colour_digits(n, seed=2))
    ref = torch_fidelity.calculate_metrics(
        input1=fake, input2=real, fid=True, cuda=False, verbose=False, feature_extractor_weights_path=inception_weights,
        cache=True, cache_root=str(tmp_path / "tf_cache"), input2_cache_name="reals", batch_size=n, save_cpu_ram=True)
    cached = tmp_path / "tf_cache" / "reals-inception-v3-compat-stat-fid-2048.pt"
    assert cached.is_file()
    common = ("--feature-weights", inception_weights, "--is-splits", "2", "--batch-size", str(n), "--no-diagnostics")
    folder, _ = run_json(tmp_path, fake, real, "--metrics", "fid", *common)
    doc, res = run_json(tmp_path, fake, cached, *common)
    fid = doc["metrics"]["fid"]
    assert fid["value"] == pytest.approx(ref["frechet_inception_distance"], rel=1e-4)
    assert fid["value"] == pytest.approx(folder["metrics"]["fid"]["value"], rel=1e-6)
    assert fid["label"] == "FID" and fid["value"] > 0.1
    assert doc["metrics"]["is"]["value"] > 1.0 and "not_applicable" not in doc["metrics"]["is"]
    assert doc["metrics"]["kid"]["value"] is None and doc["metrics"]["kid"]["not_applicable"]
    assert doc["real"]["statistics"] == {"external": True, "format": "torch-fidelity", "dim": 2048,
                                         "sha256": hashlib.sha256(cached.read_bytes()).hexdigest(),
                                         "keys": ["mu", "sigma"], "role": "pool"}
    note = [line for line in res.stdout.splitlines() if "external FID statistics" in line]
    assert len(note) == 1 and "inception-v3 pool 2048-d" in note[0] and "299x299" in note[0]


# ----------------------------------------------------------------------------- what cannot run on statistics


def test_feature_metrics_are_not_applicable_in_results_summary_and_report(points, tmp_path):
    root, _, _ = points
    stats = root / "gandiag.npz"
    doc, res = run_json(tmp_path, root / "fake.npz", stats, "--report", tmp_path / "r.html")
    for name in ("kid", "precision", "recall", "density", "coverage"):
        m = doc["metrics"][name]
        assert m["value"] is None and "error" not in m
        assert "needs the real samples' features" in m["not_applicable"] and "gandiag.npz" in m["not_applicable"]
    assert doc["metrics"]["fid"]["value"] > 0
    lines = res.stdout.splitlines()
    assert any(line.split()[:2] == ["KID", "[points]"] and "not applicable" in line for line in lines)
    mc = doc["diagnostics"]["mode_collapse"]
    assert mc["verdict"] == "not_applicable" and set(mc["skipped"]) == {"ndb", "duplicates"}
    assert "holds FID statistics" in mc["reasons"][0]["message"]
    assert any(line.split()[:2] == ["mode_collapse", "not_applicable"] and "skipped" in line for line in lines)
    html = (tmp_path / "r.html").read_text()
    assert "not applicable: KID needs the real samples" in html.replace("&#39;", "'")
    assert doc["real"]["content_sha256"] == hashlib.sha256(stats.read_bytes()).hexdigest()
    assert doc["provenance"]["real_statistics"]["external"] is True
    assert doc["provenance"]["real_statistics"]["assumed_extractor"]["name"] == "points"


def test_gate_on_kid_fails_closed_fid_gate_holds(points, tmp_path):
    root, folder, _ = points
    gates = tmp_path / "g.toml"
    gates.write_text(f"[gates]\nfid = {{ max = {folder.value('fid') * 2} }}\nkid = {{ max = 1.0 }}\n")
    res = cli(root / "fake.npz", "--real", root / "gandiag.npz", "--gate", gates, "--no-diagnostics")
    assert res.returncode == 1
    kid = next(line for line in res.stdout.splitlines() if "kid max" in line)
    assert "FAIL" in kid and "not applicable" in kid and "fails closed" in kid
    assert any("ok" in line and "fid max" in line for line in res.stdout.splitlines())


def test_gates_compare_only_runs_against_the_same_statistics(points, tmp_path):
    from gandiag.gates import GateFileError, check_comparable

    root, _, real_x = points
    other = tmp_path / "other.npz"
    x = real_x[:1000].astype(np.float64)
    np.savez(other, mu=x.mean(0), sigma=np.cov(x, rowvar=False))
    opts = dict(device="cpu", use_cache=False, diagnostics=False, metrics=["fid"])
    a = gandiag.evaluate(root / "fake.npz", str(root / "gandiag.npz"), **opts)
    b = gandiag.evaluate(root / "fake.npz", str(root / "gandiag.npz"), **opts)
    c = gandiag.evaluate(root / "fake.npz", str(other), **opts)
    check_comparable(a, b)
    with pytest.raises(GateFileError, match="real data"):
        check_comparable(c, a)
    folder = gandiag.evaluate(root / "fake.npz", str(root / "real.npz"), **opts)
    with pytest.raises(GateFileError, match="real data"):  # the statistics of a set are not the set
        check_comparable(folder, a)


# ----------------------------------------------------------------------------- files that are not statistics


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


BAD = {
    "sigma_of_other_size": (lambda p: _npz(p, mu=np.zeros(2), sigma=np.eye(3)), "'sigma' has shape (3, 3)"),
    "wrong_dim_for_extractor": (lambda p: _npz(p, mu=np.zeros(5), sigma=np.eye(5)),
                                "statistics of 5-d features, but the points features are 2-d"),
    "nan": (lambda p: _npz(p, mu=np.array([0.0, np.nan]), sigma=np.eye(2)), "'mu' holds NaN or Inf"),
    "inf_sigma": (lambda p: _npz(p, mu=np.zeros(2), sigma=np.array([[1.0, np.inf], [np.inf, 1.0]])),
                  "'sigma' holds NaN or Inf"),
    "asymmetric": (lambda p: _npz(p, mu=np.zeros(2), sigma=np.array([[1.0, 0.5], [0.2, 1.0]])),
                   "'sigma' is not symmetric"),
    "negative_variance": (lambda p: _npz(p, mu=np.zeros(2), sigma=np.array([[1.0, 0.0], [0.0, -1.0]])),
                          "negative variances"),
    "mu_not_a_vector": (lambda p: _npz(p, mu=np.zeros((2, 2)), sigma=np.eye(2)), "'mu' has shape (2, 2)"),
    "pickled_object_array": (lambda p: _npz(p, mu=np.array([0.0, "x"], dtype=object), sigma=np.eye(2)),
                             "dtype object"),
    "complex": (lambda p: _npz(p, mu=np.zeros(2, complex), sigma=np.eye(2)), "'mu' has dtype complex128"),
    "pt_pickled_class": (lambda p: torch.save({"mu": np.zeros(2), "sigma": np.eye(2), "when": Path("x")},
                                              p.with_suffix(".pt")) or p.with_suffix(".pt"), "does not unpickle"),
    "pt_not_a_dict": (lambda p: torch.save([np.zeros(2)], p.with_suffix(".pt")) or p.with_suffix(".pt"),
                      "expected a dict with 'mu' and 'sigma'"),
    "pt_object_array": (lambda p: torch.save({"mu": np.array([1, "a"], dtype=object), "sigma": np.eye(2)},
                                             p.with_suffix(".pt")) or p.with_suffix(".pt"), "read safely"),
    # tensors whose .numpy() raised (exit 3) are refused in one line
    "pt_sparse": (lambda p: _pt(p, lambda: (torch.zeros(2).to_sparse(), torch.eye(2).to_sparse())),
                  "'mu' is a sparse_coo tensor"),
    "pt_sparse_csr_sigma": (lambda p: _pt(p, lambda: (torch.zeros(2), torch.eye(2).to_sparse_csr())),
                            "'sigma' is a sparse_csr tensor"),
    "pt_quantized": (lambda p: _pt(p, lambda: (torch.quantize_per_tensor(torch.zeros(2), 0.1, 0, torch.qint8),
                                               torch.quantize_per_tensor(torch.eye(2), 0.1, 0, torch.qint8))),
                     "'mu' is a quantized tensor (qint8)"),
    "pt_complex": (lambda p: _pt(p, lambda: (torch.zeros(2, dtype=torch.complex64),
                                             torch.eye(2, dtype=torch.complex64))),
                   "'mu' has dtype complex64"),
    "pt_integer": (lambda p: _pt(p, lambda: (torch.zeros(2, dtype=torch.int64), torch.eye(2, dtype=torch.int64))),
                   "'mu' has dtype int64"),
    "pt_bool": (lambda p: _pt(p, lambda: (torch.zeros(2, dtype=torch.bool), torch.eye(2, dtype=torch.bool))),
                "'mu' has dtype bool"),
    "pt_meta": (lambda p: _pt(p, lambda: (torch.zeros(2, device="meta"), torch.eye(2, device="meta"))),
                "'mu' is a tensor on 'meta'"),
}


def _pt(path, make):
    """torch-fidelity's layout, {'mu': ..., 'sigma': ...}, of the tensors ``make()`` returns."""
    import warnings

    with warnings.catch_warnings():  # sparse CSR and quantized tensors warn that they are beta / deprecated
        warnings.simplefilter("ignore")
        mu, sigma = make()
        torch.save({"mu": mu, "sigma": sigma}, path.with_suffix(".pt"))
    return path.with_suffix(".pt")


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_statistics_are_one_line_exit_2(points, tmp_path, case):
    root, _, _ = points
    make, message = BAD[case]
    path = make(tmp_path / "stats.npz")
    with warnings.catch_warnings(record=True) as caught:  # a warning is a second line on the console's stderr
        warnings.simplefilter("always")
        res = cli(root / "fake.npz", "--real", path, "--json", tmp_path / "out.json")
    assert not caught, [str(w.message)[:200] for w in caught]
    assert res.returncode == 2, res.stdout
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert message in res.stderr
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float8_e4m3fn", "float32", "float64"])
def test_torch_statistics_of_any_float_dtype_and_parameters_are_read(points, tmp_path, dtype):
    """bfloat16, float8 and Parameters (requires_grad) made .numpy() raise (exit 3); they are read as float64."""
    root, folder, real_x = points
    x = real_x.astype(np.float64)
    mu, sigma = torch.from_numpy(x.mean(0)), torch.from_numpy(np.cov(x, rowvar=False))
    dt = getattr(torch, dtype)
    plain, param = tmp_path / f"plain-{dtype}.pt", tmp_path / f"param-{dtype}.pt"
    torch.save({"mu": mu.to(dt), "sigma": sigma.to(dt)}, plain)
    torch.save({"mu": torch.nn.Parameter(mu.to(dt)), "sigma": torch.nn.Parameter(sigma.to(dt))}, param)
    rel = {"float64": 1e-9, "float32": 1e-5}.get(dtype, 0.2)  # a 2-d covariance rounded to 3-8 bits of mantissa
    for path in (plain, param):
        doc, _ = run_json(tmp_path, root / "fake.npz", path)
        assert doc["real"]["statistics"]["format"] == "torch-fidelity"
        assert doc["metrics"]["fid"]["value"] == pytest.approx(folder.value("fid"), rel=rel)


def test_statistics_budget_on_dimension(points, tmp_path, monkeypatch):
    root, _, _ = points
    monkeypatch.setenv("GANDIAG_MAX_FEATURE_DIM", "4")
    path = _npz(tmp_path / "big.npz", mu=np.zeros(8), sigma=np.eye(8))
    res = cli(root / "fake.npz", "--real", path)
    assert res.returncode == 2 and "GANDIAG_MAX_FEATURE_DIM" in res.stderr


def test_statistics_are_not_samples(points):
    root, _, _ = points
    res = cli(root / "gandiag.npz", "--real", root / "real.npz")
    assert res.returncode == 2 and "holds FID statistics (mu, sigma), not samples" in res.stderr


def test_samples_npz_is_still_samples(points, tmp_path):
    """The rule is the keys: an .npz of points beside a mean is samples, and a samples file named stats is samples."""
    root, folder, _ = points
    data = np.load(root / "real.npz")["points"]
    np.savez(tmp_path / "stats.npz", points=data, mu=data.mean(0))
    r = gandiag.evaluate(root / "fake.npz", str(tmp_path / "stats.npz"), device="cpu", use_cache=False,
                         diagnostics=False, metrics=["fid", "kid"])
    assert r.value("fid") == pytest.approx(folder.value("fid"), rel=1e-12) and r.value("kid") is not None
    assert "statistics" not in r.real


def test_generator_against_statistics_runs_what_needs_no_real_features(tmp_path):
    """A checkpoint's own checks (latent sensitivity, gradient health) still run; the skipped signals are named.
    The latent check finding no collapse is not a verdict of 'none' (the signals that see missing modes were
    skipped): it is not_applicable, and a gate allowing only 'none' fails closed."""
    from gandiag.data.mixtures import MIXTURES
    from gandiag.features.stats import FeatureStats

    pts = torch.from_numpy(MIXTURES["ring8"].sample(5000, 3)[0].astype(np.float32))
    write_statistics(tmp_path / "ring8_stats.npz", FeatureStats.of(pts))
    ckpt = Path(__file__).parent / "fixtures" / "models" / "ring8_gan_pack4" / "checkpoint.pt"
    gates = tmp_path / "g.toml"
    gates.write_text('[gates]\nmode_collapse = { allow = ["none"] }\n')
    out = tmp_path / "r.json"
    res = cli(ckpt, "--real", tmp_path / "ring8_stats.npz", "-n", "1000", "--json", out, "--gate", gates)
    assert res.returncode == 1, res.stderr
    doc = json.loads(out.read_text())
    assert doc["metrics"]["fid"]["value"] < 0.1  # PacGAN covers the ring
    mc = doc["diagnostics"]["mode_collapse"]
    assert "latent" in mc["signals"] and set(mc["skipped"]) == {"ndb", "duplicates"}
    assert not any(r["level"] in ("partial", "severe") for r in mc["reasons"])  # the latent check found none ...
    assert mc["verdict"] == "not_applicable"  # ... which does not make the verdict 'none'
    assert doc["diagnostics"]["gradient_health"]["verdict"] != "error"
    line = next(x for x in res.stdout.splitlines() if x.strip().startswith("mode_collapse"))
    assert "ndb, duplicates skipped" in line
    assert any("mode_collapse" in x and "FAIL" in x for x in res.stdout.splitlines())


def test_saved_results_regated_fail_closed_on_kid(points, tmp_path):
    root, _, _ = points
    doc, _ = run_json(tmp_path, root / "fake.npz", root / "gandiag.npz", "--no-diagnostics")
    saved = next(tmp_path.glob("r*.json"))
    gates = tmp_path / "g.toml"
    gates.write_text("[gates]\nprecision = { min = 0.0 }\n")
    res = gandiag_in_process("gate", saved, "--gate", gates)
    assert res.returncode == 1 and "not applicable" in res.stdout and "fails closed" in res.stdout


def test_statistics_hold_one_feature_space():
    from types import SimpleNamespace

    from gandiag.data.reference_stats import ReferenceStats, match_extractors
    from gandiag.errors import GandiagError

    stats = ReferenceStats("s.npz", np.zeros(2), np.eye(2), "0" * 64, "pytorch-fid")
    e = SimpleNamespace(name="points", roles={"pool": None}, preprocessing="identity")
    assert "points pool 2-d" in match_extractors(stats, [e], 2)
    with pytest.raises(GandiagError, match="name one --feature-extractor"):
        match_extractors(stats, [e, SimpleNamespace(name="other", roles={"pool": 2}, preprocessing="")], 2)
    with pytest.raises(GandiagError, match="gives no 'pool' features"):
        match_extractors(stats, [SimpleNamespace(name="cls", roles={"logits": 10}, preprocessing="")], 2)
