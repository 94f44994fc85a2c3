"""Sequence diagnostics (issue 13, items 5 and 6): mode collapse and temporal health on planted generators whose
truth is known, the report's sequence sections, and gates that fail closed on the new verdict.

Planted generators are arrays of sequences: copies (50 sequences repeated 8 times, the issue's example), one
real sequence shifted and rescaled, constant, white noise, 100x scaled; healthy ones are TimeGAN sines drawn
with other seeds and the real data split in halves. Evaluations run through ``gandiag.evaluate`` on ``.npz``
files against ``--real sines`` with a small stand-in feature extractor (model-free statistics), so the test
depends on no trained network.
"""

from __future__ import annotations

import contextlib
import copy
import re
import types

import numpy as np
import pytest
import torch

import gandiag
import gandiag.plugins as plugins
from gandiag import ExtractorSpec, hookimpl
from gandiag.data.sequences import sines_data
from gandiag.diagnostics import classifier_modes, latent_sensitivity, sequence_modes, temporal_health
from gandiag.diagnostics.temporal_health import TemporalHealth
from gandiag.gates import check_gates, parse_gates
from gandiag.generator.contract import GeneratorContract
from gandiag.report import render_html
from gandiag.results import Results

N = 400  # generated sequences per planted case (the issue's 50 x 8)


# --------------------------------------------------------------------------- planted sequences


def real_sines(n: int, seed: int = 0) -> np.ndarray:
    return sines_data(n, seed=seed + 50_000)


def repeated(distinct: int = 50, times: int = 8, seed: int = 2) -> np.ndarray:
    base = sines_data(distinct, seed=seed)
    return np.repeat(base, times, axis=0)[np.random.default_rng(seed).permutation(distinct * times)]


def shifted_and_scaled(n: int = N, seed: int = 3, circular: bool = True) -> np.ndarray:
    """One sequence, moved in time (rolled, or a window of a longer sine) and rescaled (0.6-1x, small offset)."""
    rng = np.random.default_rng(seed)
    steps, channels = 24, 5
    if circular:
        base = sines_data(1, seed=seed)[0]
        out = np.stack([np.roll(base, int(rng.integers(steps)), axis=0) for _ in range(n)])
    else:
        f, ph = rng.uniform(0, 0.1, channels), rng.uniform(0, 0.1, channels)
        long = (np.sin(f[None] * np.arange(3 * steps)[:, None] + ph) + 1) / 2
        out = np.stack([long[s:s + steps] for s in rng.integers(0, 2 * steps, n)])
    return rng.uniform(0.6, 1.0, (n, 1, 1)) * out + rng.uniform(-0.05, 0.05, (n, 1, 1))


def constant(n: int = N) -> np.ndarray:
    r = real_sines(n, seed=98)
    return np.repeat(r[:, :1, :], r.shape[1], axis=1)


def white_noise(n: int = N) -> np.ndarray:
    r = real_sines(n, seed=99)
    return np.random.default_rng(4).normal(r.mean(), r.std(), r.shape)


def t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(x, dtype=np.float64))


def level(reasons: list, signal: str) -> str:
    """The worst level a signal raised (``info`` when it raised only evidence)."""
    order = ["info", "partial", "severe", "warning", "unhealthy"]
    got = [r["level"] for r in reasons if r["signal"] == signal]
    return max(got, key=order.index) if got else "info"


# --------------------------------------------------------------------------- signals on arrays


def test_shapes_flags_shifted_and_scaled_copies_but_not_real_or_healthy_sequences():
    n = 250  # every pair at every lag: kept small for the test (the diagnostic takes 500 a side)
    real = t(real_sines(n))
    for healthy in (real_sines(2 * n, seed=5)[n:], sines_data(n, seed=1), sines_data(n, seed=7)):
        s = sequence_modes.analyse_shapes(real, t(healthy))
        assert level(s["reasons"], "shapes") == "info", s["reasons"]
        assert s["rate_ratio"] < sequence_modes.RATIO_PARTIAL
    for circular in (True, False):
        s = sequence_modes.analyse_shapes(real, t(shifted_and_scaled(n, circular=circular)))
        assert level(s["reasons"], "shapes") == "severe", s["reasons"]
        assert s["samples_with_twin"] > 0.9 and s["closest_pairs"][0]["distance"] < 1e-3


