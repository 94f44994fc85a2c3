"""Quality gates: thresholds, verdicts, baseline regressions judged against noise, fail-closed, exit codes, JUnit."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from click.testing import CliRunner

from gandiag.data.mixtures import MIXTURES
from gandiag.errors import GandiagError
from gandiag.gates import check_gates, load_gates, parse_gates
from gandiag.results import Results


def cli():
    from gandiag.cli import _add_plugin_commands
    from gandiag.cli import cli as group

    _add_plugin_commands()
    return group


def make_results(fid=20.0, recall=0.6, fid_ci=None, verdict="none", **extra_metrics) -> Results:
    metrics = {"fid": {"value": fid, "label": "FID", "higher_is_better": False},
               "recall": {"value": recall, "label": "Recall", "higher_is_better": True}}
    if fid_ci is not None:
        metrics["fid"]["ci95"] = list(fid_ci)
    metrics.update(extra_metrics)
    diags = {"mode_collapse": {"verdict": verdict, "reasons": [{"message": "3 modes missing"}] if verdict != "none" else [],
                               "modes_captured": 8, "modes_total": 8}}
    return Results(metrics, {"path": "g.pt", "format": "gandiag"}, None, {"source": "ring8", "content_sha256": "ab12"},
                   comparable_provenance(), diags, [])


def comparable_provenance(**changes) -> dict:
    """What check_comparable reads: equal in every make_results unless a test changes it."""
    prov = {"extractor": {"name": "points", "weights_sha256": None}, "num_samples": 2500,
            "extractors": [{"name": "points", "weights_sha256": None}],
            "metric_options": {"seed": 2020, "is_splits": 10, "kid_subsets": 100, "kid_subset_size": 1000,
                               "prc_k": 3, "dc_k": 5},
            "compute": {"precision": "fp32", "compile": False}}
    prov.update(changes)
    return prov


def write(tmp_path, text: str, name="gates.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.fixture(autouse=True)
def _mode_collapse_known(monkeypatch):
    """Gates name diagnostics by their registered name; make sure 'mode_collapse' is known even before its plugin lands."""
    from gandiag import gates

    real = gates._known_names

    def known():
        m, d = real()
        return m, d | {"mode_collapse", "gradient_health"}

    monkeypatch.setattr(gates, "_known_names", known)


def test_thresholds_pass_and_fail(tmp_path):
    g = load_gates(write(tmp_path, "[gates]\nfid = { max = 40.0 }\nrecall = { min = 0.5 }\n"))
    out = check_gates(make_results(fid=20, recall=0.6), g)
    assert out.passed and len(out.cases) == 2
    out = check_gates(make_results(fid=41, recall=0.6), g)
    assert not out.passed
    assert [c.name for c in out.failures] == ["fid max"]
    assert "41 > max 40" in out.summary()


def test_verdict_allow_list_and_diagnostic_numbers(tmp_path):
    g = load_gates(write(tmp_path, '[gates]\nmode_collapse = { allow = ["none"], modes_captured = { min = 8 } }\n'))
    assert check_gates(make_results(verdict="none"), g).passed
    out = check_gates(make_results(verdict="partial"), g)
    assert not out.passed and "verdict 'partial' not allowed" in out.failures[0].message
    assert "3 modes missing" in out.failures[0].message
    # dotted keys are the same gate
    g2 = load_gates(write(tmp_path, '[gates]\nmode_collapse.modes_captured = { min = 9 }\n', "g2.toml"))
    assert not check_gates(make_results(), g2).passed


def test_missing_diagnostic_or_verdict_fails_closed(tmp_path):
    g = load_gates(write(tmp_path, '[gates]\nmode_collapse = { allow = ["none"] }\n'))
    r = make_results()
    r.diagnostics = {}
    out = check_gates(r, g)
    assert not out.passed and "missing" in out.failures[0].message
    r.diagnostics = {"mode_collapse": {"reasons": []}}
    assert not check_gates(r, g).passed


@pytest.mark.parametrize("value", [float("nan"), None, float("inf")])
def test_nan_or_null_metric_fails_closed(tmp_path, value):
    g = load_gates(write(tmp_path, "[gates]\nfid = { max = 40.0 }\n"))
    out = check_gates(make_results(fid=value), g)
    assert not out.passed and "fails closed" in out.failures[0].message


def test_missing_or_crashed_metric_fails(tmp_path):
    g = load_gates(write(tmp_path, "[gates]\nprecision = { min = 0.1 }\nfid = { max = 40.0 }\n"))
    r = make_results()
    r.metrics["fid"]["error"] = "FloatingPointError: FID came out nan"
    out = check_gates(r, g)
    assert not out.passed
    msgs = {c.name: c.message for c in out.failures}
    assert "missing from the results" in msgs["precision min"]
    assert "computation failed" in msgs["fid max"]


def test_nan_survives_a_json_round_trip_as_a_failure(tmp_path):
    r = make_results(fid=float("nan"))
    r.save(tmp_path / "r.json")  # NaN becomes null
    g = load_gates(write(tmp_path, "[gates]\nfid = { max = 40.0 }\n"))
    assert not check_gates(Results.load(tmp_path / "r.json"), g).passed


def test_regression_inside_noise_passes_outside_fails(tmp_path):
    make_results(fid=20.0, fid_ci=(18.0, 22.0)).save(tmp_path / "main.json")
    g = load_gates(write(tmp_path, '[gates]\nbaseline = "main.json"\nfid = { max_increase = 0.05 }\n'))
    # 20 → 22.5: +2.5, more than 5% (1.0) but within 1.0 + noise √(2²+2²) ≈ 3.83 → noise, passes
    assert check_gates(make_results(fid=22.5, fid_ci=(20.5, 24.5)), g).passed
    # 20 → 26: +6 > 4.83 → a real regression
    out = check_gates(make_results(fid=26.0, fid_ci=(24.0, 28.0)), g)
    assert not out.passed and "noise" in out.failures[0].message
    # Without intervals the comparison is exact, and says so.
    make_results(fid=20.0).save(tmp_path / "main.json")
    g = load_gates(write(tmp_path, '[gates]\nbaseline = "main.json"\nfid = { max_increase = 0.05 }\n'))
    assert check_gates(make_results(fid=20.9), g).passed
    out = check_gates(make_results(fid=21.5), g)
    assert not out.passed and "--bootstrap" in out.failures[0].message


def test_regression_for_higher_is_better_and_top_level_baseline(tmp_path):
    (tmp_path / "base").mkdir()
    make_results(recall=0.60).save(tmp_path / "base" / "main.json")
    g = load_gates(write(tmp_path, 'baseline = "base/main.json"\n[gates]\nrecall = { max_decrease_abs = 0.02 }\n'))
    assert check_gates(make_results(recall=0.59), g).passed
    assert check_gates(make_results(recall=0.70), g).passed
    assert not check_gates(make_results(recall=0.55), g).passed


def test_baseline_missing_metric_fails_closed(tmp_path):
    r = make_results()
    del r.metrics["fid"]
    r.save(tmp_path / "main.json")
    g = load_gates(write(tmp_path, '[gates]\nbaseline = "main.json"\nfid = { max_increase = 0.05 }\n'))
    out = check_gates(make_results(), g)
    assert not out.passed and "baseline" in out.failures[0].message


@pytest.mark.parametrize("text, match", [
    ("[gates\nfid = 1", "not valid TOML"),
    ("fid = { max = 1 }", "no \\[gates\\] table"),
    ("[gates]\nfdi = { max = 40.0 }", "unknown metric or diagnostic 'fdi'"),
    ("[gates]\nfid = { maximum = 40.0 }", "unknown gate 'maximum'"),
    ("[gates]\nfid = { max = \"40\" }", "must be a finite number"),
    ("[gates]\nfid = { max = nan }", "must be a finite number"),
    ("[gates]\nfid = 40", "must be a table"),
    ("[gates]\nrecall = { min = 0.9, max = 0.1 }", "no value could pass"),
    ("[gates]\nfid = { max_increase = 0.05 }", "no baseline"),
    ("[gates]\nbaseline = \"nope.json\"\nfid = { max_increase = 0.05 }", "baseline: .*no such file"),
    ("[gates]\nmode_collapse = { allow = \"none\" }", "non-empty list of verdicts"),
    ("[gates]\n", "names no gate"),
    ("[gate]\nfid = { max = 1 }", "no \\[gates\\] table \\(found: gate\\)"),
    ("base = 1\n[gates]\nfid = { max = 1 }", "unknown top-level key"),
])
def test_bad_gate_files_are_one_line_errors(tmp_path, text, match):
    with pytest.raises(GandiagError, match=match) as info:
        load_gates(write(tmp_path, text))
    assert "\n" not in str(info.value)


def test_junit_xml_one_testcase_per_gate(tmp_path):
    g = load_gates(write(tmp_path, '[gates]\nfid = { max = 40.0 }\nrecall = { min = 0.9 }\nmode_collapse = { allow = ["none"] }\n'))
    out = check_gates(make_results(recall=0.5), g, junit_path=tmp_path / "junit.xml")
    root = ET.parse(tmp_path / "junit.xml").getroot()
    cases = root.findall(".//testcase")
    assert [c.get("name") for c in cases] == ["fid max", "recall min", "mode_collapse allow"]
    assert root.find("testsuite").get("failures") == "1" and root.get("tests") == "3"
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["recall min"]
    assert not out.passed


def test_gate_command_exit_codes(tmp_path):
    make_results(fid=20).save(tmp_path / "ok.json")
    make_results(fid=60).save(tmp_path / "bad.json")
    gates = write(tmp_path, "[gates]\nfid = { max = 40.0 }\n")
    run = lambda *a: CliRunner().invoke(cli(), list(a))  # noqa: E731
    assert run("gate", str(tmp_path / "ok.json"), "--gate", str(gates)).exit_code == 0
    res = run("gate", str(tmp_path / "bad.json"), "--gate", str(gates), "--junit", str(tmp_path / "j.xml"))
    assert res.exit_code == 1 and "FAIL fid max" in res.output
    ET.parse(tmp_path / "j.xml")
    res = run("gate", str(tmp_path / "ok.json"), "--gate", str(write(tmp_path, "[gates", "broken.toml")))
    assert res.exit_code == 2 and "not valid TOML" in res.output
    res = run("gate", str(tmp_path / "missing.json"), "--gate", str(gates))
    assert res.exit_code == 2


def test_evaluate_with_gate_end_to_end(tmp_path):
    pts, _ = MIXTURES["ring8"].sample(400, 11)
    np.savez(tmp_path / "ring.npz", samples=pts)
    base = ["evaluate", str(tmp_path / "ring.npz"), "--real", "ring8", "--metrics", "fid,precision,recall",
            "--no-diagnostics", "-q"]
    ok = write(tmp_path, "[gates]\nprecision = { min = 0.8 }\nfid = { max = 1.0 }\n", "ok.toml")
    bad = write(tmp_path, "[gates]\nfid = { max = 0.0 }\n", "bad.toml")
    res = CliRunner().invoke(cli(), base + ["--gate", str(ok), "--junit", str(tmp_path / "j.xml")])
    assert res.exit_code == 0, res.output
    assert len(ET.parse(tmp_path / "j.xml").getroot().findall(".//testcase")) == 2
    assert CliRunner().invoke(cli(), base + ["--gate", str(bad)]).exit_code == 1
    res = CliRunner().invoke(cli(), base + ["--gate", str(write(tmp_path, "[gates]\nfidd = { max = 1 }", "u.toml"))])
    assert res.exit_code == 2 and "unknown metric or diagnostic 'fidd'" in res.output


def test_the_documented_gates_file_loads_and_checks(tmp_path):
    """docs/gates.md's example is the file a user copies: it must stay valid."""
    import re
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "gates.md").read_text()
    example = re.search(r"```toml\n(.*?)```", doc, re.S).group(1)
    (tmp_path / "results").mkdir()
    base = make_results(fid=20.0, fid_ci=(18, 22), precision={"value": 0.7, "ci95": [0.68, 0.72]})
    base.diagnostics["gradient_health"] = {"verdict": "healthy", "reasons": []}
    base.save(tmp_path / "results" / "main.json")
    g = load_gates(write(tmp_path, example))
    assert len(g.gates) == 8
    out = check_gates(base, g)
    assert out.passed, out.summary()


