"""Fuzzed gate TOML: load_gates and check_gates on random text and random TOML documents (wrong types, odd
baselines), and `gandiag gate` with the fuzzed file.

Contract and settings: tests/fuzz_support.py.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from conftest import require_extra

require_extra("hypothesis")  # the test extra installs it; missing, this module fails in CI and is skipped elsewhere

from fuzz_support import (_one_thread, _quiet, call_reader, fuzz, genuine_results,  # noqa: E402,F401
                          nothing_left_behind, ring_points, run_cli, scratch, to_toml, toml_values)
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


METRIC_NAMES = ["fid", "kid", "is", "precision", "recall", "density", "coverage"]
GATE_KEYS = ["min", "max", "max_increase", "max_decrease", "max_increase_abs", "max_decrease_abs", "allow", "deny"]
BASELINES = ["missing.json", "folder", "gates.toml", "binary.json", "deep.json", "list.json", "good.json", "", "\x00",
             "a" * 300, "/nonexistent/dir/r.json", ".", "..", "good.json/x", "r\nx.json"]


@st.composite
def gate_documents(draw):
    kind = draw(st.sampled_from(["structured", "structured", "structured", "text", "tomlish"]))
    if kind == "text":
        return draw(st.text(max_size=120))
    if kind == "tomlish":
        return draw(st.sampled_from(["[gates]\nfid = { max = 1e999 }", "[gates]\nfid = { max = nan }",
                                     "[gates]\n[gates.fid]\n[gates.fid.max]", "[[gates]]\nfid = 1",
                                     "baseline = 1\n[gates]\nfid={max=1}", "[gates]\nfid = { min = 2, max = 1 }",
                                     "[gates]\nmode_collapse = { allow = [] }",
                                     "[gates]\nmode_collapse.modes_captured = { min = {} }",
                                     "\ufeff[gates]\nfid = { max = 1 }", "[gates]\r\nfid = { max = 1 }\r\n"]))
    gates = {}
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.one_of(st.sampled_from(METRIC_NAMES + ["mode_collapse", "gradient_health", "baseline",
                                                              "mode_collapse.modes_captured"]),
                              st.text(max_size=6)))
        if draw(st.booleans()):
            spec = {draw(st.sampled_from(GATE_KEYS)): draw(st.one_of(
                st.floats(allow_nan=True, allow_infinity=True), st.integers(-(1 << 63), (1 << 63) - 1),
                st.booleans(), st.lists(st.sampled_from(["none", "partial", "severe", "healthy", ""]), max_size=3),
                toml_values())) for _ in range(draw(st.integers(0, 3)))}
        else:
            spec = draw(toml_values())
        gates[name] = spec
    doc = {}
    if draw(st.integers(0, 5)):
        doc["gates"] = gates
    else:
        doc["gates"] = draw(toml_values())
    if draw(st.booleans()):
        doc["baseline"] = draw(st.one_of(st.sampled_from(BASELINES), toml_values()))
    if draw(st.integers(0, 5)) == 0:
        doc[draw(st.text(min_size=1, max_size=5))] = draw(toml_values())
    with contextlib.suppress(Exception):
        return to_toml(doc)
    return ""


def _baseline_files(d: Path, genuine_json: dict) -> None:
    (d / "folder").mkdir()
    (d / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    (d / "deep.json").write_text("[" * 100_000)
    (d / "list.json").write_text("[]")
    (d / "good.json").write_text(json.dumps(genuine_json))


@fuzz(50)
@given(text=gate_documents())
def test_gate_toml(tmp_path, genuine_results, text):
    """load_gates on random text, random TOML documents (wrong types, odd baselines); when it loads, check_gates."""
    from gandiag.gates import check_gates, load_gates

    with scratch(tmp_path) as d:
        _baseline_files(d, genuine_results["json"])
        p = d / "gates.toml"
        p.write_bytes(text.encode("utf-8", "surrogatepass"))
        with nothing_left_behind(d, allowed=[d / "junit.xml"]):
            gates = call_reader("load_gates", load_gates, p)
            if gates is not None:
                outcome = check_gates(genuine_results["results"], gates, junit_path=d / "junit.xml")
                assert isinstance(outcome.passed, bool)
                outcome.summary()


_BL = '\n[gates]\nfid = { max_increase = 0.1 }\n'
GATE_EDGES = {
    "100000 open brackets": "a = " + "[" * 100_000,
    "100000 nested arrays": "gates = " + "[" * 100_000 + "]" * 100_000,
    "100000 nested inline tables": "[gates]\nfid = " + "{a = " * 100_000 + "1" + "}" * 100_000,
    "baseline with a NUL": 'baseline = "\\u0000"' + _BL,
    "baseline is a folder": 'baseline = "folder"' + _BL,
    "baseline name too long": 'baseline = "' + "a" * 300 + '"' + _BL,
    "baseline is a JSON list": 'baseline = "list.json"' + _BL,
    "baseline nested 100000 deep": 'baseline = "deep.json"' + _BL,
    "baseline not UTF-8": 'baseline = "binary.json"' + _BL,
    "baseline is the gates file": 'baseline = "gates.toml"' + _BL,
    "baseline under a file": 'baseline = "good.json/x"' + _BL,
    "min above max": "[gates]\nfid = { min = 2, max = 1 }",
    "gate is a string": '[gates]\nfid = "40"',
    "gate limit is a table": "[gates]\nfid = { max = {} }",
    "diagnostic number is not a table": "[gates]\nmode_collapse = { modes_captured = 8 }",
    "empty allow list": "[gates]\nmode_collapse = { allow = [] }",
    "array of tables": "[[gates]]\nfid = 1",
    "BOM": "\ufeff[gates]\nfid = { max = 1 }",
}


@pytest.mark.parametrize("name", sorted(GATE_EDGES))
def test_gate_toml_edge_cases(tmp_path, genuine_results, name):
    """Hand-picked gates files: load_gates refuses (GandiagError) or loads and can be checked."""
    from gandiag.gates import check_gates, load_gates

    _baseline_files(tmp_path, genuine_results["json"])
    p = tmp_path / "gates.toml"
    p.write_text(GATE_EDGES[name])
    with nothing_left_behind(tmp_path, allowed=[tmp_path / "junit.xml"]):
        gates = call_reader("load_gates", load_gates, p)
        if gates is not None:
            check_gates(genuine_results["results"], gates, junit_path=tmp_path / "junit.xml").summary()


def test_gates_path_is_a_folder(tmp_path):
    from gandiag.gates import load_gates

    call_reader("load_gates(folder)", load_gates, tmp_path)


@fuzz(12, shrink=False)
@given(text=gate_documents())
def test_gate_toml_cli(tmp_path, genuine_results, text):
    """`gandiag gate` with the fuzzed gates file: exit 0, 1 or 2; JUnit XML only when the gates were checked."""
    with scratch(tmp_path) as d:
        _baseline_files(d, genuine_results["json"])
        (d / "gates.toml").write_bytes(text.encode("utf-8", "surrogatepass"))
        with nothing_left_behind(d, allowed=[d / "junit.xml"]):
            run_cli(["gate", "good.json", "--gate", "gates.toml", "--junit", "junit.xml"], d, ok=(0, 1, 2),
                    outputs=["junit.xml"])
