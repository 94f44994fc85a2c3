"""Fuzzed training logs (log.jsonl): read_log and analyse_log, the gradient_health diagnostic, and
`gandiag diagnose` / `gandiag report` on a run folder whose log is fuzzed.

Contract and settings: tests/fuzz_support.py.
"""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import require_extra

require_extra("hypothesis")  # the test extra installs it; missing, this module fails in CI and is skipped elsewhere

from fuzz_support import (JSON_VALUES, LR1_DIR, Lines, Quiet, _one_thread, _quiet,  # noqa: E402,F401
                          assert_errors_are_gandiag, call_reader, dumps, fuzz, nothing_left_behind, run_cli,
                          scratch)
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


LOG_FIELDS = ["step", "time", "d_loss", "g_loss", "grad_norm_total", "grad_norm", "sigma_max", "event", "non_finite",
              "eval", "lr_g", "lr_d"]


@st.composite
def log_lines(draw, genuine_lines: list):
    kind = draw(st.sampled_from(["genuine", "genuine", "fields", "json", "text", "special"]))
    if kind == "genuine":
        return draw(st.sampled_from(genuine_lines))
    if kind == "fields":
        rec = json.loads(draw(st.sampled_from(genuine_lines))) if draw(st.booleans()) else {}
        for _ in range(draw(st.integers(1, 3))):
            key = draw(st.sampled_from(LOG_FIELDS))
            value = draw(st.one_of(JSON_VALUES, st.dictionaries(st.sampled_from(["G", "D", "net.0.weight"]),
                                                                JSON_VALUES, max_size=3),
                                   st.sampled_from(["diverged", 10 ** 400, -(10 ** 400), float("nan"), float("inf"),
                                                    "NaN", [], {}])))
            rec[key] = value
        if draw(st.integers(0, 4)) == 0 and rec:
            del rec[draw(st.sampled_from(sorted(rec)))]
        return dumps(rec)
    if kind == "json":
        return dumps(draw(JSON_VALUES))
    if kind == "text":
        return draw(st.text(st.characters(blacklist_characters="\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029",
                                          blacklist_categories=("Cs",)), max_size=40))
    return draw(st.sampled_from(["NaN", "Infinity", "{", '{"step": NaN}', '{"step": 1e999, "d_loss": 1}',
                                 '{"step": "5", "d_loss": 1.0}', '{"event": "diverged"}',
                                 '{"step": 1, "d_loss": 1' + "0" * 500 + "}", "\x00", '"just a string"']))


@pytest.fixture(scope="module")
def genuine_log_lines():
    return Lines(ln for ln in (LR1_DIR / "log.jsonl").read_text().splitlines() if ln.strip())


def _log_text(data, genuine_lines) -> str:
    lines = data.draw(st.lists(log_lines(genuine_lines), min_size=0, max_size=8), label="lines")
    sep = data.draw(st.sampled_from(["\n", "\r\n"]), label="newline")
    return sep.join(lines) + data.draw(st.sampled_from(["", sep]), label="end")


@fuzz(50)
@given(data=st.data())
def test_training_log_reader(tmp_path, genuine_log_lines, data):
    """read_log (gandiag.training.trainlog) then analyse_log for each loss, on fuzzed log.jsonl."""
    from gandiag.diagnostics.training_log import analyse_log
    from gandiag.training.trainlog import read_log

    text = _log_text(data, genuine_log_lines)
    with scratch(tmp_path) as d:
        p = d / "log.jsonl"
        p.write_bytes(text.encode("utf-8", "surrogatepass"))
        with nothing_left_behind(d):
            records = call_reader("read_log", read_log, p)
            if records is not None:
                for loss in ("ns", "minimax", "ls", "hinge", "wasserstein", None):
                    out = call_reader(f"analyse_log(loss={loss})", analyse_log, records, loss)
                    if out is not None:
                        json.dumps(out, allow_nan=True)  # goes into the results JSON


LOG_EDGES = {
    "100000 open brackets": "[" * 100_000,
    "a number": "5",
    "NaN": "NaN",
    "a list": "[1, 2]",
    "invalid JSON": "{",
    "step is a string": '{"step": "5", "d_loss": 1.0}',
    "step is null": '{"step": null, "d_loss": 1.0}',
    "no step": '{"d_loss": 1.0}',
    "diverged without step": '{"event": "diverged"}',
    "d_loss huge int": '{"step": 1, "d_loss": 1' + "0" * 400 + "}",
    "d_loss a string": '{"step": 1, "d_loss": "x"}',
    "d_loss a list": '{"step": 1, "d_loss": [1]}',
    "non_finite an int": '{"step": 1, "non_finite": 5}',
    "grad_norm_total G a string": '{"step": 1, "grad_norm_total": {"G": "x", "D": 1}}',
    "sigma_max G a list": '{"step": 1, "sigma_max": {"G": [1]}}\n{"step": 2, "sigma_max": {"G": [2]}}',
    "sigma_max values strings": '{"step": 1, "sigma_max": {"G": {"a": "1"}}}\n{"step": 2, "sigma_max": {"G": {"a": "2"}}}',
    "not UTF-8": "\udcff{}",
}