@pytest.mark.parametrize("base_metric, cur_metric, limit", [
    ({"ci95": [-1e308, 1e308]}, {}, "0.05"),          # finite ends, infinite width
    ({"std": 1e308}, {}, "0.05"),                      # 1.96 * std overflows
    ({"ci95": [0.0, 1.6e308]}, {}, "5e306"),          # tolerance and noise finite, their sum is not
    ({}, {}, "1e308"),                                 # tolerance = 1e308 * |baseline| overflows
])
def test_regression_with_overflowing_noise_or_tolerance_fails_closed(tmp_path, base_metric, cur_metric, limit):
    """An infinite noise or tolerance would let any change through: the gate fails, saying why."""
    base = make_results(fid=20.0)
    base.metrics["fid"].update(base_metric)
    base.save(tmp_path / "main.json")
    cur = make_results(fid=1000.0)
    cur.metrics["fid"].update(cur_metric)
    g = load_gates(write(tmp_path, f'[gates]\nbaseline = "main.json"\nfid = {{ max_increase = {limit} }}\n'))
    out = check_gates(cur, g)
    assert not out.passed
    assert "not finite" in out.failures[0].message and "fails closed" in out.failures[0].message


def test_gate_command_fails_on_an_infinite_noise(tmp_path):
    from conftest import gandiag_in_process

    base = make_results(fid=20.0, fid_ci=(-1e308, 1e308))
    base.save(tmp_path / "main.json")
    make_results(fid=1000.0).save(tmp_path / "cur.json")
    write(tmp_path, '[gates]\nbaseline = "main.json"\nfid = { max_increase = 0.05 }\n')
    res = gandiag_in_process("gate", "cur.json", "--gate", "gates.toml", cwd=tmp_path)
    assert res.returncode == 1 and "not finite" in res.stdout, res.stdout


