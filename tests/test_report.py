"""The HTML report: sections from real (small) evaluations, saved JSON + artifacts, comparisons, untrusted names."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from gandiag import plugins
from gandiag.data.mixtures import MIXTURES
from gandiag.pipeline import evaluate
from gandiag.report import render_html, render_report
from gandiag.report.artifacts import artifacts_path, save_artifacts
from gandiag.results import Results

XSS = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("report")


@pytest.fixture(scope="module")
def digits_results(work):
    from gandiag.features.digits import digits_uint8

    images, _ = digits_uint8()
    path = work / "digits.npz"
    np.savez(path, images=images[:300])
    return evaluate(path, "digits", metrics=["fid", "precision", "recall"], num_samples=300, diagnostics=False)


@pytest.fixture(scope="module")
def ring_results(work):
    pts, _ = MIXTURES["ring8"].sample(600, 7)
    pts = pts[np.isin(np.arange(len(pts)) % 8, range(6))]  # keep it simple: any 2-D points
    path = work / "ring.npz"
    np.savez(path, samples=pts)
    return evaluate(path, "ring8", metrics=["fid", "precision", "recall"], diagnostics=False)


def cli():
    from gandiag.cli import _add_plugin_commands
    from gandiag.cli import cli as group

    _add_plugin_commands()
    return group


def assert_self_contained(html: str):
    assert "<script" not in html.lower()
    assert not re.search(r'(src|href)="(?!data:|#)', html), "a reference to another file or site"
    assert "url(" not in html  # no fonts or images through CSS
    assert "This section failed" not in html


def test_single_report_has_every_section(digits_results, work):
    path = render_report([digits_results], work / "digits.html")
    html = path.read_text()
    assert_self_contained(html)
    for title in ("Summary", "Samples", "Real vs generated in feature space", "Modes", "NDB", "duplicates",
                  "memorisation", "Gradient norms per layer", "Training curves", "Provenance"):
        assert title in html
    assert html.count("data:image/png;base64,") >= 4  # samples, real samples, PCA, class histogram, neighbours
    assert "FID [digits]" in html
    # The fake set *is* real data here, so the memorisation check must say so.
    assert "possible copies of training data" in html
    # Sections with nothing to show say so in one line.
    assert "No training log" in html and "No NDB diagnostic" in html


def test_points_report_marks_modes(ring_results, work):
    html = render_html([ring_results])
    assert_self_contained(html)
    assert "modes captured" in html and "Crosses mark the 8 modes" in html


def test_report_from_saved_json_uses_artifacts(digits_results, work):
    json_path = work / "saved" / "out.json"
    json_path.parent.mkdir()
    save_artifacts(digits_results, json_path)
    digits_results.save(json_path)
    ref = json.loads(json_path.read_text())["provenance"]["artifacts"]
    assert ref["path"] == "out.artifacts.npz" and len(ref["sha256"]) == 64
    out = work / "saved" / "report.html"
    res = CliRunner().invoke(cli(), ["report", str(json_path), "-o", str(out)])
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert_self_contained(html)
    assert "Generated samples, one row per class" in html
    assert "PCA of digits features" in html
    # A sidecar that does not match the JSON is reported, not shown.
    arts = artifacts_path(json_path)
    arts.write_bytes(arts.read_bytes() + b"x")
    res = CliRunner().invoke(cli(), ["report", str(json_path), "-o", str(out)])
    assert res.exit_code == 0
    assert "sha256 differs" in out.read_text()
    arts.unlink()
    res = CliRunner().invoke(cli(), ["report", str(json_path), "-o", str(out)])
    assert "is missing" in out.read_text()


def test_comparison_report(digits_results, ring_results, work):
    a = Results.from_json(json.loads(json.dumps(digits_results.to_json())))
    b = Results.from_json(json.loads(json.dumps(digits_results.to_json())))
    b.metrics["fid"]["value"] *= 2
    b.metrics["fid"]["ci95"] = [b.metrics["fid"]["value"] * 0.9, b.metrics["fid"]["value"] * 1.1]
    html = render_html([a, b, digits_results])
    assert_self_contained(html)
    assert "Runs side by side" in html and "Metric trends across runs" in html
    assert html.count("<details") == 3
    assert "1. digits.npz" in html and "3. digits.npz" in html


def test_untrusted_names_are_escaped(digits_results):
    r = Results.from_json(json.loads(json.dumps(digits_results.to_json())))
    r.generator["path"] = f"/ckpt/{XSS}.pt"
    r.generator["meta"] = {XSS: XSS}
    r.warnings.append(XSS)
    r.diagnostics["mode_collapse"] = {"verdict": XSS, "reasons": [{"message": XSS}], XSS: 1}
    html = render_html([r, r])
    assert XSS not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert_self_contained(html)


DIAGNOSTICS = {
    "mode_collapse": {
        "verdict": "partial", "reasons": [{"signal": "ndb", "level": "partial", "message": "NDB 12/100 bins differ"}],
        "missing_modes": [3], "modes_captured": 9, "modes_total": 10,
        "signals": {
            "classes": {"share": [0.1] * 9 + [0.0], "real_share": [0.1] * 10, "counts": [30] * 9 + [0]},
            "ndb": {"k": 20, "ndb": 2, "ndb_over_k": 0.1, "js": 0.01,
                    "different_bins": [{"bin": 3, "real_share": 0.1, "fake_share": 0.01, "z": -4.0, "p": 1e-5,
                                        "direction": "under"}, {"bin": 7, "real_share": 0.05, "fake_share": 0.12}]},
            "duplicates": {"duplicate_pairs": 1, "closest_pairs": [{"i": 0, "j": 1, "distance": 0.0}, [2, 5, 0.5]]},
        },
    },
    "gradient_health": {
        "verdict": "warning", "reasons": ["D gradient norm is 250 (> 100)"],
        "grad_norms": {"G": {"net.0.weight": 1.5, "net.2.weight": 0.2}, "D": {"net.0.weight": 250.0, "net.2.weight": None}},
        "spectral_norms": {"G": {"net.0.weight": 3.0}, "D": {"net.0.weight": 40.0}},
    },
}


def test_diagnostics_sections_render_documented_keys(digits_results):
    r = Results(dict(digits_results.metrics), dict(digits_results.generator), None, digits_results.real,
                dict(digits_results.provenance), json.loads(json.dumps(DIAGNOSTICS)), [], dict(digits_results.extras))
    html = render_html([r])
    assert_self_contained(html)
    assert "NDB 12/100 bins differ" in html  # reason
    assert "under" in html and "each bin that differs significantly" in html
    assert "Pairs among the kept samples" in html  # indices 0,1 and 2,5 are kept samples: shown as images
    assert "Gradient L2 norm per layer" in html and "Top singular value per layer" in html
    assert 'class="badge warn">partial' in html and 'class="badge warn">warning' in html


@pytest.mark.parametrize("garbage", [
    {"mode_collapse": {"verdict": None, "signals": {"ndb": {"different_bins": "x"}, "duplicates": {"closest_pairs": [None, "ab", {}]}}}},
    {"mode_collapse": "not a dict", "gradient_health": {"grad_norms": {"G": {"a.weight": "x"}}}},
    {"gradient_health": {"verdict": "unhealthy", "reasons": [1, None, {"no": "message"}], "grad_norms": []}},
    {"mode_collapse": {"signals": {"ndb": {"proportions_real": [0.5, 0.5], "proportions_fake": [1.0], "different_bins": [0, 9]}}}},
])
def test_missing_or_odd_keys_never_crash_the_report(digits_results, garbage):
    r = Results(dict(digits_results.metrics), dict(digits_results.generator), None, None, {}, garbage, [])
    html = render_html([r])
    assert_self_contained(html)


def test_training_curves_from_log_jsonl(digits_results, work):
    ckpt_dir = work / "run"
    ckpt_dir.mkdir()
    (ckpt_dir / "checkpoint.pt").write_bytes(b"")
    lines = [{"step": s, "time": s / 10, "d_loss": 1.0 / s, "g_loss": 0.5 + s / 100, "d_real": 0.6, "lr_g": 1e-4,
              "grad_norm": {"G": {"net.0.weight": 1.0 + s}, "D": {"net.0.weight": 2.0}},
              "grad_norm_total": {"G": 1.0 + s, "D": 2.0}, "sigma_max": {"G": {"net.0.weight": 1.2}, "D": {"net.0.weight": 3.0}},
              "eval": {"fid": 50.0 / s, "classes_covered": 10}} for s in range(1, 6)]
    (ckpt_dir / "log.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n{\"step\": 6, \"d_lo")  # cut by a kill
    r = Results({}, {"path": str(ckpt_dir / "checkpoint.pt"), "format": "gandiag"}, None, None, {}, {}, [])
    html = render_html([r])
    assert_self_contained(html)
    assert "5 records from" in html
    assert "from log.jsonl, step 5." in html  # per-layer norms fall back to the log


def test_inline_section_plugin_is_rendered(digits_results):
    from gandiag.hookspecs import hookimpl

    class Mine:
        name, title, order = "mine", "My section", 15

        def render(self, view):
            return view.render("<p>hello {{ n }}</p>", n=XSS)

    class Plugin:
        @hookimpl
        def register_report_sections(self, register):
            register(Mine())

    plugins.load_plugins()
    plugins.pm.register(Plugin(), name="test-report-section")
    plugins.reset()
    try:
        html = render_html([digits_results])
    finally:
        plugins.pm.unregister(name="test-report-section")
        plugins.reset()
    assert "My section" in html and "hello &lt;script&gt;" in html
    assert html.index("My section") < html.index("Real vs generated in feature space")


def test_evaluate_cli_writes_json_artifacts_and_report(work):
    pts, _ = MIXTURES["ring8"].sample(300, 3)
    np.savez(work / "cli_ring.npz", samples=pts)
    out = work / "cli"
    res = CliRunner().invoke(cli(), ["evaluate", str(work / "cli_ring.npz"), "--real", "ring8", "--metrics", "fid,precision",
                                     "--no-diagnostics", "--json", str(out / "r.json"), "--report", str(out / "r.html"), "-q"])
    assert res.exit_code == 0, res.output
    assert (out / "r.artifacts.npz").is_file()
    assert "Crosses mark the 8 modes" in (out / "r.html").read_text()
    shutil.rmtree(out)
