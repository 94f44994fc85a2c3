"""Calibration on real cases: the verdicts on generators trained by the bundled trainer.

Fixtures: tests/fixtures/models/ (scripts/make_fixtures.py). Healthy models
must not be flagged, on the default seed and on other seeds (stress); broken
ones must get the right verdict and name the right modes. The numbers behind
the thresholds are in docs/diagnostics.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gandiag.pipeline import evaluate

MODELS = Path(__file__).parent / "fixtures" / "models"
N = {"ring8": None, "digits": 5000}  # ring8: the protocol's 2,500 points; digits: enough for class shares
_cache: dict = {}


def diagnose(name: str, seed: int = 2020) -> dict:
    key = (name, seed)
    if key not in _cache:
        path = MODELS / name / "checkpoint.pt"
        if not path.exists():
            pytest.skip(f"fixture {name} not made (scripts/make_fixtures.py)")
        r = evaluate(path, metrics=["fid"], num_samples=N[name.split("_")[0]], seed=seed, device="cpu", use_cache=False)
        _cache[key] = json.loads(json.dumps(r.to_json(), default=float))["diagnostics"]
    return _cache[key]


HEALTHY = ["ring8_gan_pack4", "digits_dcgan", "digits_cgan"]


@pytest.mark.parametrize("name", HEALTHY)
def test_healthy_models_are_not_flagged(name):
    d = diagnose(name)
    assert d["mode_collapse"]["verdict"] == "none", d["mode_collapse"]["reasons"]
    assert d["gradient_health"]["verdict"] == "healthy", d["gradient_health"]["reasons"]
    assert d["mode_collapse"]["missing_modes"] == []


@pytest.mark.parametrize("name,seed", [("ring8_gan_pack4", 1), ("ring8_gan_pack4", 7), ("digits_dcgan", 11),
                                       ("digits_cgan", 5)])
def test_stress_no_false_alarm_on_other_seeds(name, seed):
    d = diagnose(name, seed)
    assert d["mode_collapse"]["verdict"] == "none", d["mode_collapse"]["reasons"]
    assert d["gradient_health"]["verdict"] == "healthy", d["gradient_health"]["reasons"]


def test_collapsed_ring8_is_severe_with_its_missing_modes():
    mc = diagnose("ring8_gan_collapsed")["mode_collapse"]
    assert mc["verdict"] == "severe"
    assert mc["modes_captured"] <= 4 and mc["modes_total"] == 8
    assert len(mc["missing_modes"]) == 8 - mc["modes_captured"]
    assert {"modes_captured", "high_quality_fraction", "reverse_kl", "signals"} <= set(mc)
    assert any(r["signal"] == "mixture" and r["level"] == "severe" for r in mc["reasons"])


def test_starved_digits_names_the_removed_classes():
    d = diagnose("digits_dcgan_no789")
    mc = d["mode_collapse"]
    assert mc["verdict"] == "partial"
    assert mc["missing_modes"] == [7, 8, 9]
    assert d["gradient_health"]["verdict"] == "healthy"  # it trained fine, on less data


def test_broken_learning_rate_is_unhealthy():
    d = diagnose("ring8_gan_lr1")
    gh = d["gradient_health"]
    assert gh["verdict"] == "unhealthy"
    fired = {r["signal"] for r in gh["reasons"] if r["level"] == "unhealthy"}
    assert {"adversarial", "log", "output"} <= fired
    assert d["mode_collapse"]["verdict"] == "severe"  # it ignores z: one output for every latent
    assert d["mode_collapse"]["signals"]["latent"]["spread_ratio"] < 0.1


def test_wgan_gp_critic_is_near_1_lipschitz_and_healthy():
    gh = diagnose("ring8_wgan_gp")["gradient_health"]
    assert gh["verdict"] == "healthy", gh["reasons"]
    assert 0.5 <= gh["adversarial"]["lipschitz"]["mean"] <= 2.0


def test_diagnose_command_prints_verdicts_exit_0(tmp_path):
    from conftest import gandiag_in_process

    out = tmp_path / "d.json"
    res = gandiag_in_process("diagnose", MODELS / "ring8_gan_collapsed" / "checkpoint.pt", "--json", out)
    assert res.returncode == 0, res.stderr
    assert "mode_collapse: severe" in res.stdout and "gradient_health: healthy" in res.stdout
    assert "[mixture] severe" in res.stdout
    saved = json.loads(out.read_text())
    assert saved["diagnostics"]["mode_collapse"]["verdict"] == "severe"


def test_diagnose_reports_a_diverged_generator_but_refuses_bad_usage(tmp_path):
    """NaN samples are a diagnosis (exit 0, mode_collapse severe, gradient health measured); a flag that does not
    fit the generator (--kind images for a 2-D generator, a wrong --latent-shape) is bad usage: exit 2, no JSON."""
    import sys

    import torch
    from conftest import gandiag_in_process

    sys.path.insert(0, str(Path(__file__).parent))
    from tiny_models import NaNGenerator

    nan = tmp_path / "nan.pt"
    torch.jit.save(torch.jit.script(NaNGenerator()), str(nan))
    res = gandiag_in_process("diagnose", nan, "--real", "digits", "--latent-dim", "16", "-n", "64", "--json",
                             tmp_path / "nan.json")
    assert res.returncode == 0, res.stderr
    mc = json.loads((tmp_path / "nan.json").read_text())["diagnostics"]["mode_collapse"]
    assert mc["verdict"] == "severe" and "no usable sample" in mc["reasons"][0]["message"]
    ring = MODELS / "ring8_gan_pack4" / "checkpoint.pt"
    for flags in (["--kind", "images"], ["--latent-shape", "2,4"]):
        out = tmp_path / "bad.json"
        res = gandiag_in_process("diagnose", ring, "-n", "64", "--json", out, *flags)
        assert res.returncode == 2 and res.stderr.startswith("gandiag: error:"), (flags, res.stdout, res.stderr)
        assert not out.exists() and "severe" not in res.stdout


def test_without_real_data_the_latent_check_alone_is_no_verdict_of_none(tmp_path):
    """No real data: only the latent check runs; its finding nothing is not_applicable (a gate allowing only 'none'
    fails), while a collapse it does find would still be reported."""
    import sys

    import torch
    from conftest import gandiag_in_process

    sys.path.insert(0, str(Path(__file__).parent))
    from tiny_models import TinyImageGenerator

    tiny = tmp_path / "tiny.pt"
    torch.jit.save(torch.jit.script(TinyImageGenerator()), str(tiny))
    gates = tmp_path / "g.toml"
    gates.write_text('[gates]\nmode_collapse = { allow = ["none"] }\n')
    out = tmp_path / "r.json"
    res = gandiag_in_process("evaluate", tiny, "--latent-dim", "16", "--feature-extractor", "digits", "-n", "200",
                             "--json", out, "--gate", gates)
    assert res.returncode == 1, res.stderr
    mc = json.loads(out.read_text())["diagnostics"]["mode_collapse"]
    assert set(mc["signals"]) == {"latent"} and mc["verdict"] == "not_applicable"
    assert "only the latent check ran" in mc["reasons"][-1]["message"]