def test_shape_distance_is_zero_for_a_shifted_scaled_copy_and_names_the_lag():
    rng = np.random.default_rng(0)
    f, ph = rng.uniform(0.2, 0.5, 3), rng.uniform(0, 3, 3)
    long = np.sin(f[None] * np.arange(60)[:, None] + ph)
    a, b = long[10:40], 3.0 * long[14:44] + 1.0  # b is a, 4 steps later, tripled and lifted
    other = np.cos(f[None] * 1.7 * np.arange(30)[:, None])
    d, lag = sequence_modes.shape_distances(t(np.stack([a, b, other])))
    assert d[0, 1] < 1e-6 and d[0, 2] > 0.3
    pair = sequence_modes.closest(d, lag, 30, 1)[0]
    assert (pair["i"], pair["j"], pair["lag"], pair["circular"]) == (0, 1, 4, False)


def test_temporal_health_on_planted_generators():
    real = t(real_sines(1000))
    healthy = temporal_health.check(real, t(real_sines(2 * N, seed=5)[N:]))
    assert healthy["verdict"] == "healthy", healthy["reasons"]
    assert healthy["autocorrelation"]["acf_distance"] < temporal_health.ACF_WARN / 10
    frozen = temporal_health.check(real, t(constant()))
    assert frozen["verdict"] == "unhealthy" and frozen["frozen"]["frozen_fraction"] == 1.0
    noise = temporal_health.check(real, t(white_noise()))
    assert noise["verdict"] == "unhealthy"
    assert noise["variation"]["worst_roughness_ratio"] > temporal_health.ROUGH_BAD
    assert noise["autocorrelation"]["acf_distance"] > temporal_health.ACF_BAD
    scaled = temporal_health.check(real, t(100 * sines_data(N, seed=8)))
    assert scaled["verdict"] == "unhealthy" and level(scaled["reasons"], "magnitude") == "unhealthy"
    assert scaled["magnitude"]["range_ratio"] > temporal_health.RANGE_BAD
    slow = temporal_health.check(real, t((np.sin(np.random.default_rng(1).uniform(0, 0.02, (N, 1, 5))
                                                  * np.arange(24)[None, :, None]) + 1) / 2))
    assert slow["verdict"] == "warning" and level(slow["reasons"], "variation") == "warning"  # barely moves


def test_temporal_health_without_real_sequences_is_not_applicable():
    ctx = types.SimpleNamespace(contract=GeneratorContract(latent_dim=4, kind="sequences"), real_samples=None,
                                fake_kept=torch.zeros(30, 24, 5), seed=0)
    d = TemporalHealth()
    assert d.applies(ctx)
    assert d.run(ctx)["verdict"] == "not_applicable"
    ctx.contract = GeneratorContract(latent_dim=4, kind="images")
    assert not d.applies(ctx)  # never shown for images


def test_class_coverage_reads_a_second_extractors_classifier():
    """A ``motion``-like classifier as the second extractor: activities covered, a missing one named."""
    rng = np.random.default_rng(0)

    def feats(labels, n_classes=4):
        logits = np.full((len(labels), n_classes), -4.0)
        logits[np.arange(len(labels)), labels] = 4.0
        fs = gandiag.FeatureSet()
        fs.add({"logits": torch.from_numpy(logits).float(),
                "pool": torch.from_numpy(rng.normal(size=(len(labels), 3))).float()})
        return fs

    real_labels = np.repeat(np.arange(4), 50)
    real = feats(real_labels)
    real.labels = real_labels
    stats = gandiag.FeatureSet()
    stats.add({"pool": torch.zeros(200, 3)})
    fake = feats(rng.choice([0, 1, 2], 200))  # activity 3 never drawn
    ctx = types.SimpleNamespace(fake=stats, real=stats, features={"stats": (stats, stats), "motion": (fake, real)},
                                contract=None, seed=0)
    assert classifier_modes.applies(ctx)
    out = classifier_modes.compute(ctx)
    assert out["missing_classes"] == [3] and out["class_status"][3] == "absent"


def test_latent_sensitivity_reads_sequences_in_their_own_units():
    c = GeneratorContract(latent_dim=4, kind="sequences", layout="NCT", sample_shape=(24, 5))
    out = torch.arange(2 * 5 * 24, dtype=torch.float32).view(2, 5, 24)  # (N, C, T) from a Conv1d stack
    x = latent_sensitivity.output_space(out, c)
    assert torch.equal(x, out.transpose(1, 2).reshape(2, -1).double())
    real = types.SimpleNamespace(batches=lambda n: iter([torch.full((3, 24, 5), 0.5)]))
    assert float(latent_sensitivity.real_output_space(real, 3, "sequences").max()) == 0.5  # not divided by 255


