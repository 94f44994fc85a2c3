"""Results JSON read back (docs/results-schema.md): what the schema says is checked on load, so a report or a
gate never reads a value of the wrong type or a key given twice; a file that breaks it is exit 2, one line."""

from __future__ import annotations

import json

import pytest
from conftest import gandiag_in_process

from gandiag.errors import DataError, GandiagError
from gandiag.results import Results


def genuine() -> dict:
    """A small results document as gandiag writes it, with a gate entry and one diagnostic."""
    return {
        "schema": "gandiag.results", "schema_version": 1,
        "metrics": {"fid": {"value": 20.0, "label": "FID", "higher_is_better": False},
                    "recall": {"value": 0.6, "label": "Recall", "higher_is_better": True}},
        "generator": {"path": "g.pt", "format": "gandiag"}, "contract": None,
        "real": {"source": "ring8", "content_sha256": "ab12"},
        "diagnostics": {"mode_collapse": {"verdict": "none", "reasons": []}},
        "warnings": [],
        "gates": [{"name": "fid max", "passed": True, "message": "20 ≤ max 40", "value": 20.0}],
        "provenance": {"extractor": {"name": "points", "weights_sha256": None},
                       "extractors": [{"name": "points", "weights_sha256": None}], "num_samples": 2500},
    }


def load_text(tmp_path, text: str) -> Results:
    p = tmp_path / "r.json"
    p.write_text(text)
    return Results.load(p)


def load(tmp_path, d: dict) -> Results:
    return load_text(tmp_path, json.dumps(d))


def test_the_genuine_document_loads(tmp_path):
    r = load(tmp_path, genuine())
    assert r.metrics["fid"]["value"] == 20.0 and r.gates[0]["passed"] is True


@pytest.mark.parametrize("version", [0, -5, 2, 1.0, "1", True, None])
def test_a_schema_version_this_gandiag_does_not_read_is_refused(tmp_path, version):
    d = genuine()
    d["schema_version"] = version
    with pytest.raises(DataError, match="results schema version .* is not one this gandiag reads"):
        load(tmp_path, d)


@pytest.mark.parametrize("key, bad", [("error", ""), ("error", False), ("error", {}), ("error", None),
                                      ("error", 0), ("error", "   "), ("not_applicable", ""),
                                      ("not_applicable", None), ("not_applicable", [])])
def test_error_and_not_applicable_must_be_a_reason(tmp_path, key, bad):
    """Either key says 'no value to trust'; one that holds no reason is a malformed file, not a pass."""
    d = genuine()
    d["metrics"]["fid"][key] = bad
    with pytest.raises(DataError, match=f"metrics.fid.{key} must be non-empty text"):
        load(tmp_path, d)
    d["metrics"]["fid"][key] = "FloatingPointError: nan"
    assert load(tmp_path, d).metrics["fid"][key] == "FloatingPointError: nan"


@pytest.mark.parametrize("key, bad", [("error", ""), ("error", False), ("error", {}), ("not_applicable", "")])
def test_gate_command_refuses_an_empty_reason_next_to_a_value(tmp_path, key, bad):
    d = genuine()
    d["metrics"]["fid"][key] = bad
    (tmp_path / "r.json").write_text(json.dumps(d))
    (tmp_path / "g.toml").write_text("[gates]\nfid = { max = 40.0 }\n")
    res = gandiag_in_process("gate", "r.json", "--gate", "g.toml", cwd=tmp_path)
    assert res.returncode == 2 and f"metrics.fid.{key} must be non-empty text" in res.stderr, res.stderr


@pytest.mark.parametrize("key, why", [("error", ""), ("error", False), ("error", {}), ("not_applicable", ""),
                                      ("error", "x"), ("not_applicable", "no real features")])
def test_a_metric_carrying_error_or_not_applicable_fails_its_gate(key, why):
    """Built in-process (no file to refuse), a metric with either key fails its gate whatever the value says."""
    from gandiag.gates import Gates, check_gates, parse_gates

    r = Results.from_json(genuine())
    r.metrics["fid"][key] = why
    out = check_gates(r, Gates(parse_gates({"gates": {"fid": {"max": 40.0}}})))
    assert not out.passed and "fails closed" in out.failures[0].message


