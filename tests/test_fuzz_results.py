"""Fuzzed results JSON: Results.load and .summary(), `gandiag report` and `gandiag gate` on the genuine
results with fields edited, arbitrary JSON and text.

Contract and settings: tests/fuzz_support.py; the genuine results (shared with test_fuzz_gates.py) live there.
"""

from __future__ import annotations

import json

import pytest
from conftest import require_extra

require_extra("hypothesis")  # the test extra installs it; missing, this module fails in CI and is skipped elsewhere

from fuzz_support import (GOOD_GATES, JSON_VALUES, _one_thread, _quiet, call_reader, dumps,  # noqa: E402,F401
                          fuzz, genuine_results, json_paths, nothing_left_behind, ring_points, run_cli, scratch,
                          set_path)
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def test_good_gates_hold_on_the_genuine_results(tmp_path, genuine_results):
    """The gates the CLI properties use load and pass on the genuine results (so a failure there is the input's)."""
    from gandiag.gates import check_gates, load_gates

    (tmp_path / "gates.toml").write_text(GOOD_GATES)
    outcome = check_gates(genuine_results["results"], load_gates(tmp_path / "gates.toml"))
    assert outcome.passed and len(outcome.cases) == 4, outcome.summary()


@st.composite
def results_documents(draw, genuine: dict):
    """Text of a results file: the genuine one with fields edited, arbitrary JSON, or raw text."""
    kind = draw(st.sampled_from(["edited", "edited", "edited", "schema_json", "json", "text"]))
    if kind == "edited":
        doc = json.loads(json.dumps(genuine))
        for _ in range(draw(st.integers(1, 3))):
            paths = [p for p in json_paths(doc) if p]
            path = draw(st.sampled_from(paths))
            if draw(st.integers(0, 3)) == 0:
                set_path(doc, path, None, delete=True)
            else:
                set_path(doc, path, draw(JSON_VALUES))
        return dumps(doc)
    if kind == "schema_json":
        doc = draw(st.dictionaries(st.sampled_from(["metrics", "generator", "contract", "real", "provenance",
                                                    "diagnostics", "warnings", "gates"]), JSON_VALUES))
        doc.update(schema="gandiag.results", schema_version=draw(st.sampled_from([1, 0, -1, True, 1.0])))
        return dumps(doc)
    if kind == "json":
        return dumps(draw(JSON_VALUES))
    return draw(st.text(max_size=80))


@fuzz(50)
@given(data=st.data())
def test_results_json(tmp_path, genuine_results, data):
    """Results.load then .summary(), on the genuine results with fields edited, arbitrary JSON, and text."""
    from gandiag.results import Results

    text = data.draw(results_documents(genuine_results["json"]), label="results")
    with scratch(tmp_path) as d:
        p = d / "r.json"
        p.write_text(text)
        with nothing_left_behind(d):
            r = call_reader("Results.load", Results.load, p)
            if r is not None:
                call_reader("Results.summary", r.summary)


_R = '{"schema": "gandiag.results", "schema_version": 1, '
RESULTS_EDGES = {
    "100000 open brackets": "[" * 100_000,
    "100000 nested lists": "[" * 100_000 + "]" * 100_000,
    "top-level list": "[]",
    "top-level string": '"gandiag.results"',
    "metrics is a list": _R + '"metrics": []}',
    "metric is a number": _R + '"metrics": {"fid": 3}}',
    "metric value is a string": _R + '"metrics": {"fid": {"value": "x"}}}',
    "metric value missing": _R + '"metrics": {"fid": {"label": "FID"}}}',
    "metric value huge int": _R + '"metrics": {"fid": {"value": ' + "9" * 400 + '}}}',
    "ci95 is a number": _R + '"metrics": {"fid": {"value": 1.0, "ci95": 3}}}',
    "std is a string": _R + '"metrics": {"fid": {"value": 1.0, "std": "x"}}}',
    "generator is null": _R + '"generator": null}',
    "real without source": _R + '"real": {"n": 3}}',
    "provenance is a list": _R + '"provenance": []}',
    "diagnostics is a list": _R + '"diagnostics": []}',
    "diagnostic reasons null": _R + '"diagnostics": {"mode_collapse": {"verdict": "none", "reasons": null}}}',
    "diagnostic hq fraction string": _R + '"diagnostics": {"m": {"verdict": "x", "modes_total": 8, '
                                          '"high_quality_fraction": "x"}}}',
    "warnings is null": _R + '"warnings": null}',
    "schema_version true": '{"schema": "gandiag.results", "schema_version": true}',
    "invalid UTF-8": b"\xff\xfe{".decode("latin1"),
}