# --------------------------------------------------------------------------- through gandiag.evaluate


class StubSequenceStats:
    """A stand-in for the model-free ``sequence-stats`` extractor: per-channel mean, std and mean |Δx|."""

    name = "stub-seq"
    roles = {"pool": None}
    kinds = ("sequences",)
    preprocessing = "identity"
    weights_sha256 = None

    def __call__(self, batch):
        x = batch.float()
        return {"pool": torch.cat([x.mean(1), x.std(1), (x[:, 1:] - x[:, :-1]).abs().mean(1)], dim=1)}


@contextlib.contextmanager
def stub_extractor():
    spec = ExtractorSpec("stub-seq", "test stand-in: sequence statistics", ("sequences",),
                         lambda weights_path=None, device="cpu": StubSequenceStats())
    plugin = types.SimpleNamespace(register_feature_extractors=hookimpl(lambda register: register(spec)))
    plugins.load_plugins()
    if plugins.pm.get_plugin("stub-seq-test") is not None:  # already there (the module's runs hold it)
        yield
        return
    plugins.pm.register(plugin, name="stub-seq-test")
    plugins.reset()
    try:
        yield
    finally:
        plugins.pm.unregister(name="stub-seq-test")
        plugins.reset()


def evaluate(tmp_path, name: str, data: np.ndarray):
    path = tmp_path / f"{name}.npz"
    np.savez(path, sequences=np.asarray(data, dtype=np.float32))
    return gandiag.evaluate(path, "sines", feature_extractor="stub-seq", metrics=["fid"], use_cache=False, seed=0)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seq")
    with stub_extractor():
        yield {name: evaluate(tmp, name, data) for name, data in (
            ("repeated", repeated()), ("healthy", sines_data(N, seed=11)), ("shifted", shifted_and_scaled()),
            ("scaled", 100 * sines_data(N, seed=8)))}


def test_the_issues_collapsed_generator_is_flagged_and_healthy_sines_are_not(runs):
    mc = runs["repeated"].diagnostics["mode_collapse"]
    assert mc["verdict"] == "severe", mc["reasons"]  # 50 sequences x 8: was "none" when read as points
    assert level(mc["reasons"], "duplicates") == "severe" and level(mc["reasons"], "shapes") == "severe"
    assert "sequences" in mc["signals"]["duplicates"]["space"]
    assert runs["repeated"].diagnostics["temporal_health"]["verdict"] == "healthy"  # copies of real sequences move well
    for name in ("healthy",):
        d = runs[name].diagnostics
        assert d["mode_collapse"]["verdict"] == "none", d["mode_collapse"]["reasons"]
        assert d["temporal_health"]["verdict"] == "healthy", d["temporal_health"]["reasons"]


def test_a_shift_and_scale_generator_is_flagged_and_a_scaled_one_explodes(runs):
    mc = runs["shifted"].diagnostics["mode_collapse"]
    assert mc["verdict"] == "severe" and level(mc["reasons"], "shapes") == "severe", mc["reasons"]
    th = runs["scaled"].diagnostics["temporal_health"]
    assert th["verdict"] == "unhealthy" and level(th["reasons"], "magnitude") == "unhealthy"


def section(html: str, sid: str):
    m = re.search(rf'<section id="{re.escape(sid)}" class="part">(.*?)</section>', html, re.S)
    return m.group(1) if m else None


def test_report_shows_sequence_sections_only_for_sequences(runs):
    html = render_html([runs["shifted"]])
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert 'alt="sequence trajectories"' in section(html, "trajectories")
    th = section(html, "temporal-health")
    assert 'alt="autocorrelation curves"' in th and "temporal health" in th
    shapes = section(html, "shapes")
    assert 'alt="closest shape pairs"' in shapes and "severe" in shapes
    assert section(html, "samples") is None and section(html, "memorisation") is None  # image sections left out
    assert section(html, "feature-space") is not None  # the projection works on any extractor's features
    images = Results(metrics={}, generator={"path": "g.pt"}, contract={"kind": "images"}, real=None, provenance={},
                     diagnostics={}, warnings=[])
    other = render_html([images])
    assert all(section(other, s) is None for s in ("trajectories", "temporal-health", "shapes"))
    assert section(other, "samples") is not None


def test_report_from_json_alone_keeps_the_temporal_section(runs, tmp_path):
    path = tmp_path / "out.json"
    runs["scaled"].save(path)
    html = render_html([Results.load(path)])
    assert 'alt="autocorrelation curves"' in section(html, "temporal-health")
    assert section(html, "samples") is None


