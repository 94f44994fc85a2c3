"""Quality gates: a yes/no for CI that does not flip on noise.

A gates file is TOML (docs/gates.md)::

    baseline = "main.json"          # optional; relative to this file

    [gates]
    fid = { max = 40.0, max_increase = 0.05 }   # ≤ 40, and ≤ 5% worse than the baseline
    recall = { min = 0.5 }
    mode_collapse = { allow = ["none"] }         # a diagnostic's verdict
    mode_collapse.modes_captured = { min = 8 }   # a number inside a diagnostic

Every gate *fails closed*: a metric or verdict that is missing, null, NaN or
that came from a crashed computation fails its gate with a message saying so.
A regression against the baseline counts only when it is larger than the
allowed tolerance plus the noise of the two measurements (their 95%
interval half-widths added in quadrature), so a bootstrap interval keeps
noise from failing a build.
"""

from __future__ import annotations

import math
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .atomic import write_text
from .diagnostics import FAILING_VERDICTS
from .errors import GandiagError
from .results import Results, format_number, parse_metric_key
from .safety.text import clean, xml_safe
from .safety.untrusted import shown

THRESHOLDS = ("min", "max")
REGRESSIONS = ("max_increase", "max_decrease", "max_increase_abs", "max_decrease_abs")
NUMERIC_KEYS = THRESHOLDS + REGRESSIONS
VERDICT_KEYS = ("allow", "deny")


class GateFileError(GandiagError):
    """A gates file that cannot be read or says something gandiag cannot check."""


@dataclass
class Gate:
    target: str  # "fid", "mode_collapse", "mode_collapse.modes_captured"
    kind: str  # one of NUMERIC_KEYS, or "allow" / "deny"
    limit: object  # a number, or a list of verdicts
    scope: str = "metric"  # "metric" or "diagnostic"
    levels: Optional[tuple] = None  # allow/deny: the verdict words the diagnostic declares (None: it declares none)

    @property
    def name(self) -> str:
        return f"{self.target} {self.kind}"


@dataclass
class Gates:
    gates: list
    path: Optional[Path] = None
    baseline: Optional[Results] = None
    baseline_path: Optional[Path] = None


@dataclass
class GateCase:
    gate: Gate
    passed: bool
    message: str
    value: Optional[float] = None

    @property
    def name(self) -> str:
        return self.gate.name


@dataclass
class GateOutcome:
    cases: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.cases) and all(c.passed for c in self.cases)

    @property
    def failures(self) -> list:
        return [c for c in self.cases if not c.passed]

    def summary(self) -> str:
        n_ok = sum(c.passed for c in self.cases)
        head = f"gates: {'PASSED' if self.passed else 'FAILED'} ({n_ok}/{len(self.cases)} hold)"
        # shown(): a gates file may name a key of any length (fid@<100,000 characters>); the terminal gets a line
        return "\n".join([head] + [f"  {'ok  ' if c.passed else 'FAIL'} {shown(c.name, 160)}: {shown(c.message, 2000)}"
                                   for c in self.cases])


# ----------------------------------------------------------------------------- loading


def _known_names() -> tuple[set, set]:
    from .plugins import registry
    from .translation.run import MEASURE_NAMES

    return set(registry("metric").names()) | set(MEASURE_NAMES), set(registry("diagnostic").names())


def _key(key) -> str:
    """A key from the gates file, for a message: quoted, escaped, cut short (a key may be 100,000 characters)."""
    return shown(repr(key), 80)


def _declared_levels(name: str) -> Optional[tuple]:
    """The verdict words diagnostic ``name`` declares (its ``levels``, best first), or None when it declares none."""
    try:
        from .plugins import registry

        reg = registry("diagnostic")
        levels = getattr(reg[name], "levels", None) if name in reg else None
    except GandiagError:
        return None
    return _valid_levels(levels)


def _valid_levels(levels) -> Optional[tuple]:
    if isinstance(levels, (list, tuple)) and levels and all(isinstance(x, str) and x for x in levels):
        return tuple(levels)
    return None


def _number(where: str, v) -> float:
    if not _finite(v):  # an integer of 400 digits is TOML, but no float: refused like inf
        raise GateFileError(f"{where} must be a finite number, got {shown(repr(v), 60)}")
    return float(v)


