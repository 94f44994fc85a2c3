"""The pipeline's contract: one options object, metric keys per feature space, stages that fail closed."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import installed
from gandiag.features.extractor import ExtractorSpec
from gandiag.hookspecs import hookimpl
from gandiag.options import EvalOptions
from gandiag.results import metric_key, metric_order, parse_metric_key


def cli(*args):
    from gandiag.cli import _add_plugin_commands, cli as group

    _add_plugin_commands()
    res = CliRunner().invoke(group, [str(a) for a in args])
    return res.exit_code, res.stdout, res.stderr


@pytest.fixture(scope="module")
def digits_npz(tmp_path_factory):
    from sklearn.datasets import load_digits

    p = tmp_path_factory.mktemp("digits") / "digits.npz"
    np.savez(p, images=np.rint(load_digits().images[:300] * 255 / 16).astype(np.uint8))
    return p


class Pixels:
    """A second image feature space: 4x4 average-pooled grey pixels (16-d), no weights file."""

    name, roles, kinds, weights_sha256, preprocessing = "pixels", {"pool": 16}, ("images",), "none", "4x4 average pool"

    def __call__(self, batch):
        x = torch.nn.functional.adaptive_avg_pool2d(batch.float().mean(1, keepdim=True), 4).flatten(1)
        return {"pool": x / 255}


class _PixelsPlugin:
    @hookimpl
    def register_feature_extractors(self, register):
        register(ExtractorSpec("pixels", "test: pooled pixels", ("images",), lambda w=None, device="cpu": Pixels()))


@pytest.fixture
def pixels_extractor():
    with installed(_PixelsPlugin(), "pixels-test"):
        yield


def test_metric_key_grammar_round_trips():
    for name, features, direction in (("fid", None, None), ("fid", "digits", None), ("fd", "dinov2", "b2a"),
                                      ("kid", None, "a2b")):
        key = metric_key(name, features, direction)
        assert parse_metric_key(key) == (name, features, direction)
    assert metric_order(["recall", "fid@pixels", "kid", "fid", "is"]) == ["fid", "fid@pixels", "kid", "is", "recall"]


def test_several_extractors_one_sampling_pass_keys_per_feature_space(tmp_path, digits_npz, pixels_extractor):
    import gandiag

    r = gandiag.evaluate(digits_npz, "digits", feature_extractor="digits,pixels", diagnostics=False, use_cache=False)
    assert {"fid", "fid@pixels", "kid@pixels", "is"} <= set(r.metrics) and "is@pixels" not in r.metrics
    assert r.metrics["fid@pixels"]["features"] == "pixels" and r.metrics["fid@pixels"]["label"] == "FID [pixels]"
    assert r.metrics["fid"]["features"] == "digits"
    alone = gandiag.evaluate(digits_npz, "digits", feature_extractor="pixels", diagnostics=False, use_cache=False)
    assert r.metrics["fid@pixels"]["value"] == alone.metrics["fid"]["value"]  # same features, same number
    assert [e["name"] for e in r.provenance["extractors"]] == ["digits", "pixels"]
    assert r.provenance["extractor"]["name"] == "digits"
    assert r.warnings.count("KID: subset size lowered from 1000 to 300, the smaller set's size") == 1

    (tmp_path / "g.toml").write_text('[gates]\n"fid@pixels" = { max = 1.0 }\nfid = { max = 100.0 }\n')
    code, out, err = cli("evaluate", digits_npz, "--real", "digits", "--features", "digits,pixels", "--no-cache",
                         "--no-diagnostics", "--gate", tmp_path / "g.toml", "--json", tmp_path / "r.json")
    assert code == 0, err
    assert "ok   fid@pixels max" in out
    assert json.loads((tmp_path / "r.json").read_text())["metrics"]["fid@pixels"]["value"] < 1.0


def test_feature_weights_name_their_extractor(digits_npz, pixels_extractor):
    code, _, err = cli("evaluate", digits_npz, "--real", "digits", "--features", "digits,pixels",
                       "--feature-weights", "some.pth")
    assert code == 2 and "--feature-weights NAME=PATH" in err
    code, _, err = cli("evaluate", digits_npz, "--real", "digits", "--features", "digits,pixels",
                       "--feature-weights", "digits=/nonexistent/w.pth")
    assert code == 2 and "/nonexistent/w.pth" in err


def test_a_metric_that_raises_is_an_error_entry_and_its_gate_fails(tmp_path, digits_npz, monkeypatch):
    from gandiag.metrics import kid

    def broken(self, ctx):
        raise ValueError("kid exploded")

    monkeypatch.setattr(kid.KID, "compute", broken)
    (tmp_path / "g.toml").write_text("[gates]\nkid = { max = 1.0 }\nfid = { max = 1000.0 }\n")
    code, out, err = cli("evaluate", digits_npz, "--real", "digits", "--no-diagnostics", "--metrics", "fid,kid",
                         "--gate", tmp_path / "g.toml", "--json", tmp_path / "r.json")
    assert code == 1, err
    m = json.loads((tmp_path / "r.json").read_text())["metrics"]["kid"]
    assert m["value"] is None and "kid exploded" in m["error"]
    assert "FAIL kid max: kid its computation failed: ValueError: kid exploded" in out
    assert "ok   fid max" in out


def test_every_option_is_declared_once_and_reaches_the_cli():
    code, out, _ = cli("evaluate", "--help")
    assert code == 0
    for f in dataclasses.fields(EvalOptions):
        for flag in f.metadata.get("flags", ()):
            assert flag.split("/")[0] in out, flag
    code, out, _ = cli("diagnose", "--help")
    assert "--seed" in out and "--kid-subsets" not in out  # diagnose takes the common options only
    assert EvalOptions().seed == 2020 and "default: 2020" in " ".join(cli("evaluate", "--help")[1].split())
    with pytest.raises(TypeError, match="unknown evaluation option"):
        EvalOptions().with_overrides(sede=3)
    assert EvalOptions().with_overrides(feature_extractor="a, b").feature_extractor == ["a", "b"]
    # a string is never split into letters (metrics="fid" once asked for metrics 'f', 'i' and 'd')
    spelled = EvalOptions().with_overrides(metrics="fid", diagnostics="mode_collapse,memorization",
                                           generator_path=Path("../sg2"), feature_weights="w.pth")
    assert spelled.metrics == ["fid"] and spelled.diagnostics == ["mode_collapse", "memorization"]
    assert spelled.generator_path == ("../sg2",) and spelled.feature_weights == ("w.pth",)
    assert EvalOptions().with_overrides(metrics="fid, kid").metrics == ["fid", "kid"]


def test_kid_says_when_its_spread_means_nothing(digits_npz):
    """Both sets smaller than the subset size and equal: every subset is both whole sets, the ± is 0."""
    import gandiag

    r = gandiag.evaluate(digits_npz, digits_npz, feature_extractor="digits", metrics=["kid"], diagnostics=False,
                         use_cache=False)
    assert r.metrics["kid"]["std"] < 1e-9
    assert any("its ± is 0 and says nothing" in w for w in r.warnings)