@pytest.mark.parametrize("verdict", ["error", "not_applicable"])
def test_gates_on_temporal_health_fail_closed(runs, verdict):
    gates = parse_gates({"gates": {"temporal_health": {"allow": ["healthy", "warning"]}}})
    from gandiag.gates import Gates

    g = Gates(gates)
    assert check_gates(runs["healthy"], g).passed
    assert not check_gates(runs["scaled"], g).passed
    broken = Results.from_json(copy.deepcopy(runs["healthy"].to_json()))
    broken.diagnostics["temporal_health"] = {"verdict": verdict, "reasons": []}
    assert not check_gates(broken, g).passed
    broken.diagnostics.pop("temporal_health")
    assert not check_gates(broken, g).passed  # missing fails too


def test_the_issues_example_with_the_bundled_model_free_extractor(tmp_path):
    """The same verdict with ``sequence-stats`` (the model-free extractor any sequences get), when registered."""
    if "sequence-stats" not in plugins.registry("feature extractor").names():
        pytest.skip("the sequence-stats extractor is not registered in this tree")
    path = tmp_path / "copies.npz"
    np.savez(path, sequences=repeated().astype(np.float32))
    r = gandiag.evaluate(path, "sines", feature_extractor="sequence-stats", metrics=["fid"], use_cache=False)
    assert r.diagnostics["mode_collapse"]["verdict"] == "severe"
    assert r.diagnostics["temporal_health"]["verdict"] == "healthy"