def _numeric_specs(where: str, target: str, spec: dict, allow_regression: bool) -> list:
    scope = "metric" if allow_regression else "diagnostic"
    out = []
    for key, v in spec.items():
        if key not in NUMERIC_KEYS:
            raise GateFileError(f"{where}: unknown gate {_key(key)}; valid: {', '.join(NUMERIC_KEYS)}")
        if key in REGRESSIONS and not allow_regression:
            raise GateFileError(f"{where}: {key} compares metrics with a baseline; it applies to metrics only")
        limit = _number(f"{where}.{key}", v)
        if key in REGRESSIONS and limit < 0:
            raise GateFileError(f"{where}.{key} must be ≥ 0, got {v!r}")
        out.append(Gate(target, key, limit, scope))
    if "min" in spec and "max" in spec and spec["min"] > spec["max"]:
        raise GateFileError(f"{where}: min {spec['min']} is above max {spec['max']}; no value could pass")
    return out


def parse_gates(doc: dict, where: str = "gates file", metric_names: Optional[set] = None,
                diagnostic_names: Optional[set] = None) -> list:
    if metric_names is None or diagnostic_names is None:
        metric_names, diagnostic_names = _known_names()
    table = doc.get("gates")
    if not isinstance(table, dict):
        raise GateFileError(f"{where}: no [gates] table (see docs/gates.md)")
    gates = []
    for name, spec in table.items():
        if name == "baseline":
            continue
        w = f"{where}: gates.{shown(name, 80)}"
        if not isinstance(spec, dict) or not spec:
            raise GateFileError(f"{w} must be a table such as {{ max = 40.0 }}, got {shown(repr(spec), 80)}")
        if parse_metric_key(name)[0] in metric_names:  # fid, fid@digits, fid:b2a (docs/results-schema.md)
            gates += _numeric_specs(w, name, spec, allow_regression=True)
        elif parse_metric_key(name)[0] in diagnostic_names:  # mode_collapse, input_ignored:b2a
            for key, v in spec.items():
                if key in VERDICT_KEYS:
                    if not isinstance(v, list) or not v or not all(isinstance(s, str) for s in v):
                        raise GateFileError(f"{w}.{key} must be a non-empty list of verdicts, e.g. [\"none\"]")
                    if key == "allow" and set(v) & set(FAILING_VERDICTS):
                        raise GateFileError(f"{w}.allow: {', '.join(sorted(set(v) & set(FAILING_VERDICTS)))} means the "
                                            "diagnostic could not judge the model; a gate never passes it")
                    base = parse_metric_key(name)[0]
                    levels = _declared_levels(base)
                    unknown = [s for s in v if s not in (levels or ()) + FAILING_VERDICTS]
                    if levels and unknown:  # a typo ("sever") would deny nothing, or allow nothing, silently
                        raise GateFileError(f"{w}.{key}: {', '.join(shown(repr(s), 40) for s in unknown[:5])} is not a "
                                            f"verdict of {base}; its verdicts are {', '.join(levels)} "
                                            f"(and {', '.join(FAILING_VERDICTS)}, which always fail)")
                    gates.append(Gate(name, key, list(v), "diagnostic", levels))
                elif isinstance(v, dict):
                    gates += _numeric_specs(f"{w}.{shown(key, 80)}", f"{name}.{key}", v, allow_regression=False)
                else:
                    raise GateFileError(f"{w}: {_key(key)} is neither allow/deny (a list of verdicts) nor a number "
                                        f"inside the diagnostic with {{ min = ..., max = ... }}")
        else:
            valid = sorted(metric_names) + sorted(diagnostic_names)
            raise GateFileError(f"{where}: unknown metric or diagnostic {_key(name)}; valid: {', '.join(valid)}")
    if not gates:
        raise GateFileError(f"{where}: the [gates] table names no gate")
    return gates


