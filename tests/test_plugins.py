"""Plugins, written the way a third party writes them: everything a plugin uses comes from ``gandiag``.

- one end-to-end test per hook, named ``test_hook_<hook>`` (a test below fails when a hookspec has no
  such test, or is not documented in docs/plugins.md: datasette's rule);
- one case per validation rule, through the CLI: exit 2 and the one-line message a plugin author sees;
- the plugin of tests/plugins/ installed through a real entry point, as pip would leave it;
- built-ins registered ``trylast`` and overridable by name.

Only registering a plugin inline (``plugins.pm.register`` + ``plugins.reset``) and invoking the CLI
in-process reach past the public API: that is the test harness's business, not the plugin's.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import gandiag
import gandiag.hookspecs as hookspecs  # the harness: which hooks exist
import gandiag.plugins as plugins  # the harness: registering inline plugins
from conftest import installed
from gandiag import (ERROR, ExtractorSpec, GeneratorContract, LoadedGenerator, PluginError, Results, SampleSet,
                     hookimpl, reason)

HERE = Path(__file__).parent
DOC = HERE.parent / "docs" / "plugins.md"


# ----------------------------------------------------------------------------- harness


def plugin(**hooks):
    """A plugin object implementing ``hooks`` (hook name -> function), like a module of @hookimpl functions."""
    return types.SimpleNamespace(**{name: hookimpl(fn) for name, fn in hooks.items()})


def registering(hook, *objects):
    """A plugin whose ``hook`` registers each of ``objects`` (a tuple is passed as several arguments)."""

    def impl(register):
        for obj in objects:
            register(*(obj if isinstance(obj, tuple) else (obj,)))

    return plugin(**{hook: impl})


def run_cli(args):
    """``gandiag ARGS`` in-process, with the plugins' commands added as ``gandiag`` itself does."""
    from gandiag.cli import _add_plugin_commands, cli

    _add_plugin_commands()
    return CliRunner().invoke(cli, [str(a) for a in args])


def ring_npz(path, n=300, seed=0, radius=1.0):
    """Points on the 8 modes of a ring (what ring8 holds), saved as pre-generated samples."""
    rng = np.random.default_rng(seed)
    angle = rng.integers(0, 8, n) * (np.pi / 4)
    pts = radius * np.stack([np.cos(angle), np.sin(angle)], 1) + 0.01 * rng.normal(size=(n, 2))
    np.savez(path, samples=pts.astype(np.float32))
    return pts


EVAL = ["--no-progress", "--no-diagnostics"]


# ----------------------------------------------------------------------------- one test per hook


class Strokes:
    """A sample kind: short 2D strokes, (N, T, 2) arrays, whose canonical batch is (N, T*2) float32."""

    name, description = "strokes", "test plugin: (N, T, 2) pen strokes, flattened"
    output_ndim, array_ndims, layouts, default_n, keep = 3, (3,), ("NTC",), 200, None

    def detect(self, contract, probe):
        import dataclasses

        return dataclasses.replace(contract, layout="NTC", sample_shape=tuple(probe.shape[1:]))

    def canonical(self, batch, contract):
        return batch.float().flatten(1)

    def from_array(self, arr, description, layout=None):
        return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).flatten(1)


class StrokeLength:
    """An extractor for strokes: the length of each stroke (1-d features)."""

    name, roles, kinds, weights_sha256, preprocessing = "stroke-length", {"pool": 1}, ("strokes",), None, "length"

    def __call__(self, batch):
        pts = batch.view(batch.shape[0], -1, 2).float()
        return {"pool": (pts[:, 1:] - pts[:, :-1]).norm(dim=2).sum(1, keepdim=True)}


def test_hook_register_sample_kinds(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "fake.npz", strokes=rng.normal(size=(120, 5, 2)).astype(np.float32))
    np.savez(tmp_path / "real.npz", strokes=rng.normal(size=(150, 5, 2)).astype(np.float32))
    spec = ExtractorSpec("stroke-length", "test plugin: stroke lengths", ("strokes",), lambda w, device: StrokeLength())
    with installed(registering("register_sample_kinds", Strokes())), \
            installed(registering("register_feature_extractors", spec), name="inline-extractor"):
        r = gandiag.evaluate(tmp_path / "fake.npz", str(tmp_path / "real.npz"), metrics=["fid"], diagnostics=False,
                             use_cache=False)
        assert r.provenance["extractor"]["name"] == "stroke-length" and r.value("fid") < 1.0
        res = run_cli(["evaluate", tmp_path / "fake.npz", "--real", tmp_path / "real.npz", "--layout", "NCHW", *EVAL])
        assert res.exit_code == 2 and "--layout NCHW is not a layout of strokes (NTC)" in res.stderr
    res = run_cli(["evaluate", tmp_path / "fake.npz", "--real", tmp_path / "real.npz", *EVAL])
    assert res.exit_code == 2  # without the plugin, 3-d arrays are grey images of 5x2 pixels: no extractor fits


