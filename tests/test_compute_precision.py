"""--compute-precision: each mode applied to the feature network only, recorded, kept apart in the cache and
in baseline comparisons; bf16's deviation from strict measured on a trained checkpoint and bounded here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import gandiag
from conftest import gandiag_in_process
from gandiag.features import precision

DCGAN = Path(__file__).parent / "fixtures" / "models" / "digits_dcgan" / "checkpoint.pt"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("precision")
    out = {}
    for mode in ("strict", "bf16"):
        path = d / f"{mode}.json"
        res = gandiag_in_process("evaluate", DCGAN, "-n", "1500", "--compute-precision", mode, "--no-progress",
                                 "--json", path, "--no-cache")
        assert res.returncode == 0, res.stderr
        out[mode] = (path, json.loads(path.read_text()))
    return out


def test_bf16_is_recorded_and_stays_near_strict(runs):
    (_, strict), (_, bf16) = runs["strict"], runs["bf16"]
    assert strict["provenance"]["compute"]["precision"] == "strict"
    assert bf16["provenance"]["compute"]["precision"] == "bf16"
    # measured at 10,000 samples: at most 0.07% (benchmarks/results/compute_precision_cpu.md); at 1,500 a few
    # k-NN balls more or less move the shares by up to ~0.003
    assert strict["metrics"]["fid"]["value"] != bf16["metrics"]["fid"]["value"]  # bf16 does change the features
    assert bf16["metrics"]["fid"]["value"] == pytest.approx(strict["metrics"]["fid"]["value"], rel=0.005)
    for name in ("precision", "recall", "density", "coverage"):
        assert bf16["metrics"][name]["value"] == pytest.approx(strict["metrics"][name]["value"], abs=0.01), name
    assert strict["diagnostics"]["mode_collapse"]["verdict"] == bf16["diagnostics"]["mode_collapse"]["verdict"]


def test_a_baseline_of_another_precision_is_refused(runs, tmp_path):
    (strict_path, _), (bf16_path, _) = runs["strict"], runs["bf16"]
    gates = tmp_path / "g.toml"
    gates.write_text(f'baseline = "{strict_path}"\n[gates]\nfid = {{ max_increase = 0.5 }}\n')
    res = gandiag_in_process("gate", bf16_path, "--gate", gates)
    assert res.returncode == 2 and "compute precision: this run bf16, the baseline strict" in res.stderr


def test_an_earlier_fp32_baseline_is_strict(runs, tmp_path):
    (strict_path, strict), _ = runs["strict"], runs["bf16"]
    old = json.loads(json.dumps(strict))
    old["provenance"]["compute"] = {"precision": "fp32", "compile": False}  # as results before the flag
    (tmp_path / "old.json").write_text(json.dumps(old))
    gates = tmp_path / "g.toml"
    gates.write_text(f'baseline = "{tmp_path / "old.json"}"\n[gates]\nfid = {{ max_increase = 0.5 }}\n')
    res = gandiag_in_process("gate", strict_path, "--gate", gates)
    assert res.returncode == 0, res.stderr + res.stdout


def test_modes_touch_only_the_feature_network_and_restore_torch():
    before = (torch.backends.mkldnn.conv.fp32_precision, torch.backends.mkldnn.matmul.fp32_precision)
    with precision.numerics("strict", "cpu"):
        assert torch.backends.mkldnn.conv.fp32_precision == "ieee"
        assert not torch.is_autocast_enabled("cpu")
    with precision.numerics("bf16", "cpu"):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    assert (torch.backends.mkldnn.conv.fp32_precision, torch.backends.mkldnn.matmul.fp32_precision) == before
    assert not torch.is_autocast_enabled("cpu")


def test_tf32_on_a_cpu_runs_strict_and_says_so():
    said = []
    assert precision.resolve("tf32", "cpu", said.append) == "strict" and "GPU mode" in said[0]
    assert precision.resolve(None, "cpu") == "strict"


def test_reduced_precision_features_have_their_own_cache_entries(tmp_path, monkeypatch):
    monkeypatch.setenv("GANDIAG_CACHE_DIR", str(tmp_path / "cache"))
    a = gandiag.evaluate(DCGAN, num_samples=300, metrics=("fid",), diagnostics=False, progress=False)
    b = gandiag.evaluate(DCGAN, num_samples=300, metrics=("fid",), diagnostics=False, progress=False,
                         compute_precision="bf16")
    assert not b.provenance["timings_s"].get("real_features_cached")  # strict's entry is not bf16's
    c = gandiag.evaluate(DCGAN, num_samples=300, metrics=("fid",), diagnostics=False, progress=False,
                         compute_precision="bf16")
    assert c.provenance["timings_s"].get("real_features_cached") and c.value("fid") == b.value("fid")
    assert a.value("fid") != b.value("fid")
