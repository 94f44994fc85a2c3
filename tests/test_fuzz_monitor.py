"""Fuzzed files of a watched run: trend.jsonl (read back and drawn by `gandiag watch`) and monitor.json.

A run folder may hold anything: each reader answers with its value or a GandiagError (exit 2), never another
exception, and the trend report draws whatever a valid trend file says. Contract and settings:
tests/fuzz_support.py.
"""

from __future__ import annotations

import json

from conftest import require_extra

require_extra("hypothesis")

from fuzz_support import JSON_VALUES, _one_thread, _quiet, call_reader, dumps, fuzz, scratch  # noqa: E402,F401
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

GENUINE_TREND = {"step": 400, "snapshot": "runs/x/snapshots/step-0000400.pt2", "metrics": {"fid": 14.6, "kid": None},
                 "labels": {"fid": "FID [digits]"}, "verdicts": {"mode_collapse": "none", "gradient_health": "healthy"},
                 "alarms": [{"step": 400, "source": "mode_collapse", "verdict": "none", "level": "warning",
                             "message": "m"}], "seconds": 1.3, "fingerprint": "1:2:3"}
TREND_FIELDS = sorted(GENUINE_TREND)
GENUINE_SETTINGS = {"feature_extractor": "digits", "num_samples": 1000, "seed": 0, "d_outputs": "logits",
                    "loss": "ns", "gradients": "optimizer"}
ODD = st.sampled_from([None, "", "$x^$", "<script>", 10 ** 400, float("nan"), float("inf"), -1, True, [], {},
                       {"a": {"b": []}}, "\x1b[31m", "x" * 300])


@st.composite
def trend_lines(draw):
    kind = draw(st.sampled_from(["genuine", "fields", "fields", "json", "special"]))
    if kind == "genuine":
        return dumps(GENUINE_TREND)
    if kind == "fields":
        rec = json.loads(json.dumps(GENUINE_TREND))
        for _ in range(draw(st.integers(1, 3))):
            key = draw(st.sampled_from(TREND_FIELDS))
            inner = draw(st.one_of(JSON_VALUES, ODD, st.dictionaries(st.one_of(st.text(max_size=8), ODD.filter(
                lambda v: isinstance(v, str))), st.one_of(JSON_VALUES, ODD), max_size=3)))
            rec[key] = inner
        if draw(st.booleans()):
            rec.pop(draw(st.sampled_from(TREND_FIELDS)), None)
        return dumps(rec)
    if kind == "json":
        return dumps(draw(JSON_VALUES))
    return draw(st.sampled_from(["{", "NaN", '{"step": 1e999}', "[" * 10_000, "\x00", '"s"', '{"step": true}']))


@fuzz(60)
@given(data=st.data())
def test_trend_reader_and_report(tmp_path, data):
    from gandiag.monitor import trend

    lines = data.draw(st.lists(trend_lines(), max_size=3), label="lines")
    with scratch(tmp_path) as d:
        (d / trend.TREND_NAME).write_text("\n".join(lines) + data.draw(st.sampled_from(["", "\n"])))
        got = call_reader("read_trend", trend.read_trend, d / trend.TREND_NAME)
        if got is not None:
            page = call_reader("redraw", trend.redraw, d, "fuzz")
            assert page is None or "<script>" not in page.read_text()


@fuzz(60)
@given(value=st.one_of(st.just(GENUINE_SETTINGS), JSON_VALUES, st.builds(
    lambda k, v: {**GENUINE_SETTINGS, k: v}, st.sampled_from(sorted(GENUINE_SETTINGS)), st.one_of(JSON_VALUES, ODD))))
def test_monitor_settings_reader(tmp_path, value):
    from gandiag.monitor.snapshots import SETTINGS_NAME, read_settings

    with scratch(tmp_path) as d:
        (d / SETTINGS_NAME).write_text(dumps(value))
        got = call_reader("read_settings", read_settings, d)
        if got is not None:
            assert set(got) == {"feature_extractor", "num_samples", "seed"}
            assert isinstance(got["num_samples"], int) and isinstance(got["seed"], int)