class GaussText:
    """A loader: a ``.gauss`` text file holds a scale; the generator is z * scale."""

    name = "gauss-text"
    description = "test plugin: .gauss files (a scale)"

    def sniff(self, path):
        return path.suffix == ".gauss"

    def load(self, path, options):
        scale = float(path.read_text())
        return LoadedGenerator(lambda z, labels=None: scale * z, GeneratorContract(latent_dim=2), "gauss", str(path))


def test_hook_register_loaders(tmp_path):
    (tmp_path / "g.gauss").write_text("0.5")
    with installed(registering("register_loaders", GaussText())):
        listing = {p["name"]: p for p in json.loads(run_cli(["plugins"]).stdout)}
        assert listing["inline-test"]["provides"] == {"loader": ["gauss-text"]}
        res = run_cli(["evaluate", tmp_path / "g.gauss", "--real", "ring8", "-n", 200, "--metrics", "precision",
                       "--json", tmp_path / "r.json", *EVAL])
    assert res.exit_code == 0, res.output
    d = json.loads((tmp_path / "r.json").read_text())
    assert d["generator"]["loader"] == "gauss-text" and d["generator"]["format"] == "gauss"
    assert d["contract"]["kind"] == "points" and d["contract"]["latent_dim"] == 2  # probed from the output


class Line:
    """A real-data source: points on the segment [-1, 1] x {0}."""

    name = "line"
    description = "test plugin: points on a segment"
    default_extractor = "points"

    def matches(self, spec):
        return spec == self.name

    def load(self, spec, n, seed):
        g = torch.Generator().manual_seed(seed)
        x = torch.rand(n or 500, generator=g) * 2 - 1
        return SampleSet("points", torch.stack([x, torch.zeros_like(x)], 1), None, "a segment", {"source": "line"})


def test_hook_register_real_sources(tmp_path):
    x = np.random.default_rng(1).uniform(-1, 1, 300)
    np.savez(tmp_path / "fake.npz", samples=np.stack([x, np.zeros_like(x)], 1).astype(np.float32))
    with installed(registering("register_real_sources", Line())):
        r = gandiag.evaluate(tmp_path / "fake.npz", "line", metrics=["precision", "recall"], diagnostics=False)
    assert isinstance(r, Results)
    assert r.real["source"] == "line" and r.real["n"] == 300 and r.real["description"] == "a segment"
    assert r.provenance["extractor"]["name"] == "points"  # the source's default_extractor
    assert r.value("precision") > 0.9 and r.value("recall") > 0.9


class Radius:
    """A feature extractor (what ``build`` returns): each point's distance from the origin."""

    name, roles, kinds = "radius", {"pool": 1}, ("points",)
    weights_sha256, preprocessing = None, "L2 norm of each point"

    def __call__(self, batch):
        return {"pool": batch.float().norm(dim=1, keepdim=True)}


class RadiusSpec:
    """Not an ExtractorSpec, but an object with the same attributes: accepted too."""

    name, description, kinds = "radius-plain", "test plugin: distance from the origin", ("points",)

    def build(self, weights_path, device):
        return Radius()


def test_hook_register_feature_extractors(tmp_path):
    ring_npz(tmp_path / "fake.npz", radius=1.5)
    spec = ExtractorSpec("radius", "test plugin: distance from the origin", ("points",), lambda w, device: Radius())
    with installed(registering("register_feature_extractors", spec, RadiusSpec())):
        for name in ("radius", "radius-plain"):
            r = gandiag.evaluate(tmp_path / "fake.npz", "ring8", feature_extractor=name, metrics=["fid"],
                                 diagnostics=False, use_cache=False)
            assert r.provenance["extractor"]["name"] == "radius"
            assert r.metrics["fid"]["features"] == "radius"
            assert r.value("fid") == pytest.approx(0.25, abs=0.01)  # radii 1.5 vs 1: FID of two near-constants


