"""The HTML report: sections from real (small) evaluations, saved JSON + artifacts, comparisons, untrusted names.

Assertions look inside the section they test (``section(html, id)``), never at
the navigation, which lists every title whatever the sections hold; what a
verdict judged is compared with the verdict's own output.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from gandiag import plugins
from gandiag.data.mixtures import MIXTURES
from gandiag.diagnostics import classifier_modes, duplicates, failed, ndb, reason
from gandiag.diagnostics.mode_collapse import summarise
from gandiag.pipeline import evaluate
from gandiag.report import render_html, render_report
from gandiag.report.artifacts import artifacts_path, save_artifacts
from gandiag.report.sections.common import fmt
from gandiag.results import Results

XSS = "<script>alert(1)</script>"
MODELS = Path(__file__).parent / "fixtures" / "models"


# --------------------------------------------------------------------------- helpers


def section(html: str, sid: str) -> str:
    """The body of ``<section id=sid>`` (a run's own section in a single report)."""
    m = re.search(rf'<section id="{re.escape(sid)}" class="part">(.*?)</section>', html, re.S)
    assert m, f"no section {sid!r}"
    return m.group(1)


class _Tables(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables, self._row, self._cell = [], None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[-1].append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def table(fragment: str, first_header: str) -> list:
    """The rows (cell texts) under the header row of the table whose first column is ``first_header``."""
    p = _Tables()
    p.feed(fragment)
    for t in p.tables:
        if t and t[0] and t[0][0] == first_header:
            return t[1:]
    raise AssertionError(f"no table headed {first_header!r}")


def badges(fragment: str) -> list:
    """[(tone, text)] of every badge in a fragment."""
    return re.findall(r'<span class="badge (\w+)">([^<]*)</span>', fragment)


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


def copy_results(r: Results, diagnostics: dict) -> Results:
    """``r`` with other diagnostics, its artifacts kept (the in-process context stays in extras)."""
    return Results(dict(r.metrics), dict(r.generator), None, r.real, dict(r.provenance),
                   json.loads(json.dumps(diagnostics, default=float)), [], dict(r.extras))


# --------------------------------------------------------------------------- fixtures


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


def diagnosed(name: str, num_samples=None) -> Results:
    path = MODELS / name / "checkpoint.pt"
    if not path.exists():
        pytest.skip(f"fixture {name} not made (scripts/make_fixtures.py)")
    return evaluate(path, metrics=["fid"], num_samples=num_samples, device="cpu")


@pytest.fixture(scope="module")
def starved_digits():
    """The DCGAN trained without 7, 8 and 9, diagnosed on 1,000 samples (the verdict still names them)."""
    return diagnosed("digits_dcgan_no789", 1000)


@pytest.fixture(scope="module")
def collapsed_ring():
    """The plain GAN on ring8 that drops modes, at the protocol's 2,500 points (the artifacts keep 2,000)."""
    return diagnosed("ring8_gan_collapsed")


# --------------------------------------------------------------------------- sections, one by one


def test_single_report_has_every_section(digits_results, work):
    html = render_report([digits_results], work / "digits.html").read_text()
    assert_self_contained(html)
    summary = section(html, "summary")
    assert "FID [digits]" in summary and "No diagnostics verdicts" in summary
    assert "Generated samples, one row per class" in section(html, "samples")
    assert "Real samples, for comparison" in section(html, "samples")
    assert "PCA of digits features" in section(html, "feature-space")
    # No verdict ran: the class histogram is shown and said to be unjudged, nothing is marked missing.
    modes = section(html, "modes")
    assert "data:image/png;base64," in modes and "the classes are shown, not judged" in modes
    assert "missing" not in modes
    assert "No NDB diagnostic" in section(html, "ndb")
    assert "No duplicates diagnostic" in section(html, "duplicates")
    # The fake set *is* real data here, so the memorisation check must say so.
    assert "possible copies of training data" in section(html, "memorisation")
    assert "No gradient information" in section(html, "gradients")
    assert "No training log" in section(html, "training")
    assert re.search(r'<td class="key">provenance\.seed</td><td class="wrap">2020</td>', section(html, "provenance"))


def test_points_report_without_a_verdict_marks_modes_unjudged(ring_results):
    html = render_html([ring_results])
    assert_self_contained(html)
    modes = section(html, "modes")
    assert "Crosses mark the 8 modes" in modes and "not judged" in modes
    assert "modes captured" not in modes  # no verdict: the report does not count modes itself
    assert "2-D points" in section(html, "samples")


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
    assert "Generated samples, one row per class" in section(html, "samples")
    assert "PCA of digits features" in section(html, "feature-space")
    # A sidecar that does not match the JSON is reported, not shown.
    arts = artifacts_path(json_path)
    arts.write_bytes(arts.read_bytes() + b"x")
    res = CliRunner().invoke(cli(), ["report", str(json_path), "-o", str(out)])
    assert res.exit_code == 0
    assert "sha256 differs" in section(out.read_text(), "samples")
    arts.unlink()
    res = CliRunner().invoke(cli(), ["report", str(json_path), "-o", str(out)])
    assert "is missing" in section(out.read_text(), "samples")


def test_an_artifacts_file_is_read_within_the_array_budget(digits_results, work, monkeypatch):
    """The sidecar's arrays go through the budgeted .npz reader: an array beyond GANDIAG_MAX_ARRAY_BYTES is not
    allocated; the report says why its figures are missing and still renders (exit 0)."""
    json_path = work / "budget" / "out.json"
    json_path.parent.mkdir()
    save_artifacts(digits_results, json_path)
    digits_results.save(json_path)
    monkeypatch.setenv("GANDIAG_MAX_ARRAY_BYTES", "1000")
    out = work / "budget" / "report.html"
    res = CliRunner().invoke(cli(), ["report", str(json_path), "-o", str(out)])
    assert res.exit_code == 0, res.output
    samples = section(out.read_text(), "samples")
    assert "cannot be read" in samples and "GANDIAG_MAX_ARRAY_BYTES" in samples


def test_comparison_report(digits_results):
    a = Results.from_json(json.loads(json.dumps(digits_results.to_json())))
    b = Results.from_json(json.loads(json.dumps(digits_results.to_json())))
    b.metrics["fid"]["value"] *= 2
    b.metrics["fid"]["ci95"] = [b.metrics["fid"]["value"] * 0.9, b.metrics["fid"]["value"] * 1.1]
    b.diagnostics["mode_collapse"] = {"verdict": "severe", "reasons": []}
    html = render_html([a, b, digits_results])
    assert_self_contained(html)
    side = section(html, "comparison")
    assert "Metric trends across runs" in side
    rows = {r[0]: r[1:] for r in table(side, "metric")}
    assert rows["mode_collapse"][0] == "—" and rows["mode_collapse"][1] == "severe"
    assert ("bad", "severe") in badges(side)
    assert html.count("<details") == 3
    assert "1. digits.npz" in html and "3. digits.npz" in html


def test_untrusted_names_are_escaped(digits_results):
    r = Results.from_json(json.loads(json.dumps(digits_results.to_json())))
    r.generator["path"] = f"/ckpt/{XSS}.pt"
    r.generator["meta"] = {XSS: XSS}
    r.warnings.append(XSS)
    r.diagnostics["mode_collapse"] = {"verdict": XSS, "reasons": [{"message": XSS, "level": XSS, "signal": XSS}],
                                      XSS: 1, "levels": [XSS]}
    html = render_html([r, r])
    assert XSS not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert_self_contained(html)


# --------------------------------------------------------------------------- documented keys, synthetic values


def synthetic_mode_collapse() -> dict:
    """A ``mode_collapse`` output made by the diagnostics' own functions, so every key is one they write.

    Class 3 is drawn at 30% of its real share: missing by the verdict's rule
    (under 40%) while its share, 0.03, is above the 0.1/k a report might use.
    """
    rng = np.random.default_rng(0)
    k = 10
    real_cls = np.repeat(np.arange(k), 100)
    p = np.full(k, 0.97 / 9)
    p[3] = 0.03
    fake_cls = rng.choice(k, 1000, p=p)
    cls = classifier_modes.analyse(10 * np.eye(k)[fake_cls], 10 * np.eye(k)[real_cls], real_cls)
    real_feats = rng.normal(size=(200, 4))
    fake_feats = np.concatenate([0.5 * rng.normal(size=(190, 4)), real_feats[:5] + 3, real_feats[:5] + 3])
    nd = ndb.ndb(real_feats, fake_feats, seed=0, real_labels=np.arange(200) % 4)
    dup = duplicates.analyse(torch.from_numpy(real_feats[:100]), torch.from_numpy(fake_feats[150:]))  # 5 pairs
    return json.loads(json.dumps(summarise({"classes": cls, "ndb": nd, "duplicates": dup}), default=float))


def test_sections_render_the_diagnostics_documented_keys(digits_results, collapsed_ring):
    mc = synthetic_mode_collapse()
    assert mc["verdict"] == "partial" and mc["missing_modes"] == [3]
    gh = copy.deepcopy(collapsed_ring.diagnostics["gradient_health"])
    gh["adversarial"]["grad_norm"]["D"]["net.0.weight"] = 250.0
    gh["reasons"] = [reason("adversarial", "warning", "D's gradient norm 250 > 100", 250.0, 100.0)]
    gh["verdict"] = "warning"
    html = render_html([copy_results(digits_results, {"mode_collapse": mc, "gradient_health": gh})])
    assert_self_contained(html)
    modes = section(html, "modes")
    calls = {int(r[0]): r[4] for r in table(modes, "class")}
    assert {c for c, call in calls.items() if call != "covered"} == {3}
    assert ("warn", "missing") in badges(modes)
    assert "the verdict calls [3] missing" in modes
    nd = section(html, "ndb")
    assert mc["signals"]["ndb"]["reasons"][0]["message"].replace("<", "&lt;") in nd and ("info", "info") in badges(nd)
    assert "real majority label" in nd
    dup = section(html, "duplicates")
    assert "Pairs among the kept samples" in dup  # the closest pairs' indices are among the 64 kept images
    grads = section(html, "gradients")
    assert ("warn", "warning") in badges(grads) and "D&#39;s gradient norm 250 &gt; 100" in grads
    assert "Gradient L2 norm per layer, from the gradient-health diagnostic" in grads
    assert "Top singular value per layer, from the gradient-health diagnostic" in grads
    assert "lipschitz.mean" in grads and "late_d_loss_median" in grads  # the parts' numbers beside the reasons
    summary = section(html, "summary")
    assert ("warn", "partial") in badges(summary) and ("warn", "warning") in badges(summary)


def test_sections_read_keys_the_diagnostics_write(starved_digits, collapsed_ring):
    """The keys the sections read are in real outputs: renaming one in a diagnostic fails here."""
    from gandiag.report.sections.training import LAYER_MAPS, PARTS, per_net

    gh = collapsed_ring.diagnostics["gradient_health"]
    assert {key for key, _ in PARTS} <= set(gh)
    for m in LAYER_MAPS:
        assert set(per_net(gh["adversarial"][m])) == {"G", "D"}
    mix = collapsed_ring.diagnostics["mode_collapse"]["signals"]["mixture"]
    assert {"mixture", "counts", "nearest_counts", "mode_status", "missing_modes", "starved_modes", "starved_below",
            "modes_captured", "high_quality_fraction", "n"} <= set(mix)
    cls = starved_digits.diagnostics["mode_collapse"]["signals"]["classes"]
    assert {"share", "real_share", "share_ratio", "class_status", "missing_classes", "absent_classes", "missing_ratio",
            "absent_ratio", "confident", "classes_covered", "classes_total"} <= set(cls)
    nd = starved_digits.diagnostics["mode_collapse"]["signals"]["ndb"]
    assert {"different_bins", "emptied_by_label", "emptied_labels"} <= set(nd)
    assert {"closest_pairs"} <= set(starved_digits.diagnostics["mode_collapse"]["signals"]["duplicates"])


# --------------------------------------------------------------------------- real diagnosed fixtures


def test_starved_digits_report_names_exactly_the_verdicts_classes(starved_digits):
    mc = starved_digits.diagnostics["mode_collapse"]
    cls = mc["signals"]["classes"]
    missing = mc["missing_modes"]
    assert mc["verdict"] == "partial" and 7 in missing
    k = len(cls["share"])
    # The fixture tells the rules apart: a report marking classes under 0.1/k would name fewer.
    assert {c for c in range(k) if cls["share"][c] < 0.1 / k} != set(missing)
    html = render_html([starved_digits])
    assert_self_contained(html)
    modes = section(html, "modes")
    rows = {int(r[0]): r for r in table(modes, "class")}
    assert sorted(c for c, r in rows.items() if r[4] in ("missing", "absent")) == missing
    assert sorted(c for c, r in rows.items() if r[4] == "absent") == cls["absent_classes"]
    for c, r in rows.items():
        assert r[1:4] == [fmt(cls["share"][c]), fmt(cls["real_share"][c]), fmt(cls["share_ratio"][c])]
    assert f"the verdict calls {missing} missing" in modes
    assert f"{cls['classes_covered']}/{cls['classes_total']} classes covered" in modes
    assert ("warn", "partial") in badges(section(html, "summary"))
    assert ("good", "healthy") in badges(section(html, "gradients"))
    emptied = table(section(html, "ndb"), "real label")
    named = [int(r[0]) for r in emptied if r[2] == "named by the reason"]
    assert named == mc["signals"]["ndb"]["emptied_labels"]


def test_collapsed_ring_report_shows_the_verdicts_modes_and_counts(collapsed_ring):
    mc = collapsed_ring.diagnostics["mode_collapse"]
    mix = mc["signals"]["mixture"]
    assert mc["verdict"] == "severe" and mix["n"] == 2500
    assert len(collapsed_ring.extras["context"].fake_kept) == 2500
    html = render_html([collapsed_ring])
    assert_self_contained(html)
    modes = section(html, "modes")
    rows = table(modes, "mode")
    assert [r[3] for r in rows] == mix["mode_status"]
    assert [i for i, r in enumerate(rows) if r[3] == "missing"] == mc["missing_modes"]
    assert [int(r[1]) for r in rows] == mix["counts"]
    assert [int(r[2]) for r in rows] == mix["nearest_counts"]
    assert (f"{mix['modes_captured']}/8 modes captured, {100 * mix['high_quality_fraction']:.1f}% high quality, "
            "of the 2,500 samples the verdict judged (the scatter shows 2,000 of them)") in modes
    assert ("bad", "severe") in badges(modes) and ("bad", "missing") in badges(modes)
    assert ("bad", "severe") in badges(section(html, "summary"))


# --------------------------------------------------------------------------- severity


def test_summary_shows_the_value_each_gate_read(digits_results):
    r = copy_results(digits_results, {})
    r.gates = [{"name": "fid max", "passed": False, "message": "fid 40.0004 > 40", "value": 40.0004},
               {"name": "mode_collapse allow", "passed": True, "message": "none is allowed", "value": None}]
    rows = table(section(render_html([r]), "summary"), "gate")
    assert rows == [["fid max", "FAIL", "40.0004", "fid 40.0004 > 40"], ["mode_collapse allow", "pass", "—", "none is allowed"]]


def test_error_verdicts_are_toned_bad(digits_results):
    cls = synthetic_mode_collapse()["signals"]["classes"]
    crashed_signal = summarise({"classes": cls}, errors={"ndb": "ValueError: k-means failed"})
    assert crashed_signal["verdict"] == "error"
    html = render_html([copy_results(digits_results, {
        "mode_collapse": crashed_signal,
        "gradient_health": failed("gradient_health", RuntimeError("boom")),
    })])
    summary = section(html, "summary")
    assert ("bad", "error") in badges(summary)
    assert summary.count('<span class="badge bad">error</span>') >= 4  # two verdicts and their error reasons
    assert "ndb could not run: ValueError: k-means failed" in summary
    assert "gradient_health could not run: RuntimeError: boom" in summary
    assert ("bad", "error") in badges(section(html, "modes")) and ("bad", "error") in badges(section(html, "gradients"))
    na = render_html([copy_results(digits_results, {"mode_collapse": {"verdict": "not_applicable", "reasons": []}})])
    assert ("warn", "not_applicable") in badges(section(na, "summary"))


def test_plugin_verdicts_are_toned_by_their_declared_levels(digits_results):
    """Tones come from the levels a diagnostic declares, never from words: "failsafe" is its best verdict."""
    from gandiag.hookspecs import hookimpl

    class Mine:
        name, levels = "mine", ("failsafe", "wobbly", "broken")

        def applies(self, ctx):
            return False

        def run(self, ctx):  # pragma: no cover - never applies
            return {}

    class Plugin:
        @hookimpl
        def register_diagnostics(self, register):
            register(Mine())

    plugins.load_plugins()
    plugins.pm.register(Plugin(), name="test-report-levels")
    plugins.reset()
    try:
        toned = {}
        for v in Mine.levels:
            d = {"mine": {"verdict": v, "reasons": [reason("mine", "wobbly", "a wobble")]},
                 "unregistered": {"verdict": "meh", "levels": ["fine", "meh", "awful"]},
                 "undeclared": {"verdict": "nan-free"}}
            summary = section(render_html([copy_results(digits_results, d)]), "summary")
            toned[v] = [t for t, word in badges(summary) if word == v][0]
            assert ("warn", "wobbly") in badges(summary)  # the reason's level, on the same scale
            assert ("warn", "meh") in badges(summary)  # levels written in the output itself
            assert ("unknown", "nan-free") in badges(summary)  # no scale: not guessed from "nan"
    finally:
        plugins.pm.unregister(name="test-report-levels")
        plugins.reset()
    assert toned == {"failsafe": "good", "wobbly": "warn", "broken": "bad"}


# --------------------------------------------------------------------------- robustness, logs, plugins, CLI


@pytest.mark.parametrize("garbage", [
    {"mode_collapse": {"verdict": None, "signals": {"ndb": {"different_bins": "x"}, "duplicates": {"closest_pairs": [None, "ab", {}]}}}},
    {"mode_collapse": "not a dict", "gradient_health": {"adversarial": {"grad_norm": {"G": {"a.weight": "x"}}}}},
    {"gradient_health": {"verdict": "unhealthy", "reasons": [1, None, {"no": "message"}], "adversarial": [],
                         "output": {"n": "x"}, "log": {"sigma_growth": {"G": None}}}},
    {"mode_collapse": {"signals": {"ndb": {"proportions_real": [0.5, 0.5], "proportions_fake": [1.0], "different_bins": [0, 9]}}}},
    {"mode_collapse": {"verdict": "partial", "levels": "none", "signals": {
        "classes": {"share": [0.5, 0.5], "real_share": [0.5], "class_status": ["covered"], "missing_classes": "x"},
        "mixture": {"mixture": "ring8", "counts": [1, 2], "mode_status": [3], "missing_modes": [None, "a"]}}}},
    {"mode_collapse": {"signals": {"classes": {"share": [0.5, 0.5], "real_share": [0.5, 0.5], "missing_classes": [1, "x"],
                                               "conditional": {"per_class": {"0": None}}}}}},
    {"mode_collapse": {"signals": {"classes": {"share": [1.0], "real_share": [1.0], "class_status": ["covered"],
                                               "conditional": {"per_class": [1, 2]}}}}},
])
def test_missing_or_odd_keys_never_crash_the_report(digits_results, garbage):
    r = Results(dict(digits_results.metrics), dict(digits_results.generator), None, None, {}, garbage, [])
    html = render_html([r])
    assert_self_contained(html)


def test_training_curves_from_log_jsonl(work):
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
    assert "5 records from" in section(html, "training")
    grads = section(html, "gradients")
    assert "Gradient L2 norm per layer, from log.jsonl, step 5." in grads  # per-layer norms fall back to the log
    assert "Top singular value per layer, from log.jsonl, step 5." in grads


def test_a_results_file_cannot_choose_which_log_or_how_large_a_figure(work):
    """Read from a file, generator.path is data: an absolute path or one with '..' names no log to embed (the same
    results rendered by the evaluation itself still read their checkpoint's log); per-layer norms for thousands of
    layers draw a bounded figure: the largest and smallest of each net, saying how many of how many."""
    victim = work / "victim"
    victim.mkdir()
    (victim / "log.jsonl").write_text(json.dumps({"step": 1, "d_loss": 0.5, "g_loss": 1.25}) + "\n")
    layers = {f"net.{i}.weight": float(1 + i) for i in range(3000)}
    for gen_path in (str(victim / "checkpoint.pt"), "../victim/checkpoint.pt"):
        r = Results({}, {"path": gen_path, "format": "gandiag"}, None, None, {},
                    {"gradient_health": {"verdict": "healthy", "reasons": [],
                                         "adversarial": {"grad_norm": {"G": layers, "D": layers}}}}, [])
        saved = work / "elsewhere" / "r.json"
        saved.parent.mkdir(exist_ok=True)
        r.save(saved)
        out = work / "elsewhere" / "r.html"
        res = CliRunner().invoke(cli(), ["report", str(saved), "-o", str(out)])
        assert res.exit_code == 0, res.output
        html = out.read_text()
        assert "records from" not in section(html, "training") and "No training log" in section(html, "training")
        assert "(60 of 3000 layers)" not in html  # the title is drawn into the PNG; the data URI is bounded instead
        assert len(html) < 2_000_000
    assert "1 records from" in section(render_html([r.__class__({}, {"path": str(victim / "checkpoint.pt"),
                                                                     "format": "gandiag"}, None, None, {}, {}, [])]),
                                       "training")


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
    assert "hello &lt;script&gt;" in section(html, "mine")
    assert html.index('<section id="mine"') < html.index('<section id="feature-space"')


def test_evaluate_cli_writes_json_artifacts_and_report(work):
    pts, _ = MIXTURES["ring8"].sample(300, 3)
    np.savez(work / "cli_ring.npz", samples=pts)
    out = work / "cli"
    res = CliRunner().invoke(cli(), ["evaluate", str(work / "cli_ring.npz"), "--real", "ring8", "--metrics", "fid,precision",
                                     "--no-diagnostics", "--json", str(out / "r.json"), "--report", str(out / "r.html"), "-q"])
    assert res.exit_code == 0, res.output
    assert (out / "r.artifacts.npz").is_file()
    assert "Crosses mark the 8 modes" in section((out / "r.html").read_text(), "modes")
    shutil.rmtree(out)


def test_figures_draw_text_from_files_as_written():
    """Names in logs, results and trend files may come from anywhere: '$x^$' is mathtext that would raise."""
    from gandiag.report import figures

    hostile = ["$x^$", "$\\frac{$", "$\\notacommand$"]
    assert figures.curves({h: ([1, 2], [1.0, 2.0]) for h in hostile}).startswith("data:image/png")
    assert figures.hbars({"G": {h: 1.0 for h in hostile}}, hostile[0], hostile[1]).startswith("data:image/png")
    assert figures.bars({hostile[0]: [1.0, 2.0]}, hostile[1:], hostile[2]).startswith("data:image/png")
    assert figures.trends({hostile[0]: ([1.0, 2.0], [0.5, 1.5], [1.5, 2.5])}, hostile[1:]).startswith("data:image/png")