@pytest.mark.parametrize("text", [
    '"fid": {"value": null, "value": 0.001, "label": "FID"}',
    '"fid": {"value": 50.0, "label": "FID"}, "fid": {"value": 0.001, "label": "FID"}',
])
def test_a_key_given_twice_is_refused(tmp_path, text):
    """json keeps the last of two equal keys, another reader the first: a file that means two things is refused."""
    doc = ('{"schema": "gandiag.results", "schema_version": 1, "metrics": {' + text + '}, "generator": {}, '
           '"contract": null, "real": null, "diagnostics": {}, "warnings": [], "provenance": {}}')
    with pytest.raises(DataError, match="appears twice in one object"):
        load_text(tmp_path, doc)
    (tmp_path / "g.toml").write_text("[gates]\nfid = { max = 40.0 }\n")
    res = gandiag_in_process("gate", "r.json", "--gate", "g.toml", cwd=tmp_path)
    assert res.returncode == 2 and "appears twice in one object" in res.stderr, res.stderr


def test_a_baseline_with_a_key_given_twice_is_refused(tmp_path):
    from gandiag.gates import load_gates

    text = json.dumps(genuine()).replace('"fid": {"value": 20.0,', '"fid": {"value": 20.0, "value": null,')
    (tmp_path / "main.json").write_text(text)
    (tmp_path / "g.toml").write_text('baseline = "main.json"\n[gates]\nfid = { max_increase = 0.05 }\n')
    with pytest.raises(GandiagError, match="baseline: .*'value' appears twice"):
        load_gates(tmp_path / "g.toml")


@pytest.mark.parametrize("gates", [
    [1, "a", None],
    [{"name": "fid max", "passed": "false", "message": "60 > max 40", "value": 60.0}],
    [{"name": "fid max", "passed": 0, "message": "60 > max 40", "value": 60.0}],
    [{"name": "fid max", "message": "60 > max 40", "value": 60.0}],
    [{"name": 7, "passed": True, "message": "", "value": None}],
    [{"name": "fid max", "passed": True, "message": None, "value": None}],
    [{"name": "fid max", "passed": True, "message": "", "value": "20"}],
    [{"name": "fid max", "passed": True, "message": "", "value": 10 ** 400}],
])
def test_gate_entries_are_checked(tmp_path, gates):
    """A report shows passed: "false" (a non-empty string) as a pass: every entry's types are checked on load."""
    d = genuine()
    d["gates"] = gates
    with pytest.raises(DataError, match=r"gates\[0\] must be an object with a text name, passed true or false"):
        load(tmp_path, d)


def test_well_formed_gate_entries_load(tmp_path):
    d = genuine()
    d["gates"] = [{"name": "fid max", "passed": False, "message": "60 > max 40", "value": 60},
                  {"name": "mode_collapse allow", "passed": True, "message": "verdict 'none' allowed", "value": None}]
    assert load(tmp_path, d).gates == d["gates"]
    d["gates"] = []
    assert load(tmp_path, d).gates == []


def test_report_command_refuses_a_string_passed(tmp_path):
    d = genuine()
    d["gates"][0]["passed"] = "false"
    (tmp_path / "r.json").write_text(json.dumps(d))
    res = gandiag_in_process("report", "r.json", "-o", "r.html", cwd=tmp_path)
    assert res.returncode == 2 and "gates[0]" in res.stderr, res.stderr
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("field, bad", [("extractor", "x"), ("extractor", ["points"]), ("extractor", 3),
                                        ("extractors", "x"), ("extractors", ["points"]), ("extractors", {"a": 1})])
def test_provenance_extractor_types_are_checked(tmp_path, field, bad):
    """The report's Summary section read provenance.extractor as an object: a string there broke the section."""
    d = genuine()
    d["provenance"][field] = bad
    with pytest.raises(DataError, match=f"provenance.{field} must be"):
        load(tmp_path, d)
    (tmp_path / "r.json").write_text(json.dumps(d))
    res = gandiag_in_process("report", "r.json", "-o", "r.html", cwd=tmp_path)
    assert res.returncode == 2 and f"provenance.{field} must be" in res.stderr, res.stderr


def test_provenance_without_extractors_still_loads(tmp_path):
    d = genuine()
    d["provenance"] = {"num_samples": 10}
    assert load(tmp_path, d).provenance == {"num_samples": 10}
    d["provenance"] = {"extractor": None, "extractors": None}
    assert load(tmp_path, d).summary()