@pytest.mark.parametrize("name", sorted(RESULTS_EDGES))
def test_results_json_edge_cases(tmp_path, name):
    """Hand-picked results files: Results.load refuses (GandiagError) or loads, and .summary() works."""
    from gandiag.results import Results

    p = tmp_path / "r.json"
    p.write_bytes(RESULTS_EDGES[name].encode("latin1") if name == "invalid UTF-8" else RESULTS_EDGES[name].encode())
    with nothing_left_behind(tmp_path):
        r = call_reader("Results.load", Results.load, p)
        if r is not None:
            call_reader("Results.summary", r.summary)


def test_results_path_is_a_folder(tmp_path):
    from gandiag.results import Results

    call_reader("Results.load(folder)", Results.load, tmp_path)


@fuzz(6, shrink=False)
@given(data=st.data(), junit=st.booleans())
def test_results_json_cli(tmp_path, genuine_results, data, junit):
    """`gandiag report` (0 or 2) and `gandiag gate` (0, 1 or 2) on the same documents; nothing half-written."""
    text = data.draw(results_documents(genuine_results["json"]), label="results")
    with scratch(tmp_path) as d:
        (d / "r.json").write_text(text)
        (d / "r.artifacts.npz").write_bytes(genuine_results["artifacts"])
        (d / "gates.toml").write_text(GOOD_GATES)
        with nothing_left_behind(d, allowed=[d / "out.html", d / "junit.xml"]):
            run_cli(["report", "r.json", "-o", "out.html"], d, outputs=["out.html"])
            run_cli(["gate", "r.json", "--gate", "gates.toml"] + (["--junit", "junit.xml"] if junit else []), d,
                    ok=(0, 1, 2), outputs=["junit.xml"])


def test_report_under_an_address_space_limit(tmp_path, genuine_results):
    """`gandiag report` on genuine results with 2 GiB of address space to spare (ulimit -v, as in some CI
    sandboxes): a 100 KiB artifacts file must not need a buffer the size of its budget (8 GiB)."""
    (tmp_path / "r.json").write_text(json.dumps(genuine_results["json"]))
    (tmp_path / "r.artifacts.npz").write_bytes(genuine_results["artifacts"])
    with nothing_left_behind(tmp_path, allowed=[tmp_path / "out.html"]):
        run_cli(["report", "r.json", "-o", "out.html"], tmp_path, ok=(0,), outputs=["out.html"], cap=2 << 30)


_ARTIFACTS_PATH = ("provenance", "artifacts", "path")
REPORT_EDGES = {  # (path into the genuine results, new value): fields only `gandiag report` reads
    "artifacts path too long": (_ARTIFACTS_PATH, "a" * 300),
    "artifacts path with a NUL": (_ARTIFACTS_PATH, "a\x00.npz"),
    "artifacts path is the folder": (_ARTIFACTS_PATH, "."),
    "artifacts path outside": (_ARTIFACTS_PATH, "../r.artifacts.npz"),
    "generator is true": (("generator",), True),
    "real is a string": (("real",), "ring8"),
}


@pytest.mark.parametrize("name", sorted(REPORT_EDGES))
def test_report_edge_cases(tmp_path, genuine_results, name):
    """Hand-picked edits of the genuine results: `gandiag report` exits 0 or 2 with one line, never 3."""
    path, value = REPORT_EDGES[name]
    doc = set_path(json.loads(json.dumps(genuine_results["json"])), path, value)
    (tmp_path / "r.json").write_text(json.dumps(doc))
    (tmp_path / "r.artifacts.npz").write_bytes(genuine_results["artifacts"])
    with nothing_left_behind(tmp_path, allowed=[tmp_path / "out.html"]):
        run_cli(["report", "r.json", "-o", "out.html"], tmp_path, outputs=["out.html"])


def test_results_deep_nesting_cli(tmp_path):
    """100,000 levels of '[' in a results file: one line and exit 2 from report and gate, not a RecursionError."""
    (tmp_path / "r.json").write_text("[" * 100_000)
    (tmp_path / "gates.toml").write_text(GOOD_GATES)
    with nothing_left_behind(tmp_path):
        run_cli(["report", "r.json", "-o", "out.html"], tmp_path, ok=(2,), outputs=["out.html"])
        run_cli(["gate", "r.json", "--gate", "gates.toml"], tmp_path, ok=(2,))