class Spread:
    """A metric: the mean distance of generated features from their mean."""

    name, label, role = "spread", "Spread", "pool"
    needs_real, higher_is_better = False, True
    description = "test plugin: mean distance from the centroid"

    def compute(self, ctx):
        f = ctx.fake.features(self.role)
        return {"value": float((f - f.mean(0)).norm(dim=1).mean())}


def test_hook_register_metrics(tmp_path):
    pts = ring_npz(tmp_path / "fake.npz")
    (tmp_path / "gates.toml").write_text("[gates]\nspread = { min = 5.0 }\n")
    with installed(registering("register_metrics", Spread())):
        res = run_cli(["evaluate", tmp_path / "fake.npz", "--real", "ring8", "--metrics", "spread,fid",
                       "--json", tmp_path / "r.json", "--gate", tmp_path / "gates.toml", *EVAL])
    assert res.exit_code == 1, res.output  # computed, summarised, and gated like a built-in
    assert "Spread" in res.output and "spread" in res.output
    d = json.loads((tmp_path / "r.json").read_text())
    expected = np.linalg.norm(pts - pts.mean(0), axis=1).mean()
    assert d["metrics"]["spread"]["value"] == pytest.approx(expected, rel=1e-4)
    assert d["metrics"]["spread"]["higher_is_better"] is True and "fid" in d["metrics"]


class TooSpread:
    """A diagnostic with its own verdicts, ``ok`` / ``spread``, and the reasons behind them."""

    name = "too_spread"
    description = "test plugin: are generated points further from the origin than 1.2?"

    def applies(self, ctx):
        return ctx.fake_kept is not None and ctx.fake_kept.ndim == 2

    def run(self, ctx):
        r = float(ctx.fake_kept.norm(dim=1).mean())
        if r <= 1.2:
            return {"verdict": "ok", "reasons": [], "radius": r}
        return {"verdict": "spread", "radius": r,
                "reasons": [reason("radius", "spread", f"mean radius {r:.2f} is above 1.2", value=r, threshold=1.2)]}


class Broken:
    name = "broken_check"

    def applies(self, ctx):
        return True

    def run(self, ctx):
        raise RuntimeError("boom")


class NeverApplies:
    name = "never_applies"

    def applies(self, ctx):
        return False

    def run(self, ctx):  # pragma: no cover - must not be called
        raise AssertionError("ran a diagnostic that does not apply")


def test_hook_register_diagnostics(tmp_path):
    ring_npz(tmp_path / "ok.npz")
    ring_npz(tmp_path / "wide.npz", radius=2.0)
    (tmp_path / "gates.toml").write_text('[gates]\ntoo_spread = { allow = ["ok"] }\n')
    with installed(registering("register_diagnostics", TooSpread(), Broken(), NeverApplies())):
        runs = {name: run_cli(["evaluate", tmp_path / f"{name}.npz", "--real", "ring8", "--metrics", "fid",
                               "--no-progress", "--gate", tmp_path / "gates.toml", "--json", tmp_path / f"{name}.json"])
                for name in ("ok", "wide")}
    assert runs["ok"].exit_code == 0, runs["ok"].output
    assert runs["wide"].exit_code == 1, runs["wide"].output  # the verdict is gated
    assert "mean radius 2.00 is above 1.2" in runs["wide"].output
    d = json.loads((tmp_path / "wide.json").read_text())["diagnostics"]
    assert d["too_spread"]["verdict"] == "spread" and d["too_spread"]["radius"] == pytest.approx(2.0, abs=0.02)
    assert d["too_spread"]["reasons"][0] == {"signal": "radius", "level": "spread", "threshold": 1.2,
                                            "message": "mean radius 2.00 is above 1.2",
                                            "value": pytest.approx(2.0, abs=0.02)}
    assert d["broken_check"]["verdict"] == ERROR and "boom" in d["broken_check"]["reasons"][0]["message"]
    assert "never_applies" not in d


class RadiusSection:
    name, title, order = "radius", "Radius <check>", 15

    def render(self, view):
        return view.render("<p>{{ n }} metrics; path {{ path }}</p>", n=len(view.results.metrics),
                           path=view.results.generator["path"])


class RunsCounted:
    name, title, scope = "runs_counted", "Runs counted", "comparison"

    def render(self, view):
        return view.render("<p>{{ k }} runs compared</p>", k=len(view.runs))


