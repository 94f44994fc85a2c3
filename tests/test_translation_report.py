"""The HTML report of a translator: a Translation section per direction, from the run and from saved results.

Planted translators whose truth is known (grey levels inverted, both ways, on
the bundled pair digits-inverted; ring8 rotated by pi/8 and back on
ring8-rotated) are evaluated with their inverse, so both directions appear;
a latent generator's report has no translation section at all.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pytest

import gandiag
from conftest import gandiag_in_process
from gandiag.diagnostics import reason
from gandiag.generator.contract import GeneratorContract
from gandiag.report import RunView, render_html, shown
from gandiag.report.sections.common import fmt
from gandiag.report.sections.translation import Translation, is_translator
from gandiag.results import Results
from test_translation_pipeline import Negate, Rotate, save_translator

N = 100  # inputs translated per direction: enough for a label per class, a few seconds
POINTS = GeneratorContract(latent_dim=2, takes="points", kind="points")
MODELS = Path(__file__).parent / "fixtures" / "models"
DATA_URI = "data:image/png;base64,"


def section(html: str, sid: str) -> str:
    m = re.search(rf'<section id="{re.escape(sid)}" class="part">(.*?)</section>', html, re.S)
    assert m, f"no section {sid!r}"
    return m.group(1)


def directions(body: str) -> dict:
    """{"A→B": html, "B→A": html}: the section's part under each direction's heading."""
    parts = re.split(r'<h3 id="translation-(a2b|b2a)-\d+">', body)
    return {("A→B" if d == "a2b" else "B→A"): text for d, text in zip(parts[1::2], parts[2::2])}


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """``gandiag evaluate`` of the exact inverter with itself as inverse: --json and --report, as CI runs it."""
    d = tmp_path_factory.mktemp("translation_report")
    negate = save_translator(Negate(), d / "negate.pt2")
    res = gandiag_in_process("evaluate", negate, "--inputs", "digits-inverted:a", "--real", "digits-inverted:b",
                             "--inverse", negate, "-n", N, "--metrics", "fid", "--no-progress",
                             "--json", d / "out.json", "--report", d / "out.html")
    assert res.returncode == 0, res.stderr
    return {"dir": d, "html": (d / "out.html").read_text(), "json": json.loads((d / "out.json").read_text())}


def test_both_directions_with_grids_measures_and_label_preservation(digits_run):
    body = section(digits_run["html"], "translation")
    parts = directions(body)
    assert set(parts) == {"A→B", "B→A"}
    assert "digits-inverted:a → digits-inverted:b" in body and "digits-inverted:b → digits-inverted:a" in body
    metrics = digits_run["json"]["metrics"]
    for title, suffix, (src, dst) in (("A→B", "", "AB"), ("B→A", ":b2a", "BA")):
        part = parts[title]
        for row in (f"input ({src})", f"output ({dst})", f"reconstruction ({src})"):  # one labelled grid per row
            assert f"<th>{row}</th>" in part, (title, row)
        assert part.count(DATA_URI) == 3
        assert "Input classes, left to right: 0, 1, 2" in part
        for name in ("cycle_l1", "identity_l1", "paired_l1", "psnr", "ssim", "change_l1"):
            m = metrics[name + suffix]
            assert f"<td>{m['label']}</td>" in part, (title, name)
            assert f'<td class="num">{fmt(m["value"])}</td>' in part, (title, name)
        lp = metrics["label_preservation" + suffix]
        assert "<th>input class</th>" in part
        assert fmt(lp["ceiling"]) in part and fmt(lp["value"]) in part
        for cls, e in lp["per_class"].items():
            assert (f'<tr><td>{cls}</td><td class="num">{e["n"]}</td><td class="num">{fmt(e["accuracy"])}</td>'
                    f'<td class="num">{fmt(e["ceiling"])}</td></tr>') in part, (title, cls)
    assert metrics["cycle_l1"]["value"] == 0  # the planted inverse undoes the translation exactly


def test_the_summary_names_the_inverse_direction(digits_run):
    summary = section(digits_run["html"], "summary")
    fid = digits_run["json"]["metrics"]["fid"]["label"]
    assert f"<td>{fid}</td>" in summary and f"<td>{fid} (B→A)</td>" in summary
    assert "<td>Cycle L1 (B→A)</td>" in summary
    assert "gradient_health (B→A)" in summary


def test_a_report_from_the_saved_results_shows_the_same_section(digits_run):
    d = digits_run["dir"]
    assert any(a.startswith("translation_b2a_") for a in digits_run["json"]["provenance"]["artifacts"]["arrays"])
    res = gandiag_in_process("report", d / "out.json", "-o", d / "again.html")
    assert res.returncode == 0, res.stderr
    again = section((d / "again.html").read_text(), "translation")
    assert again == section(digits_run["html"], "translation")  # the artifacts carry the grids; PNGs are stable
    (d / "out.artifacts.npz").unlink()
    res = gandiag_in_process("report", d / "out.json", "-o", d / "bare.html")
    bare = directions(section((d / "bare.html").read_text(), "translation"))
    assert set(bare) == {"A→B", "B→A"}
    for part in bare.values():  # numbers still shown; pictures said to be missing, never taken from elsewhere
        assert DATA_URI not in part and "No translated samples to show" in part and "<th>input class</th>" in part


def test_translation_verdicts_and_evidence_per_direction(digits_run):
    r = Results.load(digits_run["dir"] / "out.json")
    r.extras["artifacts"], r.extras["artifacts_note"] = {}, "not needed here"
    translation_verdicts = ("input_ignored", "identity_mapping", "content_preservation", "steganographic_cycle")
    diags = {k: v for k, v in copy.deepcopy(r.diagnostics).items() if k.split(":")[0] not in translation_verdicts}
    diags["input_ignored"] = {"verdict": "none", "levels": ["none", "partial", "collapsed"], "reasons": [],
                              "diversity": {"ratio": 0.987, "reference": "target samples"}, "seconds": {"x": 1}}
    diags["content_preservation:b2a"] = {
        "verdict": "partial", "levels": ["preserved", "partial", "lost"], "score": 0.55,
        "reasons": [reason("label_preservation", "partial", "outputs keep their input's class 55% of the way "
                           "from chance to the ceiling <b>")]}
    r.diagnostics = diags
    parts = directions(section(render_html([r]), "translation"))
    assert "<strong>input_ignored</strong>" in parts["A→B"] and "input_ignored" not in parts["B→A"]
    assert "diversity.ratio" in parts["A→B"] and "0.987" in parts["A→B"] and "seconds" not in parts["A→B"]
    b2a = parts["B→A"]
    assert "<strong>content_preservation</strong>" in b2a and "content_preservation" not in parts["A→B"]
    assert 'class="badge warn">partial' in b2a  # coloured on the diagnostic's own levels
    assert "55% of the way from chance to the ceiling &lt;b&gt;" in b2a  # messages escaped
    assert "score" in b2a and "0.55" in b2a


def test_points_translator_both_ways_as_scatters(tmp_path):
    rotate = save_translator(Rotate(), tmp_path / "rotate.pt2", POINTS, (2, 2))
    unrotate = save_translator(Rotate(-np.pi / 8), tmp_path / "unrotate.pt2", POINTS, (2, 2))
    r = gandiag.evaluate(rotate, inputs="ring8-rotated:a", real="ring8-rotated:b", inverse=unrotate,
                         num_samples=200, metrics=("fid",), progress=False)
    html = render_html([r])
    parts = directions(section(html, "translation"))
    assert set(parts) == {"A→B", "B→A"}
    for title, suffix in (("A→B", ""), ("B→A", ":b2a")):
        part = parts[title]
        assert part.count(DATA_URI) == 1 and 'alt="translated points"' in part and "<th>input (" not in part
        assert "Distances are Euclidean" in part and "PSNR" not in part  # images only
        for name in ("cycle_l1", "paired_l1", "change_l1", "identity_l1"):
            assert f'<td class="num">{fmt(r.metrics[name + suffix]["value"])}</td>' in part, (title, name)
        assert "<th>input class</th>" in part  # ring8's modes are the classes
    a = r.extras["context"].translation
    assert a.kind == "points" and a.direction == "a2b"


@pytest.fixture(scope="module")
def latent_results():
    return gandiag.evaluate(MODELS / "ring8_gan_lr1" / "checkpoint.pt", real="ring8", num_samples=500,
                            metrics=("fid",), progress=False, diagnostics=False)


def test_a_latent_generator_has_no_translation_content(latent_results):
    html = render_html([latent_results])
    assert not is_translator(RunView(latent_results, "x"))
    assert not Translation().applies(RunView(latent_results, "x"))
    assert "Translation A→B" not in html and "translation_" not in html and "(B→A)" not in html


def test_a_latent_generator_report_has_no_translation_section(latent_results):
    class Never:  # a plugin's section that applies to no run
        name, title, kinds = "never", "Never", None

        def applies(self, view):
            return False

    assert not shown(Never(), RunView(latent_results, "x"))
    assert 'id="translation"' not in render_html([latent_results])