@pytest.mark.parametrize("spec", ["fid = { max = " + "9" * 400 + " }", "fid = { min = -" + "9" * 400 + " }",
                                  "mode_collapse.modes_captured = { min = " + "9" * 400 + " }"])
def test_an_integer_beyond_any_float_is_a_bad_gates_file(tmp_path, spec):
    """TOML holds integers of any length; a threshold no float can hold is exit 2, not an OverflowError (exit 3)."""
    from conftest import gandiag_in_process

    make_results().save(tmp_path / "ok.json")
    write(tmp_path, "[gates]\n" + spec + "\n")
    res = gandiag_in_process("gate", "ok.json", "--gate", "gates.toml", cwd=tmp_path)
    assert res.returncode == 2 and "must be a finite number" in res.stderr, res.stderr
    assert len(res.stderr) < 300 and res.stderr.count("\n") == 1


@pytest.mark.parametrize("verdict", ["SEVERE", "severe ", "catastrophic", "healthy"])
def test_a_verdict_outside_the_declared_levels_fails_any_verdict_gate(tmp_path, verdict):
    """deny = [...] names what must not occur; a word the diagnostic never gives is not 'not denied': it fails."""
    deny = load_gates(write(tmp_path, '[gates]\nmode_collapse = { deny = ["severe", "partial"] }\n'))
    allow = load_gates(write(tmp_path, '[gates]\nmode_collapse = { allow = ["none", "partial"] }\n', "a.toml"))
    for g in (deny, allow):
        out = check_gates(make_results(verdict=verdict), g)
        assert not out.passed and "not one of mode_collapse's verdicts" in out.failures[0].message
    assert check_gates(make_results(verdict="none"), deny).passed
    assert not check_gates(make_results(verdict="severe"), deny).passed