def test_hook_register_report_sections(tmp_path):
    ring_npz(tmp_path / "a<b>.npz")
    with installed(registering("register_report_sections", RadiusSection(), RunsCounted())):
        res = run_cli(["evaluate", tmp_path / "a<b>.npz", "--real", "ring8", "--metrics", "fid,precision",
                       "--json", tmp_path / "r.json", "--report", tmp_path / "r.html", *EVAL])
        assert res.exit_code == 0, res.output
        html = (tmp_path / "r.html").read_text()
        assert "Radius &lt;check&gt;" in html and "2 metrics; path " in html and "a&lt;b&gt;.npz" in html
        assert html.index("Radius &lt;check&gt;") < html.index("Real vs generated in feature space")  # order 15
        assert "runs compared" not in html  # a comparison section is not in a single run's report
        res = run_cli(["report", tmp_path / "r.json", tmp_path / "r.json", "-o", tmp_path / "c.html"])
        assert res.exit_code == 0, res.output
        assert "2 runs compared" in (tmp_path / "c.html").read_text()


def tiny_line(latent_dim=2, scale=1.0):
    """An architecture builder: a linear map of the latent (a function; a class works too)."""
    net = torch.nn.Linear(latent_dim, 2)
    with torch.no_grad():
        net.weight.copy_(scale * torch.eye(2, latent_dim))
        net.bias.zero_()
    return net


def test_hook_register_architectures(tmp_path):
    # A gandiag checkpoint (docs/checkpoint-format.md) written by hand, naming the plugin's architecture.
    net = tiny_line(scale=0.5)
    torch.save({"format": "gandiag.checkpoint", "format_version": 1,
                "generator": {"arch": "tiny-line", "kwargs": {"latent_dim": 2, "scale": 0.5},
                              "state_dict": net.state_dict()},
                "discriminator": None, "ema_generator": None,
                "contract": GeneratorContract(latent_dim=2, kind="points", sample_shape=(2,)).to_json(),
                "data": {"source": "ring8"}, "config": {}, "step": 7, "optimizers": {}, "rng": {}},
               tmp_path / "ckpt.pt")
    args = ["evaluate", tmp_path / "ckpt.pt", "-n", 200, "--metrics", "fid", "--json", tmp_path / "r.json", *EVAL]
    before = run_cli(args)
    assert before.exit_code == 2 and "unknown architecture 'tiny-line'" in before.stderr
    with installed(registering("register_architectures", ("tiny-line", tiny_line))):
        res = run_cli(args)
    assert res.exit_code == 0, res.output
    d = json.loads((tmp_path / "r.json").read_text())
    assert d["generator"]["loader"] == "torch" and d["real"]["source"] == "ring8"  # the checkpoint's data


def test_hook_register_commands(tmp_path):
    from gandiag.cli import cli

    def register_commands(cli):
        import click

        @cli.command("count-metrics")
        @click.argument("results_json")
        def count_metrics(results_json):
            """Print how many metrics a results file holds."""
            click.echo(f"{len(Results.load(results_json).metrics)} metrics")

    ring_npz(tmp_path / "fake.npz")
    try:
        with installed(plugin(register_commands=register_commands)):
            assert run_cli(["evaluate", tmp_path / "fake.npz", "--real", "ring8", "--metrics", "fid,kid",
                            "--json", tmp_path / "r.json", *EVAL]).exit_code == 0
            assert "count-metrics" in run_cli(["--help"]).output
            res = run_cli(["count-metrics", tmp_path / "r.json"])
            assert res.exit_code == 0 and res.output == "2 metrics\n"
            (tmp_path / "bad.json").write_text("{")
            res = run_cli(["count-metrics", tmp_path / "bad.json"])  # a GandiagError in a plugin's command: exit 2
            assert res.exit_code == 2 and res.stderr.startswith("gandiag: error: ") and res.stderr.count("\n") == 1
    finally:
        cli.commands.pop("count-metrics", None)


# ----------------------------------------------------------------------------- validation


DROP = object()


def thing(cls_name, base, **changes):
    """An instance of a class ``cls_name`` with ``base``'s attributes, changed; DROP removes one."""
    attrs = {k: v for k, v in {**base, **changes}.items() if v is not DROP}
    return type(cls_name, (), attrs)()


LOADER = dict(name="txt", description="test: .txt files", sniff=lambda self, path: False,
              load=lambda self, path, options: None)