def activities(classes, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sequences of 4 channels whose class c lifts channel c by 1 (a stand-in for BasicMotions' activities)."""
    labels = np.repeat(np.asarray(classes), per_class)
    x = sines_data(len(labels), seed=seed, channels=4)
    x[np.arange(len(labels)), :, labels] += 1.0
    return x.astype(np.float32), labels.astype(np.int64)


class StubActivityClassifier(StubSequenceStats):
    """A stand-in for ``motion``: logits = 8 x each channel's mean (the lifted channel wins, confidently)."""

    name = "stub-activity"
    roles = {"pool": None, "logits": 4}

    def __call__(self, batch):
        return {**super().__call__(batch), "logits": 8.0 * batch.float().mean(1)}


def test_activities_covered_through_evaluate_and_trajectories_per_class(tmp_path):
    real_x, real_y = activities([0, 1, 2, 3], 60, seed=1)
    fake_x, _ = activities([0, 1, 2], 60, seed=2)  # activity 3 never generated
    np.savez(tmp_path / "real.npz", sequences=real_x, labels=real_y)
    np.savez(tmp_path / "fake.npz", sequences=fake_x)
    spec = ExtractorSpec("stub-activity", "test stand-in: an activity classifier", ("sequences",),
                         lambda weights_path=None, device="cpu": StubActivityClassifier())
    plugin = types.SimpleNamespace(register_feature_extractors=hookimpl(lambda register: register(spec)))
    plugins.load_plugins()
    plugins.pm.register(plugin, name="stub-activity-test")
    plugins.reset()
    try:
        r = gandiag.evaluate(tmp_path / "fake.npz", str(tmp_path / "real.npz"), feature_extractor="stub-activity",
                             metrics=["fid"], use_cache=False)
        html = render_html([r])
    finally:
        plugins.pm.unregister(name="stub-activity-test")
        plugins.reset()
    mc = r.diagnostics["mode_collapse"]
    assert mc["verdict"] == "partial" and mc["missing_modes"] == [3] and mc["modes_captured"] == 3, mc["reasons"]
    assert mc["signals"]["classes"]["class_status"] == ["covered", "covered", "covered", "absent"]
    assert "one row per class" in section(html, "trajectories")
    assert 'alt="class histogram"' in section(html, "modes")


def test_a_part_that_raises_makes_temporal_health_error_and_the_gate_fails(monkeypatch, runs):
    def broken(r, g):
        raise RuntimeError("planted failure")

    monkeypatch.setattr(temporal_health, "autocorrelation", broken)
    out = temporal_health.check(t(real_sines(100)), t(sines_data(100, seed=1)))
    assert out["verdict"] == "error" and "planted failure" in out["errors"]["autocorrelation"]
    assert out["frozen"] and out["magnitude"]  # the other parts still report
    from gandiag.gates import Gates

    r = Results.from_json(copy.deepcopy(runs["healthy"].to_json()))
    r.diagnostics["temporal_health"] = out
    assert not check_gates(r, Gates(parse_gates({"gates": {"temporal_health": {"allow": ["healthy"]}}}))).passed


def test_basicmotions_halves_are_healthy_and_its_planted_copies_are_not():
    """Real motion data (the optional ``motion`` extra): 40 recordings against the other 40, then planted copies."""
    from gandiag.data.sources import load_real
    from gandiag.errors import GandiagError

    try:
        data = load_real("basicmotions", None, 0).data.double()
    except GandiagError as exc:
        pytest.skip(f"basicmotions is not available: {exc}")
    half = torch.from_numpy(np.random.default_rng(1).permutation(len(data)))
    a, b = data[half[:40]], data[half[40:]]
    assert level(sequence_modes.analyse_shapes(a, b)["reasons"], "shapes") == "info"
    dup = sequence_modes.analyse_duplicates(*sequence_modes.standardise(a, b))
    assert level(dup["reasons"], "duplicates") == "info"
    assert temporal_health.check(a, b)["verdict"] == "healthy"
    copies = torch.repeat_interleave(b[:8], 5, dim=0)
    assert level(sequence_modes.analyse_shapes(a, copies)["reasons"], "shapes") == "severe"
    assert level(sequence_modes.analyse_duplicates(*sequence_modes.standardise(a, copies))["reasons"],
                 "duplicates") == "severe"
    assert temporal_health.check(a, 100 * b)["verdict"] == "unhealthy"


def test_gandiag_report_from_saved_json_and_artifacts_draws_the_sequences(runs, tmp_path):
    from click.testing import CliRunner

    from gandiag.cli import _add_plugin_commands
    from gandiag.cli import cli as group
    from gandiag.report.artifacts import save_artifacts

    json_path = tmp_path / "shifted.json"
    save_artifacts(runs["shifted"], json_path)
    runs["shifted"].save(json_path)
    _add_plugin_commands()
    out = tmp_path / "report.html"
    res = CliRunner().invoke(group, ["report", str(json_path), "-o", str(out)])
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert 'alt="sequence trajectories"' in section(html, "trajectories")
    assert 'alt="closest shape pairs"' in section(html, "shapes")
    assert section(html, "samples") is None


class Copies(torch.nn.Module):
    """A planted collapsed sequence generator: z picks one of a few fixed sequences (NTC)."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.register_buffer("table", table)

    def forward(self, z):
        return self.table[(z[:, 0].abs() * 1000).long() % self.table.shape[0]]


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_a_planted_collapsed_sequence_generator_is_flagged(tmp_path):
    path = tmp_path / "copies.pt"
    torch.jit.script(Copies(torch.from_numpy(sines_data(50, seed=2)).float())).save(str(path))
    with stub_extractor():
        r = gandiag.evaluate(path, "sines", latent_dim=4, layout="NTC", feature_extractor="stub-seq", metrics=["fid"],
                             num_samples=N, use_cache=False)
    mc = r.diagnostics["mode_collapse"]
    assert mc["verdict"] == "severe" and level(mc["reasons"], "shapes") == "severe", mc["reasons"]
    assert mc["signals"]["latent"]["spread_ratio"] > 0.35  # z moves the output: only the copies give it away
    assert r.diagnostics["temporal_health"]["verdict"] == "healthy"
    assert r.diagnostics["gradient_health"]["verdict"] in ("healthy", "warning")  # runs on a sequence generator


def test_copied_training_sequences_are_memorization_not_mode_collapse(tmp_path):
    """Sines drawn from a training set with repetition: the copies are twins of each other, which the sequence
    duplicates and shapes signals would call collapse; copies of one training sequence are set apart."""
    import gandiag
    from gandiag.data.sequences import sines_data

    train, held = sines_data(400, seed=1).astype(np.float32), sines_data(200, seed=2).astype(np.float32)
    fake = train[np.random.default_rng(0).choice(400, 600)]
    for name, arr in (("train", train), ("held", held), ("fake", fake)):
        np.savez(tmp_path / f"{name}.npz", sequences=arr)
    r = gandiag.evaluate(tmp_path / "fake.npz", real=str(tmp_path / "held.npz"), train_data=str(tmp_path / "train.npz"),
                         progress=False, metrics=["fid"])  # the verdicts are the point; TimeGAN's scores train nets
    assert r.diagnostics["memorization"]["verdict"] == "severe"
    assert r.diagnostics["mode_collapse"]["verdict"] == "none"
    signals = r.diagnostics["mode_collapse"]["signals"]
    assert signals["duplicates"]["copy_pairs"] > 100 and "copy_pairs" in signals["shapes"]