def load_gates(path) -> Gates:
    """Read and check a gates file; any problem is a :class:`GateFileError` (exit 2)."""
    from .safety.files import read_text_limited
    from .safety.jsonfile import check_nesting

    path = Path(path)
    text = read_text_limited(path, "a gates file", error=GateFileError)
    check_nesting(text, str(path), GateFileError)
    try:
        doc = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError, ValueError) as exc:
        raise GateFileError(f"{path}: not valid TOML ({clean(exc)})") from None
    if not isinstance(doc.get("gates"), dict):
        found = f" (found: {shown(', '.join(sorted(doc)), 120)})" if doc else ""
        raise GateFileError(f"{path}: no [gates] table{found}; see docs/gates.md")
    unknown = set(doc) - {"gates", "baseline"}
    if unknown:
        raise GateFileError(f"{path}: unknown top-level key(s) {shown(', '.join(sorted(unknown)), 120)}; "
                            "expected [gates] and baseline")
    gates = parse_gates(doc, str(path))
    if "baseline" in doc and "baseline" in doc["gates"]:  # which one was meant? neither is a guess worth making
        raise GateFileError(f"{path}: baseline is given twice, at the top and inside [gates]; keep one")
    baseline_spec = doc.get("baseline", doc["gates"].get("baseline"))
    needs_baseline = any(g.kind in REGRESSIONS for g in gates)
    out = Gates(gates, path)
    if baseline_spec is not None:
        if not isinstance(baseline_spec, str) or not baseline_spec:
            raise GateFileError(f"{path}: baseline must be the path of a results JSON file")
        bpath = Path(baseline_spec)
        if not bpath.is_absolute():
            bpath = path.parent / bpath
        try:
            out.baseline = Results.load(bpath)
        except GandiagError as exc:
            raise GateFileError(f"{path}: baseline: {exc}") from None
        out.baseline_path = bpath
    elif needs_baseline:
        names = ", ".join(g.name for g in gates if g.kind in REGRESSIONS)
        raise GateFileError(f"{path}: {names} compare with a baseline, but no baseline = \"results.json\" is given")
    return out


# ----------------------------------------------------------------------------- checking


def _finite(v) -> bool:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:  # an integer beyond any float (400 digits): no number a gate can compare
        return False


def _metric_value(results: Results, name: str):
    """(value, metric dict) or (None, reason) when the metric cannot be trusted."""
    m = results.metrics.get(name)
    if not isinstance(m, dict):
        return None, "missing from the results (not computed, or its computation failed)"
    # Present at all, whatever it holds ("", false, {}): the metric says it is not a value to trust.
    if "error" in m:
        return None, f"its computation failed: {_reason(m['error'])}"
    if "not_applicable" in m:
        return None, f"is not applicable to these inputs: {_reason(m['not_applicable'])}"
    v = m.get("value")
    if not _finite(v):
        return None, f"value is {'null' if v is None else v} (NaN, Inf or not computed)"
    return float(v), m


def _reason(why) -> str:
    return shown(why, 300) if isinstance(why, str) and why.strip() else f"(no reason given: {shown(repr(why), 40)})"


def _half_width(m: dict) -> Optional[float]:
    """The 95% half-width of a metric: from ``ci95``, else 1.96·std; None without either.

    Finite ends can still give an infinite width (``[-1e308, 1e308]``); the caller fails closed on that."""
    ci = m.get("ci95")
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(_finite(c) for c in ci):
        return abs(float(ci[1]) - float(ci[0])) / 2
    if _finite(m.get("std")):
        return 1.96 * float(m["std"])
    return None


def _fmt(v) -> str:
    return format_number(v, 6)


def _check_threshold(gate: Gate, v: float) -> tuple[bool, str]:
    if gate.kind == "min":
        return v >= gate.limit, f"{_fmt(v)} {'≥' if v >= gate.limit else '<'} min {_fmt(gate.limit)}"
    return v <= gate.limit, f"{_fmt(v)} {'≤' if v <= gate.limit else '>'} max {_fmt(gate.limit)}"