@pytest.mark.parametrize("spec", ['deny = ["sever"]', 'allow = ["none", "None"]', 'deny = ["healthy"]'])
def test_a_verdict_list_entry_the_diagnostic_never_gives_is_a_bad_gates_file(tmp_path, spec):
    with pytest.raises(GandiagError, match="is not a verdict of mode_collapse; its verdicts are none, partial, severe"):
        load_gates(write(tmp_path, f"[gates]\nmode_collapse = {{ {spec} }}\n"))
    # error / not_applicable are verdicts of every diagnostic: denying them is redundant but not a typo
    assert load_gates(write(tmp_path, '[gates]\nmode_collapse = { deny = ["error", "severe"] }\n', "ok.toml"))


def test_verdict_typo_in_gate_command_is_exit_2(tmp_path):
    from conftest import gandiag_in_process

    make_results().save(tmp_path / "ok.json")
    write(tmp_path, '[gates]\nmode_collapse = { deny = ["sever"] }\n')
    res = gandiag_in_process("gate", "ok.json", "--gate", "gates.toml", cwd=tmp_path)
    assert res.returncode == 2 and "'sever' is not a verdict of mode_collapse" in res.stderr, res.stderr


def test_a_diagnostic_that_declares_no_levels_keeps_free_verdict_lists():
    """A plugin diagnostic without ``levels``: any words in allow/deny, judged as written; its output's own
    ``levels`` (results read without the plugin) still make an unknown verdict fail a deny gate."""
    from gandiag.gates import Gates

    gates = Gates(parse_gates({"gates": {"plug_check": {"deny": ["broken"]}}}, metric_names={"fid"},
                              diagnostic_names={"plug_check"}))
    assert gates.gates[0].levels is None
    r = make_results()
    r.diagnostics["plug_check"] = {"verdict": "fine", "reasons": []}
    assert check_gates(r, gates).passed
    r.diagnostics["plug_check"] = {"verdict": "broken", "reasons": []}
    assert not check_gates(r, gates).passed
    r.diagnostics["plug_check"] = {"verdict": "fine", "reasons": [], "levels": ["ok", "broken"]}
    out = check_gates(r, gates)
    assert not out.passed and "not one of plug_check's verdicts (ok, broken)" in out.failures[0].message