SOURCE = dict(name="line", description="test: a segment", matches=lambda self, spec: False,
              load=lambda self, spec, n, seed: None)
EXTRACTOR = dict(name="radius", description="test: distance from the origin", kinds=("points",),
                 build=lambda self, weights_path, device: None)
METRIC = dict(name="spread", label="Spread", role="pool", needs_real=False, higher_is_better=True,
              compute=lambda self, ctx: {"value": 0.0})
DIAGNOSTIC = dict(name="too_spread", applies=lambda self, ctx: True, run=lambda self, ctx: {"verdict": "ok"})
SECTION = dict(name="radius", title="Radius", render=lambda self, view: None)
NAME_RULE = "it must be non-empty text without spaces, commas or control characters"

# case -> (hook, what the plugin registers, the one line it gets)
INVALID = {  # case -> (hook, what the plugin registers, the line it gets after "plugin 'my_plugin' ")
    "metric without role": (
        "register_metrics", thing("Spread", METRIC, role=DROP),
        "registered metric 'spread' without 'role' (a str: the feature role it reads, 'pool' or 'logits')"),
    "metric needs_real not a bool": (
        "register_metrics", thing("Spread", METRIC, needs_real="yes"),
        "registered metric 'spread' whose 'needs_real' is 'yes' (a str); "
        "it must be a bool: whether it compares with real data"),
    "metric compute not callable": (
        "register_metrics", thing("Spread", METRIC, compute=0.5),
        "registered metric 'spread' whose 'compute' is 0.5 (a float); "
        "it must be a method compute(ctx) -> {'value': float, ...}; `ctx` is a `MetricContext`"),
    "metric compute without ctx": (
        "register_metrics", thing("Spread", METRIC, compute=lambda self: {}),
        "registered metric 'spread' whose 'compute' cannot be called as compute(ctx): it takes ()"),
    "metric label blank": (
        "register_metrics", thing("Spread", METRIC, label=" "),
        "registered metric 'spread' whose 'label' is ' ' (a str); it must be a str: the name people read, e.g. 'FID'"),
    "metric without name": (
        "register_metrics", thing("Spread", METRIC, name=DROP),
        "registered a metric (Spread) without 'name' (non-empty text without spaces, commas or control characters)"),
    "metric empty name": (
        "register_metrics", thing("Spread", METRIC, name=""),
        "registered a metric (Spread) whose 'name' is '' (a str); " + NAME_RULE),
    "metric name with a comma": (
        "register_metrics", thing("Spread", METRIC, name="fid,kid"),
        "registered a metric (Spread) whose 'name' is 'fid,kid' (a str); " + NAME_RULE),
    "metric name not text": (
        "register_metrics", thing("Spread", METRIC, name=3),
        "registered a metric (Spread) whose 'name' is 3 (an int); " + NAME_RULE),
    "metric class, not instance": (
        "register_metrics", type("Spread", (), METRIC),
        "registered the class Spread as a metric; register an instance: register(Spread())"),
    "metric registered with two arguments": (
        "register_metrics", ("spread", thing("Spread", METRIC)),
        "called register() with 2 argument(s) in register_metrics; it takes register(metric)"),
    "loader without sniff": (
        "register_loaders", thing("Txt", LOADER, sniff=DROP),
        "registered loader 'txt' without 'sniff' "
        "(a method sniff(path) -> bool: cheap, may this loader read `path` (a `pathlib.Path`)?)"),
    "loader description not text": (
        "register_loaders", thing("Txt", LOADER, description=None),
        "registered loader 'txt' whose 'description' is None (a NoneType); "
        "it must be a str: what files it reads, shown when no loader can read a file"),
    "loader load without options": (
        "register_loaders", thing("Txt", LOADER, load=lambda self, path: None),
        "registered loader 'txt' whose 'load' cannot be called as load(path, options): it takes (path)"),
    "real source without load": (
        "register_real_sources", thing("Line", SOURCE, load=DROP),
        "registered real source 'line' without 'load' "
        "(a method load(spec, n, seed) -> `SampleSet`; `n` may be None (all, or a default))"),
    "real source default_extractor not a name": (
        "register_real_sources", thing("Line", SOURCE, default_extractor=3),
        "registered real source 'line' whose 'default_extractor' is 3 (an int); "
        "it must be a feature extractor's name, or None: the one used on this data when none is named"),
    "extractor kinds a str": (
        "register_feature_extractors", thing("Radius", EXTRACTOR, kinds="points"),
        "registered feature extractor 'radius' whose 'kinds' is 'points' (a str); "
        "it must be a tuple of the sample kinds it takes (registered names: 'images', 'points'...)"),
    "extractor without build": (
        "register_feature_extractors", thing("Radius", EXTRACTOR, build=DROP),
        "registered feature extractor 'radius' without 'build' "
        "(a method build(weights_path, device) -> a `FeatureExtractor` (see `gandiag.FeatureExtractor`))"),
    "ExtractorSpec with an empty name": (
        "register_feature_extractors", ExtractorSpec("", "x", ("points",), print),
        "registered a feature extractor (ExtractorSpec) whose 'name' is '' (a str); " + NAME_RULE),
    "diagnostic without applies": (
        "register_diagnostics", thing("TooSpread", DIAGNOSTIC, applies=DROP),
        "registered diagnostic 'too_spread' without 'applies' "
        "(a method applies(ctx) -> bool: can it judge these samples? `ctx` is an `EvalContext`)"),
    "diagnostic run not callable": (
        "register_diagnostics", thing("TooSpread", DIAGNOSTIC, run="ok"),
        "registered diagnostic 'too_spread' whose 'run' is 'ok' (a str); "
        "it must be a method run(ctx) -> {'verdict': str, 'reasons': [reason(...), ...], ...}"),
    "report section without title": (
        "register_report_sections", thing("Radius", SECTION, title=DROP),
        "registered report section 'radius' without 'title' (a str: the section's heading)"),
    "report section order not a number": (
        "register_report_sections", thing("Radius", SECTION, order="10"),
        "registered report section 'radius' whose 'order' is '10' (a str); "
        "it must be a number: sections are sorted by it (built-ins 5 to 100; default 500)"),
    "report section unknown scope": (
        "register_report_sections", thing("Radius", SECTION, scope="page"),
        "registered report section 'radius' whose 'scope' is 'page' (a str); "
        "it must be 'run' (once per run, the default) or 'comparison' (once, when several runs are compared)"),
    "architecture builder not callable": (
        "register_architectures", ("tiny-line", "torch.nn.Linear"),
        "registered architecture 'tiny-line' whose 'builder' is 'torch.nn.Linear' (a str); "
        "it must be a callable builder(**kwargs) -> torch.nn.Module: a class or a function"),
    "architecture without builder": (
        "register_architectures", ("tiny-line",),
        "called register() with 1 argument(s) in register_architectures; it takes register(name, builder)"),
    "architecture empty name": (
        "register_architectures", ("", tiny_line),
        "registered an architecture whose 'name' is '' (a str); " + NAME_RULE),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_invalid_registration_is_exit_2_naming_the_plugin(case):
    hook, obj, message = INVALID[case]
    message = "plugin 'my_plugin' " + message
    with installed(registering(hook, obj), name="my_plugin"):
        res = run_cli(["plugins"])
        with pytest.raises(PluginError, match=f"^{re.escape(message)}$"):
            plugins.registry(hookspecs.hook_kind(hook))
    assert res.exit_code == 2, res.output
    assert res.stderr == f"gandiag: error: {message}\n"
    assert len(plugins.registry(hookspecs.hook_kind(hook)).names()) > 1  # the built-ins are back, nothing half-registered


def test_misspelt_hook_is_an_error_not_a_silent_no_op(tmp_path):
    ring_npz(tmp_path / "fake.npz")
    with installed(plugin(register_metric=lambda register: register(Spread())), name="my_plugin"):
        res = run_cli(["evaluate", tmp_path / "fake.npz", "--real", "ring8", *EVAL])
    assert res.exit_code == 2
    assert res.stderr == ("gandiag: error: plugin 'my_plugin' implements 'register_metric', which is not a gandiag "
                          "hook; the hooks are: register_architectures, register_commands, register_diagnostics, "
                          "register_feature_extractors, register_loaders, register_metrics, register_real_sources, "
                          "register_report_sections, register_sample_kinds\n")


def test_first_registration_of_a_name_wins():
    other = thing("Spread2", METRIC, label="Second")
    with installed(registering("register_metrics", Spread(), other)):
        reg = plugins.registry("metric")
        assert reg["spread"].label == "Spread" and reg.owner["spread"] == "inline-test"


class _OverrideFID:
    name, label, role, needs_real, higher_is_better = "fid", "FID (override)", "pool", True, False

    def compute(self, ctx):
        return {"value": -1.0}


def test_inline_plugin_overrides_builtin():
    with installed(registering("register_metrics", _OverrideFID())):
        reg = plugins.registry("metric")
        assert reg["fid"].label == "FID (override)" and reg.owner["fid"] == "inline-test"
        assert "kid" in reg  # the rest of the built-ins stay
    assert plugins.registry("metric")["fid"].label == "FID"


# ----------------------------------------------------------------------------- every hook: built-ins, docs, tests

BUILTINS = {
    "sample kind": {"images", "points", "sequences"},
    "loader": {"torch", "onnx", "tensorflow", "stylegan"},
    "real source": {"digits", "ring8", "grid25", "sines", "basicmotions", "gunpoint", "path",
                    "digits-inverted:a", "digits-inverted:b", "digits-thick:a", "digits-thick:b", "ring8-rotated:a",
                    "ring8-rotated:b"},
    "feature extractor": {"inception-v3", "digits", "points", "sequence-stats", "sines", "motion", "dinov2-vits14",
                          "dinov2-vitb14", "dinov2-vitl14", "clip-vitl14-336"},
    "metric": {"is", "fid", "kid", "precision", "recall", "density", "coverage", "disc_score", "pred_score",
               "acf_distance", "marginal_w1", "cmmd"},
    "diagnostic": {"mode_collapse", "memorization", "gradient_health", "temporal_health", "input_ignored",
                   "identity_mapping", "content_preservation", "steganographic_cycle"},
    "report section": {"summary", "samples", "feature_space", "modes", "ndb", "duplicates", "memorisation",
                       "gradients", "training", "provenance", "comparison", "trajectories", "temporal_health",
                       "shapes", "translation"},
    "architecture": {"mlp-generator", "mlp-discriminator", "dcgan-generator", "dcgan-discriminator",
                     "tcn-generator", "tcn-discriminator", "rnn-generator", "rnn-discriminator",
                     "resnet-translator", "patch-discriminator", "mlp-translator"},
}
BUILTIN_COMMANDS = {"train", "diagnose", "export", "report", "gate", "watch"}


def hookspec_names() -> set:
    return {n for n, f in vars(hookspecs).items() if hasattr(f, "gandiag_spec")}


def test_every_hook_fills_its_registry_with_trylast_builtins():
    from gandiag.cli import _add_plugin_commands, cli

    assert set(hookspecs.KINDS) == set(BUILTINS)
    for kind, names in BUILTINS.items():
        reg = plugins.registry(kind)
        assert set(reg.names()) == names, kind
        assert all(reg.owner[n] not in ("", None) for n in names)
    _add_plugin_commands()
    assert BUILTIN_COMMANDS <= set(cli.commands)
    builtin_plugins = {m.rsplit(".", 1)[-1] for m in plugins.DEFAULT_PLUGINS} | BUILTINS["loader"]
    for hook in hookspec_names():
        impls = getattr(plugins.pm.hook, hook).get_hookimpls()
        assert impls, f"no plugin implements {hook}"
        for impl in impls:
            if impl.plugin_name in builtin_plugins:
                assert impl.trylast, f"built-in {impl.plugin_name}.{hook} must be trylast so plugins can replace it"


def test_every_hook_is_validated_documented_and_tested():
    doc = DOC.read_text()
    specs = hookspec_names()
    assert specs == {k.hook for k in hookspecs.KINDS.values()} | {hookspecs.COMMAND_HOOK}
    for name in sorted(specs):
        assert f"`{name}(" in doc, f"{name} is not documented in docs/plugins.md"
        assert callable(globals().get(f"test_hook_{name}")), f"{name} has no test_hook_{name} in tests/test_plugins.py"
    generated = re.search(r"<!-- requirements: start -->\n(.*?)<!-- requirements: end -->", doc, re.S).group(1)
    assert generated.strip() == hookspecs.requirements_markdown().strip(), (
        "docs/plugins.md's requirements are out of date: paste the output of "
        "python -c 'from gandiag.hookspecs import requirements_markdown as r; print(r())'")


def test_documented_example_is_the_tested_plugin_and_uses_public_names():
    doc = DOC.read_text()
    example = re.search(r"```python\n(\"\"\"A third-party plugin.*?)```", doc, re.S).group(1)
    assert example == (HERE / "plugins" / "fake_gandiag_plugin.py").read_text()
    tests = Path(__file__).read_text()
    for block in re.findall(r"```python\n(.*?)```", doc, re.S):
        assert not re.search(r"^\s*(from gandiag\.|import gandiag\.)", block, re.M), "docs import an internal module"
        assert block == example or block.rstrip() in tests, f"a docs snippet is not taken from a test:\n{block}"
    for case in ("metric without role", "metric needs_real not a bool"):  # the errors the page shows are real
        assert f"gandiag: error: plugin 'my_plugin' {INVALID[case][2]}" in doc


def test_public_api_is_complete_and_import_is_cheap():
    code = ("import sys, gandiag; assert 'torch' not in sys.modules, 'import gandiag imported torch'\n"
            "missing = [n for n in gandiag.__all__ if not hasattr(gandiag, n)]; assert not missing, missing\n"
            "assert gandiag.hookimpl is __import__('gandiag.hookspecs').hookspecs.hookimpl\n"
            "assert set(gandiag.__all__) <= set(dir(gandiag))\n"
            "from gandiag import plugins, cli  # submodules still import\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    for name in ("hookimpl", "GeneratorContract", "LoadedGenerator", "LoadOptions", "SampleSet", "ExtractorSpec",
                 "FeatureSet", "MetricContext", "Results", "reason", "ERROR", "NOT_APPLICABLE", "evaluate",
                 "GandiagError", "PluginError", "CheckpointError", "DataError"):
        assert name in gandiag.__all__
    assert issubclass(PluginError, gandiag.GandiagError)


# ----------------------------------------------------------------------------- entry points


@pytest.fixture
def installed_fake_plugin(tmp_path):
    """A site dir holding a dist-info with entry_points.txt: what pip install would leave."""
    dist = tmp_path / "fake_gandiag_plugin-0.3.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-gandiag-plugin\nVersion: 0.3.1\n")
    (dist / "entry_points.txt").write_text("[gandiag]\nringfile = fake_gandiag_plugin\n")
    (tmp_path / "fake_gandiag_plugin.py").write_text((HERE / "plugins" / "fake_gandiag_plugin.py").read_text())
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    return tmp_path, env