def _check_regression(gate: Gate, v: float, m: dict, baseline: Results) -> tuple[bool, str]:
    b, bm = _metric_value(baseline, gate.target)
    if b is None:
        return False, f"baseline {gate.target} {bm}; cannot check a regression (fails closed)"
    worse_up = gate.kind.startswith("max_increase")
    tol = gate.limit if gate.kind.endswith("_abs") else gate.limit * abs(b)
    worsening = (v - b) if worse_up else (b - v)
    hw_cur, hw_base = _half_width(m), _half_width(bm)
    noise = math.hypot(hw_cur or 0.0, hw_base or 0.0)  # √(h_now² + h_base²), without overflowing the squares
    allowed = tol + noise
    overflowed = [f"{what} {_fmt(x)}" for what, x in (("change", worsening), ("tolerance", tol),
                                                       ("noise (95% intervals)", noise), ("allowed change", allowed))
                  if not math.isfinite(x)]
    if overflowed:  # an infinite noise or tolerance would let any change pass: nothing can be judged
        return False, (f"{_fmt(v)} vs baseline {_fmt(b)}: not finite (the numbers overflow): {', '.join(overflowed)}; "
                       "cannot check a regression (fails closed)")
    verb = "rose" if worse_up else "fell"
    tol_text = f"{gate.limit:.3g} of baseline" if not gate.kind.endswith("_abs") else f"{gate.limit:.3g}"
    change = f"{verb} by {_fmt(max(worsening, 0.0))}" if worsening > 0 else "did not get worse"
    msg = f"{_fmt(v)} vs baseline {_fmt(b)}: {change}; allowed {_fmt(tol)} ({tol_text})"
    if noise > 0:
        msg += f" + noise {_fmt(noise)} (95% intervals)"
    elif worsening > tol:
        msg += "; no confidence interval on either run (use --bootstrap N), compared exactly"
    return worsening <= allowed, msg


def _check_diagnostic(gate: Gate, results: Results) -> tuple[bool, str, Optional[float]]:
    diag_name, _, field_name = gate.target.partition(".")
    d = results.diagnostics.get(diag_name)
    if not isinstance(d, dict):
        return False, f"diagnostic {diag_name!r} is missing from the results (not run, or it failed)", None
    if gate.kind in VERDICT_KEYS:
        verdict = d.get("verdict")
        if not isinstance(verdict, str) or not verdict:
            return False, f"diagnostic {diag_name!r} gave no verdict", None
        if verdict in FAILING_VERDICTS:
            why = "; ".join(str(r.get("message", r)) for r in (d.get("reasons") or []) if isinstance(r, dict))[:300]
            return False, f"verdict {verdict!r}: the diagnostic could not judge the model (fails closed)" + \
                (f" — {why}" if why else ""), None
        levels = gate.levels or _valid_levels(d.get("levels"))  # declared by the diagnostic, else by its output
        if levels and verdict not in levels:  # "SEVERE", "severe ", a word of another gandiag: not judged here
            return False, (f"verdict {shown(repr(verdict), 60)} is not one of {diag_name}'s verdicts "
                           f"({', '.join(levels)}); cannot judge it (fails closed)"), None
        ok = (verdict in gate.limit) if gate.kind == "allow" else (verdict not in gate.limit)
        reasons = "; ".join(r if isinstance(r, str) else str(r.get("message", r)) for r in (d.get("reasons") or [])[:2])
        word = "allowed" if ok else "not allowed"
        return ok, f"verdict {verdict!r} {word} ({gate.kind} {gate.limit})" + (f" — {reasons}" if reasons and not ok else ""), None
    v = d.get(field_name)
    if not _finite(v):
        return False, f"{gate.target} is {'missing' if field_name not in d else repr(v)} (fails closed)", None
    ok, msg = _check_threshold(gate, float(v))
    return ok, msg, float(v)


# What makes two runs comparable (docs/gates.md): where to find it in a results file, and what it is called.
COMPARABLE = (
    (("provenance", "extractor", "name"), "feature extractor"),
    (("provenance", "extractor", "weights_sha256"), "feature extractor weights (sha256)"),
    (("provenance", "extractors"), "feature extractors and their weights"),
    (("real", "content_sha256"), "real data (content sha256)"),
    (("provenance", "num_samples"), "number of generated samples N"),
    (("provenance", "metric_options"), "metric options (seed, IS splits, KID subsets and size, k)"),
    # the numerics, not whether the extractor ran compiled: compiled features equal eager ones to 2e-6
    # (tests/test_parity_torch_fidelity.py), which no metric's comparison can see
    (("provenance", "compute", "precision"), "compute precision"),
)
# Compared when either run has it (absent from both: equal): what only some kinds of runs record.
COMPARABLE_WHEN_PRESENT = (
    (("generator", "inputs", "content_sha256"), "a translator's inputs (content sha256)"),
)
_MISSING = object()