@pytest.mark.parametrize("name", sorted(LOG_EDGES))
def test_training_log_edge_cases(tmp_path, name):
    """Hand-picked log.jsonl lines: read_log + analyse_log work or raise a GandiagError."""
    from gandiag.diagnostics.training_log import analyse_log
    from gandiag.training.trainlog import read_log

    p = tmp_path / "log.jsonl"
    p.write_bytes(LOG_EDGES[name].encode("utf-8", "surrogateescape"))
    records = call_reader("read_log", read_log, p)
    if records is not None:
        for loss in ("ns", "wasserstein", None):
            call_reader(f"analyse_log(loss={loss})", analyse_log, records, loss)


@pytest.fixture(scope="module")
def lr1_generator():
    from gandiag.generator.loading import LoadOptions, load_generator

    return load_generator(LR1_DIR / "checkpoint.pt", LoadOptions())


@fuzz(20)
@given(data=st.data())
def test_training_log_in_gradient_health(tmp_path, genuine_log_lines, lr1_generator, data):
    """The gradient_health diagnostic on a checkpoint whose log.jsonl is fuzzed: it returns, and its log part
    either works or fails with a GandiagError (not a KeyError or TypeError swallowed into "errors")."""
    import dataclasses

    from gandiag.diagnostics.gradient_health import check

    text = _log_text(data, genuine_log_lines)
    with scratch(tmp_path) as d:
        (d / "log.jsonl").write_bytes(text.encode("utf-8", "surrogatepass"))
        # the log beside "checkpoint.pt" is read; no checkpoint dict, so the (slower) adversarial part is skipped
        gen = dataclasses.replace(lr1_generator, path=str(d / "checkpoint.pt"), checkpoint=None)
        with nothing_left_behind(d):
            out = check(gen, seed=0, device="cpu")
        assert "log" in out or "log" in (out.get("errors") or {}), "the log beside the checkpoint was not read"
        assert_errors_are_gandiag("gradient_health", out.get("errors"))
        json.dumps(out, allow_nan=True)


@fuzz(5, shrink=False)
@given(data=st.data())
def test_training_log_diagnose_cli(tmp_path, genuine_log_lines, data):
    """`gandiag diagnose` on a run folder whose log.jsonl is fuzzed: exit 0, and no diagnostic part failed with
    an internal exception (the JSON's errors)."""
    text = _log_text(data, genuine_log_lines)
    with scratch(tmp_path) as d:
        shutil.copytree(LR1_DIR, d / "run")
        (d / "run" / "log.jsonl").write_bytes(text.encode("utf-8", "surrogatepass"))
        with nothing_left_behind(d, allowed=[d / "out.json", d / "out.artifacts.npz"]):
            run_cli(["diagnose", "run/checkpoint.pt", "-n", "20", "--metrics", "fid", "--device", "cpu", "--no-cache",
                     "--json", "out.json"], d, ok=(0,), outputs=["out.json", "out.artifacts.npz"], cap=1 << 30)
        doc = json.loads((d / "out.json").read_text())
        for name, diag in (doc.get("diagnostics") or {}).items():
            assert_errors_are_gandiag(f"diagnose: {name}", (diag or {}).get("errors"))


@pytest.fixture(scope="module")
def lr1_results_json(tmp_path_factory):
    from gandiag.pipeline import evaluate

    r = evaluate(LR1_DIR / "checkpoint.pt", num_samples=200, metrics=[], diagnostics=False, device="cpu",
                 use_cache=False)
    return Quiet(r.to_json())


@pytest.mark.slow
@fuzz(3, shrink=False)
@given(data=st.data())
def test_training_log_in_report(tmp_path, genuine_log_lines, lr1_results_json, data):
    """`gandiag report` reads log.jsonl beside the checkpoint (training curves, gradient norms): exit 0, and no
    report section fails on the fuzzed log."""
    text = _log_text(data, genuine_log_lines)
    with scratch(tmp_path) as d:
        run = d / "run"
        shutil.copytree(LR1_DIR, run)
        (run / "log.jsonl").write_bytes(text.encode("utf-8", "surrogatepass"))
        doc = json.loads(json.dumps(lr1_results_json))
        doc["generator"]["path"] = str(run / "checkpoint.pt")
        doc["diagnostics"] = {}
        (d / "r.json").write_text(json.dumps(doc, allow_nan=False, default=str))
        with nothing_left_behind(d, allowed=[d / "out.html"]):
            run_cli(["report", "r.json", "-o", "out.html"], d, ok=(0,), outputs=["out.html"])
        html = (d / "out.html").read_text()
        assert "This section failed" not in html, \
            "a report section failed on the fuzzed log.jsonl: " + html[html.index("This section failed"):][:300]