def _gandiag(args, env, cwd):
    return subprocess.run([sys.executable, "-m", "gandiag.cli", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


def test_entry_point_plugin_is_listed_and_used(installed_fake_plugin):
    tmp, env = installed_fake_plugin
    listing = {p["name"]: p for p in json.loads(_gandiag(["plugins"], env, tmp).stdout)}
    fake = listing["ringfile"]
    assert fake["builtin"] is False and fake["version"] == "0.3.1" and fake["package"] == "fake-gandiag-plugin"
    assert fake["provides"] == {"loader": ["ringfile"], "metric": ["mean_norm"]}

    (tmp / "model.ring").write_text("1.0")
    res = _gandiag(["evaluate", "model.ring", "-n", "400", "--json", "r.json", "--no-progress"], env, tmp)
    assert res.returncode == 0, res.stderr
    d = json.loads((tmp / "r.json").read_text())
    assert d["generator"]["loader"] == "ringfile" and d["real"]["source"] == "ring8"
    assert d["metrics"]["mean_norm"]["value"] == pytest.approx(1.0, abs=0.05)
    assert d["metrics"]["precision"]["value"] > 0.9


def test_autoload_can_be_restricted(installed_fake_plugin):
    tmp, env = installed_fake_plugin
    listing = json.loads(_gandiag(["plugins"], dict(env, GANDIAG_PLUGINS="torch"), tmp).stdout)
    assert "ringfile" not in {p["name"] for p in listing} and "torch" in {p["name"] for p in listing}


def test_entry_point_that_fails_to_load_is_exit_2_naming_it(installed_fake_plugin):
    tmp, env = installed_fake_plugin
    dist = tmp / "broken_gandiag_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-gandiag-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[gandiag]\nbroken = broken_gandiag_plugin\n")
    (tmp / "broken_gandiag_plugin.py").write_text("import gandiag_dependency_not_installed\n")
    res = _gandiag(["plugins"], env, tmp)
    assert res.returncode == 2, res.stderr
    assert res.stderr == ("gandiag: error: plugin 'broken' (entry point of the 'gandiag' group) could not be loaded: "
                          "ModuleNotFoundError: No module named 'gandiag_dependency_not_installed'\n")
    assert _gandiag(["plugins"], dict(env, GANDIAG_PLUGINS="ringfile,torch"), tmp).returncode == 0  # the way round it