# Names one precision had in earlier results: fp32 on a CPU is what --compute-precision calls strict.
PRECISION_ALIASES = {"fp32": "strict"}


def _dig(d, path):
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return _MISSING
        d = d[key]
    if path == ("provenance", "compute", "precision") and isinstance(d, str):
        return PRECISION_ALIASES.get(d, d)
    return d


def check_comparable(results: Results, baseline: Results, baseline_path=None) -> None:
    """Refuse (exit 2) a baseline comparison between runs that measured different things.

    FID with another extractor, weights file, real set, N or KID subset size is
    another number; "did not get worse" across them means nothing.
    """
    cur, base = results.to_json(), baseline.to_json()
    where = f"baseline {baseline_path}" if baseline_path else "the baseline"
    lacking = [name for path, name in COMPARABLE if _dig(base, path) is _MISSING]
    if lacking:
        raise GateFileError(f"{where} was written by an earlier gandiag and lacks {', '.join(lacking)}; re-run the "
                            "baseline evaluation with this version so the runs can be compared")
    differ = [f"{name}: this run {clean(_short(_dig(cur, path)))}, the baseline {clean(_short(_dig(base, path)))}"
              for path, name in COMPARABLE + COMPARABLE_WHEN_PRESENT if _dig(base, path) != _dig(cur, path)]
    if differ:
        raise GateFileError(f"this run and {where} are not comparable; they differ in " + "; ".join(differ))


def _short(v) -> str:
    text = "missing" if v is _MISSING else str(v)
    return text if len(text) <= 24 else text[:12] + "…"


def check_gates(results: Results, gates: Gates, junit_path=None) -> GateOutcome:
    """Check every gate; write JUnit XML to ``junit_path`` when given.

    A comparable baseline is required for regression gates (:func:`check_comparable`).
    """
    if junit_path is not None and not str(junit_path):  # Path("") is ".": nothing would be written, silently
        raise GateFileError("--junit: empty path; name the JUnit XML file to write")
    if gates.baseline is not None and any(g.kind in REGRESSIONS for g in gates.gates):
        check_comparable(results, gates.baseline, gates.baseline_path)
    outcome = GateOutcome()
    for gate in gates.gates:
        value = None
        try:
            if gate.scope == "metric":
                value, m = _metric_value(results, gate.target)
                if value is None:
                    ok, msg = False, f"{gate.target} {m} (fails closed)"
                elif gate.kind in THRESHOLDS:
                    ok, msg = _check_threshold(gate, value)
                else:
                    ok, msg = _check_regression(gate, value, m, gates.baseline)
            else:
                ok, msg, value = _check_diagnostic(gate, results)
        except Exception as exc:  # a malformed results file must fail the gate, never pass it
            ok, msg = False, f"could not be checked ({type(exc).__name__}: {exc}); fails closed"
        outcome.cases.append(GateCase(gate, bool(ok), msg, value))
    if junit_path:
        write_junit(outcome, junit_path, results)
    return outcome


def junit_xml(outcome: GateOutcome, results: Optional[Results] = None) -> str:
    """JUnit XML, one ``<testcase>`` per gate, as CI systems read it; always valid XML."""
    suite_name = "gandiag gates"
    if results is not None and results.generator.get("path"):
        suite_name += f": {results.generator['path']}"
    root = ET.Element("testsuites", name="gandiag", tests=str(len(outcome.cases)),
                      failures=str(len(outcome.failures)), errors="0")
    suite = ET.SubElement(root, "testsuite", name=xml_safe(suite_name), tests=str(len(outcome.cases)),
                          failures=str(len(outcome.failures)), errors="0", skipped="0", time="0")
    for c in outcome.cases:
        tc = ET.SubElement(suite, "testcase", classname="gandiag.gates", name=xml_safe(c.name), time="0")
        message = xml_safe(c.message)
        if c.passed:
            ET.SubElement(tc, "system-out").text = message
        else:
            f = ET.SubElement(tc, "failure", message=message, type="GateFailed")
            f.text = message
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(outcome: GateOutcome, path, results: Optional[Results] = None) -> None:
    write_text(Path(path), junit_xml(outcome, results), "--junit")