def test_gate_command_refuses_an_empty_junit_path(tmp_path):
    """--junit "" wrote nothing and said nothing (exit 0); a CI step that expects the XML must hear it."""
    from conftest import gandiag_in_process

    make_results().save(tmp_path / "ok.json")
    write(tmp_path, "[gates]\nfid = { max = 40.0 }\n")
    res = gandiag_in_process("gate", "ok.json", "--gate", "gates.toml", "--junit", "", cwd=tmp_path)
    assert res.returncode == 2 and "--junit: empty path" in res.stderr, res.stderr
    with pytest.raises(GandiagError, match="empty path"):
        check_gates(make_results(), load_gates(tmp_path / "gates.toml"), junit_path="")


@pytest.mark.parametrize("text", [
    '[gates]\n"' + "x" * 100_000 + '" = { max = 1 }\n',                       # an unknown name
    '[gates]\nfid = { "' + "m" * 100_000 + '" = 1 }\n',                          # an unknown gate key
    '[gates]\nfid = "' + "4" * 100_000 + '"\n',                                  # a spec that is not a table
    '[gates]\nfid = { max = "' + "4" * 100_000 + '" }\n',                        # a limit that is not a number
    '[gates]\nmode_collapse = { "' + "k" * 100_000 + '" = 1 }\n',               # neither verdicts nor a number
    '[gates]\nmode_collapse = { deny = ["' + "s" * 100_000 + '"] }\n',          # not a verdict
    '"' + "t" * 100_000 + '" = 1\n[gates]\nfid = { max = 1 }\n',                 # an unknown top-level key
    '"' + "t" * 100_000 + '" = 1\n',                                             # no [gates] table, found: ...
])
def test_names_from_the_gates_file_are_cut_short_in_errors(tmp_path, text):
    """A 100,000-character key was echoed whole (a 200 KB error line): every message shows it cut short."""
    with pytest.raises(GandiagError) as info:
        load_gates(write(tmp_path, text))
    assert len(str(info.value)) < 1000 and "\n" not in str(info.value)


def test_the_summary_cuts_a_long_metric_key_short(tmp_path):
    g = load_gates(write(tmp_path, '[gates]\n"fid@' + "x" * 100_000 + '" = { max = 1 }\n'))
    out = check_gates(make_results(), g)
    assert not out.passed and len(out.summary()) < 3000


def test_a_baseline_given_twice_is_refused(tmp_path):
    """Top-level and [gates].baseline both given: the top-level one won silently; neither is a safe guess."""
    make_results(fid=20.0).save(tmp_path / "a.json")
    make_results(fid=99.0).save(tmp_path / "b.json")
    with pytest.raises(GandiagError, match="baseline is given twice"):
        load_gates(write(tmp_path, 'baseline = "a.json"\n[gates]\nbaseline = "b.json"\nfid = { max_increase = 0.05 }\n'))
    # either one alone is fine
    assert load_gates(write(tmp_path, '[gates]\nbaseline = "b.json"\nfid = { max_increase = 0.05 }\n', "1.toml")).baseline
    assert load_gates(write(tmp_path, 'baseline = "a.json"\n[gates]\nfid = { max_increase = 0.05 }\n', "2.toml")).baseline
